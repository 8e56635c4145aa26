"""Mixed load on gunicorn over the national-scale database, with each worker's memory watched.

    .venv/bin/python bench/load.py [--minutes 10] [--users 8] [--workers 2] [--threads 4] [--cases 1000000]

Goal (issue "Ready for a whole country"): no errors; p99 per endpoint printed; every gunicorn
worker's resident memory flat over the run and at most 120 MB.

What it does, on loopback only, bounded in time (--minutes) and in requests (--max-requests):
  1. makes sure `bench_scale` holds about --cases cases (bench/scale_db.py), and copies it to a
     scratch database (`bench_scale_load`, dropped at the end unless --keep-db), so the
     transitions made here leave the shared data set as it was;
  2. starts gunicorn as `flask serve` runs it (gthread, --workers x --threads) on a free port,
     with Redis db 13 for the job queue (flushed before and after);
  3. runs --users virtual users (threads, each with its own signed-in sessions), each picking
     at random, with the weights of WEIGHTS, what an office's day is made of: NGO members on
     their dashboard and case pages; staff on their queues (tabs, later pages by the cursor),
     case pages and transitions through the API (accept, return for correction, recommend,
     send back, approve: the case read first for its version, as a client does); anyone
     verifying a permit (page and API); auditors on their lists, the console and a case's
     chained history. Each user acts in one province on its own share of the cases, so two
     users never race for the same case (a 409 would then be an error too);
  4. samples every worker's RSS from /proc every --sample seconds;
  5. prints the errors (status >= 400 or a failed connection, each with its first body), p50 /
     p99 / max per endpoint, and each worker's RSS per minute, with the verdict.
"""
from __future__ import annotations

import argparse
import os
import random
import re
import signal
import statistics
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # bench/transitions.py would shadow the transitions package
sys.path.append(str(ROOT / "bench"))

import psycopg  # noqa: E402
import requests  # noqa: E402

import scale_db  # noqa: E402
from tests.live_server import Gunicorn  # noqa: E402

LOAD_DB = "bench_scale_load"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
RSS_LIMIT_MB = 120
FLAT_MB = 15  # growth from minute 2 to the last minute that still counts as flat (allocator noise)
PROVINCES = ("tehran", "isfahan", "khorasan-razavi", "fars", "kerman", "qazvin", "ilam")
PASSWORD = "bench1234"
WEIGHTS = {
    "ngo dashboard": 10, "ngo case page": 8,
    "queue": 14, "queue tab": 6, "queue next page": 6, "case page": 12,
    "transition": 10,
    "permit page (public)": 8, "permit API (public)": 4,
    "audit list": 5, "audit console": 5, "audit timeline": 4,
}
# Where an action of `User.transition` leaves a case that has more work for staff.
NEXT_STATE = {"accept": "under_review", "recommend_approval": "awaiting_decision", "send_back": "under_review"}
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
CURSOR = re.compile(r'href="(/queue\?[^"]*cursor=[^"]*)"')


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.999999) - 1))]


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.times: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, list[str]] = defaultdict(list)
        self.count = 0

    def add(self, name: str, ms: float, error: str | None = None) -> None:
        with self.lock:
            self.count += 1
            self.times[name].append(ms)
            if error:
                self.errors[name].append(error)


class Plan:
    """What the virtual users act on, read from the database before the load starts."""

    def __init__(self, dsn: str) -> None:
        with psycopg.connect(dsn) as conn:
            q = conn.execute
            self.provinces = {code: pid for pid, code in q("SELECT id, code FROM provinces WHERE code = ANY(%s)",
                                                           (list(PROVINCES),))}
            self.permits = [r[0] for r in q("SELECT number FROM permits ORDER BY hashint4(id) LIMIT 5000")]
            self.cases: dict[int, list[int]] = {}
            self.work: dict[tuple[int, str], list[tuple[int, str]]] = {}
            self.members: dict[int, list[tuple[str, list[int]]]] = {}
            for pid in self.provinces.values():
                self.cases[pid] = [r[0] for r in q(
                    "SELECT id FROM cases WHERE province_id = %s AND submitted_at IS NOT NULL "
                    "ORDER BY hashint4(id) LIMIT 4000", (pid,))]
                for state in ("submitted", "under_review", "awaiting_decision"):
                    self.work[(pid, state)] = [tuple(r) for r in q(  # type: ignore[misc]
                        "SELECT id, kind FROM cases WHERE province_id = %s AND state = %s AND kind <> 'grant_request' "
                        "ORDER BY hashint4(id)", (pid, state))]
                rows = q("""SELECT u.email, array_agg(c.id ORDER BY c.id DESC)
                            FROM memberships m JOIN users u ON u.id = m.user_id
                            JOIN cases c ON c.organization_id = m.organization_id
                            WHERE c.province_id = %s GROUP BY u.email ORDER BY hashtext(u.email) LIMIT 300""", (pid,))
                self.members[pid] = [(email, ids[:20]) for email, ids in rows]


class User(threading.Thread):
    """One virtual user: a province, its own share of the province's cases, signed-in sessions."""

    def __init__(self, n: int, users: int, base: str, plan: Plan, stats: Stats, deadline: float,
                 budget: int) -> None:
        super().__init__(name=f"user-{n}", daemon=True)
        self.n, self.users, self.base, self.plan, self.stats = n, users, base, plan, stats
        self.deadline, self.budget = deadline, budget
        self.rng = random.Random(n)
        codes = sorted(plan.provinces)
        self.code = codes[n % len(codes)]
        self.pid = plan.provinces[self.code]
        self.sessions: dict[str, requests.Session] = {}
        self.tokens: dict[str, str] = {}
        self.next_queue: str | None = None

    # -- http -------------------------------------------------------------------------------------
    def call(self, name: str, session: requests.Session, method: str, path: str, expect: tuple[int, ...] = (200,),
             **kwargs: Any) -> requests.Response | None:
        started = time.perf_counter()
        # A new connection per request: a kept-alive one that gunicorn closes just as the next
        # request is sent fails on the client's side, which would count as the server's error.
        kwargs["headers"] = {**kwargs.get("headers", {}), "Connection": "close"}
        try:
            response = session.request(method, self.base + path, timeout=30, allow_redirects=False, **kwargs)
        except requests.RequestException as exc:
            self.stats.add(name, (time.perf_counter() - started) * 1000, f"{method} {path}: {exc!r}")
            return None
        ms = (time.perf_counter() - started) * 1000
        error = None
        if response.status_code not in expect:
            error = f"{method} {path}: {response.status_code} {response.text[:200]!r}"
        self.stats.add(name, ms, error)
        return response if error is None else None

    def browser(self, email: str) -> requests.Session:
        """A signed-in browser (the login form with its CSRF token, as a person signs in)."""
        if email not in self.sessions:
            session = requests.Session()
            page = session.get(self.base + "/login", timeout=30)
            token = CSRF.search(page.text)
            response = session.post(self.base + "/login", timeout=30, allow_redirects=False,
                                    data={"email": email, "password": PASSWORD,
                                          "csrf_token": token.group(1) if token else ""})
            if response.status_code != 302:
                raise RuntimeError(f"{email} could not sign in: {response.status_code}")
            self.sessions[email] = session
        return self.sessions[email]

    def api(self, email: str) -> tuple[requests.Session, dict[str, str]]:
        if email not in self.tokens:
            response = requests.post(self.base + "/api/v1/token", json={"email": email, "password": PASSWORD},
                                     timeout=30)
            response.raise_for_status()
            self.tokens[email] = response.json()["token"]
        return self.sessions.setdefault("api", requests.Session()), {"Authorization": f"Bearer {self.tokens[email]}"}

    def staff(self, role: str) -> str:
        return f"{role}1.{self.code}@bench.ir"

    def mine(self, items: list[Any]) -> list[Any]:
        """This user's share: no two users act on the same case."""
        return [x for x in items if (x[0] if isinstance(x, tuple) else x) % self.users == self.n]

    # -- what people do ---------------------------------------------------------------------------
    def act(self, what: str) -> None:
        rng, plan = self.rng, self.plan
        if what in ("ngo dashboard", "ngo case page"):
            members = plan.members[self.pid]
            email, ids = members[rng.randrange(len(members))]
            browser = self.browser(email)
            if what == "ngo dashboard":
                self.call(what, browser, "GET", "/portal/")
            else:
                self.call(what, browser, "GET", f"/cases/{rng.choice(ids)}")
        elif what in ("queue", "queue tab", "queue next page"):
            browser = self.browser(self.staff(rng.choice(("intake", "expert", "director", "finance"))))
            if what == "queue next page" and self.next_queue:
                path = self.next_queue
            elif what == "queue tab":
                path = "/queue?state=" + rng.choice(("submitted", "under_review", "awaiting_decision", "inquiry",
                                                     "finance_review", "approved"))
            else:
                path = "/queue"
            response = self.call(what, browser, "GET", path)
            found = CURSOR.search(response.text) if response is not None else None
            self.next_queue = found.group(1).replace("&amp;", "&") if found else None
        elif what == "case page":
            browser = self.browser(self.staff(rng.choice(("intake", "expert", "director"))))
            self.call(what, browser, "GET", f"/cases/{rng.choice(plan.cases[self.pid])}")
        elif what == "transition":
            self.transition()
        elif what == "permit page (public)":
            self.call(what, self.sessions.setdefault("public", requests.Session()), "GET",
                      f"/permits/{rng.choice(plan.permits)}")
        elif what == "permit API (public)":
            self.call(what, self.sessions.setdefault("public", requests.Session()), "GET",
                      f"/api/v1/permits/{rng.choice(plan.permits)}")
        elif what == "audit list":
            browser = self.browser(self.staff("auditor"))
            before = rng.choice(plan.cases[self.pid])
            self.call(what, browser, "GET", rng.choice(("/audit", f"/audit?before={before}",
                                                        "/audit?state=approved")))
        elif what == "audit console":
            browser = self.browser(self.staff("auditor"))
            self.call(what, browser, "GET", rng.choice(("/audit/decisions", "/audit/decisions?action=approve",
                                                        "/audit/decisions?kind=permit_renewal")))
        elif what == "audit timeline":
            browser = self.browser(self.staff("auditor"))
            self.call(what, browser, "GET", f"/audit/cases/{rng.choice(plan.cases[self.pid])}")

    def transition(self) -> None:
        """Take the next case of this user's share in a state with work to do, read it, act on it."""
        rng = self.rng
        for state, role, actions in (("submitted", "intake", ("accept", "accept", "return_for_correction")),
                                     ("under_review", "expert", ("recommend_approval", "recommend_approval",
                                                                 "return_for_correction")),
                                     ("awaiting_decision", "director", ("approve", "send_back")))[rng.randrange(3):]:
            pool = self.plan.work[(self.pid, state)]
            mine = [c for c in pool if c[0] % self.users == self.n]
            if not mine:
                continue
            case_id, _kind = mine[0]
            pool.remove(mine[0])
            session, headers = self.api(self.staff(role))
            case = self.call("transition: read case (API)", session, "GET", f"/api/v1/applications/{case_id}",
                             headers=headers)
            if case is None:
                return
            action = rng.choice(actions)
            done = self.call(f"transition: {action} (API)", session, "POST",
                             f"/api/v1/applications/{case_id}/transitions",
                             headers=headers, json={"action": action, "version": case.json()["version"],
                                                    "comment": "بررسی شد؛ نظر در پرونده ثبت است."})
            # The case goes on to the next desk, as in an office: it stays work for the run
            # instead of the pools running dry in its first minutes.
            following = NEXT_STATE.get(action)
            if done is not None and following:
                self.plan.work[(self.pid, following)].append((case_id, _kind))
            return

    def run(self) -> None:
        names, weights = zip(*WEIGHTS.items())
        done = 0
        while time.monotonic() < self.deadline and done < self.budget:
            what = self.rng.choices(names, weights)[0]
            try:
                self.act(what)
            except Exception as exc:  # noqa: BLE001 - counted as this endpoint's error, the run goes on
                self.stats.add(what, 0.0, f"{type(exc).__name__}: {exc}")
            done += 1


def workers_of(master: int) -> list[int]:
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                children.append(int(entry))
    return sorted(children)


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def sampler(master: int, every: float, stop: threading.Event, samples: dict[int, list[tuple[float, float]]],
            renderers: dict[int, list[tuple[float, float]]], started: float) -> None:
    """Each worker's RSS; and its letter renderer's (workflow/letter_pdf.py), reported apart."""
    while not stop.wait(every):
        for pid in workers_of(master):
            value = rss_mb(pid)
            if value is not None:
                samples[pid].append((time.monotonic() - started, value))
            for child in workers_of(pid):
                value = rss_mb(child)
                if value is not None:
                    renderers[child].append((time.monotonic() - started, value))


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run(args: argparse.Namespace) -> int:
    scale_db.ensure(args.cases)
    load_dsn = scale_db.ADMIN_DSN.replace("dbname=test", f"dbname={LOAD_DB}")
    with psycopg.connect(scale_db.ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{LOAD_DB}" WITH (FORCE)')
        started = time.perf_counter()
        conn.execute(f'CREATE DATABASE "{LOAD_DB}" TEMPLATE "{scale_db.NAME}"')
        print(f"copied {scale_db.NAME} to {LOAD_DB} in {time.perf_counter() - started:.0f} s")
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    plan = Plan(load_dsn)
    uploads = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-load-{os.getpid()}"
    env = {"DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{LOAD_DB}", "REDIS_URL": REDIS_URL,
           "SECRET_KEY": "bench-load", "UPLOAD_DIR": str(uploads), "INSTANCE_PATH": str(uploads / "instance"),
           "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", "2")}  # as `flask serve` runs gunicorn
    server = Gunicorn("wsgi:app", env, workers=args.workers, threads=args.threads)
    stats = Stats()
    samples: dict[int, list[tuple[float, float]]] = defaultdict(list)
    renderers: dict[int, list[tuple[float, float]]] = defaultdict(list)
    stop = threading.Event()
    print(f"load average before: {load_average()}")
    try:
        server.start(timeout=60)
        assert server.proc is not None
        begin = time.monotonic()
        for pid in workers_of(server.proc.pid):
            samples[pid].append((0.0, rss_mb(pid) or 0.0))
        watcher = threading.Thread(target=sampler, args=(server.proc.pid, args.sample, stop, samples, renderers, begin),
                                   daemon=True)
        watcher.start()
        deadline = begin + args.minutes * 60
        budget = args.max_requests // args.users
        users = [User(n, args.users, server.url, plan, stats, deadline, budget) for n in range(args.users)]
        for user in users:
            user.start()
        for user in users:
            user.join()
        elapsed = time.monotonic() - begin
        stop.set()
        watcher.join()
        log = server.log()
    finally:
        stop.set()
        server.close()
        redis.Redis.from_url(REDIS_URL).flushdb()
        if not args.keep_db:
            with psycopg.connect(scale_db.ADMIN_DSN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{LOAD_DB}" WITH (FORCE)')
    print(f"load average after: {load_average()}")
    print(f"\n{server.describe()}, {args.users} virtual users, {elapsed / 60:.1f} min, {stats.count:,} requests "
          f"({stats.count / elapsed:.0f}/s)\n")
    print(f"{'endpoint':<34} {'requests':>8} {'errors':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    total_errors = 0
    for name in sorted(stats.times):
        values = [v for v in stats.times[name] if v > 0] or [0.0]
        errors = len(stats.errors.get(name, []))
        total_errors += errors
        print(f"{name:<34} {len(stats.times[name]):>8} {errors:>6} {statistics.median(values):>8.1f} "
              f"{pct(values, 0.99):>8.1f} {max(values):>8.1f}")
    print(f"\nerrors: {total_errors}")
    for name, errors in sorted(stats.errors.items()):
        for error in errors[:3]:
            print(f"  {name}: {error}")
    if "Traceback" in log:
        print("server log has tracebacks:\n" + log[log.index("Traceback"):][:3000])
    print("\nworker RSS (MB) at each minute:")
    verdict = True
    for pid, series in sorted(samples.items()):
        per_minute = []
        for minute in range(int(elapsed // 60) + 1):
            inside = [v for t, v in series if minute * 60 <= t < (minute + 1) * 60]
            if inside:
                per_minute.append(inside[-1])
        peak = max(v for _t, v in series)
        # Flat means no trend: the last minute's typical size against the first minute after
        # warm-up (medians of the samples in each). A single sample's swing is the allocator
        # serving one large page and is held to the limit by `peak`, not counted as growth.
        end = series[-1][0]
        second = [v for t, v in series if 60 <= t < 120] or [series[-1][1]]
        last = [v for t, v in series if t >= max(60.0, end - 60)] or [series[-1][1]]
        growth = statistics.median(last) - statistics.median(second)
        ok = peak <= RSS_LIMIT_MB and growth <= FLAT_MB
        verdict &= ok
        print(f"  worker {pid}: " + " ".join(f"{v:.0f}" for v in per_minute)
              + f"  | max {peak:.0f}, median {statistics.median(second):.0f} in minute 2, "
              f"{statistics.median(last):.0f} in the last: {growth:+.0f}  {'ok' if ok else 'NOT OK'}")
    for pid, series in sorted(renderers.items()):
        print(f"  letter renderer {pid} (a worker's child, not a worker): max {max(v for _t, v in series):.0f} MB "
              f"over {len(series)} samples")
    print(f"\nverdict: {'no errors' if not total_errors else f'{total_errors} errors'}; RSS "
          f"{'flat and <= ' + str(RSS_LIMIT_MB) + ' MB' if verdict else 'NOT flat or over ' + str(RSS_LIMIT_MB) + ' MB'}")
    return 0 if verdict and not total_errors else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between RSS samples")
    parser.add_argument("--max-requests", type=int, default=2_000_000, help="a bound on the run besides its time")
    parser.add_argument("--keep-db", action="store_true")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    sys.exit(run(parser.parse_args()))


if __name__ == "__main__":
    main()

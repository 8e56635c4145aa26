"""Staff list pages at national scale: every queue and list page, at every depth, on a million cases.

    .venv/bin/python bench/queues.py [--cases 1000000] [--pages 8] [--rounds 2] [--warmup 1]
                                     [--rebuild] [--detail] [--only queue,api_queue]

Goal (issue "Ready for a whole country"): every queue page (the staff screen's and the API's) p99
<= 20 ms of server time at any depth; the staff dashboard counts (the numbers on the queue tabs)
<= 50 ms. The other staff lists (the case list, the auditor console, notifications) are held to the
same 20 ms line and reported apart: our own target, not the issue's.

What it does, on loopback only:
  1. makes sure the `bench_scale` database holds about --cases cases (bench/scale_db.py: created,
     migrated and filled by `flask bench populate` the first time, timed);
  2. for staff of the largest province (Tehran), of a province with county offices (Kerman:
     its province-wide and a county intake officer) and of the smallest (Ilam), and national
     staff, requests through the app in this process (Flask's test client; the time is the
     whole request: routing, sign-in, queries, template, as a server spends it):
       queue        /queue, every tab (all states, each state), walked page by page by its cursor
       api_queue    /api/v1/queue?limit=50 (bearer token), walked by next_cursor
       audit_list   /audit (auditors, directors), all and filtered by state, walked by `before`
       decisions    /audit/decisions, unfiltered and filtered (action, kind, state, a month)
       notifications, statistics (one request each per user, reported apart)
     Each walk starts at the first page and at 25 %, 50 %, 75 % and 95 % of the list's depth (the
     cursor of that row, found beforehand) and follows the next link --pages times;
  3. times queues.counts() for each staff member (the dashboard counts), in the request's terms;
     steps 2 and 3 run --warmup times first, unrecorded, as bench/transitions.py warms its server:
     the goal is a running server's, and a worker's first request of each list compiles its
     statements and has PostgreSQL plan them afresh (the first executions of a statement on a
     connection are planned each time; prepared, it gets a plan kept for the connection after
     five). Those passes are printed apart ("cold"): what a worker just started shows;
  4. prints p50 / p99 / max per page type, and the baselines measured in the same run: `floor`,
     a page that touches no table (the framework's own cost), and `sql`, the page's rows by one
     bare SQL statement through psycopg (what the database alone needs), with the ratio of the
     page's p50 to each.
"""
from __future__ import annotations

import argparse
import gc
import html
import logging
import math
import os
import re
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The script's own folder holds bench/transitions.py, which would shadow the transitions package.
sys.path[0] = str(ROOT)
sys.path.append(str(ROOT / "bench"))  # for scale_db, after the packages

import psycopg  # noqa: E402

import scale_db  # noqa: E402

PAGE_GOAL_MS, COUNTS_GOAL_MS = 20.0, 50.0
GOAL_KINDS = ("queue", "api_queue", "counts")  # what the issue names; other lists: our own line
KINDS = ("queue", "api_queue", "audit_list", "decisions", "counts", "notifications", "statistics")
DEPTHS = (0.0, 0.25, 0.5, 0.75, 0.95)
NEXT = {
    "queue": re.compile(r'href="([^"]*cursor=[^"]*)"'),
    "audit_list": re.compile(r'href="([^"]*before=[^"]*)"'),
    "decisions": re.compile(r'class="older" href="([^"]*)"'),
}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


class Bench:
    def __init__(self, app: Any, pages: int) -> None:
        self.app, self.pages = app, pages
        self.times: dict[str, list[float]] = defaultdict(list)
        self.detail: dict[tuple[str, str], list[float]] = defaultdict(list)
        self.sql: dict[str, list[float]] = defaultdict(list)
        self.slowest: dict[str, tuple[float, str]] = {}
        self.conn = psycopg.connect(scale_db.dsn(), autocommit=True)
        self.clients: dict[int, Any] = {}
        self.warming = False  # a warm-up pass: times go to `cold`, not to the figures judged
        self.cold: dict[str, list[float]] = defaultdict(list)

    def client(self, user_id: int, email: str) -> Any:
        """A signed-in browser of the user (the login form, as a person signs in)."""
        if user_id not in self.clients:
            client = self.app.test_client()
            response = client.post("/login", data={"email": email, "password": "bench1234"})
            if response.status_code != 302:
                raise AssertionError(f"{email} could not sign in: {response.status_code}")
            self.clients[user_id] = client
        return self.clients[user_id]

    def get(self, kind: str, label: str, client: Any, url: str, headers: dict[str, str] | None = None) -> Any:
        started = time.perf_counter()
        response = client.get(url, headers=headers or {})
        body = response.get_data()
        ms = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise AssertionError(f"{label} {url}: {response.status_code} {body[:300]!r}")
        if self.warming:
            self.cold[kind].append(ms)
            return response
        self.times[kind].append(ms)
        self.detail[(kind, label)].append(ms)
        if ms > self.slowest.get(kind, (0.0, ""))[0]:
            self.slowest[kind] = (ms, f"{label} {url}")
        return response

    def walk(self, kind: str, label: str, client: Any, url: str, follow: Callable[[Any], str | None],
             headers: dict[str, str] | None = None) -> int:
        n = 0
        next_url: str | None = url
        while next_url and n < self.pages:
            response = self.get(kind, label, client, next_url, headers)
            next_url = follow(response)
            n += 1
        return n

    def bare(self, kind: str, sql: str, params: tuple[Any, ...]) -> None:
        if self.warming:
            return
        started = time.perf_counter()
        self.conn.execute(sql, params).fetchall()
        self.sql[kind].append((time.perf_counter() - started) * 1000)


def progress(text: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def html_next(kind: str) -> Callable[[Any], str | None]:
    pattern = NEXT[kind]

    def follow(response: Any) -> str | None:
        found = pattern.search(response.get_data(as_text=True))
        return html.unescape(found.group(1)) if found else None

    return follow


def users(conn: psycopg.Connection) -> dict[str, tuple[int, int | None, int | None]]:
    """label → (user id, province id, county id) of the staff the bench acts as."""
    wanted = ["intake1.tehran", "expert1.tehran", "director1.tehran", "finance1.tehran", "auditor1.tehran",
              "intake1.kerman", "intake.kerman.bam", "expert1.kerman", "director1.kerman", "auditor1.kerman",
              "intake1.ilam", "expert1.ilam", "director1.ilam", "finance1.ilam", "auditor1.ilam", "auditor", "admin"]
    rows = conn.execute("SELECT email, id, province_id, county_id FROM users WHERE email = ANY(%s)",
                        ([f"{w}@bench.ir" for w in wanted],)).fetchall()
    found = {email.removesuffix("@bench.ir"): (uid, pid, cid) for email, uid, pid, cid in rows}
    missing = [w for w in wanted if w not in found]
    if missing:
        raise SystemExit(f"not in the bench database: {missing} (populate it again with --rebuild)")
    return found


def run(args: argparse.Namespace) -> int:
    only = set(args.only.split(","))
    if only - set(KINDS):
        raise SystemExit(f"--only: unknown page types {sorted(only - set(KINDS))} (known: {', '.join(KINDS)})")
    info = scale_db.ensure(args.cases, args.rebuild)
    os.environ["DATABASE_URL"] = scale_db.url()
    from sqlalchemy import func, select, tuple_

    from workflow import create_app, registry, warm_up
    from workflow.config import TestConfig
    from workflow.models import AuditEntry, Case
    from workflow.services import accounts, audit_search, queues
    from workflow.views.queues import PAGE

    app = create_app(TestConfig(DATABASE_URL=scale_db.url(), REDIS_URL="", WTF_CSRF_ENABLED=False))
    # Logging every request to this terminal would time the terminal; a server logs elsewhere.
    logging.getLogger("workflow.request").setLevel(logging.WARNING)
    bench = Bench(app, args.pages)
    staff = users(bench.conn)
    with bench.conn.cursor() as cur:
        totals = cur.execute("SELECT (SELECT count(*) FROM cases), (SELECT count(*) FROM audit_entries), "
                             "(SELECT count(*) FROM organizations), (SELECT count(*) FROM permits)").fetchone()
    print(f"bench_scale: {totals[0]:,} cases, {totals[1]:,} audit entries, {totals[2]:,} organisations, "
          f"{totals[3]:,} permits" + (f" (populated in {info['seconds']:.0f} s)" if info.get("populated") else ""))

    # Requests run outside any app context of ours: inside one, Flask would reuse it (and its `g`,
    # where Flask-Login keeps the signed-in user) for every request.
    session = app.extensions["db_sessionmaker"]()
    loaded = {label: accounts.load_user(session, uid) for label, (uid, _p, _c) in staff.items()}
    tokens = {}
    context = app.app_context()
    context.push()
    for label in ("intake1.tehran", "expert1.tehran", "director1.tehran", "finance1.kerman"
                  if "finance1.kerman" in loaded else "finance1.tehran", "intake.kerman.bam"):
        token, _exp = accounts.issue_token(session, loaded[label])
        tokens[label] = token
    session.commit()
    context.pop()
    warm_up(app)  # as wsgi.py does in a web worker: the queue's statements and templates compiled
    gc.freeze()  # as wsgi.py does once the app is built: the collector skips what start-up made

    floor_client = api_client = app.test_client()
    for _ in range(50 * args.rounds):
        bench.get("floor", "public verify form", floor_client, "/verify")

    for round_ in range(args.warmup + args.rounds):
        bench.warming = round_ < args.warmup
        # -- the work queues -------------------------------------------------------------------
        for label, user in loaded.items():
            if not user.has_role("intake", "expert", "director", "finance"):
                continue
            client = bench.client(user.id, user.email)
            base = queues.actionable(user).order_by(Case.state_entered_at, Case.id)
            states = sorted({s for p in registry.PROCESSES.values() for role in user.roles
                             for s in p.states_for_role(role)})
            for state in [None, *states] if "queue" in only else []:
                query = queues.actionable(user, state=state).order_by(Case.state_entered_at, Case.id)
                total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
                if total == 0:
                    continue
                for depth in DEPTHS:
                    offset = int(total * depth)
                    cursor = None
                    if offset:
                        row = session.scalars(query.offset(offset - 1).limit(1)).first()
                        cursor = queues._encode(row)
                    params = {"state": state, "cursor": cursor}
                    url = "/queue?" + "&".join(f"{k}={v}" for k, v in params.items() if v)
                    bench.walk("queue", f"{label} {state or 'all'}", client, url, html_next("queue"))
                    # The bare SQL of the same page: the rows the page shows, by the same query.
                    page = query.limit(PAGE + 1)
                    if cursor:
                        at, cid = queues._decode(cursor)
                        page = page.where(tuple_(Case.state_entered_at, Case.id) > tuple_(at, cid))
                    compiled = page.with_only_columns(Case.id).compile(
                        dialect=app.extensions["db_engine"].dialect, compile_kwargs={"literal_binds": True})
                    bench.bare("queue", str(compiled), ())
                session.rollback()
            if label in tokens and "api_queue" in only:
                total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
                for depth in DEPTHS:
                    offset = int(total * depth)
                    cursor = queues._encode(session.scalars(base.offset(offset - 1).limit(1)).first()) \
                        if offset else None
                    url = "/api/v1/queue?limit=50" + (f"&cursor={cursor}" if cursor else "")

                    def follow(response: Any) -> str | None:
                        nxt = response.get_json().get("next_cursor")
                        return f"/api/v1/queue?limit=50&cursor={nxt}" if nxt else None

                    bench.walk("api_queue", label, api_client, url, follow,
                               headers={"Authorization": f"Bearer {tokens[label]}"})
                session.rollback()

        # -- the auditor's and director's list of cases -----------------------------------------
        for label, user in loaded.items():
            if not user.roles & {"auditor", "admin", "director"} or not only & {"audit_list", "decisions"}:
                continue
            client = bench.client(user.id, user.email)
            for state in (None, "approved", "under_review", "inquiry") if "audit_list" in only else ():
                where = ["submitted_at IS NOT NULL"]
                params: list[Any] = []
                if user.province_id is not None:
                    where.append("province_id = %s")
                    params.append(user.province_id)
                if user.county_id is not None:
                    where.append("county_id = %s")
                    params.append(user.county_id)
                if state:
                    where.append("state = %s")
                    params.append(state)
                sql = f"SELECT id FROM cases WHERE {' AND '.join(where)} ORDER BY id DESC"
                ids = [r[0] for r in bench.conn.execute(sql, params).fetchall()]
                if not ids:
                    continue
                for depth in DEPTHS:
                    offset = int(len(ids) * depth)
                    url = "/audit?" + "&".join(
                        f"{k}={v}" for k, v in {"state": state, "before": ids[offset - 1] if offset else None}.items()
                        if v)
                    bench.walk("audit_list", f"{label} {state or 'all'}", client, url, html_next("audit_list"))
                    bare = (f"SELECT * FROM cases WHERE {' AND '.join(where)}"
                            + (" AND id < %s" if offset else "") + " ORDER BY id DESC LIMIT 26")
                    bench.bare("audit_list", bare, tuple(params + ([ids[offset - 1]] if offset else [])))
            # The auditor console: decisions, unfiltered and with each kind of filter.
            filters = [{}, {"action": "approve"}, {"kind": "permit_renewal"}, {"state": "rejected"},
                       {"from": "1403/07/01", "to": "1403/07/30"}]
            for args_ in filters if "decisions" in only else []:
                f = audit_search.read_filters(args_)
                q = audit_search.query(user, f).with_only_columns(AuditEntry.id).limit(args.deep_rows)
                ids = [r for r in session.scalars(q)]
                session.rollback()
                if not ids:
                    continue
                for depth in DEPTHS:
                    offset = int(len(ids) * depth)
                    query_args = dict(args_)
                    if offset:
                        query_args["before"] = ids[offset - 1]
                    url = "/audit/decisions?" + "&".join(f"{k}={v}" for k, v in query_args.items())
                    bench.walk("decisions", f"{label} {args_ or 'all'}", client, url, html_next("decisions"))
                    started = time.perf_counter()
                    audit_search.page(session, user, f, before=query_args.get("before"))
                    session.rollback()
                    if not bench.warming:
                        bench.sql["decisions"].append((time.perf_counter() - started) * 1000)

        # -- notifications, statistics ----------------------------------------------------------
        for label, user in loaded.items():
            client = bench.client(user.id, user.email)
            if "notifications" in only:
                bench.get("notifications", label, client, "/notifications")
            if user.roles & {"director", "auditor", "admin"} and "statistics" in only:
                bench.get("statistics", label, client, "/statistics")

        # -- the dashboard counts ---------------------------------------------------------------
        for label, user in loaded.items():
            if not user.has_role("intake", "expert", "director", "finance") or "counts" not in only:
                continue
            for _ in range(5):
                started = time.perf_counter()
                queues.counts(session, user)
                ms = (time.perf_counter() - started) * 1000
                session.rollback()
                if bench.warming:
                    bench.cold["counts"].append(ms)
                    continue
                bench.times["counts"].append(ms)
                bench.detail[("counts", label)].append(ms)
    session.close()

    floor = statistics.median(bench.times["floor"])
    print(f"\n{'page type':<14} {'requests':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'goal':>6}  "
          f"{'sql p50':>8} {'x sql':>6} {'x floor':>8}")
    failed = []
    for kind in ("floor", "queue", "api_queue", "audit_list", "decisions", "counts", "notifications", "statistics"):
        values = bench.times.get(kind)
        if not values:
            continue
        p50, p99 = statistics.median(values), pct(values, 0.99)
        goal = COUNTS_GOAL_MS if kind == "counts" else (PAGE_GOAL_MS if kind not in ("floor", "statistics") else None)
        sql = statistics.median(bench.sql[kind]) if bench.sql.get(kind) else None
        print(f"{kind:<14} {len(values):>8} {p50:>8.2f} {p99:>8.2f} {max(values):>8.2f} "
              f"{(f'{goal:.0f}' if goal else '-'):>6}  {(f'{sql:.2f}' if sql else '-'):>8} "
              f"{(f'{p50 / sql:.1f}' if sql else '-'):>6} {p50 / floor:>8.1f}")
        if goal and p99 > goal:
            failed.append(kind)
    missed = [kind for kind in failed if kind in GOAL_KINDS]
    over = [kind for kind in failed if kind not in GOAL_KINDS]
    if bench.cold:
        print(f"\ncold: the {args.warmup} unrecorded warm-up pass(es), as a worker just started serves them")
        for kind in ("queue", "api_queue", "audit_list", "decisions", "counts", "notifications", "statistics"):
            values = bench.cold.get(kind)
            if values:
                print(f"{kind:<14} {len(values):>8} {statistics.median(values):>8.2f} {pct(values, 0.99):>8.2f} "
                      f"{max(values):>8.2f}")
    print("\nslowest request of each type:")
    for kind, (ms, what) in sorted(bench.slowest.items()):
        print(f"  {kind:<14} {ms:8.2f} ms  {what}")
    if args.detail:
        print("\np99 by user and list:")
        for (kind, label), values in sorted(bench.detail.items()):
            print(f"  {kind:<14} {label:<48} n={len(values):<4} p50 {statistics.median(values):7.2f} "
                  f"p99 {pct(values, 0.99):7.2f}")
    print(f"\ngoal (queue pages p99 <= {PAGE_GOAL_MS:.0f} ms, counts p99 <= {COUNTS_GOAL_MS:.0f} ms): "
          + (f"missed by {', '.join(missed)}" if missed else "met"))
    print(f"other staff lists (our own line, p99 <= {PAGE_GOAL_MS:.0f} ms): "
          + (f"over it: {', '.join(over)}" if over else "all under it"))
    return 1 if missed else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--pages", type=int, default=8, help="pages followed from each starting depth")
    parser.add_argument("--rounds", type=int, default=2, help="measured passes over every list")
    parser.add_argument("--warmup", type=int, default=1, help="unrecorded passes first (printed as cold)")
    parser.add_argument("--deep-rows", type=int, default=20_000,
                        help="how far into the auditor console's results the deep starts may go")
    parser.add_argument("--rebuild", action="store_true", help="populate the database again")
    parser.add_argument("--detail", action="store_true", help="p50/p99 per user and list")
    parser.add_argument("--only", default=",".join(KINDS),
                        help=f"the page types to request, comma-separated (default: all of {','.join(KINDS)})")
    sys.exit(run(parser.parse_args()))


if __name__ == "__main__":
    main()

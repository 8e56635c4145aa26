"""The deadline sweep at national scale: find and enqueue what is due, then deliver it by e-mail.

    .venv/bin/python bench/sweep.py [--cases N] [--permits N] [--due N] [--now ISO] [--repeat N]
                                    [--modes worker,fork] [--delivery-timeout S]
                                    [--redis-db N] [--profile] [--keep-db]

Goals (the issue): with 1,000,000 cases and permits of which 10,000 are due, finding and
enqueueing takes ≤ 5 s, and two rq workers deliver the 10,000 e-mails to a local SMTP sink in
≤ 60 s.

What it does, on loopback only:
  1. creates its own PostgreSQL database (dropped at the end) and migrates it as `init-db` does
     (schema, provinces and counties, holidays);
  2. bulk-loads organisations, staff and applicants, cases in every state and permits, exactly
     `--due` of them due at `now` in a fixed mix of events (bench/sweep_data.py), then ANALYZE;
  3. runs `jobs.sweep.run(now)` in this process with REDIS_URL on Redis db --redis-db (flushed
     before and after; the bench refuses a db other clients use), as the cron job does, and
     times it; counts the notifications written and the rows queued for delivery; says how much of the
     time went to the transitions (lapses, expiries) and to rq's enqueueing, and the CPU used
     by this process and by its PostgreSQL backend (a figure other load on the machine does not
     inflate). It does so on --repeat - 1 copies of the loaded database first (CREATE DATABASE …
     TEMPLATE), then on the database itself, and reports the median. Then it runs the sweep again
     at the same `now` (nothing may be created twice), and winds the reminded rows'
     `next_event_at` back and runs it a third time, so the sweep meets every reminder again and
     the outbox keys must refuse them all;
  4. starts an SMTP sink on a loopback port (bench/smtp_sink.py) and two workers, and times until
     every notification is delivered, by the database (delivered_at) and by the sink, with the
     workers' CPU per message. Modes:
     worker = `flask --app wsgi jobs worker`, what `make run` and `serve` start (rq's
              SimpleWorker: jobs run in the worker, which keeps its SMTP connection open);
     fork   = `flask --app wsgi jobs worker --fork` (rq's Worker: one forked process per job).
     The jobs are the sweep's: a batch of rows each (jobs.notify.deliver_batch). Between modes
     the rows are marked undelivered again and re-enqueued the same way; a mode still running
     after --delivery-timeout is stopped and reported with what it delivered;
  5. prints a table of all figures and the goals.

--profile runs the first sweep under cProfile (its time is then not the real figure) and prints
where the time goes. Everything shares this machine's cores: PostgreSQL, Redis, the workers and
the sink. BENCH_SQL_TIMES=1 prints the time of each loading statement.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import logging
import os
import pstats
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import redis  # noqa: E402

from bench.smtp_sink import SmtpSink  # noqa: E402
from bench.sweep_data import Loaded, load  # noqa: E402
from tests.live_server import PG_ADMIN, PG_URL, create_database, drop_database, libpq_dsn, migrate  # noqa: E402

try:
    from redis.utils import HIREDIS_AVAILABLE as HIREDIS
except ImportError:  # pragma: no cover
    HIREDIS = False

GOAL_SWEEP_S = 5.0
GOAL_DELIVERY_S = 60.0
REDIS_BASE = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/{db}")
WORKERS = 2
MODES = {
    "worker": ("`jobs worker` (SimpleWorker)", [sys.executable, "-m", "flask", "--app", "wsgi", "jobs", "worker"]),
    "fork": ("`jobs worker --fork` (fork per job)", [sys.executable, "-m", "flask", "--app", "wsgi", "jobs", "worker",
                                                      "--fork"]),
}


@dataclass
class SweepRun:
    label: str
    seconds: float
    counts: dict[str, int]
    notifications: int  # rows the run created (database count before/after)
    queued: int  # notification rows in the delivery jobs on the rq queue after the run
    jobs: int = 0  # those jobs
    cpu: float = float("nan")  # this process's CPU during the run
    backend_cpu: float = float("nan")  # the CPU of the PostgreSQL backends serving it
    parts: dict[str, float] = field(default_factory=dict)  # wall seconds in the timed calls


class Timers:
    """Wall time spent in a few calls the sweep makes, to say where its time goes.

    Wraps, in this process only: the two transition functions (a lapse is `engine.fire`, an
    expiry `permits.fire`) and rq's enqueueing (the sweep's `enqueue_deliveries`, and
    `Queue.enqueue`, which jobs/queue.py's after-commit hook uses for the engine's own rows).
    """

    TARGETS = (("workflow.engine", "fire", "transitions"), ("workflow.services.permits", "fire", "transitions"),
               ("jobs.sweep", "enqueue_deliveries", "rq enqueue"), ("rq.queue", "Queue.enqueue", "rq enqueue"))

    def __init__(self) -> None:
        import importlib

        self.spent: dict[str, float] = {}
        self.depth = 0
        for module_name, attr, label in self.TARGETS:
            owner: Any = importlib.import_module(module_name)
            *path, name = attr.split(".")
            for part in path:
                owner = getattr(owner, part)
            setattr(owner, name, self._wrap(getattr(owner, name), label))

    def _wrap(self, func: Any, label: str) -> Any:
        import functools

        @functools.wraps(func)
        def timed(*args: Any, **kwargs: Any) -> Any:
            self.depth += 1
            t0 = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                self.depth -= 1
                if self.depth == 0:  # not twice for a call inside a timed call
                    self.spent[label] = self.spent.get(label, 0.0) + time.perf_counter() - t0

        return timed

    def take(self) -> dict[str, float]:
        spent, self.spent = self.spent, {}
        return spent


def backend_cpu(dsn: str) -> float | None:
    """CPU seconds used so far by the PostgreSQL backends connected to this database (other than
    the one asking), from /proc; None if the server is not on this machine."""
    with psycopg.connect(dsn) as conn:
        pids = [r[0] for r in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")]
    total = 0.0
    try:
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None
    return total


@dataclass
class Delivery:
    mode: str
    expected: int
    seconds: float = float("nan")  # from starting the workers until everything was delivered
    first_after: float = float("nan")  # from starting the workers until the first delivery
    delivered: int = 0
    failed: int = 0
    sink: int = 0
    distinct: int = 0
    connections: int = 0
    rq_failed: int = 0
    worker_cpu: float = float("nan")  # CPU of the worker processes (and their work horses)
    timed_out: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        steady = self.seconds - self.first_after
        return self.delivered / steady if steady > 0 else float("nan")


# -- database ------------------------------------------------------------------------------------
def make_app(url: str, redis_url: str) -> Any:
    """The app as a worker or the cron job builds it from the environment, pointed at the bench."""
    from workflow import create_app
    from workflow.config import Config

    config = Config()
    config.DATABASE_URL, config.REDIS_URL, config.SMTP_HOST = url, redis_url, ""
    app = create_app(config)
    return app


def clone_database(name: str) -> tuple[str, str]:
    """A copy of the database (CREATE DATABASE … TEMPLATE: a file copy), as (name, URL)."""
    copy = f"{name}_copy"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{copy}" TEMPLATE "{name}"')
    return copy, PG_URL.format(db=copy)


def count_notifications(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return int(conn.execute("SELECT count(*) FROM notifications").fetchone()[0])


def parse_result(text: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r"(\w+) (\d+)", text)}


# -- sweep ---------------------------------------------------------------------------------------
def sweep(app: Any, dsn: str, now: datetime, label: str, timers: Timers, profile: bool = False) -> SweepRun:
    import jobs.sweep
    from jobs.queue import get_queue

    before = count_notifications(dsn)
    backend_before = backend_cpu(dsn)
    timers.take()
    with app.app_context():
        prof = cProfile.Profile() if profile else None
        t0, c0 = time.perf_counter(), time.process_time()
        if prof:
            prof.enable()
        out = jobs.sweep.run(now)
        if prof:
            prof.disable()
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        queue = get_queue()
        queued, jobs = queued_rows(queue) if queue is not None else (0, 0)
    parts = timers.take()
    backend_after = backend_cpu(dsn)
    if prof:
        show_profile(prof)
    result = SweepRun(label, seconds, parse_result(out), count_notifications(dsn) - before, queued, jobs, cpu,
                      parts=parts)
    if backend_before is not None and backend_after is not None:
        result.backend_cpu = backend_after - backend_before
    return result


def queued_rows(queue: Any) -> tuple[int, int]:
    """(notification rows, jobs) waiting on the queue: a delivery job carries one row or a batch."""
    rows = jobs = 0
    for job in queue.get_jobs():
        jobs += 1
        if job.func_name == "jobs.notify.deliver_batch":
            rows += len(job.args[0])
        elif job.func_name == "jobs.notify.deliver":
            rows += 1
    return rows, jobs


def show_profile(prof: cProfile.Profile) -> None:
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(45)
    print("\n".join(out.getvalue().splitlines()[:75]))
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(25)
    print("\n".join(out.getvalue().splitlines()[:45]))


def wind_back(dsn: str, loaded: Loaded) -> int:
    """Put the reminded rows' next_event_at back where the load left it."""
    with psycopg.connect(dsn) as conn:
        for table in ("cases", "permits"):
            rows = [(i, at) for t, i, at in loaded.reminders if t == table]
            conn.execute(f"UPDATE {table} t SET next_event_at = u.at FROM unnest(%s::int[], %s::timestamptz[]) "
                         f"u(id, at) WHERE t.id = u.id", ([i for i, _ in rows], [at for _, at in rows]))
        conn.commit()
    return len(loaded.reminders)


# -- delivery ------------------------------------------------------------------------------------
def requeue_all(app: Any, dsn: str) -> int:
    """Every notification undelivered again and enqueued on a flushed queue as the sweep does."""
    from jobs.sweep import enqueue_deliveries

    with psycopg.connect(dsn) as db:
        db.execute("UPDATE notifications SET delivered_at = NULL, failed_at = NULL, attempts = 0, last_error = NULL")
        ids = [r[0] for r in db.execute("SELECT id FROM notifications ORDER BY id")]
        db.commit()
    with app.app_context():
        redis.Redis.from_url(app.config["REDIS_URL"]).flushdb()
        enqueue_deliveries(ids)
    return len(ids)


def group_cpu(leader: int) -> float:
    """CPU seconds of a process group: its live members, plus the reaped children of its leader
    (rq's work horses)."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == leader:  # pgrp
            total += int(fields[11]) + int(fields[12])
            if stat.parent.name == str(leader):
                total += int(fields[13]) + int(fields[14])
    return total / tick


def start_worker(mode: str, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(MODES[mode][1], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the worker's own process group (it and its work horse), then SIGKILL."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def deliver(mode: str, dsn: str, url: str, redis_url: str, sink: SmtpSink, expected: int,
            timeout: float) -> Delivery:
    from rq import Queue
    from rq.registry import FailedJobRegistry

    result = Delivery(mode, expected)
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": redis_url, "SMTP_HOST": "127.0.0.1",
           "SMTP_PORT": str(sink.port), "SECRET_KEY": "bench-sweep", "FLASK_ENV": "", "WORKFLOW_CONFIG": "",
           "PYTHONUNBUFFERED": "1"}
    log_path = Path(tempfile.mkstemp(prefix=f"sweep-worker-{mode}-", suffix=".log")[1])
    sink.reset()
    t0 = time.perf_counter()
    procs = [start_worker(mode, env, log_path) for _ in range(WORKERS)]
    try:
        with psycopg.connect(dsn, autocommit=True) as db:
            while True:
                delivered, failed = db.execute(
                    "SELECT count(*) FILTER (WHERE delivered_at IS NOT NULL), "
                    "count(*) FILTER (WHERE failed_at IS NOT NULL) FROM notifications").fetchone()
                elapsed = time.perf_counter() - t0
                if delivered and result.first_after != result.first_after:  # still NaN
                    result.first_after = (sink.first_at - t0) if sink.first_at else elapsed
                if delivered + failed >= expected and sink.count >= delivered:
                    result.seconds = elapsed
                    break
                if elapsed > timeout:
                    result.timed_out, result.seconds = True, elapsed
                    break
                if any(p.poll() is not None for p in procs):
                    result.notes.append("a worker exited early; see " + str(log_path))
                    result.seconds = elapsed
                    break
                time.sleep(0.1)
            result.delivered, result.failed = delivered, failed
            result.worker_cpu = sum(group_cpu(p.pid) for p in procs)
    finally:
        for proc in procs:
            stop_worker(proc)
    result.sink, result.distinct, result.connections = sink.count, sink.distinct, sink.connections
    conn = redis.Redis.from_url(redis_url)
    result.rq_failed = FailedJobRegistry(queue=Queue(os.environ.get("RQ_QUEUE", "default"), connection=conn)).count
    if result.rq_failed or result.failed or result.timed_out:
        result.notes.append(f"worker log: {log_path}")
    else:
        log_path.unlink(missing_ok=True)
    return result


# -- report --------------------------------------------------------------------------------------
def verdict(value: float, goal: float) -> str:
    return "met" if value <= goal else "NOT met"


def report(loaded: Loaded, load_seconds: float, firsts: list[SweepRun], runs: list[SweepRun],
           deliveries: list[Delivery], profiled: bool, timeout: float) -> None:
    rows: list[tuple[str, str, str]] = []
    total = loaded.cases + loaded.permits
    rows.append((f"load {total:,} cases + permits ({loaded.due:,} due)", f"{load_seconds:.1f} s", ""))
    median = sorted(firsts, key=lambda r: r.seconds)[len(firsts) // 2]
    if len(firsts) > 1:
        rows.append((f"sweep: find and enqueue, median of {len(firsts)}", f"{median.seconds:.2f} s",
                     f"≤ {GOAL_SWEEP_S:g} s: " + ("(under cProfile)" if profiled
                                                  else verdict(median.seconds, GOAL_SWEEP_S))))
        rows.append(("  each run (copies of the database, then itself)",
                     " / ".join(f"{r.seconds:.2f}" for r in firsts) + " s", ""))
    for r in [median, *runs]:
        c = r.counts
        handled = c.get("cases", 0) + c.get("permits", 0)
        goal = ""
        if r is median and len(firsts) == 1:
            goal = f"≤ {GOAL_SWEEP_S:g} s: " + ("(under cProfile)" if profiled else verdict(r.seconds, GOAL_SWEEP_S))
        if r is not median or len(firsts) == 1:
            rows.append((r.label, f"{r.seconds:.2f} s", goal))
        rows.append(("  rows handled / notifications / rows queued in jobs",
                     f"{handled:,} / {r.notifications:,} / {r.queued:,} in {r.jobs:,}", ""))
        if r is median:
            rows.append(("  of which escalated / lapsed / expired / requeued",
                         " / ".join(f"{c.get(k, 0):,}" for k in ("escalated", "lapsed", "expired", "requeued")), ""))
            trans, enq = r.parts.get("transitions", 0.0), r.parts.get("rq enqueue", 0.0)
            rows.append(("  wall: lapses+expiries / rq enqueue / the rest",
                         f"{trans:.2f} / {enq:.2f} / {r.seconds - trans - enq:.2f} s", ""))
            rows.append(("  CPU: this process / its PostgreSQL backend", f"{r.cpu:.2f} / {r.backend_cpu:.2f} s", ""))
    for d in deliveries:
        if d.timed_out:
            value, goal = f"> {timeout:g} s", f"≤ {GOAL_DELIVERY_S:g} s: NOT met (stopped, {d.delivered:,} delivered)"
        else:
            value, goal = f"{d.seconds:.1f} s", f"≤ {GOAL_DELIVERY_S:g} s: {verdict(d.seconds, GOAL_DELIVERY_S)}"
        rows.append((f"deliver {d.expected:,}: {WORKERS} × {MODES[d.mode][0]}", value, goal))
        rows.append(("  msgs/s (from the first) / first after", f"{d.rate:,.1f} /s / {d.first_after:.1f} s", ""))
        if d.delivered:
            rows.append(("  workers' CPU per message delivered", f"{d.worker_cpu / d.delivered * 1000:.1f} ms", ""))
        rows.append(("  delivered (db) / sink / distinct / failed",
                     f"{d.delivered:,} / {d.sink:,} / {d.distinct:,} / {d.failed + d.rq_failed}", ""))
        rows.extend((f"  note: {note}", "", "") for note in d.notes)
    w1, w2 = max(len(r[0]) for r in rows), max(len(r[1]) for r in rows)
    print(f"\n{'figure':<{w1}}  {'value':>{w2}}  goal")
    print("-" * (w1 + w2 + 30))
    for figure, value, goal in rows:
        print(f"{figure:<{w1}}  {value:>{w2}}  {goal}".rstrip())
    print(f"\n{os.cpu_count()} CPUs shared by PostgreSQL, Redis, this process (sweep, SMTP sink) and the workers"
          f" (load average {os.getloadavg()[0]:.1f} now); hiredis {'yes' if HIREDIS else 'no'}")
    print("due mix: " + ", ".join(f"{k} {v:,}" for k, v in loaded.due_mix.items()))


def redis_clients(url: str) -> int:
    """Other connections to this Redis db: a worker of someone else's would take the bench's jobs."""
    conn = redis.Redis.from_url(url)
    me, db = conn.client_id(), conn.connection_pool.connection_kwargs.get("db", 0)
    return sum(1 for c in conn.client_list() if int(c.get("db", -1)) == db and int(c.get("id", -1)) != me)


# -- main ----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=700_000)
    parser.add_argument("--permits", type=int, default=300_000)
    parser.add_argument("--due", type=int, default=10_000)
    parser.add_argument("--now", help="ISO-8601 moment of the sweep (UTC if no zone); default: now")
    parser.add_argument("--modes", default="worker",
                        help="delivery runs, comma-separated: worker, fork; empty: none")
    parser.add_argument("--redis-db", type=int, default=15, help="Redis db used and flushed (not the tests' 0-2)")
    parser.add_argument("--delivery-timeout", type=float, default=300.0)
    parser.add_argument("--repeat", type=int, default=3,
                        help="sweeps on fresh copies of the loaded database (the last on itself); median reported")
    parser.add_argument("--profile", action="store_true", help="run the first sweep under cProfile")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database (prints its URL)")
    args = parser.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m.strip()]
    for m in modes:
        if m not in MODES:
            parser.error(f"unknown mode {m!r}")
    now = (datetime.fromisoformat(args.now) if args.now else datetime.now(timezone.utc)).replace(microsecond=0)
    now = now if now.tzinfo else now.replace(tzinfo=timezone.utc)
    redis_url = REDIS_BASE.format(db=args.redis_db)
    others = redis_clients(redis_url)
    if others:
        print(f"{others} other client(s) use {redis_url}: choose another --redis-db", file=sys.stderr)
        return 2
    redis.Redis.from_url(redis_url).flushdb()
    logging.basicConfig(level=logging.WARNING)

    from werkzeug.security import generate_password_hash

    from workflow.config import Config

    print(f"sweep bench: {args.cases:,} cases, {args.permits:,} permits, {args.due:,} due at {now.isoformat()}; "
          f"Redis {redis_url}", flush=True)
    db_name, url = create_database("wf_sweep")
    dsn = libpq_dsn(url)
    runs: list[SweepRun] = []
    deliveries: list[Delivery] = []
    try:
        t0 = time.perf_counter()
        migrate(url)
        migrated = time.perf_counter() - t0
        with psycopg.connect(dsn) as conn:
            holidays = frozenset(r[0] for r in conn.execute("SELECT day FROM holidays"))
        loaded = load(dsn, cases=args.cases, permits=args.permits, due=args.due, now=now, holidays=holidays,
                      thursday_off=Config().THURSDAY_OFF,
                      password_hash=generate_password_hash("demo1234", method="pbkdf2:sha256:1"))
        load_seconds = time.perf_counter() - t0
        parts = ", ".join(f"{k} {v:.1f} s" for k, v in loaded.seconds.items() if k != "total")
        print(f"database {db_name}: migrated in {migrated:.1f} s; loaded {loaded.cases:,} cases, "
              f"{loaded.permits:,} permits, {loaded.organizations:,} organisations, {loaded.users:,} users "
              f"in {loaded.seconds['total']:.1f} s ({parts})", flush=True)

        timers = Timers()
        firsts: list[SweepRun] = []
        for i in range(args.repeat - 1):
            # The same sweep on copies first, so noise from other work on the machine shows.
            copy_name, copy_url = clone_database(db_name)
            try:
                copy_app = make_app(copy_url, redis_url)
                firsts.append(sweep(copy_app, libpq_dsn(copy_url), now, f"sweep (copy {i + 1})", timers,
                                    profile=args.profile and i == 0))
                copy_app.extensions["db_engine"].dispose()
            finally:
                drop_database(copy_name)
                redis.Redis.from_url(redis_url).flushdb()
            print(f"sweep on a copy: {firsts[-1].seconds:.2f} s", flush=True)
        app = make_app(url, redis_url)
        first = sweep(app, dsn, now, "sweep: find and enqueue", timers, profile=args.profile and not firsts)
        firsts.append(first)
        print(f"sweep: {first.counts} in {first.seconds:.2f} s; {first.notifications:,} notifications, "
              f"{first.queued:,} rows queued in {first.jobs:,} jobs", flush=True)
        again = sweep(app, dsn, now, "sweep again at the same now", timers)
        runs.append(again)
        print(f"again: {again.counts} in {again.seconds:.2f} s; {again.notifications} notifications", flush=True)
        wound = wind_back(dsn, loaded)
        replay = sweep(app, dsn, now, f"replay {wound:,} reminders (keys refuse)", timers)
        runs.append(replay)
        print(f"replay: {replay.counts} in {replay.seconds:.2f} s; {replay.notifications} notifications, "
              f"{replay.queued:,} rows queued in {replay.jobs:,} jobs", flush=True)
        app.extensions["db_engine"].dispose()

        expected = count_notifications(dsn)
        with SmtpSink() as sink:
            for i, mode in enumerate(modes):
                if i or first.queued != expected:
                    requeue_all(app, dsn)
                print(f"delivering {expected:,} with {WORKERS} × {MODES[mode][0]} to the sink on port {sink.port} …",
                      flush=True)
                d = deliver(mode, dsn, url, redis_url, sink, expected, args.delivery_timeout)
                deliveries.append(d)
                print(f"  {d.delivered:,} delivered in {d.seconds:.1f} s ({d.rate:,.0f} msgs/s after the first "
                      f"at {d.first_after:.1f} s); sink {d.sink:,}, distinct {d.distinct:,}, "
                      f"connections {d.connections:,}", flush=True)
        report(loaded, load_seconds, firsts, runs, deliveries, args.profile, args.delivery_timeout)
    finally:
        if args.keep_db:
            print(f"kept database: {url}")
        else:
            drop_database(db_name)
        redis.Redis.from_url(redis_url).flushdb()
    return 0


if __name__ == "__main__":
    sys.exit(main())

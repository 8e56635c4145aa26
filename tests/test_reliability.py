"""Exactly once, with real processes: rq workers, the cron scheduler and sweeps against real
Redis, PostgreSQL and an SMTP server on a loopback socket (tests/smtp_sink.py).

Each test arranges cases in needs_correction and permits near or past their end in its own
database (by the real engine, then moved back in time so that their events are due now),
then starts `flask --app wsgi jobs worker` / `rq cron` / `flask --app wsgi jobs sweep` as
subprocesses and breaks things: SIGKILL of a worker in the middle of a delivery, FLUSHDB of Redis between the sweep and the worker, SIGKILL of the cron process, two
sweeps released at the same instant, an SMTP server that refuses and then is gone. What must
hold afterwards: every due message accepted by the SMTP server exactly once (by Message-ID and
by recipient + subject), every lapse and expiry exactly once, no outbox row left behind.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis as redis_lib

from tests.live_server import cheap_password_hashing, create_database, drop_database, libpq_dsn, migrate
from tests.smtp_sink import SmtpSink
from tests.support import PASSWORD, PDF, good_data

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
REDIS_BASE = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/{db}")
LEASE = 2  # DELIVERY_LEASE_SECONDS in the subprocesses
APPLICANTS = 2  # per organisation
N_CASES, N_EXPIRED, N_ENDING = 2, 2, 1
# Per due case: correction_7d, correction_1d and the lapse's own case.lapse, to each applicant.
# Per expired permit: permit_60d, permit_30d, permit_7d, expire. Per permit ending in 20 days: 60d, 30d.
PER_CASE, PER_EXPIRED, PER_ENDING = 3 * APPLICANTS, 4 * APPLICANTS, 2 * APPLICANTS
EXPECTED = N_CASES * PER_CASE + N_EXPIRED * PER_EXPIRED + N_ENDING * PER_ENDING
# The sweep's own count leaves out the case.lapse rows, which the engine writes for the lapse.
SWEEP_WRITES = EXPECTED - N_CASES * APPLICANTS


# Redis dbs no other test uses (conftest takes TEST_REDIS_DB_BASE, default 1, + the xdist worker's index; bench/ 15). The
# tests flush theirs, so a run claims one (a key in db 0) and a second run at the same time takes
# the next. Jobs go to a queue of this run's own, so no other worker on the db ever runs them.
REDIS_DBS = [int(n) for n in os.environ.get("TEST_RELIABILITY_REDIS_DBS", "13,14").split(",")]
QUEUE = f"reliability-{os.getpid()}"
SENTINEL = "wf-test-reliability:sentinel"  # set in the db at the start of each test; gone if flushed


# -- arranging data -----------------------------------------------------------------------

@dataclass
class Arranged:
    url: str
    cases: list[int] = field(default_factory=list)  # needs_correction
    permits: list[int] = field(default_factory=list)  # active, three years left

    @property
    def dsn(self) -> str:
        return libpq_dsn(self.url)


ORG_NAMES = ["انجمن حمایت از کودکان کار کرمان", "کانون سالمندان کرمان", "جمعیت زنان کارآفرین کرمان",
             "انجمن دوستداران محیط زیست کرمان", "خانه هنرمندان جوان کرمان", "انجمن یاوران بیماران کلیوی کرمان",
             "مؤسسه خیریه آموزش کودکان کرمان", "کانون ورزش بانوان کرمان"]


def arrange(url: str, upload_dir: Path, *, cases: int, permits: int) -> Arranged:
    """`cases` applications returned for correction and `permits` issued permits, by the engine."""
    from workflow import create_app, db, engine
    from workflow.config import TestConfig
    from workflow.models import Case, Permit
    from workflow.services import accounts, applications

    out = Arranged(url)
    app = create_app(TestConfig(DATABASE_URL=url, REDIS_URL="", UPLOAD_DIR=upload_dir))
    try:
        with app.test_request_context(), cheap_password_hashing(), db.new_session() as s:
            kerman = accounts.find_province(s, "kerman")
            county = accounts.find_county(s, kerman, "Kerman")

            def person(email: str, roles: list[str], **kw: Any) -> Any:
                return accounts.create_user(s, email=email, password=PASSWORD, name=email.split("@")[0],
                                            roles=roles, **kw)

            intake = person("intake@test.ir", ["intake"], province=kerman)
            expert = person("expert@test.ir", ["expert"], province=kerman)
            director = person("director@test.ir", ["director"], province=kerman)
            for i in range(cases + permits):
                org = accounts.create_organization(s, name=ORG_NAMES[i], province=kerman, county=county)
                members = [person(f"ngo{i}.{j}@test.ir", ["applicant"], organizations=[org])
                           for j in range(APPLICANTS)]
                case, created = applications.create(s, members[0], kind="permit_issuance", organization_id=org.id,
                                                    data=good_data(name=ORG_NAMES[i]))
                assert created
                applications.attach_document(s, members[0], case, content=PDF, filename="statute.pdf")
                steps = [("submit", members[0])]
                if i < cases:
                    steps += [("return_for_correction", intake)]
                else:
                    steps += [("accept", intake), ("recommend_approval", expert), ("approve", director)]
                for action, actor in steps:
                    engine.fire(s, case, action, actor, version=case.version, comment="ok")
                s.flush()
                if i < cases:
                    assert case.state == "needs_correction"
                    out.cases.append(case.id)
                else:
                    assert case.state == "approved"
                    permit = s.query(Permit).filter_by(case_id=case.id).one()
                    out.permits.append(permit.id)
            s.commit()
            assert s.query(Case).count() == cases + permits
    finally:
        app.extensions["db_engine"].dispose()
    with psycopg.connect(out.dsn) as conn:
        # The arrangement's own notifications (return_for_correction, approve) are not under test.
        conn.execute("DELETE FROM notifications")
    return out


def make_cases_due(dsn: str, case_ids: list[int]) -> None:
    """Move the correction deadline into the past: reminders and lapse all due now."""
    with psycopg.connect(dsn) as conn:
        for cid in case_ids:
            conn.execute(
                """UPDATE cases SET state_entered_at = state_entered_at - (due_at - now() + interval '1 minute'),
                                    next_event_at = next_event_at - (due_at - now() + interval '1 minute'),
                                    due_at = now() - interval '1 minute'
                   WHERE id = %s AND state = 'needs_correction'""", (cid,))


def make_permits_end(dsn: str, permit_ids: list[int], end: timedelta) -> None:
    """The permits end at now + `end`; their first reminder (60 days before) is where the sweep starts."""
    with psycopg.connect(dsn) as conn:
        for pid in permit_ids:
            conn.execute("""UPDATE permits SET valid_until = now() + %s,
                                               next_event_at = now() + %s - interval '60 days'
                            WHERE id = %s""", (end, end, pid))


def make_all_due(arranged: Arranged) -> None:
    make_cases_due(arranged.dsn, arranged.cases)
    make_permits_end(arranged.dsn, arranged.permits[:N_EXPIRED], -timedelta(minutes=1))
    make_permits_end(arranged.dsn, arranged.permits[N_EXPIRED:], timedelta(days=20))


# -- looking at the database --------------------------------------------------------------

def query(dsn: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, args).fetchall()


def scalar(dsn: str, sql: str, *args: Any) -> Any:
    return query(dsn, sql, *args)[0][0]


def outbox(dsn: str) -> dict[str, int]:
    row = query(dsn, """SELECT count(*), count(delivered_at), count(failed_at),
                               count(*) FILTER (WHERE delivered_at IS NULL AND failed_at IS NULL)
                        FROM notifications""")[0]
    return dict(zip(("rows", "delivered", "failed", "pending"), row))


def lapses_and_expiries(dsn: str) -> tuple[Counter[int], Counter[int]]:
    lapses = Counter(cid for (cid,) in query(dsn, "SELECT case_id FROM audit_entries WHERE action = 'lapse'"))
    expiries = Counter(pid for (pid,) in query(dsn, "SELECT permit_id FROM permit_events WHERE action = 'expire'"))
    return lapses, expiries


def expected_mail(dsn: str) -> Counter[tuple[str, str]]:
    """(recipient, kind) of every outbox row: what the SMTP server should have seen, once each."""
    return Counter(query(dsn, "SELECT u.email, n.kind FROM notifications n JOIN users u ON u.id = n.user_id"))


def assert_exactly_once(arranged: Arranged, sink: SmtpSink, expected: int, *, cases: list[int],
                        expired: list[int]) -> None:
    dsn = arranged.dsn
    box = outbox(dsn)
    assert box == {"rows": expected, "delivered": expected, "failed": 0, "pending": 0}, box
    keys = [k for (k,) in query(dsn, "SELECT key FROM notifications WHERE key IS NOT NULL")]
    assert len(keys) == len(set(keys))
    ids = sink.by_message_id()
    assert sum(ids.values()) == expected and len(ids) == expected, (
        f"accepted {sum(ids.values())} messages with {len(ids)} distinct Message-IDs, expected {expected}; "
        f"repeated: {[m for m, n in ids.items() if n > 1][:5]}")
    by_subject = sink.by_recipient_and_subject()
    assert set(by_subject.values()) == {1}, [k for k, n in by_subject.items() if n > 1][:5]
    # Every recipient got as many messages as the outbox holds rows for them.
    per_rcpt = Counter(rcpt for rcpt, _subject in by_subject.elements())
    assert per_rcpt == Counter(email for email, _kind in expected_mail(dsn).elements())
    lapses, expiries = lapses_and_expiries(dsn)
    assert lapses == Counter(cases), lapses
    assert expiries == Counter(expired), expiries
    states = dict(query(dsn, "SELECT id, state FROM cases WHERE id = ANY(%s)", arranged.cases))
    assert all(states[c] == "withdrawn" for c in cases), states
    permit_states = dict(query(dsn, "SELECT id, state FROM permits"))
    assert all(permit_states[p] == "expired" for p in expired), permit_states
    assert all(s == "active" for p, s in permit_states.items() if p not in expired), permit_states


# -- processes ----------------------------------------------------------------------------

def _descendants(pid: int) -> list[int]:
    """Children, grandchildren… of `pid`, from /proc (the rq work-horse sits in its own group)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        children = [p for p, pp in parents.items() if pp == current]
        found += children
        frontier += children
    return found


class Procs:
    """Subprocesses of one test, each in its own session; `close()` kills whatever is left."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}

    def flask(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "flask", "--app", "wsgi", *args]

    def start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = self.log_dir / f"{name}.log"
        self.logs[name] = log
        with log.open("ab") as out:
            proc = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self.running[name] = proc
        return proc

    def worker(self, name: str = "worker") -> subprocess.Popen[bytes]:
        return self.start(name, self.flask("jobs", "worker"))

    def sweep(self, *extra: str, timeout: float = 60) -> str:
        r = subprocess.run(self.flask("jobs", "sweep", *extra), cwd=ROOT, env=self.env, capture_output=True,
                           text=True, timeout=timeout)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout.strip().splitlines()[-1]

    def kill(self, name: str) -> dict[int, int]:
        """SIGKILL the process, its process group and every descendant (the rq work-horse calls
        setpgrp, so killing the worker's group alone would leave it running); returns the killed
        processes' {pid: process group}."""
        proc = self.running.pop(name)
        victims: dict[int, int] = {}
        for pid in (proc.pid, *_descendants(proc.pid)):
            try:
                victims[pid] = os.getpgid(pid)
            except ProcessLookupError:
                continue
        for pid, group in victims.items():
            for kill, target in ((os.killpg, group), (os.kill, pid)):
                try:
                    kill(target, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{p}").exists() and _state(p) not in ("Z", "X") for p in victims):
            assert time.monotonic() < deadline, f"still alive after SIGKILL: {victims}"
            time.sleep(0.02)
        return victims

    def log(self, name: str) -> str:
        try:
            return self.logs[name].read_text(errors="replace")
        except (KeyError, OSError):
            return ""

    def logs_tail(self, lines: int = 40) -> str:
        conn = redis_lib.Redis.from_url(self.env["REDIS_URL"])
        note = f"Redis {self.env['REDIS_URL']}: " + (
            "sentinel present" if conn.get(SENTINEL) == QUEUE.encode() else "FLUSHED BY SOMEONE ELSE (sentinel gone)")
        conn.close()
        return note + "\n" + "\n".join(f"--- {n} ---\n" + "\n".join(self.log(n).splitlines()[-lines:]) for n in self.logs)

    def close(self) -> None:
        for name in list(self.running):
            self.kill(name)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return "X"


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, procs: Procs | None = None,
               state: Callable[[], Any] | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}"
                                 + (f"; state: {state()}" if state else "") + "\n"
                                 + (procs.logs_tail() if procs else ""))
        time.sleep(0.05)


def queued_ids(conn: redis_lib.Redis) -> list[int]:
    """Notification ids of the delivery jobs waiting in the test's queue (one row or a batch each)."""
    from rq import Queue

    ids: list[int] = []
    for job in Queue(QUEUE, connection=conn).get_jobs():
        if job.func_name == "jobs.notify.deliver":
            ids.append(job.args[0])
        elif job.func_name == "jobs.notify.deliver_batch":
            ids += job.args[0]
    return ids


def idle(conn: redis_lib.Redis) -> bool:
    """No job waiting in, or running from, the test's queue."""
    from rq import Queue
    from rq.registry import StartedJobRegistry

    return Queue(QUEUE, connection=conn).count == 0 and StartedJobRegistry(QUEUE, connection=conn).count == 0


# -- fixtures -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    name, url = create_database("wf_reliability")
    try:
        migrate(url)
        yield url
    finally:
        drop_database(name)


@pytest.fixture(scope="module")
def redis_db() -> Iterator[int]:
    """A Redis db claimed for this run of the module (released at its end, or after an hour)."""
    admin = redis_lib.Redis.from_url(REDIS_BASE.format(db=0))
    owner = f"{os.getpid()}-{time.time()}"
    deadline = time.monotonic() + 180
    claimed = None
    while claimed is None:
        for number in REDIS_DBS:
            if admin.set(f"wf-test-reliability:db{number}", owner, nx=True, ex=900):
                claimed = number
                break
        else:
            if time.monotonic() > deadline:
                pytest.fail(f"Redis dbs {REDIS_DBS} stayed claimed by other runs of this module")
            time.sleep(1)
    number, claim = claimed, f"wf-test-reliability:db{claimed}"
    try:
        yield number
    finally:
        if admin.get(claim) == owner.encode():
            admin.delete(claim)
        admin.close()


@pytest.fixture
def rel_redis(redis_db: int) -> Iterator[str]:
    url = REDIS_BASE.format(db=redis_db)
    conn = redis_lib.Redis.from_url(url)
    conn.flushdb()
    conn.set(SENTINEL, QUEUE)
    yield url
    conn.flushdb()
    conn.close()


@pytest.fixture
def rconn(rel_redis: str) -> Iterator[redis_lib.Redis]:
    conn = redis_lib.Redis.from_url(rel_redis)
    yield conn
    conn.close()


@pytest.fixture
def arranged(database: str, tmp_path: Path) -> Arranged:
    from workflow import db

    tables = [t.name for t in db.Base.metadata.sorted_tables
              if t.name not in {"provinces", "counties", "holidays", "alembic_version"}]
    with psycopg.connect(libpq_dsn(database)) as conn:
        conn.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")
    return arrange(database, tmp_path / "uploads", cases=N_CASES, permits=N_EXPIRED + N_ENDING)


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    server = SmtpSink().start()
    yield server
    server.stop()


@pytest.fixture
def procs(database: str, rel_redis: str, sink: SmtpSink, tmp_path: Path) -> Iterator[Procs]:
    env = {**os.environ, "DATABASE_URL": database, "REDIS_URL": rel_redis, "SMTP_HOST": sink.host,
           "SMTP_PORT": str(sink.port), "DELIVERY_LEASE_SECONDS": str(LEASE), "SECRET_KEY": "x",
           "UPLOAD_DIR": str(tmp_path / "uploads"), "PYTHONUNBUFFERED": "1", "RQ_QUEUE": QUEUE}
    env.pop("FLASK_ENV", None)
    env.pop("WORKFLOW_CONFIG", None)
    running = Procs(env, tmp_path)
    try:
        yield running
    finally:
        running.close()


# -- the scenarios ------------------------------------------------------------------------

def test_worker_killed_in_the_middle_of_a_delivery(arranged: Arranged, sink: SmtpSink, procs: Procs,
                                                   rconn: redis_lib.Redis) -> None:
    """SIGKILL of the worker while the SMTP server holds a DATA: that message was not accepted;
    after a restart and a sweep past the lease it and the rest of its batch are delivered, once,
    like all others."""
    make_all_due(arranged)
    stall_at = 5
    sink.stall(stall_at)
    procs.worker("worker1")
    out = procs.sweep()
    assert f"notifications {SWEEP_WRITES}" in out and f"lapsed {N_CASES}" in out and f"expired {N_EXPIRED}" in out, out
    wait_until(sink.stalled.is_set, 30, "the stalled delivery", procs)
    assert sink.count() == stall_at - 1
    worker_pid = procs.running["worker1"].pid
    killed = procs.kill("worker1")
    # The worker runs its jobs in its own process (SimpleWorker): the delivery died with it.
    assert worker_pid in killed, killed
    wait_until(lambda: sink.aborted, 10, "the sink to see the killed client go away")
    assert sink.count() == stall_at - 1  # the stalled message was never accepted
    box = outbox(arranged.dsn)
    assert box["delivered"] == stall_at - 1 and box["pending"] == EXPECTED - stall_at + 1, box
    queued = queued_ids(rconn)
    lost = query(arranged.dsn, """SELECT id, attempts FROM notifications WHERE delivered_at IS NULL
                                  AND id NOT IN (%s)""" % (",".join(map(str, queued)) or "0"))
    # The rows of the job that was running: the stalled one, whose attempt died with the worker's
    # transaction, and those after it in its batch, never tried.
    stalled_id = int(re.match(r"<n(\d+)[.@]", sink.aborted[0]).group(1))  # type: ignore[union-attr]
    assert stalled_id in {i for i, _a in lost} and all(a == 0 for _i, a in lost), (stalled_id, lost)
    assert len(lost) + len(queued) == EXPECTED - stall_at + 1, (lost, queued)

    procs.worker("worker2")
    wait_until(lambda: sink.count() >= EXPECTED - len(lost) and not queued_ids(rconn), 30, "the queued jobs", procs,
               lambda: (sink.count(), queued_ids(rconn), outbox(arranged.dsn), query(
                   arranged.dsn, "SELECT id, attempts, last_error FROM notifications WHERE delivered_at IS NULL")))
    time.sleep(0.3)
    assert sink.count() == EXPECTED - len(lost) and outbox(arranged.dsn)["pending"] == len(lost)
    # The lease runs from the sweep that enqueued the row; after it, a sweep enqueues the row again.
    lease_over = scalar(arranged.dsn, "SELECT max(enqueued_at) FROM notifications") + timedelta(seconds=LEASE)
    time.sleep(max(0.0, (lease_over - datetime.now(timezone.utc)).total_seconds()) + 0.2)
    out = procs.sweep()
    assert f"requeued {len(lost)}" in out and "notifications 0" in out and "lapsed 0" in out and "expired 0" in out, out
    wait_until(lambda: outbox(arranged.dsn)["pending"] == 0, 20, "the re-enqueued rows", procs)
    time.sleep(0.3)
    assert_exactly_once(arranged, sink, EXPECTED, cases=arranged.cases, expired=arranged.permits[:N_EXPIRED])
    # The repeat carries the same Message-ID as the attempt that was cut off.
    assert sink.aborted[0] in sink.by_message_id(), (sink.aborted, list(sink.by_message_id())[:3])
    assert scalar(arranged.dsn, "SELECT max(attempts) FROM notifications") == 1
    print(f"\nworker killed: sink accepted {sink.count()} of {EXPECTED}, aborted {len(sink.aborted)}, "
          f"killed {len(killed)} processes")


def test_redis_flushed_between_sweep_and_worker(arranged: Arranged, sink: SmtpSink, procs: Procs,
                                                rconn: redis_lib.Redis) -> None:
    """The sweep enqueued its jobs, Redis lost them all before any worker ran: the outbox rows are
    still there, and the first sweep after the lease enqueues them again; each is sent once."""
    make_all_due(arranged)
    out = procs.sweep()
    assert f"lapsed {N_CASES}" in out and f"expired {N_EXPIRED}" in out, out
    ids = queued_ids(rconn)
    assert sorted(ids) == [i for (i,) in query(arranged.dsn, "SELECT id FROM notifications ORDER BY id")]
    assert len(ids) == EXPECTED
    rconn.flushdb()
    rconn.set(SENTINEL, QUEUE)  # (for the diagnostics: this flush is ours)
    procs.worker()
    # The worker is up (registered in Redis) and finds nothing to do.
    wait_until(lambda: rconn.smembers("rq:workers"), 30, "the worker to register", procs)
    time.sleep(0.5)
    assert sink.count() == 0 and outbox(arranged.dsn)["pending"] == EXPECTED
    # After the lease a sweep enqueues the rows again.
    lease_over = scalar(arranged.dsn, "SELECT max(enqueued_at) FROM notifications") + timedelta(seconds=LEASE)
    time.sleep(max(0.0, (lease_over - datetime.now(timezone.utc)).total_seconds()) + 0.2)
    out = procs.sweep()
    assert f"requeued {EXPECTED}" in out and "notifications 0" in out and "lapsed 0" in out, out
    wait_until(lambda: outbox(arranged.dsn)["pending"] == 0, 30, "the re-enqueued rows", procs)
    time.sleep(0.3)
    assert_exactly_once(arranged, sink, EXPECTED, cases=arranged.cases, expired=arranged.permits[:N_EXPIRED])
    print(f"\nRedis flushed: {len(ids)} jobs lost, {sink.count()} messages accepted, once each")


def test_cron_killed_and_restarted(arranged: Arranged, sink: SmtpSink, procs: Procs, rconn: redis_lib.Redis,
                                   tmp_path: Path) -> None:
    """rq cron enqueues the sweep every second and two workers run it (so sweeps overlap). The
    cron process is SIGKILLed: nothing is swept while it is down; started again, the sweeps go
    on. Every lapse, expiry and message happened once."""
    config = tmp_path / "cron_every_second.py"
    config.write_text("from rq import cron\nfrom jobs.sweep import run\n\n"
                      f"cron.register(run, {QUEUE!r}, interval=1, job_timeout=600)\n")
    cron_argv = [str(Path(sys.executable).parent / "rq"), "cron", str(config), "--url", procs.env["REDIS_URL"]]
    first_cases, later_cases = arranged.cases[:1], arranged.cases[1:]
    first_permits, later_permits = arranged.permits[:1], arranged.permits[1:N_EXPIRED]
    make_cases_due(arranged.dsn, first_cases)
    make_permits_end(arranged.dsn, first_permits, -timedelta(minutes=1))
    first = len(first_cases) * PER_CASE + len(first_permits) * PER_EXPIRED

    procs.worker("worker1")
    procs.worker("worker2")
    procs.start("cron1", cron_argv)
    wait_until(lambda: outbox(arranged.dsn)["delivered"] == first, 30, "the first sweeps' messages", procs)
    history = "rq:cron_job:jobs.sweep.run:jobs"
    wait_until(lambda: rconn.zcard(history) >= 2, 10, "a second sweep by the first cron process", procs)
    procs.kill("cron1")
    swept_before = rconn.zcard(history)
    # Sweeps it enqueued may still be queued or running: let them finish.
    wait_until(lambda: idle(rconn), 20, "the enqueued sweeps to finish", procs)

    # Now more falls due; with the cron process dead nobody sweeps.
    make_cases_due(arranged.dsn, later_cases)
    make_permits_end(arranged.dsn, later_permits, -timedelta(minutes=1))
    make_permits_end(arranged.dsn, arranged.permits[N_EXPIRED:], timedelta(days=20))
    time.sleep(2.0)  # two of its intervals
    assert rconn.zcard(history) == swept_before
    assert lapses_and_expiries(arranged.dsn) == (Counter(first_cases), Counter(first_permits))
    assert sink.count() == first

    procs.start("cron2", cron_argv)
    wait_until(lambda: outbox(arranged.dsn) == {"rows": EXPECTED, "delivered": EXPECTED, "failed": 0, "pending": 0},
               30, "the sweeps after the restart", procs)
    wait_until(lambda: rconn.zcard(history) >= swept_before + 3, 15, "more sweeps after the restart", procs)
    time.sleep(0.5)
    assert_exactly_once(arranged, sink, EXPECTED, cases=arranged.cases, expired=arranged.permits[:N_EXPIRED])
    print(f"\ncron killed: {swept_before} sweeps before the kill, {rconn.zcard(history)} in all; "
          f"{sink.count()} messages, lapses {dict(lapses_and_expiries(arranged.dsn)[0])}")


def test_smtp_failing_retries_with_backoff_then_fails(arranged: Arranged, sink: SmtpSink, procs: Procs,
                                                      rconn: redis_lib.Redis) -> None:
    """The SMTP server answers 451, then is gone (connection refused): each row is retried by rq
    after its backoff, the sweep does not cut the backoff short, and after MAX_ATTEMPTS the row is
    failed with its last error. Attempts start near the maximum so that this takes one backoff."""
    from rq import Queue
    from rq.registry import ScheduledJobRegistry

    from jobs.notify import MAX_ATTEMPTS, RETRY

    make_cases_due(arranged.dsn, arranged.cases[:1])
    out = procs.sweep()
    assert "lapsed 1" in out, out
    rows = PER_CASE
    with psycopg.connect(arranged.dsn) as conn:
        conn.execute("UPDATE notifications SET attempts = %s", (MAX_ATTEMPTS - 2,))
        # And one row that cannot be rendered: failed at its first attempt, never retried.
        conn.execute("""INSERT INTO notifications (user_id, case_id, kind, key, payload, created_at, enqueued_at,
                                                   attempts)
                        SELECT user_id, case_id, 'correction_7d', 'broken', '{"due_at": "not a date"}', now(),
                               now(), 0 FROM notifications LIMIT 1""")
    broken = scalar(arranged.dsn, "SELECT id FROM notifications WHERE key = 'broken'")
    sink.refuse = 451
    Queue(QUEUE, connection=rconn).enqueue("jobs.notify.deliver", broken, retry=RETRY)
    procs.worker()
    wait_until(lambda: scalar(arranged.dsn, "SELECT count(*) FROM notifications WHERE last_error IS NOT NULL")
               == rows + 1, 30, "the first failed attempts", procs)
    first_try = datetime.now(timezone.utc)
    facts = query(arranged.dsn, "SELECT attempts, failed_at IS NULL, last_error, enqueued_at FROM notifications "
                                "WHERE id <> %s", broken)
    assert all(a == MAX_ATTEMPTS - 1 and pending and "451" in err for a, pending, err, _e in facts), facts
    # The retry waits RETRY.intervals[0] seconds, and the row's lease counts from then.
    backoff = RETRY.intervals[0]
    assert all(e > first_try + timedelta(seconds=backoff - 3) for *_x, e in facts), facts
    wait_until(lambda: ScheduledJobRegistry(QUEUE, connection=rconn).count == rows, 10,
               "the retries to be scheduled", procs)
    assert query(arranged.dsn, "SELECT attempts, failed_at IS NOT NULL, last_error LIKE 'ValueError%%' "
                               "FROM notifications WHERE id = %s", broken) == [(1, True, True)]
    assert sink.refused == rows
    sink.stop()  # from now on connections are refused
    time.sleep(LEASE + 0.5)
    assert "requeued 0" in procs.sweep()  # the backoff is not cut short by the sweep's lease
    wait_until(lambda: scalar(arranged.dsn, "SELECT count(failed_at) FROM notifications") == rows + 1,
               backoff + 15, "the retries to fail for good", procs)
    elapsed = (datetime.now(timezone.utc) - first_try).total_seconds()
    facts = query(arranged.dsn, "SELECT attempts, last_error FROM notifications WHERE id <> %s", broken)
    assert all(a == MAX_ATTEMPTS and err.startswith("ConnectionRefusedError") for a, err in facts), facts
    assert elapsed >= backoff - 3, elapsed
    assert sink.count() == 0
    assert outbox(arranged.dsn) == {"rows": rows + 1, "delivered": 0, "failed": rows + 1, "pending": 0}
    time.sleep(0.5)
    assert scalar(arranged.dsn, "SELECT max(attempts) FROM notifications") == MAX_ATTEMPTS
    assert not ScheduledJobRegistry(QUEUE, connection=rconn).count and idle(rconn)  # no retry left over
    print(f"\nSMTP failing: {rows} rows retried after {elapsed:.1f}s and failed with attempts={MAX_ATTEMPTS}")


def test_two_sweep_processes_at_once_create_nothing_twice(arranged: Arranged, procs: Procs,
                                                          rconn: redis_lib.Redis) -> None:
    """Two `flask jobs sweep --now T` processes released at the same instant (both wait on a
    table lock the test holds, then it lets go), then the same sweep once more: every row,
    lapse, expiry and job exactly once."""
    dsn = arranged.dsn
    make_permits_end(dsn, arranged.permits[:N_EXPIRED], timedelta(days=3))
    make_permits_end(dsn, arranged.permits[N_EXPIRED:], timedelta(days=40))
    # As in test_sweep: the moment just past the latest correction deadline (30 days away) and
    # so past the expired permits' end too; the permit ending at +40 days gets 60d and 30d.
    due = max(scalar(dsn, "SELECT max(due_at) FROM cases"),
              scalar(dsn, "SELECT max(valid_until) FROM permits WHERE id = ANY(%s)", arranged.permits[:N_EXPIRED]))
    moment = (due + timedelta(minutes=1)).isoformat()
    results: dict[str, subprocess.CompletedProcess[str]] = {}

    with psycopg.connect(dsn) as gate:
        gate.execute("LOCK TABLE cases IN EXCLUSIVE MODE")  # blocks the sweeps' SELECT … FOR UPDATE

        def sweep(name: str) -> None:
            results[name] = subprocess.run(procs.flask("jobs", "sweep", "--now", moment), cwd=ROOT, env=procs.env,
                                           capture_output=True, text=True, timeout=60)

        threads = [threading.Thread(target=sweep, args=(f"sweep{i}",)) for i in (1, 2)]
        for t in threads:
            t.start()
        wait_until(lambda: scalar(dsn, """SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
                                          WHERE c.relname = 'cases' AND NOT l.granted""") == 2,
                   30, "both sweeps to wait for the cases table")
        gate.commit()  # both go
    for t in threads:
        t.join(timeout=60)
    assert all(r.returncode == 0 for r in results.values()), {n: r.stderr[-2000:] for n, r in results.items()}
    outs = [r.stdout.strip().splitlines()[-1] for r in results.values()]

    def total(what: str, texts: list[str]) -> int:
        return sum(int(re.search(rf"{what} (\d+)", t).group(1)) for t in texts)  # type: ignore[union-attr]

    assert total("lapsed", outs) == N_CASES and total("expired", outs) == N_EXPIRED, outs
    assert total("notifications", outs) == SWEEP_WRITES, outs
    # A deliver job for every row (whether some are enqueued twice: see the next test).
    assert set(queued_ids(rconn)) == {i for (i,) in query(dsn, "SELECT id FROM notifications")}
    again = procs.sweep("--now", moment)
    assert all(f"{w} 0" in again for w in ("notifications", "lapsed", "expired", "cases", "permits")), again
    box = outbox(dsn)
    assert box["rows"] == EXPECTED, box
    keys = [k for (k,) in query(dsn, "SELECT key FROM notifications WHERE key IS NOT NULL")]
    assert len(keys) == len(set(keys)) == SWEEP_WRITES
    lapses, expiries = lapses_and_expiries(dsn)
    assert lapses == Counter(arranged.cases) and expiries == Counter(arranged.permits[:N_EXPIRED])
    print(f"\ntwo sweeps at once: {outs}; again: {again}")


def test_a_sweep_as_of_a_moment_enqueues_each_row_once(arranged: Arranged, procs: Procs,
                                                       rconn: redis_lib.Redis) -> None:
    moment = (scalar(arranged.dsn, "SELECT max(due_at) FROM cases") + timedelta(minutes=1)).isoformat()
    out = procs.sweep("--now", moment)
    assert f"lapsed {N_CASES}" in out, out
    assert Counter(queued_ids(rconn)) == Counter(i for (i,) in query(arranged.dsn, "SELECT id FROM notifications"))
    assert "requeued 0" in out, out


def test_sweep_does_not_wait_for_a_delivery_in_progress(arranged: Arranged, sink: SmtpSink, procs: Procs) -> None:
    make_cases_due(arranged.dsn, arranged.cases[:1])
    sink.stall(1)
    procs.worker()
    procs.sweep()
    wait_until(sink.stalled.is_set, 30, "the stalled delivery", procs)
    time.sleep(LEASE + 0.2)
    # One more case falls due; the next sweep must lapse it and not hang on the row being sent.
    make_cases_due(arranged.dsn, arranged.cases[1:2])
    sweep = procs.start("sweep", procs.flask("jobs", "sweep"))

    def blocked() -> bool:
        return bool(scalar(arranged.dsn, """SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'
                                            AND query LIKE 'UPDATE notifications%%'"""))

    wait_until(lambda: sweep.poll() is not None or blocked(), 30, "the sweep to end or block", procs)
    assert sweep.poll() == 0, "the sweep waits for the notification being delivered"

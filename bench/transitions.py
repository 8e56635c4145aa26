"""Throughput of HTTP transitions: the real app against a bare Flask + psycopg baseline.

    .venv/bin/python bench/transitions.py [--cases N] [--seconds S] [--clients 1,16]
                                          [--rounds R] [--worker-class gthread|sync] [--workers W] [--threads T]
                                          [--trace] [--profile N] [--bytecodes N]

What it does, on loopback only:
  1. creates its own PostgreSQL database (dropped at the end), migrates it like `init-db`;
  2. with the app's services: a Kerman office (intake officers, an expert, a director), an
     applicant and one complete permit application moved to `submitted` by the engine; then
     N-1 more organisations, each with its own applicant, and submitted cases (with their
     statute and audit rows) copied from it in SQL, so each case is as valid as the first and
     has its own NGO;
  3. serves `wsgi:app` and bench/bare_app.py, each with gunicorn under the same settings, and,
     for each client count, POSTs /api/v1/applications/<id>/transitions {"action": "accept",
     "version": v} on distinct submitted cases (each case once) for S seconds per app, timing
     every request. The apps take turns (--rounds slices each, the order reversed every round),
     so other work on the shared cores weighs on both alike;
  4. sums each app's slices;
  5. prints transitions/s, p50, p99 and errors per run, the CPU each transition cost the server
     (gunicorn's processes) and the database (the bench database's backends), and the real/bare ratio.

--bytecodes N counts the Python bytecodes of N transitions in each app's server side (the WSGI
app called in this process, no HTTP): a figure that repeats exactly from run to run, where times
on shared cores do not; printed by package (SQLAlchemy, transitions, the app, ...).
--trace prints the SQL one transition issues in each app (BENCH_TRACE_FULL=1: whole statements);
--profile N times N real transitions in-process (no HTTP), then N through the bare app for
comparison, then N more real ones under cProfile, and prints where the time goes
(CPU clock; BENCH_PROFILE_CLOCK=wall for wall time; BENCH_PROFILE_FILTER=regex narrows the
cumulative listing). Load generator and servers share the
machine's cores, so absolute numbers are lower than on a dedicated server.
"""
from __future__ import annotations

import argparse
import contextlib
import cProfile
import http.client
import io
import json
import logging
import os
import pstats
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Run as a script, this file's folder comes first on sys.path and this module's name would hide
# the `transitions` library the app's state machines are built on.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from tests.live_server import (  # noqa: E402
    Gunicorn, cheap_password_hashing, create_database, drop_database, libpq_dsn, migrate,
)
from tests.support import PASSWORD, PDF, good_data  # noqa: E402

TARGET_RATE = 500
TARGET_RATIO = 0.8
# Chosen on a 2-core machine with the client on the same cores, 16 clients, 4 s runs, after the
# hot-path work (trans/s real / bare, and the server's CPU ms per transition real / bare), in the
# quietest of several rounds (other work shared the cores; rounds differed by up to 30 %):
#   gthread -w 4 --threads 4: 338 / 607 (3.8 / 1.6)   gthread -w 2 --threads 4: 419 / 659 (3.0 / 1.4)
#   gthread -w 3 --threads 2: 418 / 668 (3.1 / 1.4)   gthread -w 4 --threads 2: 400 / 655 (3.3 / 1.4)
#   gthread -w 8 --threads 1: 409 / 640 (3.2 / 1.5)   gthread -w 2 --threads 8: 397 / 662 (3.1 / 1.4)
#   sync -w 4:                393 / 640 (3.3 / 1.4)
# -w 4 --threads 4 (16 threads on 2 cores) spent the most server CPU per transition and trailed
# in every round; the others were within noise of each other, -w 3 --threads 2 and -w 2
# --threads 4 leading in each of the quieter rounds. gthread keeps client connections alive
# (sync closes each one); more processes than cores lets one use a core while another waits on
# PostgreSQL.
DEFAULT_WORKER_CLASS, DEFAULT_WORKERS, DEFAULT_THREADS = "gthread", 3, 2
INTAKE_OFFICERS = 16


@dataclass
class Setup:
    db_name: str
    url: str
    upload_dir: Path
    case_ids: list[int]
    version: int
    tokens: list[str]
    template_case: int = 0


# -- data ----------------------------------------------------------------------------------------
def prepare(n_cases: int) -> Setup:
    from workflow import create_app, db, engine
    from workflow.config import TestConfig
    from workflow.services import accounts, applications

    db_name, url = create_database("wf_bench")
    upload_dir = Path(tempfile.mkdtemp(prefix="wf-bench-uploads-"))
    try:
        migrate(url)
        app = create_app(TestConfig(DATABASE_URL=url, REDIS_URL="", UPLOAD_DIR=upload_dir))
        logging.getLogger().setLevel(logging.WARNING)
        with app.test_request_context(), cheap_password_hashing(), db.new_session() as s:
            kerman = accounts.find_province(s, "kerman")
            county = accounts.find_county(s, kerman, "Kerman")
            name = "انجمن محک کرمان"
            org = accounts.create_organization(s, name=name, province=kerman, county=county)

            def person(email: str, roles: list[str], **kw: Any) -> Any:
                return accounts.create_user(s, email=email, password=PASSWORD, name=email.split("@")[0],
                                            roles=roles, **kw)

            ngo = person("ngo@bench.ir", ["applicant"], organizations=[org])
            intakes = [person(f"intake{i:02d}@bench.ir", ["intake"], province=kerman)
                       for i in range(INTAKE_OFFICERS)]
            person("expert@bench.ir", ["expert"], province=kerman)
            person("director@bench.ir", ["director"], province=kerman)
            case, _created = applications.create(s, ngo, kind="permit_issuance", organization_id=org.id,
                                                 data=good_data(name=name))
            applications.attach_document(s, ngo, case, content=PDF, filename="statute.pdf")
            engine.fire(s, case, "submit", ngo, version=case.version)
            tokens = [accounts.issue_token(s, u)[0] for u in intakes]
            s.commit()
            template_case, template_org, version = case.id, org.id, case.version
            stored_name = case.documents[0].stored_name
        app.extensions["db_engine"].dispose()
        case_ids = [template_case, *clone_cases(url, template_case, template_org, n_cases - 1)]
        source = upload_dir / stored_name
        for i in range(1, n_cases):  # every copied document row has its file (hard links: cheap)
            os.link(source, upload_dir / f"bench-{i}-{stored_name}")
        return Setup(db_name, url, upload_dir, case_ids, version, tokens, template_case)
    except BaseException:
        drop_database(db_name)
        shutil.rmtree(upload_dir, ignore_errors=True)
        raise


def clone_cases(url: str, case_id: int, org_id: int, n: int) -> list[int]:
    """n more NGOs, each with its own applicant and a submitted copy of the template case.

    Returns the new case ids. Each NGO gets its own member, as in life: one user belonging to
    every organisation would skew the statistics of `memberships` so far that PostgreSQL plans
    a sequential scan of it for every principal query (a few ms of database CPU per request).
    """
    if n <= 0:
        return []
    with psycopg.connect(libpq_dsn(url)) as conn:
        org_base = conn.execute("SELECT max(id) FROM organizations").fetchone()[0]
        case_base = conn.execute("SELECT max(id) FROM cases").fetchone()[0]
        user_base = conn.execute("SELECT max(id) FROM users").fetchone()[0]
        member = conn.execute("SELECT min(user_id) FROM memberships WHERE organization_id = %s",
                              (org_id,)).fetchone()[0]
        p = {"org": org_id, "case": case_id, "n": n, "ob": org_base, "cb": case_base, "ub": user_base,
             "member": member}
        # name_key(name + " " + g) == name_key(name) + g: the key drops spaces (checked in workflow.text)
        conn.execute("""
            INSERT INTO organizations (id, name, name_key, province_id, county_id, created_at)
            SELECT %(ob)s + g, o.name || ' ' || g, o.name_key || g, o.province_id, o.county_id, o.created_at
            FROM organizations o, generate_series(1, %(n)s) g WHERE o.id = %(org)s""", p)
        conn.execute("""
            INSERT INTO users (id, email, name, password_hash, province_id, county_id, is_active, locale,
                               created_at)
            SELECT %(ub)s + g, 'member' || g || '-' || u.email, u.name || ' ' || g, u.password_hash,
                   u.province_id, u.county_id, u.is_active, u.locale, u.created_at
            FROM users u, generate_series(1, %(n)s) g WHERE u.id = %(member)s""", p)
        conn.execute("""
            INSERT INTO user_roles (user_id, role)
            SELECT %(ub)s + g, r.role FROM user_roles r, generate_series(1, %(n)s) g
            WHERE r.user_id = %(member)s""", p)
        conn.execute("""
            INSERT INTO memberships (user_id, organization_id)
            SELECT %(ub)s + g, %(ob)s + g FROM generate_series(1, %(n)s) g""", p)
        conn.execute("""
            INSERT INTO cases (id, kind, state, version, organization_id, province_id, county_id, data,
                               created_by_id, created_at, updated_at, state_entered_at, submitted_at, due_at,
                               recommended_by_id, last_seq)
            SELECT %(cb)s + g, kind, state, version, %(ob)s + g, province_id, county_id,
                   jsonb_set(data, '{name}', to_jsonb((data->>'name') || ' ' || g)),
                   created_by_id, created_at, updated_at, state_entered_at, submitted_at, due_at,
                   recommended_by_id, last_seq
            FROM cases c, generate_series(1, %(n)s) g WHERE c.id = %(case)s""", p)
        conn.execute("""
            INSERT INTO documents (case_id, kind, original_name, stored_name, content_type, size, sha256,
                                   uploaded_by_id, uploaded_at, superseded)
            SELECT %(cb)s + g, kind, original_name, 'bench-' || g || '-' || stored_name, content_type, size,
                   sha256, uploaded_by_id, uploaded_at, superseded
            FROM documents d, generate_series(1, %(n)s) g WHERE d.case_id = %(case)s""", p)
        conn.execute("""
            INSERT INTO audit_entries
                (case_id, seq, at, actor_id, role, action, from_state, to_state, comment)
            SELECT %(cb)s + g, seq, at, actor_id, role, action, from_state, to_state, comment
            FROM audit_entries a, generate_series(1, %(n)s) g WHERE a.case_id = %(case)s""", p)
        for table in ("organizations", "cases", "users"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                         f"(SELECT max(id) FROM {table}))")
        conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE")
    return [case_base + g for g in range(1, n + 1)]


# -- load ----------------------------------------------------------------------------------------
@dataclass
class Result:
    label: str
    clients: int
    ok: int = 0
    errors: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    exhausted: bool = False
    error_samples: list[str] = field(default_factory=list)
    server_cpu: float = float("nan")  # seconds of CPU used by gunicorn (master and workers) in the run
    db_cpu: float = float("nan")      # seconds of CPU used by the database's backends in the run
    slices: list[float] = field(default_factory=list)  # transitions/s of each turn (measure)

    def absorb(self, part: "Result") -> None:
        """Add a slice of the same app and client count (measure's rounds)."""
        self.ok += part.ok
        self.errors += part.errors
        self.elapsed += part.elapsed
        self.latencies.extend(part.latencies)
        self.exhausted |= part.exhausted
        self.error_samples.extend(part.error_samples[: max(0, 5 - len(self.error_samples))])
        self.server_cpu += part.server_cpu
        self.db_cpu += part.db_cpu
        self.slices.append(part.rate)

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    def per_transition(self, seconds: float) -> float:
        return seconds / self.ok * 1000 if self.ok else float("nan")

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


class Cases:
    """Hands out each submitted case once, across all runs."""

    def __init__(self, ids: list[int]) -> None:
        self.ids = ids
        self.next = 0
        self.lock = threading.Lock()

    def take(self) -> int | None:
        with self.lock:
            if self.next >= len(self.ids):
                return None
            self.next += 1
            return self.ids[self.next - 1]

    @property
    def left(self) -> int:
        return len(self.ids) - self.next


def load(port: int, cases: Cases, version: int, tokens: list[str], clients: int, seconds: float,
         label: str) -> Result:
    result = Result(label, clients)
    barrier = threading.Barrier(clients + 1)
    lock = threading.Lock()
    stop_at = [0.0]

    def client(i: int) -> None:
        headers = {"Authorization": f"Bearer {tokens[i % len(tokens)]}", "Content-Type": "application/json"}
        body = json.dumps({"action": "accept", "version": version}).encode()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        lat: list[float] = []
        ok = errors = 0
        samples: list[str] = []
        exhausted = False
        barrier.wait()
        while time.perf_counter() < stop_at[0]:
            case_id = cases.take()
            if case_id is None:
                exhausted = True
                break
            t0 = time.perf_counter()
            try:
                conn.request("POST", f"/api/v1/applications/{case_id}/transitions", body=body,
                             headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                status, data = -1, repr(exc).encode()
            lat.append(time.perf_counter() - t0)
            if status == 200:
                ok += 1
            else:
                errors += 1
                if len(samples) < 3:
                    samples.append(f"{status} {data[:200]!r}")
        conn.close()
        with lock:
            result.latencies.extend(lat)
            result.ok += ok
            result.errors += errors
            result.exhausted |= exhausted
            result.error_samples.extend(samples[: max(0, 5 - len(result.error_samples))])

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + seconds
    start = time.perf_counter()
    barrier.wait()
    for t in threads:
        t.join()
    result.elapsed = time.perf_counter() - start
    return result


def _cpu_seconds(pids: list[int]) -> dict[int, float]:
    """pid → utime + stime in seconds, from /proc (Linux); processes gone or unreadable are left out."""
    out, tick = {}, os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            out[pid] = (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return out


def _cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two snapshots; a process that appeared in between counts whole."""
    return sum(t - before.get(pid, 0.0) for pid, t in after.items()) if after else float("nan")


def _process_group(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pgid:
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def _backends(setup: Setup) -> list[int]:
    with psycopg.connect(libpq_dsn(setup.url), autocommit=True) as conn:
        return [pid for (pid,) in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")]


def measure(apps: list[tuple[str, str]], setup: Setup, cases: Cases,
            args: argparse.Namespace) -> dict[str, list[Result]]:
    """Serve every app at once and, for each client count, load them in turns: `args.rounds`
    slices of `args.seconds / args.rounds` each, the order reversed every round (real, bare,
    bare, real, ...). Other work on these shared cores comes and goes by the second; measured one
    after the other, a burst of it during one app's run and not the other's moved the ratio by a
    tenth. In turns, both see the same machine. A slice's CPU is the app's: the other server is
    idle meanwhile, and the database's backends are all counted (only the loaded app's work)."""
    env = {"DATABASE_URL": setup.url, "REDIS_URL": "", "SECRET_KEY": "x", "UPLOAD_DIR": str(setup.upload_dir),
           "FLASK_ENV": "", "WORKFLOW_CONFIG": ""}
    servers = {label: Gunicorn(target, env, workers=args.workers, threads=args.threads,
                               worker_class=args.worker_class) for label, target in apps}
    results: dict[str, list[Result]] = {label: [] for label in servers}
    with contextlib.ExitStack() as stack:
        for server in servers.values():
            stack.enter_context(server)
        # Warm-up, not recorded: every worker opens its database connections and fills its caches.
        for label, server in servers.items():
            load(server.port, cases, setup.version, setup.tokens, max(args.clients), args.warmup, label)
        for clients in args.clients:
            totals = {label: Result(label, clients, server_cpu=0.0, db_cpu=0.0) for label in servers}
            for round_ in range(args.rounds):
                for label in (list(servers) if round_ % 2 == 0 else list(reversed(servers))):
                    proc = servers[label].proc
                    assert proc is not None
                    # CPU time, unlike throughput, is not skewed by other work on the machine: it
                    # shows what one transition costs the server and the database.
                    cpu0 = _cpu_seconds(_process_group(proc.pid))
                    db0 = _cpu_seconds(_backends(setup))
                    part = load(servers[label].port, cases, setup.version, setup.tokens, clients,
                                args.seconds / args.rounds, label)
                    part.server_cpu = _cpu_used(cpu0, _cpu_seconds(_process_group(proc.pid)))
                    part.db_cpu = _cpu_used(db0, _cpu_seconds(_backends(setup)))
                    totals[label].absorb(part)
            for label, r in totals.items():
                results[label].append(r)
                print(f"  {label:<5} {clients:>3} clients: {r.rate:7.1f} transitions/s  p50 {r.pct(.5):6.1f} ms  "
                      f"p99 {r.pct(.99):6.1f} ms  errors {r.errors}  CPU/transition: server "
                      f"{r.per_transition(r.server_cpu):.2f} ms, database {r.per_transition(r.db_cpu):.2f} ms"
                      + ("  (ran out of cases)" if r.exhausted else ""),
                      flush=True)
                for sample in r.error_samples:
                    print(f"        e.g. {sample}")
    return results


# -- diagnostics ---------------------------------------------------------------------------------
def in_process_app(setup: Setup) -> Any:
    """The app as a gunicorn worker has it (wsgi.py): its threads hold their connections."""
    from workflow import create_app, db
    from workflow.config import TestConfig

    app = create_app(TestConfig(DATABASE_URL=setup.url, REDIS_URL="", UPLOAD_DIR=setup.upload_dir,
                                TESTING=False))
    db.hold_connections(app)
    logging.getLogger().setLevel(logging.WARNING)  # the no-Redis notice per request is not the subject
    return app


def bare_in_process(setup: Setup) -> Any:
    """bench/bare_app.py's Flask app in this process, pointed at the bench database."""
    import bench.bare_app as bare

    bare.pool = bare.Pool(libpq_dsn(setup.url))
    return bare


class _RecordingConnection:
    """A psycopg connection that notes every statement it is asked to execute."""

    def __init__(self, conn: Any, statements: list[str]) -> None:
        self._conn, self._statements = conn, statements

    def execute(self, query: str, params: Any = None) -> Any:
        self._statements.append(" ".join(query.split()))
        return self._conn.execute(query, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def _show(label: str, status: int, statements: list[str]) -> None:
    width = 100_000 if os.environ.get("BENCH_TRACE_FULL") else 150
    print(f"\nSQL of one {label} transition (status {status}): {len(statements)} statements + COMMIT")
    for s in statements:
        print(f"  {s[:width]}{'…' if len(s) > width else ''}")


def trace(setup: Setup, cases: Cases) -> None:
    """The SQL of one transition through each app, as the database receives it.

    BENCH_TRACE_FULL=1 prints whole statements instead of their first 150 characters.
    """
    from sqlalchemy import event

    app = in_process_app(setup)
    statements: list[str] = []

    @event.listens_for(app.extensions["db_engine"], "before_cursor_execute")
    def _record(_conn: Any, _cur: Any, statement: str, *_rest: Any) -> None:
        statements.append(" ".join(statement.split()))

    headers = {"Authorization": f"Bearer {setup.tokens[0]}"}
    body = {"action": "accept", "version": setup.version}
    r = app.test_client().post(f"/api/v1/applications/{cases.take()}/transitions", json=body, headers=headers)
    _show("real", r.status_code, statements)
    app.extensions["db_engine"].dispose()

    bare = bare_in_process(setup)
    bare_statements: list[str] = []
    plain = bare.pool.connection

    @contextlib.contextmanager
    def recording() -> Any:
        with plain() as conn:
            yield _RecordingConnection(conn, bare_statements)

    bare.pool.connection = recording
    r = bare.app.test_client().post(f"/api/v1/applications/{cases.take()}/transitions", json=body,
                                    headers=headers)
    bare.pool.connection = plain
    _show("bare", r.status_code, bare_statements)


def _package(filename: str) -> str:
    """Who a code object belongs to, for the bytecodes breakdown: a library, the app, the stdlib."""
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1].split("/", 1)[0]
    if filename.startswith("<sqlalchemy"):  # SQLAlchemy's generated wrappers
        return "sqlalchemy"
    path = Path(filename)
    if ROOT in path.parents:
        return path.relative_to(ROOT).parts[0] + "/"
    return "(stdlib)"


def bytecodes(setup: Setup, cases: Cases, n: int) -> None:
    """Python bytecodes one transition executes in each app's server side, in this process: the
    WSGI app called with a request's environ (no HTTP, no test client), the request log line at
    INFO as under gunicorn. Unlike CPU time on shared cores, the count repeats run after run, so
    it tells apart changes too small for the noise of the timed runs. (A count, not a time: a C
    call is one bytecode however long it runs.) Printed by package, so what each part of the
    stack costs the real app beyond the bare handler can be read off."""
    from collections import Counter

    count: Counter[Any] = Counter()

    def tracer(frame: Any, event: str, _arg: Any) -> Any:
        frame.f_trace_opcodes = True
        if event == "opcode":
            count[frame.f_code] += 1
        return tracer

    body = json.dumps({"action": "accept", "version": setup.version}).encode()
    statuses: list[str] = []

    def once(app: Any) -> None:
        environ = {
            "REQUEST_METHOD": "POST", "PATH_INFO": f"/api/v1/applications/{cases.take()}/transitions",
            "SCRIPT_NAME": "", "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "127.0.0.1:8000", "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
            "HTTP_AUTHORIZATION": f"Bearer {setup.tokens[0]}", "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr, "wsgi.multithread": True,
            "wsgi.multiprocess": True, "wsgi.run_once": False,
        }
        chunks = app(environ, lambda status, _headers, _exc=None: statuses.append(status))
        try:
            b"".join(chunks)
        finally:
            getattr(chunks, "close", lambda: None)()
        assert statuses[-1].startswith("200"), statuses[-1]

    per: dict[str, Counter[str]] = {}
    root = logging.getLogger()
    for label, app in (("real", in_process_app(setup)), ("bare", bare_in_process(setup).app)):
        for _ in range(20):  # caches filled, statements compiled and prepared
            once(app)
        count.clear()
        level = root.level
        root.setLevel(logging.INFO)  # the request line, as gunicorn's workers log it ...
        stderr, sys.stderr = sys.stderr, io.StringIO()  # ... written, but not onto this report
        sys.settrace(tracer)
        try:
            for _ in range(n):
                once(app)
        finally:
            sys.settrace(None)
            sys.stderr = stderr
            root.setLevel(level)
        per[label] = Counter()
        for code, k in count.items():
            if code.co_filename != __file__:  # this harness's own lines
                per[label][_package(code.co_filename)] += k
    real, bare = sum(per["real"].values()) / n, sum(per["bare"].values()) / n
    print(f"\nbytecodes per transition, server side ({n} each, in-process WSGI): real {real:,.0f}, "
          f"bare {bare:,.0f}, real/bare {real / bare:.2f}")
    print(f"  {'package':<22}{'real':>8}{'bare':>8}{'real - bare':>13}")
    for name in sorted(set(per["real"]) | set(per["bare"]), key=lambda k: -(per["real"][k] - per["bare"][k])):
        r, b = per["real"][name] / n, per["bare"][name] / n
        if max(r, b) >= 50:
            print(f"  {name:<22}{r:>8,.0f}{b:>8,.0f}{r - b:>+13,.0f}")


def profile(setup: Setup, cases: Cases, n: int) -> None:
    """In this process (Flask test clients): n real transitions timed, n bare ones, n real under cProfile."""
    app = in_process_app(setup)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {setup.tokens[0]}"}

    def once() -> None:
        case_id = cases.take()
        r = client.post(f"/api/v1/applications/{case_id}/transitions",
                        json={"action": "accept", "version": setup.version}, headers=headers)
        assert r.status_code == 200, r.get_data(as_text=True)

    from sqlalchemy import event

    statements = [0]

    def _count(*_args: Any) -> None:
        statements[0] += 1

    # Statements counted by another app: once an engine has had a listener, SQLAlchemy runs
    # every statement itself (workflow/driver_sql.py), so the timed app never gets one.
    counting = in_process_app(setup)
    event.listen(counting.extensions["db_engine"], "before_cursor_execute", _count)
    counted = counting.test_client()
    for _ in range(5):
        r = counted.post(f"/api/v1/applications/{cases.take()}/transitions",
                         json={"action": "accept", "version": setup.version}, headers=headers)
        assert r.status_code == 200, r.get_data(as_text=True)
    counting.extensions["db_engine"].dispose()
    for _ in range(20):
        once()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        once()
    real_cpu = (time.process_time() - c0) / n * 1000
    print(f"\nin-process, no profiler: {(time.perf_counter() - t0) / n * 1000:.2f} ms wall, "
          f"{real_cpu:.2f} ms CPU, {statements[0] / 5:.1f} SQL statements "
          f"(+ COMMIT) per transition")
    bare_cpu = bare_cpu_per_transition(setup, cases, n)
    print(f"bare app in-process, same loop: {bare_cpu:.2f} ms CPU per transition "
          f"(real/bare CPU {real_cpu / bare_cpu:.2f})")
    # CPU clock by default: waits on PostgreSQL are not this process's cost and would otherwise
    # dominate the listing (psycopg's wait). BENCH_PROFILE_CLOCK=wall restores wall time.
    clock = time.perf_counter if os.environ.get("BENCH_PROFILE_CLOCK") == "wall" else time.process_time
    prof = cProfile.Profile(clock)
    t0 = clock()
    prof.enable()
    for _ in range(n):
        once()
    prof.disable()
    spent = clock() - t0
    print(f"\nin-process profile: {n} transitions, {spent / n * 1000:.2f} ms "
          f"{'wall' if clock is time.perf_counter else 'CPU'} each under cProfile (single thread, no HTTP)")
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out).sort_stats("cumulative")
    stats.print_stats(os.environ.get("BENCH_PROFILE_FILTER", ""), 40)
    print("\n".join(out.getvalue().splitlines()[:70]))
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(25)
    print("\n".join(out.getvalue().splitlines()[:45]))
    app.extensions["db_engine"].dispose()


def bare_cpu_per_transition(setup: Setup, cases: Cases, n: int) -> float:
    """ms of this process's CPU per transition through bench/bare_app.py (Flask test client)."""
    client = bare_in_process(setup).app.test_client()
    headers = {"Authorization": f"Bearer {setup.tokens[0]}"}

    def once() -> None:
        r = client.post(f"/api/v1/applications/{cases.take()}/transitions",
                        json={"action": "accept", "version": setup.version}, headers=headers)
        assert r.status_code == 200, r.get_data(as_text=True)

    for _ in range(20):
        once()
    c0 = time.process_time()
    for _ in range(n):
        once()
    return (time.process_time() - c0) / n * 1000


# -- main ----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=40000,
                        help="submitted cases to create (each is used once)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each measured run")
    parser.add_argument("--warmup", type=float, default=1.5, help="unrecorded load before each server's runs")
    parser.add_argument("--rounds", type=int, default=4,
                        help="turns the apps take at each client count (--seconds is split among them)")
    parser.add_argument("--clients", default="1,16", help="comma-separated client counts")
    parser.add_argument("--worker-class", choices=("gthread", "sync"), default=DEFAULT_WORKER_CLASS)
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS)
    parser.add_argument("--only", choices=("real", "bare"), help="measure one app only")
    parser.add_argument("--trace", action="store_true", help="print the SQL of one real transition")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="time and cProfile N in-process transitions")
    parser.add_argument("--bytecodes", type=int, default=0, metavar="N",
                        help="count the Python bytecodes of N in-process transitions in each app")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database (prints its URL)")
    args = parser.parse_args(argv)
    args.clients = [int(c) for c in args.clients.split(",") if c.strip()]
    if args.worker_class == "sync":
        args.threads = 1

    cpus = os.cpu_count()
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    setup = prepare(args.cases)
    print(f"database {setup.db_name}: {len(setup.case_ids)} submitted cases (version {setup.version}), "
          f"{len(setup.tokens)} intake tokens; ready in {time.perf_counter() - t0:.1f} s")
    cases = Cases(setup.case_ids)
    server_desc = (f"gunicorn -w {args.workers} -k gthread --threads {args.threads}"
                   if args.worker_class == "gthread" else f"gunicorn -w {args.workers} -k sync")
    print(f"server: {server_desc} on 127.0.0.1 (both apps); {cpus} CPUs shared by PostgreSQL, "
          f"gunicorn and this load generator; REDIS_URL empty (notifications stay in the outbox)")
    results: dict[str, list[Result]] = {}
    try:
        if args.trace:
            trace(setup, cases)
        if args.profile:
            profile(setup, cases, args.profile)
        if args.bytecodes:
            bytecodes(setup, cases, args.bytecodes)
        apps = [(label, target) for label, target in (("real", "wsgi:app"), ("bare", "bench.bare_app:app"))
                if not args.only or args.only == label]
        print(f"measuring {', '.join(f'{label} ({target})' for label, target in apps)}: {args.seconds:g} s "
              f"per app and client count, in {args.rounds} turns", flush=True)
        results = measure(apps, setup, cases, args)
    finally:
        if args.keep_db:
            print(f"kept database: {setup.url}")
        else:
            drop_database(setup.db_name)
            shutil.rmtree(setup.upload_dir, ignore_errors=True)

    print(f"\n{'app':<6}{'clients':>8}{'trans/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'requests':>10}"
          f"{'server CPU ms':>15}{'db CPU ms':>11}")
    for label, runs in results.items():
        for r in runs:
            print(f"{label:<6}{r.clients:>8}{r.rate:>10.1f}{r.pct(.5):>9.1f}{r.pct(.99):>9.1f}{r.errors:>8}"
                  f"{r.ok + r.errors:>10}{r.per_transition(r.server_cpu):>15.2f}{r.per_transition(r.db_cpu):>11.2f}")
    top = max(args.clients)
    real = next((r for r in results.get("real", []) if r.clients == top), None)
    bare = next((r for r in results.get("bare", []) if r.clients == top), None)
    if real and bare and bare.rate:
        ratio = real.rate / bare.rate
        print(f"\nat {top} clients: real {real.rate:.0f}/s, bare {bare.rate:.0f}/s, "
              f"ratio real/bare {ratio:.2f} "
              f"(goal: ≥ {TARGET_RATE}/s and ≥ {TARGET_RATIO}) → "
              f"rate {'met' if real.rate >= TARGET_RATE else 'NOT met'}, "
              f"ratio {'met' if ratio >= TARGET_RATIO else 'NOT met'}")
        # The turns side by side (real's i-th against bare's i-th): how far the machine moved the
        # ratio within the run. The verdict above is on the sums.
        turns = sorted(r / b for r, b in zip(real.slices, bare.slices) if b)
        if len(turns) > 1:
            print(f"ratio turn by turn: min {turns[0]:.2f}, median {turns[len(turns) // 2]:.2f}, "
                  f"max {turns[-1]:.2f} ({len(turns)} turns)")
    print(f"server: {server_desc}; total {time.perf_counter() - t0:.0f} s; load average before "
          f"{load_before:.2f} (other processes on these cores make the numbers noisy)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

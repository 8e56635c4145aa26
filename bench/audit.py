"""`audit verify` over a million audit entries on PostgreSQL.

    .venv/bin/python bench/audit.py [--entries N] [--per-case K] [--repeat R] [--keep-db]

Goal (issue 5): verify at least 100,000 entries per second over 1,000,000 entries.

What it does, on loopback only:
  1. creates its own PostgreSQL database (dropped at the end) and prepares it as `init-db` does;
  2. loads N audit entries, K per case, with valid hash chains computed by the app's own
     `workflow.audit_chain` (so verify has real work: every hash recomputed), by COPY; the
     cases carry their head hash and last seq; then ANALYZE;
  3. times, in this process, R runs each of
       fetch  - the same streamed SELECTs verify issues, rows read and dropped (the floor: what
                reading the entries costs before any hashing),
       verify - `workflow.audit_chain.verify` (what `flask audit verify` runs),
     and reports entries/s, the CPU seconds of this process, the ratio verify/fetch (how much
     hashing adds to reading), and the median;
  4. runs `flask --app wsgi audit verify` once as an operator would, and prints its line;
  5. breaks one entry in the middle and checks that verify names it.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
# The script's own folder holds bench/transitions.py, which would shadow the transitions package.
sys.path[0] = str(ROOT)

ADMIN_DSN = os.environ.get("BENCH_PG_ADMIN", "host=127.0.0.1 port=5432 user=postgres dbname=test")
PG_URL = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/{db}")
GOAL = 100_000
ACTIONS = (("submit", "applicant", "draft", "submitted"), ("accept", "intake", "submitted", "under_review"),
           ("send_inquiry", "expert", "under_review", "inquiry"), ("record_inquiry", "expert", "inquiry", "under_review"),
           ("recommend_approval", "expert", "under_review", "awaiting_decision"),
           ("send_back", "director", "awaiting_decision", "under_review"))


def dsn_of(name: str) -> str:
    return ADMIN_DSN.replace("dbname=test", f"dbname={name}")


def load(url: str, dsn: str, entries: int, per_case: int) -> float:
    from workflow import create_app
    from workflow.audit_chain import chain_hash, moment
    from workflow.cli import prepare_database
    from workflow.config import TestConfig

    app = create_app(TestConfig(DATABASE_URL=url, REDIS_URL=""))
    with app.app_context():
        prepare_database(app)
    app.extensions["db_engine"].dispose()
    started = time.perf_counter()
    cases = -(-entries // per_case)
    base = datetime(2025, 3, 21, 6, 0, tzinfo=timezone.utc)
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO users (id, email, name, password_hash, is_active, created_at, money_unit) "
                     "VALUES (1, 'bench@x.ir', 'bench', 'x', true, now(), 'toman')")
        conn.execute("INSERT INTO organizations (id, name, name_key, province_id, created_at) "
                     "SELECT 1, 'سمن نمونه', 'سمننمونه', id, now() FROM provinces ORDER BY id LIMIT 1")
        # Chains first (the entries reference their cases, which carry the heads).
        rows: list[tuple[object, ...]] = []
        heads: list[tuple[int, str, int]] = []
        written = 0
        for case_id in range(1, cases + 1):
            prev = None
            n = min(per_case, entries - written)
            for seq in range(1, n + 1):
                action, role, a, b = ACTIONS[(seq - 1) % len(ACTIONS)]
                at = base + timedelta(seconds=case_id * 97 + seq * 3600, microseconds=seq * 7)
                comment = f"یادداشت {seq} پرونده {case_id}" if seq % 2 else None
                snap = f"{case_id:032x}{seq:032x}"
                value = chain_hash(prev, [case_id, seq, moment(at), 1, role, action, a, b, comment, None, snap])
                rows.append((case_id, seq, at, 1, role, action, a, b, comment, snap, prev, value))
                prev = value
            written += n
            heads.append((case_id, prev, n))  # type: ignore[arg-type]
        province = conn.execute("SELECT province_id FROM organizations WHERE id = 1").fetchone()[0]
        with conn.cursor().copy("COPY cases (id, kind, state, version, organization_id, province_id, data, "
                                "created_by_id, created_at, updated_at, state_entered_at, last_seq, overdue, "
                                "head_hash) FROM STDIN") as copy:
            for case_id, head, n in heads:
                copy.write_row((case_id, "permit_issuance", "under_review", n + 1, 1, province, "{}", 1, base, base,
                                base, n, False, head))
        with conn.cursor().copy("COPY audit_entries (case_id, seq, at, actor_id, role, action, from_state, "
                                "to_state, comment, snapshot_hash, prev_hash, hash) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.execute("SELECT setval('cases_id_seq', %s)", (cases,))
        conn.execute("ANALYZE")
    return time.perf_counter() - started


def cpu() -> float:
    t = os.times()
    return t.user + t.system


def time_fetch(url: str) -> tuple[float, float, int]:
    """The streamed SELECTs of verify, rows read and dropped."""
    from sqlalchemy import create_engine

    from workflow.audit_chain import _CASE_QUERY, _ENTRY_QUERY, _PG_MOMENT, _stream

    engine = create_engine(url)
    with engine.connect() as conn:
        c0, t0 = cpu(), time.perf_counter()
        rows = 0
        for i, sql in enumerate((_CASE_QUERY.format(where=""), _ENTRY_QUERY.format(where="", at=_PG_MOMENT.format("at")))):
            cursor = _stream(conn, sql, None, 20_000, f"fetch_{i}", typed=True)
            for _row in cursor:
                rows += 1
            cursor.close()
        elapsed, used = time.perf_counter() - t0, cpu() - c0
    engine.dispose()
    return elapsed, used, rows


def time_verify(url: str) -> tuple[float, float, int, object]:
    from sqlalchemy import create_engine

    from workflow.audit_chain import verify

    engine = create_engine(url)
    with engine.connect() as conn:
        c0, t0 = cpu(), time.perf_counter()
        report = verify(conn)
        elapsed, used = time.perf_counter() - t0, cpu() - c0
    engine.dispose()
    return elapsed, used, report.checked, report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--per-case", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args(argv)

    name = f"bench_audit_{os.getpid()}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url, dsn = PG_URL.format(db=name), dsn_of(name)
    try:
        print(f"load average before: {open('/proc/loadavg').read().split()[:3]}")
        seconds = load(url, dsn, args.entries, args.per_case)
        print(f"loaded {args.entries:,} entries ({args.per_case} per case) with their chains in {seconds:.1f} s")
        fetches, verifies = [], []
        for i in range(args.repeat):
            f_elapsed, f_cpu, rows = time_fetch(url)
            v_elapsed, v_cpu, checked, report = time_verify(url)
            assert report.ok and checked == args.entries, report  # type: ignore[attr-defined]
            fetches.append((f_elapsed, f_cpu))
            verifies.append((v_elapsed, v_cpu))
            print(f"run {i + 1}: fetch {rows:,} rows {f_elapsed:.2f} s ({rows / f_elapsed:,.0f}/s, cpu {f_cpu:.2f} s); "
                  f"verify {checked:,} entries {v_elapsed:.2f} s ({checked / v_elapsed:,.0f}/s, cpu {v_cpu:.2f} s); "
                  f"ratio verify/fetch {v_elapsed / f_elapsed:.2f}")
        median = statistics.median(v for v, _c in verifies)
        floor = statistics.median(f for f, _c in fetches)
        rate = args.entries / median
        print(f"median: verify {median:.2f} s = {rate:,.0f} entries/s (goal ≥ {GOAL:,}: "
              f"{'met' if rate >= GOAL else 'NOT met'}); fetch alone {floor:.2f} s; ratio {median / floor:.2f}")

        env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": ""}
        out = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "audit", "verify"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=600)
        print(f"flask audit verify (exit {out.returncode}): {out.stdout.strip().splitlines()[0]}")

        with psycopg.connect(dsn) as conn:
            conn.execute("SET session_replication_role = replica")
            middle = args.entries // args.per_case // 2
            conn.execute("UPDATE audit_entries SET comment = 'ویرایش‌شده' WHERE case_id = %s AND seq = 3", (middle,))
        out = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "audit", "verify"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=600)
        print(f"after editing case {middle} seq 3 (exit {out.returncode}): {out.stderr.strip()}")
        assert out.returncode == 1 and f"case {middle} seq 3" in out.stderr
    finally:
        if not args.keep_db:
            with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())

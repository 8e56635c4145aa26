"""The national-scale bench database (`bench_scale`), made once and shared by bench/queues.py and
bench/load.py: created, migrated (`init-db`, which also brings an existing one to the newest
schema, indexes included) and filled by `flask bench populate` when it holds fewer cases than
asked. Loopback PostgreSQL only; override with BENCH_PG_ADMIN / BENCH_SCALE_DB.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
ADMIN_DSN = os.environ.get("BENCH_PG_ADMIN", "host=127.0.0.1 port=5432 user=postgres dbname=test")
NAME = os.environ.get("BENCH_SCALE_DB", "bench_scale")


def dsn() -> str:
    return ADMIN_DSN.replace("dbname=test", f"dbname={NAME}")


def url() -> str:
    return f"postgresql://postgres@127.0.0.1:5432/{NAME}"


def flask(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url()}
    return subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True)


def cases_in() -> int | None:
    try:
        with psycopg.connect(dsn()) as conn:
            return conn.execute("SELECT count(*) FROM cases").fetchone()[0]  # type: ignore[index]
    except psycopg.OperationalError:
        return None  # no such database
    except psycopg.errors.UndefinedTable:
        return 0


def ensure(cases: int, rebuild: bool = False) -> dict[str, object]:
    """The database with about `cases` cases; populated (and timed) only when it has to be."""
    have = None if rebuild else cases_in()
    if have is not None and have >= cases * 0.97:
        flask("init-db")
        return {"cases": have, "populated": False}
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{NAME}"')
    flask("init-db")
    started = time.perf_counter()
    out = flask("bench", "populate", "--cases", str(cases)).stdout
    seconds = time.perf_counter() - started
    print(out.rstrip())
    print(f"populate --cases {cases:,}: {seconds:.0f} s")
    return {"cases": cases_in(), "populated": True, "seconds": seconds}


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    print(ensure(args.cases, args.rebuild))

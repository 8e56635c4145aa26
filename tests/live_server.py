"""A real server for tests and benchmarks: a scratch PostgreSQL database and gunicorn on loopback.

Used by tests/test_concurrency.py and bench/transitions.py. Nothing here touches the app's
code: the database is migrated exactly as `init-db` does, and gunicorn serves `wsgi:app` (or
any other WSGI target) as a subprocess with its own environment.
"""
from __future__ import annotations

import contextlib
import functools
import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = os.environ.get("TEST_PG_ADMIN", "host=127.0.0.1 port=5432 user=postgres dbname=test")
PG_URL = os.environ.get("TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/{db}")
GUNICORN = Path(sys.executable).parent / "gunicorn"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def create_database(prefix: str) -> tuple[str, str]:
    """A new empty database; returns (name, SQLAlchemy URL)."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, PG_URL.format(db=name)


def drop_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def stop_group(proc: subprocess.Popen[Any], timeout: float = 10) -> None:
    """SIGTERM to the process group, SIGKILL after `timeout`: a test's server or worker never
    outlives it."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def libpq_dsn(url: str) -> str:
    """The SQLAlchemy URL as a plain libpq URL for psycopg."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def migrate(url: str) -> None:
    """A database prepared as `flask init-db` prepares one (schema, reference data, holidays)."""
    from workflow import create_app
    from workflow.cli import prepare_database
    from workflow.config import TestConfig

    app = create_app(TestConfig(DATABASE_URL=url, REDIS_URL=""))
    with app.app_context():
        prepare_database(app)
    app.extensions["db_engine"].dispose()


@contextlib.contextmanager
def cheap_password_hashing() -> Iterator[None]:
    """Make `User.set_password` cheap while arranging many users (argon2 at OWASP's cost takes
    ~30 ms each), whatever config the arranging app has.

    Only the arranging process is affected; the server subprocess hashes as in production.
    """
    import workflow.passwords as passwords

    original = passwords.hasher
    passwords.hasher = functools.partial(passwords._hasher, 1, 8, 1)
    try:
        yield
    finally:
        passwords.hasher = original


def http_status(port: int, method: str, path: str, timeout: float = 2.0) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


class Gunicorn:
    """gunicorn serving `target` on a free loopback port; stop() always ends the process group."""

    def __init__(
        self, target: str, env: dict[str, str], *, workers: int = 4, threads: int = 8,
        worker_class: str | None = None, extra_args: list[str] | None = None,
    ) -> None:
        self.target = target
        self.port = free_port()
        self.workers = workers
        self.threads = threads
        self.worker_class = worker_class or ("gthread" if threads > 1 else "sync")
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.extra_args = extra_args or []
        self.log_path = Path(tempfile.mkstemp(prefix="gunicorn-", suffix=".log")[1])
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def describe(self) -> str:
        if self.worker_class == "gthread":
            return f"gunicorn -w {self.workers} -k gthread --threads {self.threads}"
        return f"gunicorn -w {self.workers} -k {self.worker_class}"

    def start(self, ready_path: str = "/api/v1/permits/none", ready_status: int = 404,
              timeout: float = 30.0) -> "Gunicorn":
        for attempt in range(3):
            try:
                return self._start(ready_path, ready_status, timeout)
            except RuntimeError:
                # The free port was taken between our probe and gunicorn's bind: try another.
                if attempt == 2 or "Connection in use" not in self.log_tail():
                    raise
                self.port = free_port()
        raise AssertionError("unreachable")

    def _start(self, ready_path: str, ready_status: int, timeout: float) -> "Gunicorn":
        args = [str(GUNICORN), "-w", str(self.workers), "-k", self.worker_class,
                "-b", f"127.0.0.1:{self.port}", "--graceful-timeout", "5", *self.extra_args]
        if self.worker_class == "gthread":
            args += ["--threads", str(self.threads)]
        args.append(self.target)
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                last = http_status(self.port, "GET", ready_path)
                if last == ready_status:
                    self._wait_for_workers(deadline)
                    return self
            except OSError as exc:
                last = exc
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer {ready_status} on {ready_path} (last: {last!r}):\n"
                           f"{self.log_tail()}")

    def _wait_for_workers(self, deadline: float) -> None:
        """All workers booted: every one has loaded the app before load arrives."""
        while time.monotonic() < deadline:
            booted = self.log_path.read_text(errors="replace").count("Booting worker with pid")
            if booted >= self.workers:
                time.sleep(0.3)  # the last one still imports the app
                return
            time.sleep(0.05)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            stop_group(proc)

    def __enter__(self) -> "Gunicorn":
        return self.start()

    def close(self) -> None:
        """Stop the server and delete its log."""
        self.stop()
        with contextlib.suppress(OSError):
            self.log_path.unlink()

    def __exit__(self, *exc: object) -> None:
        self.close()

"""`flask jobs worker --simple` with one SMTP connection per worker process, for comparison only.

    .venv/bin/python bench/sweep_worker.py        (same environment as `flask --app wsgi jobs worker`)

bench/sweep.py --reuse-smtp runs two of these to measure what keeping the connection open across
jobs would gain. jobs/notify.py is not changed: its `smtplib` is replaced, in this process only,
by a shim whose SMTP(host, port) hands back one open connection per (host, port) and whose
`with` block does not QUIT; a connection the server dropped is opened again once. The message,
the row locking and the commit are the app's own.
"""
from __future__ import annotations

import smtplib
import sys
import types
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))


class ReusedSMTP:
    """Stands in for smtplib.SMTP inside `with smtplib.SMTP(host, port, timeout=…) as smtp:`."""

    _open: dict[tuple[str, int], smtplib.SMTP] = {}

    def __init__(self, host: str, port: int = 25, timeout: float = 30, **_kw: Any) -> None:
        self.key, self.timeout = (host, port), timeout

    def _connection(self) -> smtplib.SMTP:
        conn = self._open.get(self.key)
        if conn is None:
            conn = self._open[self.key] = smtplib.SMTP(*self.key, timeout=self.timeout)
        return conn

    def _drop(self) -> None:
        conn = self._open.pop(self.key, None)
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass

    def send_message(self, message: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return self._connection().send_message(message, *args, **kwargs)
        except (smtplib.SMTPServerDisconnected, ConnectionError):
            self._drop()  # closed by the server while idle: once more on a fresh connection
            return self._connection().send_message(message, *args, **kwargs)

    def __enter__(self) -> "ReusedSMTP":
        return self

    def __exit__(self, exc_type: Any, *_exc: Any) -> None:
        if exc_type is not None:
            self._drop()  # the session is in an unknown state after an error: start afresh next time


def main() -> None:
    from rq import SimpleWorker

    import jobs.notify
    from jobs.queue import connection
    from workflow import create_app

    shim = types.ModuleType("smtplib_reused")
    shim.__dict__.update({k: v for k, v in vars(smtplib).items() if not k.startswith("__")})
    shim.SMTP = ReusedSMTP  # type: ignore[attr-defined]
    jobs.notify.smtplib = shim  # type: ignore[attr-defined]
    app = create_app()
    with app.app_context():
        conn = connection()
        assert conn is not None, "REDIS_URL is not set"
        SimpleWorker([app.config["RQ_QUEUE"]], connection=conn).work(with_scheduler=True)


if __name__ == "__main__":
    main()

"""Jobs carry the request id they were enqueued under, and workers time them.

`TracedQueue` writes the current request id (if any) into each job's meta as it is created,
whichever rq call creates it (enqueue, enqueue_in, enqueue_many). The workers below put it back
into the log context while the job runs, so the worker's lines, on whichever machine, carry the
id of the request that caused them; a job enqueued by a job inherits it the same way.

They also record how long each job waited in its queue and how long it ran. This happens in
the worker's own process around `execute_job`, which with `--fork` wraps the work horse too, so
the figures are the same in both modes. A worker is usually on a machine of its own and serves
its metrics on its own port (`serve_metrics`), with the same access rule as the web's /metrics.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from rq import Queue, SimpleWorker, Worker
from rq.job import Job

from workflow import logs, metrics

log = logging.getLogger("jobs.worker")


class TracedQueue(Queue):
    def create_job(self, *args: Any, meta: dict[str, Any] | None = None, **kwargs: Any) -> Job:
        rid = logs.current_request_id()
        if rid:
            meta = {**(meta or {}), "request_id": rid}
        return super().create_job(*args, meta=meta, **kwargs)


class _Observed:
    """Mixed into rq's workers: request id in the log context, wait and run time measured."""

    def execute_job(self, job: Job, queue: Queue) -> None:
        func = job.func_name or "unknown"
        waited = time.time() - job.enqueued_at.timestamp() if job.enqueued_at else None
        rid = (job.meta or {}).get("request_id")
        previous = logs.context.set({"request_id": rid, "job_id": job.id, "job": func})
        if waited is not None:
            metrics.JOB_WAIT.labels(func).observe(max(waited, 0.0))
        log.info("job started after %.0f ms in the queue", (waited or 0) * 1000)
        start = time.perf_counter()
        status = "unknown"
        try:
            super().execute_job(job, queue)  # type: ignore[misc]
        finally:
            seconds = time.perf_counter() - start
            try:
                status = str(job.get_status(refresh=True).value)
            except Exception:  # noqa: BLE001 - the job's hash may be gone (no result kept)
                pass
            metrics.JOB_DURATION.labels(func, status).observe(seconds)
            log.info("job %s in %.1f ms", status, seconds * 1000,
                     extra={"duration_ms": round(seconds * 1000, 2), "status": status})
            logs.context.reset(previous)


class ObservedSimpleWorker(_Observed, SimpleWorker):
    """Runs jobs in its own process (the default: keeps the database pool and SMTP connection)."""


class ObservedWorker(_Observed, Worker):
    """Forks a work horse per job (`flask jobs worker --fork`)."""


# -- the worker's own metrics port ---------------------------------------------------------------

class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("metrics %s", format % args)


def metrics_app(token: str, extra: Any = None) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        status = metrics.allowed(environ, token)
        if status != 200:
            body, headers = metrics.refusal(status)
            start_response(f"{status} {'Unauthorized' if status == 401 else 'Forbidden'}", headers)
            return [body]
        start_response("200 OK", [("Content-Type", metrics.CONTENT_TYPE_LATEST),
                                  ("Cache-Control", "no-store")])
        return [metrics.exposition(extra)]

    return app


def serve_metrics(host: str, port: int, token: str, extra: Any = None) -> WSGIServer:
    """Serve /metrics on host:port from a daemon thread; returns the server (port 0: any free one)."""
    server = make_server(host, port, metrics_app(token, extra), handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    log.info("metrics on http://%s:%d/metrics", host, server.server_port)
    return server

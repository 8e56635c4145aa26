"""Every request: a request id, a log line, and its count and latency in the metrics; /metrics.

The request id comes from the proxy's `X-Request-ID` when it looks like an id (nginx sends its
own `$request_id`, so its access log and ours share it), else a new one; it is echoed in the
response and carried by every log line of the request and by the rq jobs the request enqueues.

Probes (/healthz, /readyz) and scrapes (/metrics) are logged at DEBUG: several load balancers
and a Prometheus each asking every few seconds, on every web machine, would otherwise bury the
requests people make. Their failures still show: /readyz logs what failed at WARNING, and they
are counted in the metrics like every request.

The whole cost per request (a perf_counter, a regex on the header or a random id, two metric
increments, one log record) is measured in tests/test_ops.py and reported in docs/deploy.md.
"""
from __future__ import annotations

import logging
import os
import re
import time

from flask import Blueprint, Flask, Response, current_app, request

from . import logs, metrics
from .security import REQUEST_ID

log = logging.getLogger("workflow.request")
# What an upstream id may look like: nginx's 32 hex digits, UUIDs, trace ids ("Root=1-…");
# nothing that could break a log line or a header (spaces, quotes, control characters).
SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:=+/@-]{0,127}")
QUIET = frozenset({"health.healthz", "health.readyz", "observability.metrics_view"})
_START = "workflow.start"
_TOKEN = "workflow.log_context"
bp = Blueprint("observability", __name__)


def new_request_id() -> str:
    return os.urandom(16).hex()


def request_id_from(header: str | None) -> str:
    if header and SANE_ID.fullmatch(header):
        return header
    return new_request_id()


def _begin() -> None:
    req = request._get_current_object()  # type: ignore[attr-defined]  # one proxy lookup for the hook
    environ = req.environ
    environ[_START] = time.perf_counter()
    rid = environ[REQUEST_ID] = request_id_from(environ.get("HTTP_X_REQUEST_ID"))  # echoed by security.with_headers
    environ[_TOKEN] = logs.context.set({"request_id": rid, "method": req.method, "path": req.path, "web": True})
    metrics.IN_PROGRESS.inc()


def _finish(response: Response) -> Response:
    ctx = logs.context.get()
    req = request._get_current_object()  # type: ignore[attr-defined]  # one proxy lookup for the hook
    start = req.environ.pop(_START, None)
    if ctx is None or start is None:  # _begin did not run for this request
        return response
    seconds = time.perf_counter() - start
    endpoint = req.endpoint or "unmatched"
    status = response.status_code
    metrics.observe_request(endpoint, req.method, status, seconds)
    level = logging.ERROR if status >= 500 else logging.DEBUG if endpoint in QUIET else logging.INFO
    if log.isEnabledFor(level):
        duration_ms = round(seconds * 1000, 2)
        # Straight to the handlers: Logger.log would look up the calling frame, a fifth of the cost.
        log.handle(log.makeRecord(log.name, level, __file__, 0, "%s %s %s %sms",
                                  (ctx["method"], ctx["path"], status, duration_ms), None, extra={
                                      "status": status, "duration_ms": duration_ms, "endpoint": endpoint,
                                      "user_id": logs._user_id()}))
    return response


def _end(_exc: BaseException | None) -> None:
    # Only the request _begin saw: a request context pushed by other code (a test's) ends here too.
    token = request._get_current_object().environ.pop(_TOKEN, None)  # type: ignore[attr-defined]
    if token is None:
        return
    metrics.IN_PROGRESS.dec()
    try:
        logs.context.reset(token)
    except ValueError:  # ended in another context than it began in
        logs.context.set(None)


@bp.get("/metrics")
def metrics_view():  # type: ignore[no-untyped-def]
    status = metrics.allowed(request.environ, current_app.config["METRICS_TOKEN"])
    if status != 200:
        body, headers = metrics.refusal(status)
        return Response(body, status, headers)
    collector = current_app.extensions.get("queue_depth")
    return Response(metrics.exposition(collector), 200, {"Content-Type": metrics.CONTENT_TYPE_LATEST,
                                                         "Cache-Control": "no-store"})


def register(app: Flask) -> None:
    """Logging first, then the hooks: registered before any other app-level hook, so the request
    id is set before anything logs, and its after_request runs last (the final status)."""
    logs.configure(app.config["LOG_FORMAT"], app.config["LOG_LEVEL"])
    app.before_request(_begin)
    app.after_request(_finish)
    app.teardown_request(_end)
    app.register_blueprint(bp)
    from .health import redis_client

    app.extensions["queue_depth"] = metrics.QueueDepth(lambda: redis_client(app), [app.config["RQ_QUEUE"]])

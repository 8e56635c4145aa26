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
import threading
import time
from typing import Any

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
        log.handle(_line(level, (ctx["method"], ctx["path"], status, duration_ms), {
            "status": status, "duration_ms": duration_ms, "endpoint": endpoint, "user_id": logs._user_id()}))
    return response


LINE = "%s %s %s %sms"
_lines = threading.local()  # per thread: `proto`, the fields its request lines share
os.register_at_fork(after_in_child=lambda: _lines.__dict__.clear())  # a child's pid is its own


def _line(level: int, args: tuple[Any, ...], extra: dict[str, Any]) -> logging.LogRecord:
    """The request line's record, as `log.makeRecord` makes it, for less. LogRecord's constructor
    works out the file, module, thread and process of every record anew (splitting the path,
    asking for the thread and the pid): a third of the line's cost, and the same for every line
    a thread logs here. They are copied from the thread's first record; the time, level,
    arguments and fields are the line's own."""
    proto = getattr(_lines, "proto", None)
    if proto is None:
        proto = _lines.proto = vars(log.makeRecord(log.name, logging.INFO, __file__, 0, LINE, (), None))
    record = logging.LogRecord.__new__(logging.LogRecord)
    fields = record.__dict__
    fields.update(proto)
    now = time.time()
    fields["created"], fields["msecs"] = now, int((now - int(now)) * 1000) + 0.0
    fields["relativeCreated"] = proto["relativeCreated"] + (now - proto["created"]) * 1000
    if level != logging.INFO:
        fields["levelno"], fields["levelname"] = level, logging.getLevelName(level)
    fields["args"] = args
    fields.update(extra)
    return record


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

"""Log lines: one JSON object per line (LOG_FORMAT=json, production's default) or readable text.

Whatever is being served or run sets `context` (observability.py for a request: request id,
method, path; jobs/tracing.py for a job: the request id it was enqueued under, the job's id and
function), and every line logged meanwhile, by the app or by a library, carries it. A log
collector then finds all the lines of one request, on the web machine and on the worker
machines, by one id.
"""
from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any

from flask import g, has_request_context

# Fields of what is being done now, for every line logged meanwhile (None: nothing in particular).
context: ContextVar[dict[str, Any] | None] = ContextVar("log_context", default=None)

# Attributes every LogRecord has; anything else on a record came from `extra=` and is logged.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
# Fields named first in a text line's tail, in this order.
_TEXT_ORDER = ("method", "path", "status", "duration_ms", "user_id")


def current_request_id() -> str | None:
    ctx = context.get()
    return ctx.get("request_id") if ctx else None


def _user_id() -> int | None:
    """The signed-in user's id if this request has loaded one (never loads it: that is a query)."""
    if not has_request_context():
        return None
    found = g._get_current_object()  # type: ignore[attr-defined]  # one proxy lookup, not two
    user = found.get("api_user") or found.get("_login_user")
    return getattr(user, "id", None) if getattr(user, "is_authenticated", False) else None


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The context's fields, then the record's own (`extra=`); a user id of None is left out."""
    ctx = context.get()
    fields: dict[str, Any] = dict(ctx) if ctx else {}
    web = fields.pop("web", False)
    extra = record.__dict__.keys() - _RECORD_FIELDS
    if extra:
        for key in sorted(extra):
            if key[0] != "_":
                fields[key] = record.__dict__[key]
    if "user_id" in fields:
        if fields["user_id"] is None:
            del fields["user_id"]
    elif web:
        uid = _user_id()
        if uid is not None:
            fields["user_id"] = uid
    return fields


class JsonFormatter(logging.Formatter):
    """{"time", "level", "logger", "message", request_id, …}: one line, UTF-8, no escaping of
    Persian (a collector indexes it as text, a person reading raw logs can read it)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(_fields(record))
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        return _JSON.encode(line)


# One encoder for every line: json.dumps with options builds a new one per call.
_JSON = json.JSONEncoder(ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger [request id] message key=value …`, for a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(rid)s: %(message)s")
        self._second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        # Formatter's own, with the date and time of day made once a second, not per line
        # (strftime is most of a request line's cost). One tuple, so threads never mix halves.
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        cached = self._second
        if cached[0] != second:
            cached = self._second = (second, time.strftime(self.default_time_format, self.converter(record.created)))
        return self.default_msec_format % (cached[1], record.msecs)

    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record)
        rid = fields.pop("request_id", None)
        record.rid = f" [{rid}]" if rid else ""
        try:
            text = super().format(record)
        finally:
            del record.rid
        tail = [f"{k}={fields.pop(k)}" for k in _TEXT_ORDER if k in fields]
        tail += [f"{k}={v}" for k, v in fields.items()]
        if tail:
            head, sep, rest = text.partition("\n")  # a traceback stays below the line
            text = f"{head} ({' '.join(tail)}){sep}{rest}"
        return text


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the moment (a test's capture, gunicorn's, systemd's)."""

    terminator = "\n"

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self):  # type: ignore[no-untyped-def, override]
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def formatter(kind: str) -> logging.Formatter:
    if kind not in ("json", "text"):
        raise ValueError(f"LOG_FORMAT must be json or text, not {kind!r}")
    return JsonFormatter() if kind == "json" else TextFormatter()


def configure(kind: str, level: str = "INFO") -> None:
    """Root logger → stderr in `kind`; called by every create_app, so the last app's wins and
    the handler is never added twice. Handlers others attached (pytest's) are left alone."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _StderrHandler):
            root.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(formatter(kind))
    root.addHandler(handler)
    root.setLevel(level)

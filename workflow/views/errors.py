"""Error pages and JSON errors: every failure is a clear 4xx, never a bare 500 page.

API paths always answer JSON in the contract's shape; pages render a template.
"""
from __future__ import annotations

import json
import logging
import re
from typing import Any

from flask import Flask, abort, current_app, g, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from .. import db
from ..errors import WorkflowError

log = logging.getLogger(__name__)

CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
         405: "method_not_allowed", 409: "conflict", 413: "too_large", 415: "unsupported_media_type",
         422: "invalid", 429: "too_many_requests"}


# API routes that take files: their limit is the upload's, not the JSON body's.
UPLOAD_ENDPOINTS = frozenset({"api.upload_document", "api.tranche_report"})
# The only bodies werkzeug parses into request.form and request.files; for any other, both are empty.
FORM_MIMETYPES = frozenset({"multipart/form-data", "application/x-www-form-urlencoded"})


def wants_json() -> bool:
    return request.path.startswith("/api/")


def json_error(status: int, message: str, fields: dict[str, str] | None = None, code: str | None = None):  # type: ignore[no-untyped-def]
    body = {"error": {"code": code or CODES.get(status, "error"), "message": message, "fields": fields or {}}}
    return jsonify(body), status


# NUL and lone surrogates (JSON may escape both) cannot be stored: PostgreSQL refuses the one,
# UTF-8 the other, deep inside a query. No body of ours nests deeper than a few levels; a deeper
# one would only exhaust the recursion limit of whoever walks it.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
MAX_DEPTH = 32


def unstorable(value: Any) -> bool:
    """Whether decoded input holds text that cannot be stored, or nests past MAX_DEPTH."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        if isinstance(item, str):
            if _UNSTORABLE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend((part, depth + 1) for pair in item.items() for part in pair)
        elif isinstance(item, list):
            stack.extend((part, depth + 1) for part in item)
    return False


def unstorable_json(raw: bytes, data: Any) -> bool:
    """unstorable(data) for `data` parsed from the JSON text `raw`, without walking it when the
    text cannot hold anything unstorable. NUL and lone surrogates reach decoded text only by a
    \\u escape or, surrogates, by their bytes (0xED 0xA0-0xBF, which the standard library's
    parser lets through); a raw control character is refused by the parser; and nesting past
    MAX_DEPTH takes more than MAX_DEPTH brackets (one inside a string only counts too many)."""
    if b"\\u" not in raw and b"\xed" not in raw and raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return False
    return unstorable(data)


# `proxy._get_current_object().name` rather than `proxy.name` on the request path: reading an
# attribute a werkzeug LocalProxy does not define first fails (an AttributeError is made, with
# its message) before the proxy's __getattr__ finds it; the whole app pays that on every request.
def checked_json() -> Any:
    """The JSON body _refuse_nul parsed and found storable, or None if it did not (not JSON by
    its Content-Type, malformed, too large to look at before the view, or JSON's null)."""
    return g._get_current_object().get("checked_json")  # type: ignore[attr-defined]


def json_or_400(text: str | bytes) -> Any:
    """JSON text as the API takes it: malformed, too deep to parse, or unstorable is a 400."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        abort(400)
    if unstorable(data):
        abort(400)
    return data


def register(app: Flask) -> None:
    @app.before_request
    def _refuse_nul():  # type: ignore[no-untyped-def]
        """NUL never belongs in text, and PostgreSQL refuses it deep inside a query: stop it here."""
        req = request._get_current_object()  # type: ignore[attr-defined]  # looked up once, not per use
        limit = current_app._get_current_object().config["API_MAX_BODY_BYTES"]  # type: ignore[attr-defined]
        path = req.path
        # The API's JSON bodies are small; only its upload route takes files. Set the limit
        # before anything reads the body, or the stream is already open without it.
        if path.startswith("/api/") and req.endpoint not in UPLOAD_ENDPOINTS:
            req.max_content_length = limit
        # The query string is looked at decoded: "%00" in the raw path is three harmless characters.
        # Without one (most requests) there is nothing to decode; without a body, no form.
        if "\x00" in path or (req.environ.get("QUERY_STRING") and any(
                unstorable(v) for _k, v in req.args.items(multi=True))) or (
                req.mimetype in FORM_MIMETYPES and (any(
                    unstorable(v) for _k, v in req.form.items(multi=True)) or any(
                    unstorable(f.filename) for _k, f in req.files.items(multi=True)))):  # stored as the name
            abort(400)
        length = req.content_length  # parsed from the header at each read: once
        if length and length <= limit and req.is_json:
            try:
                data = req.get_json(silent=True)
            except RecursionError:
                abort(400)
            if unstorable_json(req.get_data(cache=True), data):
                abort(400)
            g.checked_json = data  # the API's body() takes it from here rather than parse it again
        return None

    @app.errorhandler(WorkflowError)
    def _workflow_error(exc: WorkflowError):  # type: ignore[no-untyped-def]
        db.session().rollback()
        if wants_json():
            return json_error(exc.status, exc.message, exc.fields, exc.code)
        return render_template("errors/error.html", status=exc.status, message=exc.message), exc.status

    @app.errorhandler(CSRFError)
    def _csrf_error(exc: CSRFError):  # type: ignore[no-untyped-def]
        message = _("The form has expired or did not come from this site; reload the page and try again.")
        if wants_json():
            return json_error(400, message, code="csrf")
        return render_template("errors/error.html", status=400, message=message), 400

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):  # type: ignore[no-untyped-def]
        status = exc.code or 500
        message = {
            404: _("Not found."), 403: _("You may not do this."), 413: _("The request is too large."),
            405: _("This method is not allowed here."), 400: _("The request could not be understood."),
            401: _("Sign in first."), 415: _("This content type is not accepted here."),
            429: _("Too many attempts; wait a little and try again."),
        }.get(status, _("The request could not be completed."))
        if wants_json():
            return json_error(status, message)
        return render_template("errors/error.html", status=status, message=message), status

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):  # type: ignore[no-untyped-def]
        log.exception("unhandled error on %s %s", request.method, request.path)
        db.session().rollback()
        message = _("Something went wrong on our side; nothing was saved.")
        if wants_json():
            return json_error(500, message, code="internal")
        return render_template("errors/error.html", status=500, message=message), 500

"""Error pages and JSON errors: every failure is a clear 4xx, never a bare 500 page.

API paths always answer JSON in the contract's shape; pages render a template.
"""
from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException

from .. import db
from ..errors import WorkflowError

log = logging.getLogger(__name__)

CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
         405: "method_not_allowed", 409: "conflict", 413: "too_large", 415: "unsupported_media_type",
         422: "invalid", 429: "too_many_requests"}


def wants_json() -> bool:
    return request.path.startswith("/api/")


def json_error(status: int, message: str, fields: dict[str, str] | None = None, code: str | None = None):  # type: ignore[no-untyped-def]
    body = {"error": {"code": code or CODES.get(status, "error"), "message": message, "fields": fields or {}}}
    return jsonify(body), status


def register(app: Flask) -> None:
    @app.errorhandler(WorkflowError)
    def _workflow_error(exc: WorkflowError):  # type: ignore[no-untyped-def]
        db.session().rollback()
        if wants_json():
            return json_error(exc.status, exc.message, exc.fields, exc.code)
        return render_template("errors/error.html", status=exc.status, message=exc.message), exc.status

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):  # type: ignore[no-untyped-def]
        status = exc.code or 500
        message = {
            404: _("Not found."), 403: _("You may not do this."), 413: _("The request is too large."),
            405: _("This method is not allowed here."), 400: _("The request could not be understood."),
        }.get(status, exc.description or exc.name)
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

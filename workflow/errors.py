"""Errors the engine and services raise; views turn them into a form message or JSON."""
from __future__ import annotations


class WorkflowError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}

    def to_dict(self) -> dict[str, object]:
        return {"error": {"code": self.code, "message": self.message, "fields": self.fields}}


class NotFound(WorkflowError):
    status = 404
    code = "not_found"


class Forbidden(WorkflowError):
    status = 403
    code = "forbidden"


class Conflict(WorkflowError):
    status = 409
    code = "conflict"


class Invalid(WorkflowError):
    status = 422
    code = "invalid"

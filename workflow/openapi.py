"""The JSON API's OpenAPI 3.1 document: its contract, served at /api/v1/openapi.json.

Written out by hand rather than guessed from the views, because the views validate by code
(types, lengths, vocabularies) that no introspection can read; but every vocabulary here comes
from where the app keeps it (the processes' rules, the fields of activity, the roles, the id
limit of the URL converter, the comment and reason limits), so the document moves with them.
tests/test_openapi.py holds it to the URL map both ways and runs schemathesis against the app.
"""
from __future__ import annotations

from typing import Any

from flask import Flask

from . import engine, letters, registry, uploads
from .db import MAX_ID
from .models import ROLES
from .money import MAX_RIALS
from .reference_data import FIELDS
from .services import grants as grant_service
from .services import permits as permit_service
from .services import queues
from .states import grant_request, permit_issuance, permit_renewal
from .states.permit import PROCESS as PERMIT_PROCESS
from .states.permit import SYSTEM

Schema = dict[str, Any]
JSON = "application/json"

# Error code of each status the API answers with (views/errors.py and errors.py agree on these).
ERROR_CODES = {
    400: ("bad_request", "The request could not be understood: malformed JSON, a body that is not a JSON "
                         "object, or a NUL character in the path, the query, a form field or the body."),
    401: ("unauthorized", "No valid bearer token (absent, unknown, expired, or the user is disabled); "
                          "on /token: wrong e-mail or password."),
    403: ("forbidden", "Signed in but not allowed: the wrong role or jurisdiction, a member acting as staff on "
                       "their own organisation's case, or an auditor trying to change something."),
    404: ("not_found", "No such resource, or one the caller may not see (never told apart, so ids leak nothing)."),
    409: ("conflict", "The resource changed since the caller read it (send the current `version`), or the "
                      "action is not possible in its current state."),
    413: ("too_large", "The body is larger than the limit (see the operation's description)."),
    422: ("invalid", "The input is well-formed but wrong; `fields` names each field and what is wrong with it."),
    429: ("too_many_requests", "Too many requests; wait a little and try again."),
}


# Examples: what a client would send; demo logins and the first ids of a fresh database.
PERMIT_NUMBER_EXAMPLE = "1405-13-000001"
ISSUANCE_DATA = {
    "name": "انجمن حمایت از کودکان کار کرمان", "field": "children", "county": "Kerman",
    "address": "کرمان، خیابان شریعتی، پلاک ۱۲",
    "founders": [{"full_name": "زهرا احمدی", "national_id": "0499370899"},
                 {"full_name": "علی رضایی", "national_id": "0790419904"},
                 {"full_name": "مریم حسینی", "national_id": "0084575948"}],
}
GRANT_DATA = {
    "programme_id": 1, "title": "کلاس‌های سوادآموزی کودکان کار",
    "summary": "آموزش خواندن و نوشتن به ۴۰ کودک کار در محله‌های حاشیه کرمان.", "requested_rials": 900_000_000,
    "budget_lines": [{"item": "حق‌التدریس", "rials": 600_000_000}, {"item": "لوازم‌التحریر", "rials": "۳۰۰٬۰۰۰٬۰۰۰"}],
}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _or_null(schema: Schema) -> Schema:
    if "type" in schema and isinstance(schema["type"], str):
        return {**schema, "type": [schema["type"], "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def _object(properties: dict[str, Schema], required: list[str] | None = None, *, closed: bool = True,
            description: str | None = None) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    if closed:
        schema["additionalProperties"] = False
    if description:
        schema["description"] = description
    return schema


STRING: Schema = {"type": "string"}
DATETIME: Schema = {"type": "string", "format": "date-time"}
ROW_ID: Schema = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
RIALS: Schema = {"type": "integer", "minimum": 0, "maximum": MAX_RIALS}
SHA256: Schema = {"type": "string", "pattern": "^[0-9a-f]{64}$"}


def _case_actions() -> list[str]:
    """Every action a person can take on an application (the system's own are left out)."""
    names = {r.action for p in registry.PROCESSES.values() for r in p.rules if r.role != engine.SYSTEM_ROLE}
    return sorted(names)


def _case_states() -> list[str]:
    return sorted({s for p in registry.PROCESSES.values() for s in p.states})


def _permit_actions() -> list[str]:
    return sorted({r.action for r in PERMIT_PROCESS.rules if r.role != SYSTEM})


def _schemas() -> dict[str, Schema]:
    field_codes = [f["code"] for f in FIELDS]
    amount_in: Schema = {
        "description": "Whole rials: a JSON integer, or text with digits of any script and grouping "
                       "separators (\"۳۰۰٬۰۰۰٬۰۰۰\").",
        "anyOf": [RIALS, {"type": "string", "maxLength": 64}],
    }
    version_in: Schema = {"type": "integer", "description": "The `version` of the case you read; a stale one is a 409."}
    comment_in: Schema = {"type": "string", "maxLength": engine.MAX_COMMENT,
                          "description": "Required by the actions that return, reject or send back."}
    founder: Schema = _object({
        "full_name": {"type": "string", "maxLength": 200},
        "national_id": {"type": "string", "description": "10 digits (any script) with a valid check digit."},
    }, closed=False)
    report_line_in: Schema = _object({
        "item": {"type": "string", "maxLength": 200},
        "budgeted_rials": amount_in,
        "spent_rials": amount_in,
    }, closed=False)
    schemas: dict[str, Schema] = {
        "Error": _object({
            "error": _object({
                "code": {"type": "string", "enum": sorted({code for code, _ in ERROR_CODES.values()})},
                "message": {"type": "string", "description": "For people, in the request's language (fa or en)."},
                "fields": {"type": "object", "additionalProperties": {"type": "string"},
                           "description": "Field (a dotted path such as `founders.0.national_id`) → what is wrong."},
            }, ["code", "message", "fields"]),
        }, ["error"]),
        "Token": _object({"token": STRING, "expires_at": DATETIME}, ["token", "expires_at"]),
        "TokenRequest": {**_object({"email": STRING, "password": STRING}, ["email", "password"], closed=False),
                         "examples": [{"email": "ngo1.kerman@demo.ir", "password": "demo1234"}]},
        "Me": _object({
            "id": ROW_ID, "email": STRING, "name": STRING,
            "roles": {"type": "array", "items": {"enum": list(ROLES)}},
            "province": _or_null(STRING), "county": _or_null(STRING),
            "organizations": {"type": "array", "items": _object({"id": ROW_ID, "name": STRING}, ["id", "name"])},
        }, ["id", "email", "name", "roles", "province", "county", "organizations"]),
        "Place": _object({"id": ROW_ID, "name_fa": STRING, "name_en": STRING}, ["id", "name_fa", "name_en"]),
        "Field": _object({"code": {"enum": field_codes}, "name_fa": STRING, "name_en": STRING},
                         ["code", "name_fa", "name_en"]),
        "Reference": _object({
            "provinces": {"type": "array", "items": _object({
                "id": ROW_ID, "name_fa": STRING, "name_en": STRING,
                "counties": {"type": "array", "items": _ref("Place")},
            }, ["id", "name_fa", "name_en", "counties"])},
            "fields": {"type": "array", "items": _ref("Field")},
        }, ["provinces", "fields"]),
        # -- application data, as sent (drafts may leave anything out) and as stored ---------
        "PermitIssuanceData": _object({
            "name": {"type": "string", "maxLength": 200, "description": "3 to 200 characters once normalised."},
            "field": {"enum": field_codes},
            "county": {"type": "string", "description": "A county of the organisation's province, in Persian or English."},
            "address": {"type": "string", "maxLength": 500},
            "founders": {"type": "array", "maxItems": permit_issuance.MAX_FOUNDERS, "items": founder,
                         "description": f"At least {permit_issuance.MIN_FOUNDERS} to submit."},
        }, closed=False, description="Data of a `permit_issuance` application."),
        "PermitRenewalData": _object({
            "permit_number": {"type": "string", "description": "The permit to renew; fixed once the renewal is opened."},
            "activity_report": {"type": "string", "maxLength": permit_renewal.MAX_REPORT,
                                "description": f"At least {permit_renewal.MIN_REPORT} characters to submit."},
        }, closed=False, description="Data of a `permit_renewal` application."),
        "GrantRequestData": _object({
            "programme_id": {"anyOf": [ROW_ID, {"type": "string", "pattern": "^\\s*[0-9]+\\s*$"}],
                             "description": "Required to open the request; fixed afterwards."},
            "title": {"type": "string", "maxLength": 200, "description": "3 to 200 characters once normalised."},
            "summary": {"type": "string", "maxLength": grant_request.MAX_SUMMARY},
            "requested_rials": {**amount_in, "description": "At most the programme's largest award; the budget "
                                                           "lines must add up to it."},
            "budget_lines": {"type": "array", "maxItems": grant_request.MAX_LINES, "items": _object(
                {"item": {"type": "string", "maxLength": 200}, "rials": amount_in}, closed=False)},
        }, closed=False, description="Data of a `grant_request` application."),
        "StoredPermitIssuanceData": _object({
            "name": STRING, "field": {"enum": field_codes}, "county": STRING, "address": STRING,
            "founders": {"type": "array", "items": _object(
                {"full_name": STRING, "national_id": {"type": "string", "pattern": "^[0-9]{10}$"}},
                ["full_name", "national_id"])},
        }, ["founders"]),
        "StoredPermitRenewalData": _object({"permit_number": STRING, "activity_report": STRING}, ["permit_number"]),
        "StoredGrantRequestData": _object({
            "programme_id": ROW_ID, "title": STRING, "summary": STRING, "requested_rials": RIALS,
            "budget_lines": {"type": "array", "items": _object({"item": STRING, "rials": RIALS}, ["item", "rials"])},
        }, ["programme_id", "budget_lines"]),
        "ApplicationCreate": {
            **_object({
                "kind": {"enum": sorted(registry.PROCESSES), "default": permit_issuance.KIND},
                "organization_id": {**ROW_ID, "description": "An organisation the caller is a member of."},
                "data": {"type": "object"},
            }, ["organization_id"], closed=False),
            "allOf": [_data_of(kind, name) for kind, name in (
                (permit_issuance.KIND, "PermitIssuanceData"), (permit_renewal.KIND, "PermitRenewalData"),
                (grant_request.KIND, "GrantRequestData"))],
            "examples": [
                {"kind": permit_issuance.KIND, "organization_id": 1, "data": ISSUANCE_DATA},
                {"kind": permit_renewal.KIND, "organization_id": 1, "data": {
                    "permit_number": PERMIT_NUMBER_EXAMPLE,
                    "activity_report": "در سه سال گذشته ۱۲۰ کودک کار در کلاس‌های انجمن درس خواندند."}},
                {"kind": grant_request.KIND, "organization_id": 1, "data": GRANT_DATA},
            ],
        },
        "ApplicationPatch": _object({
            "version": version_in,
            "data": {"type": "object", "description": "The whole data of the application's kind (replaces it)",
                     "anyOf": [_ref("PermitIssuanceData"), _ref("PermitRenewalData"), _ref("GrantRequestData")]},
        }, ["version"], closed=False) | {"examples": [{"version": 1, "data": ISSUANCE_DATA}]},
        "Transition": _object({
            "action": {"enum": _case_actions(), "description": "One of the case's `actions`."},
            "version": version_in,
            "comment": comment_in,
            "score": {"description": "recommend_approval of a grant request: 0 to 100.",
                      "anyOf": [{"type": "integer", "minimum": 0, "maximum": 100},
                                {"type": "string", "pattern": "^\\s*[0-9]{1,3}\\s*$"}]},
            "amount_rials": {**amount_in, "description": "propose_amount: at most the amount requested."},
            "tranches": {"type": "array", "minItems": 1, "maxItems": grant_request.MAX_TRANCHES, "items": amount_in,
                         "description": "propose_amount: the tranches, adding up to amount_rials."},
        }, ["action", "version"], closed=False,
            description="Other members are the values an action carries; an action ignores the ones it does not use.")
        | {"examples": [
            {"action": "submit", "version": 1},
            {"action": "return_for_correction", "version": 2, "comment": "اساسنامه امضا نشده است."},
            {"action": "recommend_approval", "version": 3, "comment": "برنامه خوبی است", "score": 82},
            {"action": "propose_amount", "version": 4, "amount_rials": 900_000_000,
             "tranches": [500_000_000, 400_000_000]},
        ]},
        "Actor": _object({"id": _or_null(ROW_ID), "name": STRING}, ["id", "name"],
                         description="`id` null and name `system` for what the deadline sweep did."),
        "CaseDocument": _object({
            "id": ROW_ID, "kind": {"enum": ["statute", "receipt", *letters.KINDS],
                                   "description": "The statute, a receipt, or a letter or certificate the office issued."},
            "name": STRING,
            "size": {"type": "integer", "minimum": 1}, "sha256": SHA256, "uploaded_at": DATETIME,
        }, ["id", "kind", "name", "size", "sha256", "uploaded_at"]),
        "UploadedDocument": _object({
            "id": ROW_ID, "kind": {"const": "statute"}, "name": STRING, "size": {"type": "integer", "minimum": 1},
            "sha256": SHA256,
        }, ["id", "kind", "name", "size", "sha256"]),
        "Grant": _object({
            "programme_id": ROW_ID, "score": _or_null({"type": "integer", "minimum": 0, "maximum": 100}),
            "proposed_rials": _or_null(RIALS),
            "proposed_tranches": _or_null({"type": "array", "items": RIALS}),
            "awarded_rials": _or_null(RIALS), "awarded_at": _or_null(DATETIME), "refunded_rials": RIALS,
        }, ["programme_id", "score", "proposed_rials", "proposed_tranches", "awarded_rials", "awarded_at",
            "refunded_rials"]),
        "Case": {
            **_object({
                "id": ROW_ID, "kind": {"enum": sorted(registry.PROCESSES)}, "state": {"enum": _case_states()},
                "version": {"type": "integer", "minimum": 1}, "organization_id": ROW_ID,
                "data": {"type": "object"},
                "documents": {"type": "array", "items": _ref("CaseDocument")},
                "actions": {"type": "array", "items": {"enum": _case_actions()},
                            "description": "What the caller may do now (POST …/transitions)."},
                "created_at": DATETIME, "updated_at": DATETIME, "due_at": _or_null(DATETIME),
                "permit_number": _or_null(STRING),
                "grant": _ref("Grant"),
            }, ["id", "kind", "state", "version", "organization_id", "data", "documents", "actions", "created_at",
                "updated_at", "due_at", "permit_number"]),
            "allOf": [
                _data_of(permit_issuance.KIND, "StoredPermitIssuanceData"),
                _data_of(permit_renewal.KIND, "StoredPermitRenewalData"),
                {**_data_of(grant_request.KIND, "StoredGrantRequestData"),
                 "then": {"properties": {"data": _ref("StoredGrantRequestData")}, "required": ["grant"]},
                 "else": {"not": {"required": ["grant"]}}},
            ],
        },
        "AuditEntry": _object({
            "seq": {"type": "integer", "minimum": 1}, "at": DATETIME, "actor": _ref("Actor"),
            "role": STRING, "action": STRING, "from_state": _or_null(STRING), "to_state": STRING,
            "comment": _or_null(STRING),
        }, ["seq", "at", "actor", "role", "action", "from_state", "to_state", "comment"]),
        "Permit": _object({
            "number": STRING, "organization": STRING, "state": {"enum": list(PERMIT_PROCESS.states)},
            "issued_at": DATETIME, "valid_until": DATETIME,
        }, ["number", "organization", "state", "issued_at", "valid_until"]),
        "PermitAfterTransition": _object({
            "number": STRING, "organization": STRING, "state": {"enum": list(PERMIT_PROCESS.states)},
            "issued_at": DATETIME, "valid_until": DATETIME, "version": {"type": "integer", "minimum": 1},
            "actions": {"type": "array", "items": {"enum": _permit_actions()}},
        }, ["number", "organization", "state", "issued_at", "valid_until", "version", "actions"]),
        "PermitTransition": _object({
            "action": {"enum": _permit_actions()},
            "reason": {"type": "string", "maxLength": permit_service.MAX_REASON,
                       "description": "Required to suspend or revoke."},
            "version": {"type": "integer", "description": "The permit's version you read, if you want the 409 "
                                                          "when someone changed it meanwhile."},
        }, ["action"], closed=False) | {"examples": [
            {"action": "suspend", "reason": "گزارش بازرسی استان", "version": 1}, {"action": "reinstate"}]},
        "PermitEvent": _object({
            "seq": {"type": "integer", "minimum": 1}, "at": DATETIME,
            "action": {"enum": sorted({r.action for r in PERMIT_PROCESS.rules} | {"issue"})},
            "role": STRING, "actor": _ref("Actor"), "from_state": _or_null(STRING), "to_state": STRING,
            "reason": _or_null(STRING), "valid_until": _or_null(DATETIME), "case_id": _or_null(ROW_ID),
        }, ["seq", "at", "action", "role", "actor", "from_state", "to_state", "reason", "valid_until", "case_id"]),
        "Programme": _object({
            "id": ROW_ID, "name": STRING, "province": _ref("Place"),
            "fiscal_year": {"type": "integer", "minimum": 1390, "maximum": 1499},
            "opens_on": {"type": "string", "format": "date"}, "closes_on": {"type": "string", "format": "date"},
            "is_open": {"type": "boolean"}, "fields": {"type": "array", "items": {"enum": field_codes}},
            "max_award_rials": RIALS, "created_at": DATETIME,
            **{name: {"type": "integer"} for name in (
                "budget_rials", "reserved_rials", "awarded_rials", "disbursed_rials", "refunded_rials",
                "remaining_rials")},
        }, ["id", "name", "province", "fiscal_year", "opens_on", "closes_on", "is_open", "fields",
            "max_award_rials", "created_at", "budget_rials", "reserved_rials", "awarded_rials", "disbursed_rials",
            "refunded_rials", "remaining_rials"]),
        "ProgrammeCreate": _object({
            "name": {"type": "string", "maxLength": 200, "description": "3 to 200 characters once normalised; "
                                                                      "unique in the province and year."},
            "province": {"description": "The province's id, or its name in Persian or English.",
                         "anyOf": [ROW_ID, {"type": "string"}]},
            "fiscal_year": {"description": "Jalali year.", "anyOf": [
                {"type": "integer", "minimum": 1390, "maximum": 1499}, {"type": "string", "pattern": "^\\s*[0-9]{4}\\s*$"}]},
            "budget_rials": {**amount_in, "description": "More than zero."},
            "max_award_rials": {**amount_in, "description": "More than zero, at most the budget."},
            "opens_on": {"type": "string", "format": "date"},
            "closes_on": {"type": "string", "format": "date", "description": "Not before opens_on."},
            "fields": {"type": "array", "minItems": 1, "items": {"enum": field_codes}},
        }, ["name", "province", "fiscal_year", "budget_rials", "max_award_rials", "opens_on", "closes_on", "fields"],
            closed=False) | {"examples": [{
                "name": "حمایت از کودکان کار ۱۴۰۵", "province": "Kerman", "fiscal_year": 1405,
                "budget_rials": 20_000_000_000, "max_award_rials": 1_000_000_000, "opens_on": "2026-03-21",
                "closes_on": "2027-03-20", "fields": ["children", "women"]}]},
        "Tranche": _object({
            "n": {"type": "integer", "minimum": 1, "maximum": grant_request.MAX_TRANCHES},
            "amount_rials": RIALS,
            "state": {"enum": ["pending", "released", "reported", "returned", "accepted"]},
            "released_at": _or_null(DATETIME), "report_due_at": _or_null(DATETIME),
            "report": _or_null(_object({
                "lines": {"type": "array", "items": _object(
                    {"item": STRING, "budgeted_rials": RIALS, "spent_rials": RIALS},
                    ["item", "budgeted_rials", "spent_rials"])},
                "spent_rials": _or_null(RIALS), "reported_at": _or_null(DATETIME),
                "receipts": {"type": "array", "items": _object({
                    "id": ROW_ID, "name": STRING, "size": {"type": "integer", "minimum": 1}, "sha256": SHA256,
                    "content_type": {"enum": [t.content_type for t in uploads.RECEIPT]},
                }, ["id", "name", "size", "sha256", "content_type"])},
            }, ["lines", "spent_rials", "reported_at", "receipts"])),
            "accepted_at": _or_null(DATETIME), "refund_rials": _or_null(RIALS), "return_comment": _or_null(STRING),
        }, ["n", "amount_rials", "state", "released_at", "report_due_at", "report", "accepted_at", "refund_rials",
            "return_comment"]),
        "Tranches": _object({"items": {"type": "array", "items": _ref("Tranche")}, "grant": _ref("Grant")},
                            ["items", "grant"]),
        "TranchesAfterAction": _object({
            "items": {"type": "array", "items": _ref("Tranche")}, "grant": _ref("Grant"),
            "application": _ref("Case"),
        }, ["items", "grant", "application"]),
        "TrancheAction": _object({"version": version_in, "comment": comment_in}, closed=False,
                                 description="Optional: without `version` the action is not checked against "
                                             "a concurrent change.")
        | {"examples": [{"version": 7}, {"version": 7, "comment": "رسید هزینه‌ها خوانا نیست."}]},
        "SpendingReport": _object({
            "lines": {"type": "array", "minItems": 1, "maxItems": grant_request.MAX_LINES, "items": report_line_in},
            "version": version_in, "comment": comment_in,
        }, ["lines"], closed=False) | {"examples": [{
            "lines": [{"item": "حق‌التدریس", "budgeted_rials": 500_000_000, "spent_rials": 450_000_000}],
            "version": 8}]},
        "AuditVerification": _object({
            "ok": {"type": "boolean"}, "checked": {"type": "integer", "minimum": 0},
            "chains": {"type": "integer", "minimum": 0},
            "broken": _or_null(_object({
                "subject": {"enum": ["case", "permit"]}, "id": {"type": "integer"}, "seq": {"type": "integer"},
                "reason": STRING,
            }, ["subject", "id", "seq", "reason"])),
        }, ["ok", "checked", "chains", "broken"]),
    }
    return schemas


def _data_of(kind: str, schema: str) -> Schema:
    """`data` follows the schema of the application's kind (JSON Schema if/then)."""
    return {"if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
            "then": {"properties": {"data": _ref(schema)}}}


def _error(status: int) -> Schema:
    code, description = ERROR_CODES[status]
    return {
        "description": description,
        "content": {JSON: {"schema": {"allOf": [_ref("Error"), {"properties": {"error": {
            "properties": {"code": {"const": code}}}}}]}}},
    }


def _ok(schema: str | Schema, description: str = "OK") -> Schema:
    return {"description": description,
            "content": {JSON: {"schema": _ref(schema) if isinstance(schema, str) else schema}}}


def _json_body(schema: str, required: bool = True) -> Schema:
    return {"required": required, "content": {JSON: {"schema": _ref(schema)}}}


def _path_id(name: str, description: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": ROW_ID, "example": 1}


PERMIT_NUMBER = {"name": "number", "in": "path", "required": True,
                 "description": "The permit's number: Jalali year of issue, province, serial.",
                 "schema": {"type": "string"}, "example": PERMIT_NUMBER_EXAMPLE}
CASE_ID = _path_id("case_id", "The application's (case's) id.")
TRANCHE_N = {"name": "n", "in": "path", "required": True, "description": "The tranche's number, from 1.",
             "schema": ROW_ID, "example": 1}


def _operation(endpoint: str, summary: str, ok: Schema, errors: tuple[int, ...], *, tags: list[str],
               public: bool = False, body: Schema | None = None, parameters: list[Schema] | None = None,
               description: str | None = None, ok_status: int = 200) -> Schema:
    """One operation; every one of them can also answer 400 (a NUL anywhere, say)."""
    statuses = sorted(set(errors) | {400} | (set() if public else {401}))
    operation: Schema = {
        "operationId": endpoint,
        "summary": summary,
        "tags": tags,
        "responses": {str(ok_status): ok, **{str(s): {"$ref": f"#/components/responses/E{s}"} for s in statuses}},
    }
    if description:
        operation["description"] = description
    if public:
        operation["security"] = []
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = body
    return operation


WRITE = (403, 404, 409, 413, 422)


def _paths(upload_limit: int, body_limit: int) -> dict[str, Schema]:
    grant_actions = {
        "release": ("api.release_tranche", "Finance pays the tranche (the previous tranche's report must be accepted)."),
        "report/accept": ("api.accept_report", "Finance accepts the tranche's spending report; what was not spent "
                                               "is recorded as a refund."),
        "report/return": ("api.return_report", "Finance returns the report for correction (comment required)."),
    }
    paths: dict[str, Schema] = {
        "/api/v1/openapi.json": {"get": {
            "operationId": "api_docs.openapi",
            "summary": "This document.",
            "tags": ["meta"],
            "security": [],
            "responses": {"200": {
                "description": "The OpenAPI 3.1 document of this API.",
                "headers": {
                    "ETag": {"schema": {"type": "string"}, "required": True},
                    "Cache-Control": {"schema": {"type": "string", "pattern": "public"}, "required": True},
                },
                "content": {JSON: {"schema": {"type": "object", "required": ["openapi", "paths"]}}},
            }, "304": {"description": "Not modified (If-None-Match matched the ETag)."},
                "400": {"$ref": "#/components/responses/E400"}},
        }},
        "/api/v1/token": {"post": _operation(
            "api.token", "Sign in: exchange e-mail and password for a bearer token.", _ok("Token"), (401, 413),
            tags=["auth"], public=True, body=_json_body("TokenRequest"),
            description="Wrong credentials, or a missing e-mail or password, are a 401. The JSON body may be at "
                        f"most {body_limit} bytes.")},
        "/api/v1/me": {"get": _operation("api.me", "Who the token belongs to.", _ok("Me"), (), tags=["auth"])},
        "/api/v1/reference": {"get": _operation(
            "api.reference", "Provinces with their counties, and the fields of activity.", _ok("Reference"), (),
            tags=["reference"])},
        "/api/v1/applications": {"post": _operation(
            "api.create_application", "Open a draft application for one of your organisations.",
            _ok("Case", "The draft (or, for a repeated Idempotency-Key, the one the first request created)."),
            (403, 404, 409, 413, 422), tags=["applications"], ok_status=201, body=_json_body("ApplicationCreate"),
            parameters=[{"name": "Idempotency-Key", "in": "header", "required": False,
                         "description": "Retry safely: the same key (first 200 characters) from the same user "
                                        "returns the first request's application.",
                         "schema": {"type": "string"}}])},
        "/api/v1/applications/{case_id}": {
            "get": _operation("api.get_application", "An application you may see.", _ok("Case"), (404,),
                              tags=["applications"], parameters=[CASE_ID]),
            "patch": _operation("api.patch_application", "Replace a draft's (or a returned application's) data.",
                                _ok("Case"), WRITE, tags=["applications"], parameters=[CASE_ID],
                                body=_json_body("ApplicationPatch")),
        },
        "/api/v1/applications/{case_id}/documents": {"post": _operation(
            "api.upload_document", "Attach the statute (PDF); a new one replaces the old.", _ok("UploadedDocument"),
            WRITE, tags=["applications"], parameters=[CASE_ID], ok_status=201,
            description=f"The file may be at most {upload_limit} bytes, judged by its content (a PDF).",
            body={"required": True, "content": {"multipart/form-data": {
                "schema": _object({
                    "file": {"type": "string", "contentMediaType": "application/pdf"},
                    "kind": {"enum": ["statute"], "default": "statute"},
                }, ["file"], closed=False),
            }}})},
        "/api/v1/applications/{case_id}/transitions": {"post": _operation(
            "api.transition", "Take an action on an application (one of its `actions`).", _ok("Case"), WRITE,
            tags=["applications"], parameters=[CASE_ID], body=_json_body("Transition"))},
        "/api/v1/applications/{case_id}/history": {"get": _operation(
            "api.history", "Every decision on the application, oldest first.",
            _ok(_object({"entries": {"type": "array", "items": _ref("AuditEntry")}}, ["entries"])), (404,),
            tags=["applications"], parameters=[CASE_ID])},
        "/api/v1/queue": {"get": _operation(
            "api.queue", "The applications waiting for you, oldest first, a page at a time.",
            _ok(_object({"items": {"type": "array", "items": _ref("Case")}, "next_cursor": _or_null(STRING)},
                        ["items", "next_cursor"])), (422,), tags=["applications"],
            parameters=[
                {"name": "kind", "in": "query", "schema": {"enum": sorted(registry.PROCESSES)},
                 "example": permit_issuance.KIND},
                {"name": "limit", "in": "query", "description": f"Page size; more than {queues.MAX_LIMIT} gives "
                                                                f"{queues.MAX_LIMIT}.",
                 "schema": {"type": "integer", "minimum": 1, "default": 50}},
                {"name": "cursor", "in": "query", "description": "`next_cursor` of the previous page.",
                 "schema": {"type": "string"}},
            ])},
        "/api/v1/permits/{number}": {"get": _operation(
            "api.permit", "Verify a permit by its number (public).", _ok("Permit"), (404,), tags=["permits"],
            public=True, parameters=[PERMIT_NUMBER])},
        "/api/v1/permits/{number}/transitions": {"post": _operation(
            "api.permit_transition", "Suspend, reinstate or revoke a permit (directors of its province).",
            _ok("PermitAfterTransition"), WRITE, tags=["permits"], parameters=[PERMIT_NUMBER],
            body=_json_body("PermitTransition"))},
        "/api/v1/permits/{number}/history": {"get": _operation(
            "api.permit_history", "The permit's life, oldest first (its organisation and staff of its province).",
            _ok(_object({"entries": {"type": "array", "items": _ref("PermitEvent")}}, ["entries"])), (404,),
            tags=["permits"], parameters=[PERMIT_NUMBER])},
        "/api/v1/audit/verify": {"get": _operation(
            "api.audit_verify", "Recompute the hash chains (auditors and administrators).", _ok("AuditVerification"),
            (403, 422), tags=["audit"],
            parameters=[{"name": "case", "in": "query", "description": "Only this case's chain.", "schema": ROW_ID,
                         "example": 1}])},
        "/api/v1/programmes": {
            "get": _operation(
                "api.list_programmes", "Grant programmes, newest fiscal year first.",
                _ok(_object({"items": {"type": "array", "items": _ref("Programme")}}, ["items"])), (422,),
                tags=["grants"], parameters=[{"name": "province", "in": "query",
                                              "description": "The province's id or name (Persian or English).",
                                              "schema": {"type": "string"}, "example": "Kerman"}]),
            "post": _operation(
                "api.create_programme", "Open a funding call (finance of the province, or administrators).",
                _ok("Programme"), (403, 413, 422), tags=["grants"], ok_status=201, body=_json_body("ProgrammeCreate")),
        },
        "/api/v1/programmes/{programme_id}": {"get": _operation(
            "api.get_programme", "A programme with its budget figures.", _ok("Programme"), (404,), tags=["grants"],
            parameters=[_path_id("programme_id", "The programme's id.")])},
        "/api/v1/grants/{case_id}/tranches": {"get": _operation(
            "api.tranches", "The tranches of an approved grant request and their reports.", _ok("Tranches"), (404,),
            tags=["grants"], parameters=[_path_id("case_id", "The grant request's id.")])},
        "/api/v1/grants/{case_id}/tranches/{n}/report": {"post": _operation(
            "api.tranche_report", "The NGO files (or files again) a tranche's spending report.",
            _ok("TranchesAfterAction"), WRITE, tags=["grants"],
            parameters=[_path_id("case_id", "The grant request's id."), TRANCHE_N],
            description=f"Multipart with the receipts (PDF, JPEG or PNG, each at most {upload_limit} bytes, at most "
                        f"{grant_service.MAX_RECEIPTS}); or JSON when the receipts are already attached (a report "
                        "returned for correction keeps them).",
            body={"required": True, "content": {
                "multipart/form-data": {
                    "schema": _object({
                        "lines": {"type": "string", "contentMediaType": JSON,
                                  "description": "The lines as JSON text: [{item, budgeted_rials, spent_rials}]."},
                        "version": {"type": "integer"},
                        "comment": {"type": "string", "maxLength": engine.MAX_COMMENT},
                        "receipts": {"type": "array", "maxItems": grant_service.MAX_RECEIPTS,
                                     "items": {"type": "string", "contentMediaType": "application/octet-stream"},
                                     "description": "PDF, JPEG or PNG files, judged by their content."},
                    }, ["lines"], closed=False),
                },
                JSON: {"schema": _ref("SpendingReport")},
            }})},
    }
    for suffix, (endpoint, summary) in grant_actions.items():
        paths[f"/api/v1/grants/{{case_id}}/tranches/{{n}}/{suffix}"] = {"post": _operation(
            endpoint, summary, _ok("TranchesAfterAction"), WRITE, tags=["grants"],
            parameters=[_path_id("case_id", "The grant request's id."), TRANCHE_N],
            body=_json_body("TrancheAction", required=False))}
    for item in paths.values():
        for operation in item.values():
            if "413" in operation.get("responses", {}) and "description" not in operation:
                operation["description"] = f"The JSON body may be at most {body_limit} bytes."
    return paths


def build(app: Flask) -> Schema:
    """The document for this app (its limits come from its configuration)."""
    upload_limit = int(app.config["MAX_UPLOAD_BYTES"])
    body_limit = int(app.config["API_MAX_BODY_BYTES"])
    rate_limited = "limiter" in app.extensions
    paths = _paths(upload_limit, body_limit)
    if rate_limited:  # a limiter may refuse any request past its budget
        for item in paths.values():
            for operation in item.values():
                operation["responses"].setdefault("429", {"$ref": "#/components/responses/E429"})
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "info": {
            "title": "NGO permits and grants API",
            "version": "1",
            "description": (
                "Applications for activity permits, their renewals and grant requests; the permits' life; grant "
                "programmes, tranches and spending reports. Sign in with POST /api/v1/token and send "
                "`Authorization: Bearer <token>`. Errors are always `{\"error\": {\"code\", \"message\", "
                "\"fields\"}}`; messages follow Accept-Language (fa, en)."),
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "paths": paths,
        "components": {
            "schemas": _schemas(),
            "responses": {f"E{status}": _error(status) for status in ERROR_CODES},
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                               "description": "A token from POST /api/v1/token."}},
        },
        "security": [{"bearerAuth": []}],
        "tags": [{"name": name} for name in ("auth", "reference", "applications", "permits", "grants", "audit",
                                             "meta")],
    }


def document(app: Flask) -> Schema:
    """Built once per app: it depends only on code and configuration."""
    cached = app.extensions.get("openapi_document")
    if cached is None:
        cached = app.extensions["openapi_document"] = build(app)
    return cached

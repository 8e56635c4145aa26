"""JSON API v1. Same engine and services as the pages; bearer tokens instead of cookies."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, g, jsonify, request
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError

from .. import db, engine, read_only, throttle, uploads
from ..db import is_row_id
from ..errors import Conflict, Invalid, NotFound, WorkflowError
from ..models import AuditEntry, Permit
from ..reference_data import FIELDS
from ..models import Province
from ..services import accounts, applications, audit_search, queues
from ..text import whole_number
from .errors import checked_json, json_error, json_or_400, unstorable
from .serialize import case_json, entry_json, iso, permit_json

bp = Blueprint("api", __name__, url_prefix="/api/v1")
PUBLIC = {"api.token", "api.permit"}


@bp.before_request
def _authenticate():  # type: ignore[no-untyped-def]
    req = request._get_current_object()  # type: ignore[attr-defined]  # one proxy lookup, two reads
    if req.endpoint in PUBLIC:
        return None
    header = req.environ.get("HTTP_AUTHORIZATION", "")
    scheme, _sep, token = header.partition(" ")
    user = accounts.user_for_token(db.session(), token.strip()) if scheme.lower() == "bearer" and token else None
    if user is None:
        return json_error(401, _("Sign in first: send Authorization: Bearer <token>."))
    g.api_user = user
    read_only.check_request(user)
    return None


def body() -> dict[str, Any]:
    """The JSON object sent, whatever the Content-Type says; malformed JSON, text that cannot
    be stored (NUL, a lone surrogate) or nesting past any body of ours is a 400, a non-object too.
    Parsed here rather than trusted to the check on JSON bodies in errors.py, which a client
    skips by sending JSON as text/plain. A JSON body that check already parsed and passed is
    taken as it left it."""
    data = checked_json()
    if data is None:
        data = json_or_400(request.get_data(cache=True))
    if not isinstance(data, dict):
        raise WorkflowError(_("The body must be a JSON object."))
    return data


def commit() -> None:
    try:
        db.session().commit()
    except IntegrityError as exc:
        db.session().rollback()
        raise Conflict(_("This conflicts with a change made at the same moment; try again.")) from exc
    except OperationalError as exc:
        db.session().rollback()
        if not engine.is_lost_race(exc):
            raise
        raise Conflict(_("This conflicts with a change made at the same moment; try again.")) from exc


@bp.post("/token")
def token():  # type: ignore[no-untyped-def]
    data = body()
    email, password = data.get("email"), data.get("password")
    if not isinstance(email, str) or not isinstance(password, str):
        return json_error(401, _("Wrong e-mail or password."))
    user = accounts.authenticate(db.session(), email, password)
    if user is None:
        throttle.record_failure()
        return json_error(401, _("Wrong e-mail or password."))
    value, expires = accounts.issue_token(db.session(), user)
    commit()
    return jsonify(token=value, expires_at=iso(expires))


@bp.get("/me")
def me():  # type: ignore[no-untyped-def]
    user = g.api_user
    return jsonify(
        id=user.id, email=user.email, name=user.name, roles=sorted(user.roles),
        province=user.province.name_en if user.province else None,
        county=user.county.name_en if user.county else None,
        organizations=[{"id": m.organization.id, "name": m.organization.name} for m in user.memberships],
    )


@bp.get("/reference")
def reference():  # type: ignore[no-untyped-def]
    provinces = db.session().scalars(select(Province).order_by(Province.id))
    return jsonify(
        provinces=[
            {"id": p.id, "name_fa": p.name_fa, "name_en": p.name_en,
             "counties": [{"id": c.id, "name_fa": c.name_fa, "name_en": c.name_en} for c in p.counties]}
            for p in provinces
        ],
        fields=[dict(f) for f in FIELDS],
    )


@bp.post("/applications")
def create_application():  # type: ignore[no-untyped-def]
    data = body()
    key = request.headers.get("Idempotency-Key", "").strip()[:200] or None
    if unstorable(key):  # gunicorn refuses NUL in a header; another server in front may not
        abort(400)
    session = db.session()
    case, created = applications.create(
        session, g.api_user, kind=data.get("kind", "permit_issuance"),
        organization_id=data.get("organization_id"), data=data.get("data", {}), idempotency_key=key,
    )
    if created:
        commit()
    return jsonify(case_json(session, case, g.api_user)), 201


def _case(case_id: int):  # type: ignore[no-untyped-def]
    return engine.get_case(db.session(), g.api_user, case_id)


@bp.get("/applications/<int:case_id>")
def get_application(case_id: int):  # type: ignore[no-untyped-def]
    return jsonify(case_json(db.session(), _case(case_id), g.api_user))


@bp.patch("/applications/<int:case_id>")
def patch_application(case_id: int):  # type: ignore[no-untyped-def]
    data = body()
    case = _case(case_id)
    applications.update_data(db.session(), g.api_user, case, data.get("data", {}), data.get("version"))
    commit()
    return jsonify(case_json(db.session(), case, g.api_user))


@bp.post("/applications/<int:case_id>/documents")
def upload_document(case_id: int):  # type: ignore[no-untyped-def]
    case = _case(case_id)
    upload = request.files.get("file")
    kind = request.form.get("kind", "statute")
    if kind != "statute":
        raise Invalid(_("Unknown document kind."), {"kind": _("Unknown document kind.")})
    if upload is None:
        raise Invalid(_("Send the file as multipart field 'file'."), {"file": _("Required.")})
    content = uploads.read(upload)
    doc = applications.attach_document(db.session(), g.api_user, case, content=content,
                                       filename=upload.filename or "statute.pdf", kind=kind)
    commit()
    return jsonify(id=doc.id, kind=doc.kind, name=doc.original_name, size=doc.size, sha256=doc.sha256), 201


@bp.post("/applications/<int:case_id>/transitions")
def transition(case_id: int):  # type: ignore[no-untyped-def]
    data = body()
    # The bearer (accounts.Principal) holds what the rules ask, roles and jurisdiction, as plain
    # attributes: visibility, the action's rules and the answer's actions read them a dozen times.
    session, user = db.session(), g._get_current_object().api_user  # type: ignore[attr-defined]
    case = engine.get_case(session, user, case_id)
    action, version, comment = data.get("action"), data.get("version"), data.get("comment")
    fields = {}
    if not isinstance(action, str) or not action:
        fields["action"] = _("Name the action.")
    if not isinstance(version, int) or isinstance(version, bool):
        fields["version"] = _("Send the version of the case you saw.")
    if comment is not None and not isinstance(comment, str):
        fields["comment"] = _("The comment must be text.")
    if fields:
        raise Invalid(_("Some fields need attention."), fields)
    values = {k: v for k, v in data.items() if k not in ("action", "version", "comment")}
    engine.fire(session, case, action, user, version=version, comment=comment, values=values)
    commit()
    return jsonify(case_json(session, case, user))


@bp.get("/applications/<int:case_id>/history")
def history(case_id: int):  # type: ignore[no-untyped-def]
    case = _case(case_id)
    entries = db.session().scalars(
        select(AuditEntry).where(AuditEntry.case_id == case.id).order_by(AuditEntry.seq)
    )
    return jsonify(entries=[entry_json(e) for e in entries])


@bp.get("/queue")
def queue():  # type: ignore[no-untyped-def]
    limit = whole_number(request.args.get("limit", "50"))
    if limit is None or limit < 1:
        raise Invalid(_("limit must be a positive whole number."), {"limit": _("A positive whole number.")})
    session = db.session()
    items, next_cursor, held = queues.api_page(  # noqa: F841 (held while the page is serialised)
        session, g.api_user, kind=request.args.get("kind") or None,
        limit=limit, cursor=request.args.get("cursor") or None,
    )
    bearer = g.api_user  # an accounts.Principal: the roles every case asks are plain attributes
    engine.remember_recommendations(session, queues.deciding(bearer, items), bearer)
    return jsonify(items=[case_json(session, c, bearer) for c in items], next_cursor=next_cursor)


@bp.get("/permits/<number>")
def permit(number: str):  # type: ignore[no-untyped-def]
    found = db.session().scalar(select(Permit).where(Permit.number == number.strip()))
    if found is None:
        raise NotFound(_("No permit with this number."))
    return jsonify(permit_json(found))


@bp.get("/audit/verify")
def audit_verify():  # type: ignore[no-untyped-def]
    """What `flask audit verify` says, for auditors: every chain of their jurisdiction (national
    readers: all of them), or one case's (?case=ID)."""
    if not g.api_user.has_role("auditor", "admin"):
        return json_error(403, _("Only auditors and administrators verify the history."))
    case_text = request.args.get("case", "").strip()
    case_id = whole_number(case_text) if case_text else None
    if case_text and not is_row_id(case_id):
        raise Invalid(_("case must be a case number."), {"case": _("A whole number.")})
    report = audit_search.verify_chains(db.session(), g.api_user, case_id)
    broken = report.broken
    return jsonify(
        ok=report.ok, checked=report.checked, chains=report.chains,
        broken=None if broken is None else {"subject": broken.subject, "id": broken.id, "seq": broken.seq,
                                            "reason": broken.reason},
    )

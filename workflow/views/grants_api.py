"""API routes for grant programmes, and for the tranches and spending reports of a grant.

They join the API blueprint (bearer tokens, JSON errors). A grant request itself is an
application of kind `grant_request` on /applications; the money it moves is here.
"""
from __future__ import annotations

import json
from typing import Any

from flask import abort, g, jsonify, request
from flask_babel import gettext as _

from .. import db, engine, uploads
from ..errors import Invalid
from ..models import Programme
from ..services import grants
from .api import body, bp, commit
from .errors import unstorable
from .serialize import case_json, iso
from ..text import whole_number


def programme_json(session: Any, programme: Programme) -> dict[str, Any]:
    return {
        "id": programme.id,
        "name": programme.name,
        "province": {"id": programme.province.id, "name_fa": programme.province.name_fa,
                     "name_en": programme.province.name_en},
        "fiscal_year": programme.fiscal_year,
        "opens_on": programme.opens_on.isoformat(),
        "closes_on": programme.closes_on.isoformat(),
        "is_open": grants.is_open(programme),
        "fields": programme.fields or [],
        "max_award_rials": programme.max_award_rials,
        "created_at": iso(programme.created_at),
        **grants.figures(session, programme),
    }


@bp.post("/programmes")
def create_programme():  # type: ignore[no-untyped-def]
    session = db.session()
    programme = grants.create_programme(session, g.api_user, body())
    commit()
    return jsonify(programme_json(session, programme)), 201


@bp.get("/programmes")
def list_programmes():  # type: ignore[no-untyped-def]
    session = db.session()
    province = request.args.get("province", "").strip()
    province_id = None
    if province:
        found = grants._province(session, province)
        if found is None:
            raise Invalid(_("Choose a province."), {"province": _("Choose a province.")})
        province_id = found.id
    items = grants.list_programmes(session, g.api_user, province_id=province_id)
    return jsonify(items=[programme_json(session, p) for p in items])


@bp.get("/programmes/<int:programme_id>")
def get_programme(programme_id: int):  # type: ignore[no-untyped-def]
    session = db.session()
    return jsonify(programme_json(session, grants.get_programme(session, g.api_user, programme_id)))


def _tranches_json(case: Any) -> list[dict[str, Any]]:
    session = db.session()
    docs = grants.receipts(session, case)
    return [grants.tranche_json(t, docs.get(t.id, [])) for t in grants.tranches(session, case)]


@bp.get("/grants/<int:case_id>/tranches")
def tranches(case_id: int):  # type: ignore[no-untyped-def]
    case = grants.grant_case(db.session(), g.api_user, case_id)
    return jsonify(items=_tranches_json(case), grant=grants.grant_json(db.session(), case))


def _answer(case: Any):  # type: ignore[no-untyped-def]
    session = db.session()
    return jsonify(items=_tranches_json(case), grant=grants.grant_json(session, case),
                   application=case_json(session, case, g.api_user))


def _version_and_comment(data: dict[str, Any]) -> tuple[int | None, str | None]:
    version, comment = data.get("version"), data.get("comment")
    fields = {}
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        fields["version"] = _("Send the version of the case you saw.")
    if comment is not None and not isinstance(comment, str):
        fields["comment"] = _("The comment must be text.")
    if fields:
        raise Invalid(_("Some fields need attention."), fields)
    return version, comment


def _optional_body() -> dict[str, Any]:
    return body() if request.get_data(cache=True) else {}


def _fire(case_id: int, n: int, action: str):  # type: ignore[no-untyped-def]
    session = db.session()
    case = grants.grant_case(session, g.api_user, case_id)
    grants.get_tranche(session, case, n)
    version, comment = _version_and_comment(_optional_body())
    engine.fire(session, case, action, g.api_user, version=version, comment=comment, values={"tranche": n})
    commit()
    return _answer(case)


@bp.post("/grants/<int:case_id>/tranches/<int:n>/release")
def release_tranche(case_id: int, n: int):  # type: ignore[no-untyped-def]
    return _fire(case_id, n, "release_tranche")


@bp.post("/grants/<int:case_id>/tranches/<int:n>/report/accept")
def accept_report(case_id: int, n: int):  # type: ignore[no-untyped-def]
    return _fire(case_id, n, "accept_report")


@bp.post("/grants/<int:case_id>/tranches/<int:n>/report/return")
def return_report(case_id: int, n: int):  # type: ignore[no-untyped-def]
    return _fire(case_id, n, "return_report")


@bp.post("/grants/<int:case_id>/tranches/<int:n>/report")
def tranche_report(case_id: int, n: int):  # type: ignore[no-untyped-def]
    """The spending report: multipart with `lines` (JSON text), optional `version` and `comment`,
    and one or more `receipts` files; or a JSON body {lines, version, comment} when the
    receipts are already attached (a report returned for correction keeps its receipts)."""
    session = db.session()
    case = grants.grant_case(session, g.api_user, case_id)
    files: list[tuple[bytes, str]] = []
    if request.mimetype == "multipart/form-data":
        try:
            data: dict[str, Any] = {"lines": json.loads(request.form.get("lines", "null"))}
        except (ValueError, RecursionError) as exc:
            raise Invalid(_("Send the lines as a JSON list."), {"lines": _("Send the lines as a JSON list.")}) from exc
        if unstorable(data["lines"]):
            abort(400)
        version_text = request.form.get("version", "").strip()
        # Text that is not a whole number stays text, so the check below names the field.
        data["version"] = whole_number(version_text) if version_text else None
        if version_text and data["version"] is None:
            data["version"] = version_text
        data["comment"] = request.form.get("comment")
        files = [(uploads.read(upload), upload.filename or "receipt") for upload in request.files.getlist("receipts")]
    else:
        data = body()
    version, comment = _version_and_comment(data)
    grants.file_report(session, g.api_user, case, n, lines=data.get("lines"), files=files, version=version,
                       comment=comment)
    commit()
    return _answer(case)



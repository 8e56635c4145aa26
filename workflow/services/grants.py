"""Grant programmes and the money side of grant requests: creating a programme, its figures,
tranches as the API and pages show them, and spending reports with their receipts.

Like every service: takes the session, never commits.
"""
from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import engine, uploads
from ..db import is_row_id
from ..calendar import to_tehran
from ..errors import Conflict, Forbidden, Invalid, NotFound
from ..models import Case, Document, Grant, Organization, Programme, Province, Tranche, User, utcnow
from ..money import parse_amount
from ..read_only import refuse_auditors
from ..reference_data import FIELD_CODES
from ..states import grant_request
from ..text import ascii_digits, name_key, normalize_line, whole_number
from .accounts import find_province

PROGRAMME_ROLES = frozenset({"finance", "admin"})
MAX_RECEIPTS = 20


# -- programmes -------------------------------------------------------------------------------

def _iso_date(value: Any) -> date | None:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(ascii_digits(value.strip()))
        except ValueError:
            return None
    return None


def _province(session: Session, value: Any) -> Province | None:
    number = whole_number(value)
    if number is not None:
        value = number
    if isinstance(value, int):
        return session.get(Province, value) if is_row_id(value) else None
    if isinstance(value, str) and value.strip():
        return find_province(session, value)
    return None


def create_programme(session: Session, user: User, raw: Any) -> Programme:
    """A funding call; finance of a province creates it there, admins and national finance anywhere."""
    refuse_auditors(user)
    if not user.roles & PROGRAMME_ROLES:
        raise Forbidden(_("Only finance staff or administrators create programmes."))
    if not isinstance(raw, dict):
        raise Invalid(_("The body must be a JSON object."))
    errors: dict[str, str] = {}
    name = normalize_line(raw.get("name")) if isinstance(raw.get("name"), str) else ""
    if not 3 <= len(name) <= 200:
        errors["name"] = _("The name must be 3 to 200 characters long.")
    province = _province(session, raw.get("province"))
    if province is None:
        errors["province"] = _("Choose a province.")
    elif "admin" not in user.roles and user.province_id not in (None, province.id):
        raise Forbidden(_("You may create programmes only in your own province."))
    year = raw.get("fiscal_year")
    typed_year = whole_number(year)
    if typed_year is not None:
        year = typed_year
    if not isinstance(year, int) or isinstance(year, bool) or not 1390 <= year <= 1499:
        errors["fiscal_year"] = _("Enter the Jalali fiscal year, such as 1405.")
    budget = parse_amount(raw.get("budget_rials"))
    if not budget:
        errors["budget_rials"] = _("Enter the budget as a whole number of rials.")
    max_award = parse_amount(raw.get("max_award_rials"))
    if not max_award:
        errors["max_award_rials"] = _("Enter the largest award as a whole number of rials.")
    elif budget and max_award > budget:
        errors["max_award_rials"] = _("The largest award may not exceed the budget.")
    opens, closes = _iso_date(raw.get("opens_on")), _iso_date(raw.get("closes_on"))
    if opens is None:
        errors["opens_on"] = _("Enter the opening date.")
    if closes is None:
        errors["closes_on"] = _("Enter the closing date.")
    elif opens is not None and closes < opens:
        errors["closes_on"] = _("The programme must close after it opens.")
    fields = raw.get("fields")
    if not isinstance(fields, list) or not fields or not all(isinstance(f, str) for f in fields):
        errors["fields"] = _("Choose at least one field of activity.")
    elif any(f not in FIELD_CODES for f in fields):
        errors["fields"] = _("Choose fields of activity from the list.")
    if errors:
        raise Invalid(_("Some fields need attention."), errors)
    assert province is not None and opens is not None and closes is not None
    if session.scalar(select(Programme.id).where(
        Programme.province_id == province.id, Programme.fiscal_year == year, Programme.name_key == name_key(name)
    )):
        message = _("This province already has a programme of this name in that year.")
        raise Invalid(message, {"name": message})
    programme = Programme(
        name=name, name_key=name_key(name), province_id=province.id, fiscal_year=year, budget_rials=budget,
        max_award_rials=max_award, opens_on=opens, closes_on=closes, fields=sorted(set(fields)),
        created_by_id=user.id, created_at=utcnow(),
    )
    session.add(programme)
    session.flush()
    return programme


def visible_provinces(session: Session, user: User) -> set[int] | None:
    """The provinces whose programmes `user` may see; None means all of them.

    Administrators and national staff every programme; provincial staff their province's; an NGO
    member the programmes of the provinces their organisations work in. Pages and the API ask
    here, so a programme out of sight is a 404 whichever way it is asked for.
    """
    if "admin" in user.roles or (user.is_staff and user.province_id is None):
        return None
    provinces: set[int] = set()
    if user.is_staff and user.province_id is not None:
        provinces.add(user.province_id)
    if user.organization_ids:
        provinces |= set(session.scalars(
            select(Organization.province_id).where(Organization.id.in_(user.organization_ids))))
    return provinces


def get_programme(session: Session, user: User, programme_id: int) -> Programme:
    """The programme if `user` may see it; otherwise 404, like a case out of sight."""
    programme = session.get(Programme, programme_id) if is_row_id(programme_id) else None
    provinces = visible_provinces(session, user) if programme is not None else None
    if programme is None or (provinces is not None and programme.province_id not in provinces):
        raise NotFound(_("No such programme."))
    return programme


def list_programmes(session: Session, user: User, *, province_id: int | None = None,
                    open_on: date | None = None) -> list[Programme]:
    """The programmes `user` may see, the newest fiscal year first."""
    query = select(Programme).order_by(Programme.fiscal_year.desc(), Programme.closes_on.desc(), Programme.id)
    provinces = visible_provinces(session, user)
    if provinces is not None:
        query = query.where(Programme.province_id.in_(sorted(provinces)))
    if province_id is not None:
        query = query.where(Programme.province_id == province_id)
    if open_on is not None:
        query = query.where(Programme.opens_on <= open_on, Programme.closes_on >= open_on)
    return list(session.scalars(query))


def is_open(programme: Programme, now: datetime | None = None) -> bool:
    today = to_tehran(now or utcnow()).date()
    return programme.opens_on <= today <= programme.closes_on


def figures(session: Session, programme: Programme) -> dict[str, int]:
    """Budget, reserved (proposed, awaiting the director), awarded, disbursed, refunded, remaining."""
    reserved = session.scalar(
        select(func.coalesce(func.sum(Grant.proposed_rials), 0)).join(Case, Case.id == Grant.case_id)
        .where(Grant.programme_id == programme.id, Case.state == "awaiting_decision")
    ) or 0
    refunded = session.scalar(
        select(func.coalesce(func.sum(Grant.refunded_rials), 0)).where(Grant.programme_id == programme.id)
    ) or 0
    return {
        "budget_rials": programme.budget_rials,
        "reserved_rials": int(reserved),
        "awarded_rials": programme.awarded_rials,
        "disbursed_rials": programme.disbursed_rials,
        "refunded_rials": int(refunded),
        "remaining_rials": programme.budget_rials - programme.awarded_rials,
    }


# -- tranches and reports ---------------------------------------------------------------------

def grant_case(session: Session, user: User, case_id: int) -> Case:
    case = engine.get_case(session, user, case_id)
    if case.kind != grant_request.KIND:
        raise NotFound(_("No such grant."))
    return case


def tranches(session: Session, case: Case) -> list[Tranche]:
    return list(session.scalars(select(Tranche).where(Tranche.case_id == case.id).order_by(Tranche.n)))


def receipts(session: Session, case: Case) -> dict[int, list[Document]]:
    """tranche id → its current receipts."""
    found: dict[int, list[Document]] = {}
    for doc in session.scalars(select(Document).where(
        Document.case_id == case.id, Document.kind == "receipt", Document.superseded.is_(False)
    ).order_by(Document.id)):
        found.setdefault(doc.tranche_id or 0, []).append(doc)
    return found


def get_tranche(session: Session, case: Case, n: int) -> Tranche:
    item = grant_request.tranche(session, case, n)
    if item is None:
        raise NotFound(_("No such tranche."))
    return item


def attach_receipt(session: Session, user: User, case: Case, item: Tranche, *, content: bytes,
                   filename: str) -> Document:
    """A receipt for a tranche's report: PDF, JPEG or PNG by content, stored under a generated name."""
    refuse_auditors(user)
    if "applicant" not in user.roles or case.organization_id not in user.organization_ids:
        raise Forbidden(_("Only the organisation's members file its spending reports."))
    if item.state not in grant_request.OPEN_TRANCHE:
        raise Conflict(_("This tranche has no report to file now."))
    file_type = uploads.check(content, uploads.RECEIPT, field="receipts",
                              wrong_type=_("A receipt must be a PDF, JPEG or PNG file."))
    stored = uploads.write(session, content, file_type.extension)
    doc = Document(
        case_id=case.id, kind="receipt", tranche_id=item.id,
        original_name=uploads.safe_name(filename, f"receipt{file_type.extension}"),
        stored_name=stored, content_type=file_type.content_type, size=len(content),
        sha256=hashlib.sha256(content).hexdigest(), uploaded_by_id=user.id, uploaded_at=utcnow(),
    )
    session.add(doc)
    session.flush()
    return doc


def file_report(session: Session, user: User, case: Case, n: int, *, lines: Any,
                files: list[tuple[bytes, str]], version: int | None = None, comment: str | None = None) -> engine.Recorded:
    """Attach the receipts, then file the report through the engine: one transaction, so a
    refused report leaves no receipt behind in the database."""
    item = get_tranche(session, case, n)
    if len(files) > MAX_RECEIPTS:
        message = _("At most %(n)s receipts.", n=MAX_RECEIPTS)
        raise Invalid(message, {"receipts": message})
    if not engine.can_see(user, case):
        raise NotFound(_("No such case."))
    for content, filename in files:
        attach_receipt(session, user, case, item, content=content, filename=filename)
    return engine.fire(session, case, "submit_report", user, version=version, comment=comment,
                       values={"tranche": n, "lines": lines})


def grant_json(session: Session, case: Case) -> dict[str, Any]:
    grant = grant_request.find_grant(session, case)
    if grant is None:
        return {}
    return {
        "programme_id": grant.programme_id,
        "score": grant.score,
        "proposed_rials": grant.proposed_rials,
        "proposed_tranches": grant.proposed_tranches,
        "awarded_rials": grant.awarded_rials,
        "awarded_at": grant.awarded_at.isoformat() if grant.awarded_at else None,
        "refunded_rials": grant.refunded_rials,
    }


def tranche_json(item: Tranche, docs: list[Document]) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "n": item.n,
        "amount_rials": item.amount_rials,
        "state": item.state,
        "released_at": iso(item.released_at),
        "report_due_at": iso(item.report_due_at),
        "report": None if item.reported_at is None and item.report_lines is None else {
            "lines": item.report_lines or [],
            "spent_rials": item.spent_rials,
            "reported_at": iso(item.reported_at),
            "receipts": [{"id": d.id, "name": d.original_name, "size": d.size, "sha256": d.sha256,
                          "content_type": d.content_type} for d in docs],
        },
        "accepted_at": iso(item.accepted_at),
        "refund_rials": item.refund_rials,
        "return_comment": item.return_comment,
    }

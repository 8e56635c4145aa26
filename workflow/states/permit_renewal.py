"""Renewal of an activity permit (تمدید): same review path as issuance, no inquiry.

An organisation's member applies from 90 days before the permit's end to 90 days after it
(the grace period), never for a revoked permit, and only one renewal per permit at a time.
Approval keeps the number and extends validity from the later of the old end and the
approval day.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from ..calendar import add_jalali_years
from ..errors import Conflict, Invalid
from ..models import Case, Permit, utcnow
from .. import letters
from ..process import Deadline, Process
from ..text import ascii_digits, normalize
from .common import REVIEW_STATES, TERMINAL, review_rules

KIND = "permit_renewal"
WINDOW = timedelta(days=90)
MIN_REPORT, MAX_REPORT = 20, 20000

DEADLINES = {
    "submitted": Deadline(working_days=3),
    "under_review": Deadline(working_days=10),
    "awaiting_decision": Deadline(working_days=5),
    "needs_correction": Deadline(calendar_days=30),
}


def renewal_window(permit: Permit) -> tuple[datetime, datetime]:
    return permit.valid_until - WINDOW, permit.valid_until + WINDOW


def why_not_renewable(permit: Permit, now: datetime) -> str | None:
    """None if the permit may be renewed now, else the reason (shown to the applicant)."""
    if permit.state == "revoked":
        return str(_l("A revoked permit cannot be renewed."))
    opens, closes = renewal_window(permit)
    if now < opens:
        return str(_l("Renewal opens 90 days before the permit's end."))
    if now > closes:
        return str(_l("The 90-day grace period for renewal has ended."))
    return None


def permit_of(session: Session, case: Case) -> Permit | None:
    number = (case.data or {}).get("permit_number")
    if not number:
        return None
    return session.scalar(select(Permit).where(Permit.number == number))


def clean_data(session: Session, case: Case, raw: Any, *, complete: bool) -> tuple[dict[str, Any], dict[str, str]]:
    if not isinstance(raw, dict):
        return {}, {"data": str(_l("Must be an object."))}
    errors: dict[str, str] = {}
    data: dict[str, Any] = {}
    number = ascii_digits(raw.get("permit_number")).strip() if isinstance(raw.get("permit_number"), str) else ""
    current = (case.data or {}).get("permit_number")
    if current and number and number != current:
        errors["permit_number"] = str(_l("A renewal stays with the permit it was opened for."))
    number = current or number
    if not number:
        errors["permit_number"] = str(_l("Name the permit to renew."))
    else:
        data["permit_number"] = number
    report = normalize(raw.get("activity_report")) if isinstance(raw.get("activity_report"), str) else ""
    if report:
        if len(report) > MAX_REPORT:
            errors["activity_report"] = str(_l("The report is too long (at most %(n)s characters).", n=MAX_REPORT))
        elif complete and len(report) < MIN_REPORT:
            errors["activity_report"] = str(_l("Describe the organisation's activities (at least %(n)s characters).",
                                               n=MIN_REPORT))
        data["activity_report"] = report
    elif complete:
        errors["activity_report"] = str(_l("Describe the organisation's activities since the permit was issued."))
    if complete and not errors:
        permit = permit_of(session, case)
        reason = why_not_renewable(permit, utcnow()) if permit else str(_l("No permit with this number."))
        if reason:
            errors["permit_number"] = reason
    return data, errors


def _complete(session: Session, case: Case) -> dict[str, str]:
    return clean_data(session, case, case.data or {}, complete=True)[1]


def open_renewal(session: Session, case: Case) -> None:
    """Only members of the permit's organisation, inside the window, one renewal at a time."""
    permit = permit_of(session, case)
    if permit is None or permit.organization_id != case.organization_id:
        message = str(_l("No permit with this number belongs to this organisation."))
        raise Invalid(message, {"permit_number": message})
    reason = why_not_renewable(permit, utcnow())
    if reason:
        raise Conflict(reason)
    if permit.open_renewal_case_id is not None:
        raise Conflict(str(_l("A renewal of this permit is already under way.")))
    case.province_id, case.county_id = permit.province_id, permit.county_id
    permit.open_renewal_case_id = case.id
    try:
        session.flush()  # the permit's version check: a second renewal opened at once fails here
    except StaleDataError as exc:
        raise Conflict(str(_l("A renewal of this permit is already under way."))) from exc


def _release(event: Any) -> None:
    """A decided or withdrawn renewal frees the permit for the next one."""
    session: Session = event.kwargs["session"]
    permit = permit_of(session, event.model)
    if permit is not None and permit.open_renewal_case_id == event.model.id:
        permit.open_renewal_case_id = None


def renew_permit(event: Any) -> None:
    from ..services import permits

    case: Case = event.model
    session: Session = event.kwargs["session"]
    now: datetime = event.kwargs["now"]
    permit = permit_of(session, case)
    assert permit is not None
    start = max(permit.valid_until, now)
    until = add_jalali_years(start, current_app.config["PERMIT_VALIDITY_YEARS"])
    permit.open_renewal_case_id = None
    permits.fire(session, permit, "renew", None, now=now, valid_until=until, case_id=case.id)


PROCESS = Process(
    kind=KIND,
    states=REVIEW_STATES,
    initial="draft",
    rules=review_rules(_complete),
    terminal=TERMINAL,
    deadlines=DEADLINES,
    effects={"approve": (renew_permit, letters.issue), "reject": (_release, letters.issue), "withdraw": (_release,),
             "lapse": (_release,)},
    notify_applicants=frozenset({"accept", "return_for_correction", "approve", "reject", "lapse"}),
    clean_data=clean_data,
    title=_l("Permit renewal"),
    on_open=open_renewal,
)

"""Activity permit (پروانه فعالیت): an NGO applies, the office checks, inquires and decides.

Approval issues a numbered permit valid for PERMIT_VALIDITY_YEARS (default three).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..audit_chain import seal_event
from ..calendar import add_jalali_years, jalali_year
from ..deadlines import next_after, permit_events
from ..errors import Conflict
from ..models import Case, County, Organization, Permit, PermitEvent
from .. import letters
from ..process import Deadline, Process, Rule
from .common import TERMINAL, review_rules
from ..reference_data import FIELD_CODES
from ..text import clean_national_id, is_valid_national_id, name_key, normalize, normalize_line

KIND = "permit_issuance"
TITLE = _l("Activity permit")
MIN_FOUNDERS = 3
MAX_FOUNDERS = 50

STATES = (
    "draft", "submitted", "needs_correction", "under_review", "inquiry",
    "awaiting_decision", "approved", "rejected", "withdrawn",
)

DEADLINES = {
    "submitted": Deadline(working_days=3),
    "under_review": Deadline(working_days=10),
    "inquiry": Deadline(working_days=15),
    "awaiting_decision": Deadline(working_days=5),
    "needs_correction": Deadline(calendar_days=30),
}


def _s(value: Any) -> str:
    return normalize_line(value) if isinstance(value, str) else ""


def clean_data(session: Session, case: Case, raw: Any, *, complete: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """Normalise an application's data and list what is wrong with it.

    A draft (`complete=False`) may leave things out but may not hold anything malformed, so a
    typing error in a national ID shows up while the applicant is still at the form. Submission
    (`complete=True`) also demands every field, enough founders and the statute.
    """
    errors: dict[str, str] = {}
    if not isinstance(raw, dict):
        return {}, {"data": str(_l("Must be an object."))}
    data: dict[str, Any] = {}

    name = _s(raw.get("name"))
    if name:
        if len(name) < 3 or len(name) > 200:
            errors["name"] = str(_l("The name must be 3 to 200 characters long."))
        else:
            clash = session.scalar(
                select(Organization.id).where(
                    Organization.province_id == case.province_id,
                    Organization.name_key == name_key(name),
                    Organization.id != case.organization_id,
                )
            )
            if clash:
                errors["name"] = str(_l("Another organisation in this province already has this name."))
        data["name"] = name
    elif complete:
        errors["name"] = str(_l("Enter the organisation's name."))

    field = _s(raw.get("field"))
    if field:
        if field not in FIELD_CODES:
            errors["field"] = str(_l("Choose a field of activity from the list."))
        data["field"] = field
    elif complete:
        errors["field"] = str(_l("Choose a field of activity."))

    county_text = _s(raw.get("county"))
    if county_text:
        county = find_county(session, case.province_id, county_text)
        if county is None:
            errors["county"] = str(_l("This county is not in the organisation's province."))
            data["county"] = county_text
        else:
            data["county"] = county.name_fa
            case.county_id = county.id
    elif complete:
        errors["county"] = str(_l("Choose a county."))

    address = normalize(raw.get("address")) if isinstance(raw.get("address"), str) else ""
    if address:
        if len(address) > 500:
            errors["address"] = str(_l("The address is too long (at most 500 characters)."))
        data["address"] = address
    elif complete:
        errors["address"] = str(_l("Enter the address."))

    founders_raw = raw.get("founders", [])
    founders: list[dict[str, str]] = []
    if not isinstance(founders_raw, list):
        errors["founders"] = str(_l("Founders must be a list."))
        founders_raw = []
    if len(founders_raw) > MAX_FOUNDERS:
        errors["founders"] = str(_l("At most %(n)s founders.", n=MAX_FOUNDERS))
        founders_raw = founders_raw[:MAX_FOUNDERS]
    seen_ids: dict[str, int] = {}
    for i, item in enumerate(founders_raw):
        if not isinstance(item, dict):
            errors[f"founders.{i}"] = str(_l("Each founder needs a full name and a national ID."))
            continue
        full_name = _s(item.get("full_name"))
        nid = clean_national_id(item.get("national_id")) if isinstance(item.get("national_id"), str) else ""
        if not full_name and not nid:
            continue  # an empty row of the form
        if not full_name:
            errors[f"founders.{i}.full_name"] = str(_l("Enter the founder's full name."))
        elif len(full_name) > 200:
            errors[f"founders.{i}.full_name"] = str(_l("The name is too long."))
        if not is_valid_national_id(nid):
            errors[f"founders.{i}.national_id"] = str(
                _l("A national ID has 10 digits and a valid check digit.")
            )
        elif nid in seen_ids:
            errors[f"founders.{i}.national_id"] = str(_l("This national ID is listed twice."))
        seen_ids.setdefault(nid, i)
        founders.append({"full_name": full_name, "national_id": nid})
    data["founders"] = founders
    if complete and len(founders) < MIN_FOUNDERS and "founders" not in errors:
        errors["founders"] = str(_l("At least %(n)s founders are required.", n=MIN_FOUNDERS))

    if complete and not any(d.kind == "statute" and not d.superseded for d in case.documents):
        errors["statute"] = str(_l("Attach the statute as a PDF."))
    return data, errors


def find_county(session: Session, province_id: int, text: str) -> County | None:
    """A county of the province by its Persian or English name, blind to spelling variants."""
    key = name_key(text)
    for county in session.scalars(select(County).where(County.province_id == province_id)):
        if key in (name_key(county.name_fa), name_key(county.name_en)):
            return county
    return None


def _complete(session: Session, case: Case) -> dict[str, str]:
    return clean_data(session, case, case.data or {}, complete=True)[1]


def issue_permit(event: Any) -> None:
    """After `approve`: create the numbered permit in the same transaction as the decision."""
    case: Case = event.model
    session: Session = event.kwargs["session"]
    now: datetime = event.kwargs["now"]
    valid_until = add_jalali_years(now, current_app.config["PERMIT_VALIDITY_YEARS"])
    permit = Permit(
        case=case, organization_id=case.organization_id, province_id=case.province_id,
        county_id=case.county_id, state="active", issued_at=now, valid_until=valid_until, last_seq=1,
    )
    permit.next_event_at = next_after(permit_events(permit), now)
    session.add(permit)
    session.flush()
    # The sequence id makes the number unique without a counter row every approval would lock.
    permit.number = f"{jalali_year(now)}-{case.province_id:02d}-{permit.id:06d}"
    actor = event.kwargs.get("actor")
    event = PermitEvent(
        permit=permit, permit_id=permit.id, seq=1, at=now, actor_id=actor.id if actor else None,
        role="director", action="issue", from_state=None, to_state="active", valid_until=valid_until,
        case_id=case.id,
    )
    seal_event(permit, event)
    session.add(event)
    name = (case.data or {}).get("name")
    if name:
        case.organization.name = name
        case.organization.name_key = name_key(name)


def may_open(session: Session, case: Case) -> None:
    """An organisation holding a live permit renews it; it does not apply for a second one."""
    held = session.scalar(
        select(Permit.number).where(
            Permit.organization_id == case.organization_id, Permit.state.in_(("active", "suspended"))
        )
    )
    if held:
        raise Conflict(str(_l("This organisation already holds permit %(number)s; renew it instead.", number=held)))


RULES = review_rules(_complete) + (
    Rule("send_inquiry", "under_review", "inquiry", "expert", comment_required=True),
    Rule("record_inquiry", "inquiry", "under_review", "expert", comment_required=True),
)

PROCESS = Process(
    kind=KIND,
    states=STATES,
    initial="draft",
    rules=RULES,
    terminal=TERMINAL,
    deadlines=DEADLINES,
    effects={"approve": (issue_permit, letters.issue), "reject": (letters.issue,)},
    notify_applicants=frozenset({"accept", "return_for_correction", "approve", "reject", "lapse"}),
    clean_data=clean_data,
    title=TITLE,
    on_open=may_open,
)

"""Grant request (درخواست اعتبار): an NGO with a live permit asks a programme for money.

The review path is the applications' one with a finance step between the expert and the
director: finance proposes the amount and how it is paid (one to four tranches). Approval
commits the amount against the programme's budget in the database (see models/grants.py),
then finance releases the tranches one at a time, each after the previous one's spending
report was accepted, and closes the grant once the last report is accepted.

The tranche actions keep the case in `approved`: they are transitions of the case all the
same, so they are authorised, versioned and audited by the engine like every decision.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, exists, select, update
from sqlalchemy.orm import Session

from ..calendar import to_tehran
from ..db import is_row_id
from ..errors import Conflict, Invalid
from ..models import Case, Document, Grant, Permit, Programme, Tranche, utcnow
from ..money import parse_amount
from .. import letters
from ..process import Deadline, Process, Rule
from .common import DECISION_RULES, intake_rules
from ..text import normalize, normalize_line, whole_number

KIND = "grant_request"
TITLE = _l("Grant request")
MAX_LINES = 50
MAX_TRANCHES = 4
MAX_SUMMARY = 5000
REPORT_REMINDERS = (("report_7d", timedelta(days=-7)), ("report_due", timedelta(0)),
                    ("report_overdue", timedelta(days=1)))
OPEN_TRANCHE = ("released", "returned")  # paid, its report not (yet, or again) filed

STATES = (
    "draft", "submitted", "needs_correction", "under_review", "finance_review", "awaiting_decision",
    "approved", "rejected", "withdrawn", "closed",
)
TERMINAL = frozenset({"rejected", "withdrawn", "closed"})

DEADLINES = {
    "submitted": Deadline(working_days=3),
    "under_review": Deadline(working_days=10),
    "finance_review": Deadline(working_days=5),
    "awaiting_decision": Deadline(working_days=5),
    "needs_correction": Deadline(calendar_days=30),
}


def _msg(text: Any) -> str:
    return str(text)


# -- the application's data -------------------------------------------------------------------

def clean_data(session: Session, case: Case, raw: Any, *, complete: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """Normalise a grant request's data: programme, title, summary, amount and budget lines.

    Amounts may be numbers or typed text (Persian digits, separators); the lines must add up
    to the requested amount, which may not pass the programme's maximum award.
    """
    if not isinstance(raw, dict):
        return {}, {"data": _msg(_l("Must be an object."))}
    errors: dict[str, str] = {}
    data: dict[str, Any] = {}

    current = (case.data or {}).get("programme_id")
    wanted = raw.get("programme_id", current)
    typed = whole_number(wanted)
    if typed is not None:
        wanted = typed
    programme = None
    if current is not None and wanted != current:
        errors["programme_id"] = _msg(_l("A request stays with the programme it was opened for."))
    elif not is_row_id(wanted):
        errors["programme_id"] = _msg(_l("Choose a programme."))
    else:
        programme = session.get(Programme, wanted)
        if programme is None:
            errors["programme_id"] = _msg(_l("No such programme."))
        elif programme.province_id != case.province_id:
            errors["programme_id"] = _msg(_l("This programme is for another province."))
        data["programme_id"] = wanted

    title = normalize_line(raw.get("title")) if isinstance(raw.get("title"), str) else ""
    if title:
        if not 3 <= len(title) <= 200:
            errors["title"] = _msg(_l("The title must be 3 to 200 characters long."))
        data["title"] = title
    elif complete:
        errors["title"] = _msg(_l("Give the request a title."))

    summary = normalize(raw.get("summary")) if isinstance(raw.get("summary"), str) else ""
    if summary:
        if len(summary) > MAX_SUMMARY:
            errors["summary"] = _msg(_l("The summary is too long (at most %(n)s characters).", n=MAX_SUMMARY))
        data["summary"] = summary
    elif complete:
        errors["summary"] = _msg(_l("Describe what the money is for."))

    requested = None
    if raw.get("requested_rials") not in (None, ""):
        requested = parse_amount(raw.get("requested_rials"))
        if not requested:
            errors["requested_rials"] = _msg(_l("Enter the amount as a whole number of rials."))
        else:
            data["requested_rials"] = requested
            if programme is not None and requested > programme.max_award_rials:
                errors["requested_rials"] = _msg(_l("The programme awards at most %(n)s rials.",
                                                    n=f"{programme.max_award_rials:,}"))
    elif complete:
        errors["requested_rials"] = _msg(_l("Enter the amount requested."))

    lines_raw = raw.get("budget_lines", [])
    lines: list[dict[str, Any]] = []
    if not isinstance(lines_raw, list):
        errors["budget_lines"] = _msg(_l("Budget lines must be a list."))
        lines_raw = []
    if len(lines_raw) > MAX_LINES:
        errors["budget_lines"] = _msg(_l("At most %(n)s budget lines.", n=MAX_LINES))
        lines_raw = lines_raw[:MAX_LINES]
    for i, item in enumerate(lines_raw):
        if not isinstance(item, dict):
            errors[f"budget_lines.{i}"] = _msg(_l("Each line needs an item and an amount."))
            continue
        name = normalize_line(item.get("item")) if isinstance(item.get("item"), str) else ""
        amount_raw = item.get("rials")
        if not name and amount_raw in (None, ""):
            continue  # an empty row of the form
        amount = parse_amount(amount_raw)
        if not name:
            errors[f"budget_lines.{i}.item"] = _msg(_l("Name the item."))
        elif len(name) > 200:
            errors[f"budget_lines.{i}.item"] = _msg(_l("The name is too long."))
        if not amount:
            errors[f"budget_lines.{i}.rials"] = _msg(_l("Enter the amount as a whole number of rials."))
        lines.append({"item": name, "rials": amount or 0})
    data["budget_lines"] = lines
    if complete and not lines and "budget_lines" not in errors:
        errors["budget_lines"] = _msg(_l("List at least one budget line."))
    if complete and requested and lines and "budget_lines" not in errors:
        total = sum(line["rials"] for line in lines)
        if total != requested:
            errors["budget_lines"] = _msg(_l("The budget lines add up to %(total)s rials, not the %(requested)s requested.",
                                             total=f"{total:,}", requested=f"{requested:,}"))
    return data, errors


def eligibility(session: Session, case: Case, now: datetime | None = None) -> dict[str, str]:
    """Every reason the organisation may not ask this programme now (empty when it may)."""
    now = now or utcnow()
    programme = session.get(Programme, (case.data or {}).get("programme_id") or 0)
    if programme is None:
        return {}  # clean_data already says so
    reasons: dict[str, str] = {}
    permit = session.scalar(
        select(Permit).where(
            Permit.organization_id == case.organization_id, Permit.province_id == programme.province_id,
            Permit.state == "active", Permit.valid_until > now,
        ).order_by(Permit.valid_until.desc()).limit(1)
    )
    if permit is None:
        reasons["permit"] = _msg(_l("The organisation needs an active activity permit in the programme's province."))
    today = to_tehran(now).date()
    if not programme.opens_on <= today <= programme.closes_on:
        reasons["programme_id"] = _msg(_l("The programme is not open for requests now."))
    if permit is not None:
        field = (permit.case.data or {}).get("field")
        if field not in (programme.fields or []):
            reasons["field"] = _msg(_l("The organisation's field of activity is not one this programme funds."))
    overdue = session.scalar(
        select(exists().where(
            Tranche.case_id == Grant.case_id, Grant.organization_id == case.organization_id,
            Grant.case_id != case.id, Tranche.state.in_(OPEN_TRANCHE), Tranche.report_due_at < now,
        ))
    )
    if overdue:
        reasons["reports"] = _msg(_l("A spending report on another grant is overdue; file it first."))
    return reasons


def _complete(session: Session, case: Case) -> dict[str, str]:
    errors = clean_data(session, case, case.data or {}, complete=True)[1]
    return {**eligibility(session, case), **errors}


def may_open(session: Session, case: Case) -> None:
    """The grant row goes with the case; one open request per organisation and programme."""
    programme_id = (case.data or {}).get("programme_id")
    if programme_id is None:
        message = _msg(_l("Choose a programme."))
        raise Invalid(message, {"programme_id": message})
    clash = session.scalar(
        select(Grant.case_id).join(Case, Case.id == Grant.case_id).where(
            Grant.organization_id == case.organization_id, Grant.programme_id == programme_id,
            Case.state.not_in(TERMINAL), Case.id != case.id,
        )
    )
    if clash:
        raise Conflict(_msg(_l("This organisation already has a request to this programme (#%(n)s).", n=clash)))
    session.add(Grant(case_id=case.id, programme_id=programme_id, organization_id=case.organization_id))
    session.flush()


# -- values the reviewers' actions carry ------------------------------------------------------

def find_grant(session: Session, case: Case) -> Grant | None:
    """The case's grant row, if it has one. A case of an API queue page brings its grant along
    (services/queues.QueuedCase): the tranche rules ask for it several times per case, each a
    look-up in the session's map."""
    return getattr(case, "grant", None) or session.get(Grant, case.id)


def grant_of(session: Session, case: Case) -> Grant:
    grant = find_grant(session, case)
    assert grant is not None, f"grant row of case {case.id}"
    return grant


def _score(session: Session, case: Case, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    score = values.get("score")
    if isinstance(score, str) and score.strip():
        score = whole_number(score)
    if not isinstance(score, int) or isinstance(score, bool) or not 0 <= score <= 100:
        return {}, {"score": _msg(_l("Give a score from 0 to 100."))}
    return {"score": score}, {}


def _proposal(session: Session, case: Case, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """amount_rials ≤ requested and ≤ the programme's maximum; 1–4 tranches that add up to it."""
    grant = grant_of(session, case)
    requested = (case.data or {}).get("requested_rials") or 0
    errors: dict[str, str] = {}
    amount = parse_amount(values.get("amount_rials"))
    if not amount:
        errors["amount_rials"] = _msg(_l("Enter the amount as a whole number of rials."))
    elif amount > requested:
        errors["amount_rials"] = _msg(_l("The amount may not exceed the %(n)s rials requested.", n=f"{requested:,}"))
    elif amount > grant.programme.max_award_rials:
        errors["amount_rials"] = _msg(_l("The programme awards at most %(n)s rials.",
                                         n=f"{grant.programme.max_award_rials:,}"))
    raw = values.get("tranches")
    tranches = [parse_amount(t) for t in raw] if isinstance(raw, list) else []
    if not 1 <= len(tranches) <= MAX_TRANCHES or any(not t for t in tranches):
        errors["tranches"] = _msg(_l("Split the amount into 1 to 4 tranches, each more than zero."))
    elif amount and sum(tranches) != amount:  # type: ignore[arg-type]
        errors["tranches"] = _msg(_l("The tranches add up to %(total)s rials, not %(amount)s.",
                                     total=f"{sum(tranches):,}", amount=f"{amount:,}"))  # type: ignore[arg-type]
    if errors:
        return {}, errors
    return {"amount_rials": amount, "tranches": tranches}, {}


def _tranche_number(values: dict[str, Any]) -> int | None:
    n = values.get("tranche")
    if isinstance(n, str):
        n = whole_number(n)
    return n if is_row_id(n) else None


def tranche(session: Session, case: Case, n: int | None) -> Tranche | None:
    if n is None:
        return None
    return session.scalar(select(Tranche).where(Tranche.case_id == case.id, Tranche.n == n))


def releasable(session: Session, case: Case) -> Tranche | None:
    """The next tranche to pay: the first still pending, once every earlier report is accepted."""
    for item in grant_of(session, case).tranches:
        if item.state == "pending":
            return item
        if item.state != "accepted":
            return None
    return None


def _tranche_in(states: tuple[str, ...], message: Any):  # type: ignore[no-untyped-def]
    """A values check naming a tranche of this grant that is in one of `states`."""
    def check(session: Session, case: Case, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        n = _tranche_number(values)
        item = tranche(session, case, n)
        if item is None:
            return {}, {"tranche": _msg(_l("No such tranche."))}
        if item.state not in states:
            raise Conflict(_msg(message))
        return {"tranche": item.n, "amount_rials": item.amount_rials}, {}
    return check


def _release_values(session: Session, case: Case, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    n = _tranche_number(values)
    item = tranche(session, case, n)
    if item is None:
        return {}, {"tranche": _msg(_l("No such tranche."))}
    if item.state != "pending":
        raise Conflict(_msg(_l("This tranche has already been released.")))
    if releasable(session, case) is not item:
        raise Conflict(_msg(_l("The previous tranche's spending report must be accepted first.")))
    return {"tranche": item.n, "amount_rials": item.amount_rials}, {}


def _report_values(session: Session, case: Case, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """A spending report: lines of item, budgeted and spent, at most the tranche's amount, and
    at least one receipt attached to this tranche."""
    clean, errors = _tranche_in(OPEN_TRANCHE, _l("This tranche has no report to file now."))(session, case, values)
    if errors:
        return clean, errors
    item = tranche(session, case, clean["tranche"])
    assert item is not None
    raw = values.get("lines")
    lines: list[dict[str, Any]] = []
    if not isinstance(raw, list) or not raw:
        errors["lines"] = _msg(_l("List what was spent, line by line."))
        raw = []
    if len(raw) > MAX_LINES:  # refused, not cut: a report of its first 50 lines would be a false one
        errors["lines"] = _msg(_l("At most %(n)s lines.", n=MAX_LINES))
    for i, line in enumerate(raw[:MAX_LINES]):
        if not isinstance(line, dict):
            errors[f"lines.{i}"] = _msg(_l("Each line needs an item, the amount budgeted and the amount spent."))
            continue
        name = normalize_line(line.get("item")) if isinstance(line.get("item"), str) else ""
        budgeted, spent = parse_amount(line.get("budgeted_rials")), parse_amount(line.get("spent_rials"))
        if not name and line.get("budgeted_rials") in (None, "") and line.get("spent_rials") in (None, ""):
            continue
        if not name or len(name) > 200:
            errors[f"lines.{i}.item"] = _msg(_l("Name the item."))
        if budgeted is None:
            errors[f"lines.{i}.budgeted_rials"] = _msg(_l("Enter the amount as a whole number of rials."))
        if spent is None:
            errors[f"lines.{i}.spent_rials"] = _msg(_l("Enter the amount as a whole number of rials."))
        lines.append({"item": name, "budgeted_rials": budgeted or 0, "spent_rials": spent or 0})
    if raw and not lines and "lines" not in errors:
        errors["lines"] = _msg(_l("List what was spent, line by line."))
    spent_total = sum(line["spent_rials"] for line in lines)
    if spent_total > item.amount_rials:
        errors["lines"] = _msg(_l("The report spends %(spent)s rials of a tranche of %(amount)s.",
                                  spent=f"{spent_total:,}", amount=f"{item.amount_rials:,}"))
    has_receipt = session.scalar(select(exists().where(
        Document.tranche_id == item.id, Document.kind == "receipt", Document.superseded.is_(False))))
    if not has_receipt:
        errors["receipts"] = _msg(_l("Attach at least one receipt."))
    if errors:
        return {}, errors
    return {**clean, "lines": lines, "spent_rials": spent_total}, {}


def _all_accepted(session: Session, case: Case) -> bool:
    """A grant closes once every tranche is paid and its report accepted."""
    items = grant_of(session, case).tranches
    return bool(items) and all(t.state == "accepted" for t in items)


def _has(state_test):  # type: ignore[no-untyped-def]
    def available(session: Session, case: Case) -> bool:
        return any(state_test(t) for t in grant_of(session, case).tranches)
    return available


# -- effects ----------------------------------------------------------------------------------

def propose(event: Any) -> None:
    values = event.kwargs["values"]
    grant = grant_of(event.kwargs["session"], event.model)
    grant.proposed_rials, grant.proposed_tranches = values["amount_rials"], values["tranches"]


def score(event: Any) -> None:
    grant_of(event.kwargs["session"], event.model).score = event.kwargs["values"]["score"]


def award(event: Any) -> None:
    """Commit the proposed amount against the budget, or refuse with 409 and change nothing.

    `UPDATE … SET awarded = awarded + x WHERE awarded + x <= budget`: PostgreSQL locks the
    programme's row, so concurrent approvals queue there and each sees the sum the others
    committed; the CHECK on the table backs it should any other writer try.
    """
    session: Session = event.kwargs["session"]
    case: Case = event.model
    grant = grant_of(session, case)
    amount = grant.proposed_rials or 0
    table = Programme.__table__
    done = session.connection().execute(
        update(table)
        .where(and_(table.c.id == grant.programme_id, table.c.awarded_rials + amount <= table.c.budget_rials))
        .values(awarded_rials=table.c.awarded_rials + amount)
    ).rowcount
    if done != 1:
        left = session.connection().execute(
            select(table.c.budget_rials - table.c.awarded_rials).where(table.c.id == grant.programme_id)
        ).scalar_one()
        raise Conflict(_msg(_l("Approving %(amount)s rials would exceed the programme's budget: %(left)s rials remain.",
                                amount=f"{amount:,}", left=f"{left:,}")))
    session.expire(grant.programme, ["awarded_rials"])
    grant.awarded_rials, grant.awarded_at = amount, event.kwargs["now"]
    for n, rials in enumerate(grant.proposed_tranches or [], start=1):
        session.add(Tranche(case_id=case.id, n=n, amount_rials=rials, state="pending"))


def report_days() -> int:
    return int(current_app.config["GRANT_REPORT_DAYS"])


def report_events(state: str, due: datetime | None) -> list[tuple[datetime, str]]:
    """Reminders of an unfiled report: 7 days before it is due, on the day, and a day late."""
    if state not in OPEN_TRANCHE or due is None:
        return []
    return [(due + offset, kind) for kind, offset in REPORT_REMINDERS]


def next_report_event(item: Tranche, now: datetime) -> datetime | None:
    return next((at for at, _kind in report_events(item.state, item.report_due_at) if at > now), None)


def release(event: Any) -> None:
    session: Session = event.kwargs["session"]
    now: datetime = event.kwargs["now"]
    item = tranche(session, event.model, event.kwargs["values"]["tranche"])
    assert item is not None
    item.state, item.released_at = "released", now
    item.report_due_at = now + timedelta(days=report_days())
    item.next_event_at = next_report_event(item, now)
    table = Programme.__table__
    programme_id = grant_of(session, event.model).programme_id
    session.connection().execute(
        update(table).where(table.c.id == programme_id)
        .values(disbursed_rials=table.c.disbursed_rials + item.amount_rials)
    )


def file_report(event: Any) -> None:
    values = event.kwargs["values"]
    item = tranche(event.kwargs["session"], event.model, values["tranche"])
    assert item is not None
    item.state, item.reported_at = "reported", event.kwargs["now"]
    item.report_lines, item.spent_rials = values["lines"], values["spent_rials"]
    item.next_event_at = None


def accept_report(event: Any) -> None:
    """What was not spent is recorded as a refund owed back to the programme."""
    session: Session = event.kwargs["session"]
    item = tranche(session, event.model, event.kwargs["values"]["tranche"])
    assert item is not None
    item.state, item.accepted_at = "accepted", event.kwargs["now"]
    item.refund_rials = item.amount_rials - (item.spent_rials or 0)
    item.return_comment = None
    grant_of(session, event.model).refunded_rials += item.refund_rials


def return_report(event: Any) -> None:
    """Back to the NGO with finance's comment; at least two more weeks to file it again."""
    now: datetime = event.kwargs["now"]
    item = tranche(event.kwargs["session"], event.model, event.kwargs["values"]["tranche"])
    assert item is not None
    item.state, item.return_comment = "returned", event.kwargs["comment"]
    item.report_due_at = max(item.report_due_at or now, now + timedelta(days=14))
    item.next_event_at = next_report_event(item, now)


RULES = intake_rules(_complete) + (
    Rule("recommend_approval", "under_review", "finance_review", "expert", comment_required=True,
         recommends=True, values=_score),
    Rule("recommend_rejection", "under_review", "finance_review", "expert", comment_required=True, recommends=True),
    # Whoever proposed the money may not approve it either.
    Rule("propose_amount", "finance_review", "awaiting_decision", "finance", recommends=True, values=_proposal),
) + DECISION_RULES + (
    Rule("release_tranche", "approved", "approved", "finance", values=_release_values,
         available=lambda session, case: releasable(session, case) is not None),
    Rule("submit_report", "approved", "approved", "applicant", values=_report_values,
         available=_has(lambda t: t.state in OPEN_TRANCHE)),
    Rule("accept_report", "approved", "approved", "finance",
         values=_tranche_in(("reported",), _l("This tranche has no report waiting for review.")),
         available=_has(lambda t: t.state == "reported")),
    Rule("return_report", "approved", "approved", "finance", comment_required=True,
         values=_tranche_in(("reported",), _l("This tranche has no report waiting for review.")),
         available=_has(lambda t: t.state == "reported")),
    Rule("close", "approved", "closed", "finance", available=lambda session, case: _all_accepted(session, case)),
)

PROCESS = Process(
    kind=KIND,
    states=STATES,
    initial="draft",
    rules=RULES,
    terminal=TERMINAL,
    deadlines=DEADLINES,
    effects={
        "recommend_approval": (score,), "propose_amount": (propose,), "approve": (award, letters.issue),
        "reject": (letters.issue,),
        "release_tranche": (release,), "submit_report": (file_report,), "accept_report": (accept_report,),
        "return_report": (return_report,),
    },
    notify_applicants=frozenset({"accept", "return_for_correction", "approve", "reject", "lapse",
                                 "release_tranche", "accept_report", "return_report", "close"}),
    clean_data=clean_data,
    title=TITLE,
    on_open=may_open,
    one_open_per_organization=False,
)

"""The sweep's part for grants: reminders of spending reports that are due or overdue.

A released tranche carries `next_event_at` (7 days before its report is due, on the day, a
day late), set by the transitions that release it or return its report. Like the cases' and
permits' part of the sweep, this reads the due rows as plain rows a batch at a time, writes
outbox rows under unique keys (a reminder is created once, however many sweeps run) and
advances `next_event_at`. A late report is also reported to the province's finance staff,
who must chase it; it also blocks the organisation's other grant requests (see eligibility).
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from workflow.models import Case, Grant, Tranche
from workflow.services import outbox
from workflow.services.outbox import Note
from workflow.states.grant_request import report_events

BATCH = 2000
FINANCE = frozenset({"finance"})


def sweep_reports(session: Session, now: datetime, get_staff: Callable[[], Any]) -> tuple[list[Note], int]:
    """(notes to write, rows looked at) for one batch of tranches whose reminder is due.

    `get_staff` gives the sweep's `outbox.Staff`, read once per run and only when a report is
    late; the caller writes the notes.
    """
    due = session.execute(
        select(Tranche.id, Tranche.case_id, Tranche.n, Tranche.state, Tranche.report_due_at,
               Tranche.next_event_at, Grant.organization_id, Case.province_id, Case.county_id)
        .join(Grant, Grant.case_id == Tranche.case_id).join(Case, Case.id == Tranche.case_id)
        .where(Tranche.next_event_at <= now).order_by(Tranche.next_event_at, Tranche.id)
        .limit(BATCH).with_for_update(skip_locked=True, of=Tranche)
    ).all()
    if not due:
        return [], 0
    applicants = outbox.applicants_of_many(session, {row.organization_id for row in due})
    late = [row for row in due if any(kind == "report_overdue" and row.next_event_at <= at <= now
                                      for at, kind in report_events(row.state, row.report_due_at))]
    staff = get_staff() if late else None
    members = staff.members(session, {row.organization_id for row in late}) if staff else set()
    notes: list[Note] = []
    moves: list[dict[str, Any]] = []
    for row in due:
        events = report_events(row.state, row.report_due_at)
        for at, kind in events:
            if not row.next_event_at <= at <= now:
                continue
            users = list(applicants.get(row.organization_id, ()))
            if kind == "report_overdue" and staff is not None:
                users += [u for u in staff.holding(FINANCE, province_id=row.province_id, county_id=row.county_id)
                          if (row.organization_id, u) not in members]
            payload = {"case_id": row.case_id, "tranche": row.n, "due_at": row.report_due_at.isoformat(),
                       "event": kind}
            key = f"tranche:{row.id}:{row.report_due_at.date().isoformat()}:{kind}"
            notes.append(Note(users, kind, key, payload, case_id=row.case_id))
        moves.append({"b_id": row.id, "b_seen": row.next_event_at,
                      "b_next": next((at for at, _kind in events if at > now), None)})
    # Only if nobody changed the tranche meanwhile (a report filed clears next_event_at).
    table = Tranche.__table__
    session.execute(
        update(table).where(table.c.id == bindparam("b_id"), table.c.next_event_at == bindparam("b_seen"))
        .values(next_event_at=bindparam("b_next")),
        moves,
    )
    return notes, len(due)

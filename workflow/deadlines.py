"""What falls due when: reminders, escalations, lapses and expiries, as moments in time.

The sweep never scans for "cases that might be late": each case and permit carries
`next_event_at`, the earliest of its pending events, and the sweep selects those at or
before now. The events themselves are derived here from the process's declared deadlines,
so the engine (which sets `next_event_at` on every transition) and the sweep (which advances
it) agree by construction.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from .calendar import add_working_days
from .models import Case, Permit
from .process import Process

APPLICANT_REMINDERS = (("correction_7d", timedelta(days=7)), ("correction_1d", timedelta(days=1)))
PERMIT_REMINDERS = (("permit_60d", 60), ("permit_30d", 30), ("permit_7d", 7))
GRACE = timedelta(days=90)


@dataclass(frozen=True)
class Event:
    at: datetime
    kind: str


def state_events(process: Process, state: str, entered: datetime, due: datetime | None, *,
                 holidays: Iterable[date], thursday_off: bool) -> list[Event]:
    """The events of a stay in `state` that began at `entered`, in time order."""
    deadline = process.deadlines.get(state)
    if deadline is None or state in process.terminal or due is None:
        return []
    if deadline.working_days is not None:
        days = frozenset(holidays)
        half = add_working_days(entered, math.ceil(deadline.working_days / 2), thursday_off=thursday_off,
                                holidays=days)
        escalate = add_working_days(due, 1, thursday_off=thursday_off, holidays=days)
        events = [Event(half, "sla_half"), Event(due, "sla_due"), Event(escalate, "sla_escalate")]
    else:
        events = [Event(due - before, kind) for kind, before in APPLICANT_REMINDERS if due - before > entered]
        events.append(Event(due, "lapse"))
    return sorted(events, key=lambda e: e.at)


def case_events(process: Process, case: Case, *, holidays: Iterable[date], thursday_off: bool) -> list[Event]:
    return state_events(process, case.state, case.state_entered_at, case.due_at, holidays=holidays,
                        thursday_off=thursday_off)


def permit_events(permit: Permit) -> list[Event]:
    end = permit.valid_until
    events: list[Event] = []
    if permit.state == "active":
        events += [Event(end - timedelta(days=days), kind) for kind, days in PERMIT_REMINDERS]
    if permit.state in ("active", "suspended"):
        events.append(Event(end, "expire"))
    if permit.state != "revoked":
        events.append(Event(end + GRACE, "grace_end"))
    return sorted(events, key=lambda e: e.at)


def next_after(events: list[Event], moment: datetime) -> datetime | None:
    """The first event strictly after `moment`: what the sweep must come back for."""
    return next((e.at for e in events if e.at > moment), None)

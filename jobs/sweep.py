"""The periodic sweep: reminders, escalations, lapses and expiries that are due.

The database says what is due (`next_event_at` on cases and permits, undelivered outbox rows);
the sweep handles those, writes outbox rows under unique keys, and advances `next_event_at`.
It is safe to run twice and to run twice at once: PostgreSQL hands each sweep different rows
(SKIP LOCKED) and the keys refuse duplicates.

It works a batch at a time, with a fixed number of statements per batch whatever its size: the
due rows are read as plain rows (no ORM objects), their events computed in Python, the
recipients of the whole batch read in one or two queries (the staff once per run: they are few,
the users many), the outbox rows written by one INSERT … ON CONFLICT DO NOTHING, and the new
`next_event_at` by one UPDATE. Only the rows that change state go through the ORM, one at a
time, because each is a real transition with its audit entry or permit event: lapses through
`engine.fire`, expiries through `permits.fire`, whose writes for the whole batch go in one
flush. After each commit the batch's outbox rows, the lapses' included, are enqueued
DELIVERY_BATCH rows to a job (`jobs.notify.deliver_batch`), all in one pipeline.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

import redis
from flask import current_app
from sqlalchemy import bindparam, select, text, update
from sqlalchemy.orm import Session, selectinload

from workflow import engine, registry
from workflow.deadlines import Event, case_events, next_after, permit_events
from workflow.holidays import holidays
from workflow.models import Case, Notification, Permit, utcnow
from workflow.services import outbox, permits
from workflow.services.outbox import Note

from . import grant_reports

log = logging.getLogger(__name__)
BATCH = 2000
LAPSE_COMMENT = "مهلت اصلاح به پایان رسید؛ درخواست به‌طور خودکار مختومه شد."


@dataclass
class SweepResult:
    cases: int = 0
    permits: int = 0
    reports: int = 0  # tranches whose report reminder was due
    notifications: int = 0
    escalated: int = 0
    lapsed: int = 0
    expired: int = 0
    requeued: int = 0
    # Outbox rows whose delivery job is enqueued once the batch has committed (not a count).
    jobs: list[int] = field(default_factory=list, repr=False, compare=False)

    @classmethod
    def counters(cls) -> list[str]:
        return [f.name for f in fields(cls) if f.name != "jobs"]

    def add(self, other: "SweepResult") -> None:
        for name in self.counters():
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def __str__(self) -> str:
        return ", ".join(f"{name} {getattr(self, name)}" for name in self.counters())


class _Context:
    """What a sweep run reads once: the staff who may be reminded, and each state's roles."""

    def __init__(self) -> None:
        self._staff: outbox.Staff | None = None
        self._roles: dict[tuple[str, str], frozenset[str]] = {}

    def staff(self, session: Session) -> outbox.Staff:
        if self._staff is None:
            roles = {"director"}
            for process in registry.PROCESSES.values():
                roles |= {r.role for r in process.rules}
            self._staff = outbox.Staff(session, roles - {"applicant", "system"})
        return self._staff

    def roles(self, kind: str, state: str) -> frozenset[str]:
        """Who has something to do in `state`: reminded of its SLA."""
        key = (kind, state)
        if key not in self._roles:
            rules = registry.get(kind).rules
            self._roles[key] = frozenset({r.role for r in rules if r.source == state} - {"applicant", "system"})
        return self._roles[key]


# -- cases ---------------------------------------------------------------------------------------
_CASE_COLUMNS = (Case.id, Case.kind, Case.state, Case.version, Case.organization_id, Case.province_id,
                 Case.county_id, Case.state_entered_at, Case.due_at, Case.last_seq, Case.next_event_at,
                 Case.overdue)


def _sweep_cases(session: Session, now: datetime, result: SweepResult, context: _Context) -> int:
    due = session.execute(
        select(*_CASE_COLUMNS).where(Case.next_event_at <= now).order_by(Case.next_event_at, Case.id)
        .limit(BATCH).with_for_update(skip_locked=True, of=Case)
    ).all()
    if not due:
        return 0
    days_off = holidays(session)
    thursday_off = current_app.config["THURSDAY_OFF"]
    staff_events: list[tuple[Any, Event, frozenset[str]]] = []
    applicant_events: list[tuple[Any, Event]] = []
    bookkeeping: list[tuple[int, int, datetime | None, bool | None]] = []
    lapsing: list[int] = []
    for case in due:
        result.cases += 1
        start, overdue = case.next_event_at, case.overdue
        events = case_events(registry.get(case.kind), case, holidays=days_off, thursday_off=thursday_off)
        lapses = False
        for event in events:
            if not (start is not None and start <= event.at <= now):
                continue
            if event.kind in ("sla_half", "sla_due"):
                staff_events.append((case, event, context.roles(case.kind, case.state)))
            elif event.kind == "sla_escalate":
                staff_events.append((case, event, frozenset({"director"})))
                result.escalated += 1
                overdue = True
            elif event.kind in ("correction_7d", "correction_1d"):
                applicant_events.append((case, event))
            elif event.kind == "lapse":
                lapses = True
                break  # a transition: the engine sets what is next
        if lapses:
            lapsing.append(case.id)
        else:
            bookkeeping.append((case.id, case.version, next_after(events, now), overdue))

    notes: list[Note] = []
    if staff_events:
        staff = context.staff(session)
        members = staff.members(session, {c.organization_id for c, _e, _r in staff_events})
        for case, event, roles in staff_events:
            holders = staff.holding(roles, province_id=case.province_id, county_id=case.county_id)
            notes.append(_case_note(case, event, [u for u in holders if (case.organization_id, u) not in members]))
    if applicant_events:
        applicants = outbox.applicants_of_many(session, {c.organization_id for c, _e in applicant_events})
        notes += [_case_note(c, e, applicants.get(c.organization_id, ())) for c, e in applicant_events]
    _write(session, notes, now, result)

    # Bookkeeping only: a Core UPDATE, so the case's version (what users' forms carry)
    # does not move, and only if nobody changed the case meanwhile.
    _bookkeeping(session, Case.__table__, bookkeeping)
    if lapsing:
        # Each lapse is a real transition (authorised as the system, audited, applicants told).
        # The documents come with the batch: each entry's snapshot lists them.
        lapses = select(Case).where(Case.id.in_(lapsing)).order_by(Case.id).options(selectinload(Case.documents))
        for case in session.scalars(lapses):
            engine.fire(session, case, "lapse", None, now=now, comment=LAPSE_COMMENT)
            result.lapsed += 1
    return len(due)


def _case_note(case: Any, event: Event, user_ids: Any) -> Note:
    payload = {"case_id": case.id, "kind": case.kind, "state": case.state,
               "due_at": case.due_at.isoformat() if case.due_at else None, "event": event.kind}
    return Note(user_ids, event.kind, f"case:{case.id}:{case.last_seq}:{event.kind}", payload, case_id=case.id)


# -- permits -------------------------------------------------------------------------------------
_PERMIT_COLUMNS = (Permit.id, Permit.number, Permit.state, Permit.valid_until, Permit.version, Permit.organization_id,
                   Permit.next_event_at)


def _sweep_permits(session: Session, now: datetime, result: SweepResult) -> int:
    due = session.execute(
        select(*_PERMIT_COLUMNS).where(Permit.next_event_at <= now).order_by(Permit.next_event_at, Permit.id)
        .limit(BATCH).with_for_update(skip_locked=True, of=Permit)
    ).all()
    if not due:
        return 0
    reminders: list[tuple[Any, Event]] = []
    bookkeeping: list[tuple[int, int, datetime | None, bool | None]] = []
    expiring: list[int] = []
    for permit in due:
        result.permits += 1
        found, cursor = _permit_walk(permit, permit.next_event_at, now)
        if any(e.kind == "expire" for e in found):
            expiring.append(permit.id)  # a transition: handled below on the ORM object
            continue
        reminders += [(permit, e) for e in found]
        bookkeeping.append((permit.id, permit.version, cursor, None))

    # Expiries: the whole walk again on the permit itself, firing `expire` when it comes, since
    # the events after it depend on the state it leaves.
    orm: list[Permit] = []
    if expiring:
        orm = list(session.scalars(select(Permit).where(Permit.id.in_(expiring)).order_by(Permit.id)))
    members = outbox.applicants_of_many(session, [p.organization_id for p, _e in reminders]
                                        + [p.organization_id for p in orm])
    notes = [_permit_note(p, e, members.get(p.organization_id, ())) for p, e in reminders]
    for permit in orm:
        cursor = permit.next_event_at
        while cursor is not None and cursor <= now:
            pending = [e for e in permit_events(permit) if cursor <= e.at <= now]
            if not pending:
                cursor = next_after(permit_events(permit), now)
                break
            event = pending[0]
            note = _permit_note(permit, event, members.get(permit.organization_id, ()))
            if event.kind == "expire":
                permits.fire(session, permit, "expire", None, now=now, flush=False)
                result.expired += 1
            notes.append(note)
            cursor = next_after(permit_events(permit), event.at)
        permit.next_event_at = cursor
    # The permits are locked above (FOR UPDATE), so their versions still hold.
    permits.write_fired(session, orm)
    _write(session, notes, now, result)
    # Like the cases': bookkeeping does not move the version a director's form carries.
    _bookkeeping(session, Permit.__table__, bookkeeping)
    return len(due)


def _permit_walk(permit: Any, cursor: datetime | None, now: datetime) -> tuple[list[Event], datetime | None]:
    """The permit's events due by `now` from `cursor` on, in order, and where it stops; as long
    as none is a transition, the permit's state and validity stay and the events are fixed."""
    events = permit_events(permit)
    found: list[Event] = []
    while cursor is not None and cursor <= now:
        pending = [e for e in events if cursor <= e.at <= now]
        if not pending:
            return found, next_after(events, now)
        found.append(pending[0])
        if pending[0].kind == "expire":
            return found, None
        cursor = next_after(events, pending[0].at)
    return found, cursor


def _permit_note(permit: Any, event: Event, user_ids: Any) -> Note:
    key = f"permit:{permit.id}:{permit.valid_until.date().isoformat()}:{event.kind}"
    payload = {"permit_number": permit.number, "valid_until": permit.valid_until.isoformat(), "event": event.kind}
    return Note(user_ids, event.kind, key, payload, permit_id=permit.id)


def _bookkeeping(session: Session, table: Any, rows: list[tuple[int, int, datetime | None, bool | None]]) -> None:
    """SET next_event_at (and overdue, for cases) WHERE id = ? AND version = ?, for many rows.

    On PostgreSQL one UPDATE … FROM unnest(arrays) (one statement, whatever the number of rows);
    elsewhere an executemany of the same UPDATE.
    """
    if not rows:
        return
    has_overdue = "overdue" in table.c
    if session.get_bind().dialect.name == "postgresql":
        ids, versions, nexts, overdue = (outbox.pg_array(c) for c in zip(*rows))
        statement = _UNNEST_UPDATE_CASES if has_overdue else _UNNEST_UPDATE_PERMITS
        session.execute(statement, {"ids": ids, "versions": versions, "nexts": nexts, "overdue": overdue})
        return
    values = {"next_event_at": bindparam("b_next")}
    if has_overdue:
        values["overdue"] = bindparam("b_overdue")
    session.execute(
        update(table).where(table.c.id == bindparam("b_id"), table.c.version == bindparam("b_version"))
        .values(**values),
        [{"b_id": i, "b_version": v, "b_next": n, "b_overdue": o} for i, v, n, o in rows],
    )


_UNNEST_UPDATE_CASES = text("""
    UPDATE cases SET next_event_at = u.next_event_at, overdue = u.overdue
    FROM unnest(CAST(:ids AS integer[]), CAST(:versions AS integer[]), CAST(:nexts AS timestamptz[]),
                CAST(:overdue AS boolean[])) AS u(id, version, next_event_at, overdue)
    WHERE cases.id = u.id AND cases.version = u.version
""")
_UNNEST_UPDATE_PERMITS = text("""
    UPDATE permits SET next_event_at = u.next_event_at
    FROM unnest(CAST(:ids AS integer[]), CAST(:versions AS integer[]), CAST(:nexts AS timestamptz[]))
         AS u(id, version, next_event_at)
    WHERE permits.id = u.id AND permits.version = u.version
""")


# -- grants' spending reports --------------------------------------------------------------------
def _sweep_reports(session: Session, now: datetime, result: SweepResult, context: _Context) -> int:
    notes, looked_at = grant_reports.sweep_reports(session, now, lambda: context.staff(session))
    result.reports += looked_at
    _write(session, notes, now, result)
    return looked_at


# -- outbox --------------------------------------------------------------------------------------
def _write(session: Session, notes: list[Note], now: datetime, result: SweepResult) -> None:
    ids = outbox.add_many(session, notes, now=now)
    result.notifications += len(ids)
    result.jobs += ids


def _requeue(session: Session, now: datetime, result: SweepResult) -> int:
    """Outbox rows whose job was lost (Redis flushed, worker killed) go back on the queue."""
    lease = timedelta(seconds=current_app.config["DELIVERY_LEASE_SECONDS"])
    stale = list(session.scalars(
        select(Notification.id)
        .where(Notification.delivered_at.is_(None), Notification.failed_at.is_(None),
               Notification.enqueued_at <= now - lease)
        .order_by(Notification.id).limit(BATCH * 4)
        # A row being delivered is locked by its worker (for the whole SMTP exchange): skip it
        # rather than wait, and a second sweep at the same moment takes other rows.
        .with_for_update(skip_locked=True)
    ))
    if stale:
        session.execute(update(Notification).where(Notification.id.in_(stale)).values(enqueued_at=now)
                        .execution_options(synchronize_session=False))
        result.jobs += stale
    result.requeued += len(stale)
    return len(stale)


def enqueue_deliveries(ids: list[int]) -> None:
    """Delivery jobs of DELIVERY_BATCH rows each, in one pipeline; call after the commit.

    If Redis is down the rows stay undelivered in the outbox and a later sweep enqueues them
    again (`_requeue`).
    """
    from rq import Queue

    from .notify import DELIVER_BATCH, DELIVERY_BATCH, FAILURE_TTL, RETRY
    from .queue import get_queue

    if not ids:
        return
    queue = get_queue()
    if queue is None:
        log.info("no Redis configured; %d row(s) left in the outbox", len(ids))
        return
    try:
        # No MULTI/EXEC: each job's commands still go in order, and a job that did not make it
        # holds rows the sweep enqueues again.
        with queue.connection.pipeline(transaction=False) as pipe:
            queue.enqueue_many(
                [Queue.prepare_data(DELIVER_BATCH, (ids[start:start + DELIVERY_BATCH],), retry=RETRY,
                                    failure_ttl=FAILURE_TTL)
                 for start in range(0, len(ids), DELIVERY_BATCH)],
                pipeline=pipe,
            )
            pipe.execute()
    except redis.RedisError:
        log.exception("enqueue failed; %d row(s) stay in the outbox", len(ids))


def sweep_once(session: Session, now: datetime, context: _Context | None = None) -> tuple[SweepResult, bool]:
    """One batch of each kind; returns (what it did, whether more may be due). Never commits:
    the caller commits, then enqueues `result.jobs` (`enqueue_deliveries`)."""
    context = context or _Context()
    result = SweepResult()
    more = _sweep_cases(session, now, result, context) == BATCH
    more |= _sweep_permits(session, now, result) == BATCH
    more |= _sweep_reports(session, now, result, context) == grant_reports.BATCH
    more |= _requeue(session, now, result) == BATCH * 4
    return result, more


def run(now: datetime | None = None) -> str:
    """The rq job and the CLI: batches, each its own transaction, until nothing is due."""
    from workflow import db

    from .context import app_context
    from .notify import DELIVER
    from .queue import take_pending

    total = SweepResult()
    context = _Context()
    with app_context():
        now = now or utcnow()
        with db.new_session() as session:
            for _ in range(10_000):
                result, more = sweep_once(session, now, context)
                # The lapses' own rows go into the batch jobs too, rather than a job each.
                result.jobs += [args[0] for args in take_pending(session, DELIVER)]
                session.commit()
                enqueue_deliveries(result.jobs)
                total.add(result)
                if not more:
                    break
    log.info("sweep as of %s: %s", now.isoformat(), total)
    return str(total)

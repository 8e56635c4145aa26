"""The periodic sweep: reminders, escalations, lapses and expiries that are due.

The database says what is due (`next_event_at` on cases and permits, undelivered outbox rows);
the sweep handles those, writes outbox rows under unique keys, and advances `next_event_at`.
It is safe to run twice and to run twice at once: PostgreSQL hands each sweep different rows
(SKIP LOCKED) and the keys refuse duplicates.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from workflow import engine, registry
from workflow.deadlines import Event, case_events, next_after, permit_events
from workflow.holidays import holidays
from workflow.models import Case, Notification, Permit, utcnow
from workflow.services import outbox, permits

from .queue import enqueue_after_commit

log = logging.getLogger(__name__)
BATCH = 500


@dataclass
class SweepResult:
    cases: int = 0
    permits: int = 0
    notifications: int = 0
    escalated: int = 0
    lapsed: int = 0
    expired: int = 0
    requeued: int = 0

    def add(self, other: "SweepResult") -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def __str__(self) -> str:
        return ", ".join(f"{f.name} {getattr(self, f.name)}" for f in fields(self))


def _notify(session: Session, result: SweepResult, **kwargs: object) -> None:
    ids = outbox.add(session, **kwargs)  # type: ignore[arg-type]
    result.notifications += len(ids)
    for notification_id in ids:
        enqueue_after_commit(session, "jobs.notify.deliver", notification_id)


def _case_event(session: Session, case: Case, event: Event, now: datetime, result: SweepResult) -> bool:
    """Handle one due event of a case; True if it makes the case overdue."""
    process = registry.get(case.kind)
    key = f"case:{case.id}:{case.last_seq}:{event.kind}"
    payload = {"case_id": case.id, "kind": case.kind, "state": case.state, "due_at": case.due_at.isoformat()
               if case.due_at else None, "event": event.kind}
    common = {"kind": event.kind, "key": key, "now": now, "payload": payload, "case_id": case.id}
    if event.kind in ("sla_half", "sla_due"):
        roles = {r.role for r in process.rules if r.source == case.state} - {"applicant", "system"}
        staff = outbox.staff_holding(session, roles, province_id=case.province_id, county_id=case.county_id,
                                     organization_id=case.organization_id)
        _notify(session, result, user_ids=staff, **common)
    elif event.kind == "sla_escalate":
        directors = outbox.staff_holding(session, {"director"}, province_id=case.province_id,
                                         county_id=case.county_id, organization_id=case.organization_id)
        _notify(session, result, user_ids=directors, **common)
        result.escalated += 1
        return True
    elif event.kind in ("correction_7d", "correction_1d"):
        _notify(session, result, user_ids=outbox.applicants_of(session, case.organization_id), **common)
    elif event.kind == "lapse":
        engine.fire(session, case, "lapse", None, now=now,
                    comment="مهلت اصلاح به پایان رسید؛ درخواست به‌طور خودکار مختومه شد.")
        result.lapsed += 1
    return False


def _sweep_cases(session: Session, now: datetime, result: SweepResult) -> int:
    due = list(session.scalars(
        select(Case).where(Case.next_event_at <= now).order_by(Case.next_event_at, Case.id)
        .limit(BATCH).with_for_update(skip_locked=True, of=Case)
    ))
    days_off = holidays(session)
    thursday_off = current_app.config["THURSDAY_OFF"]
    for case in due:
        result.cases += 1
        start, version, seq, overdue = case.next_event_at, case.version, case.last_seq, case.overdue
        events = case_events(registry.get(case.kind), case, holidays=days_off, thursday_off=thursday_off)
        for event in events:
            if start is not None and start <= event.at <= now:
                overdue |= _case_event(session, case, event, now, result)
                if case.last_seq != seq:  # the event moved the case on; the engine set what is next
                    break
        if case.last_seq == seq:
            # Bookkeeping only: a Core UPDATE, so the case's version (what users' forms carry)
            # does not move, and only if nobody changed the case meanwhile.
            session.execute(
                update(Case).where(Case.id == case.id, Case.version == version)
                .values(next_event_at=next_after(events, now), overdue=overdue)
                .execution_options(synchronize_session=False)
            )
            session.expire(case, ["next_event_at", "overdue"])
    return len(due)


def _permit_event(session: Session, permit: Permit, event: Event, now: datetime, result: SweepResult) -> None:
    members = outbox.applicants_of(session, permit.organization_id)
    key = f"permit:{permit.id}:{permit.valid_until.date().isoformat()}:{event.kind}"
    payload = {"permit_number": permit.number, "valid_until": permit.valid_until.isoformat(), "event": event.kind}
    if event.kind == "expire":
        permits.fire(session, permit, "expire", None, now=now)
        result.expired += 1
    _notify(session, result, user_ids=members, kind=event.kind, key=key, now=now, payload=payload,
            permit_id=permit.id)


def _sweep_permits(session: Session, now: datetime, result: SweepResult) -> int:
    due = list(session.scalars(
        select(Permit).where(Permit.next_event_at <= now).order_by(Permit.next_event_at, Permit.id)
        .limit(BATCH).with_for_update(skip_locked=True, of=Permit)
    ))
    for permit in due:
        result.permits += 1
        cursor = permit.next_event_at
        # Several events may be due at once (after an outage): handle them in order, each from
        # the state the previous one left, so an expiry is followed by its end of grace.
        while cursor is not None and cursor <= now:
            pending = [e for e in permit_events(permit) if cursor <= e.at <= now]
            if not pending:
                cursor = next_after(permit_events(permit), now)
                break
            _permit_event(session, permit, pending[0], now, result)
            cursor = next_after(permit_events(permit), pending[0].at)
        permit.next_event_at = cursor
    return len(due)


def _requeue(session: Session, now: datetime, result: SweepResult) -> int:
    """Outbox rows whose job was lost (Redis flushed, worker killed) go back on the queue."""
    lease = timedelta(seconds=current_app.config["DELIVERY_LEASE_SECONDS"])
    stale = list(session.scalars(
        select(Notification.id)
        .where(Notification.delivered_at.is_(None), Notification.failed_at.is_(None),
               Notification.enqueued_at <= now - lease)
        .order_by(Notification.id).limit(BATCH * 4)
    ))
    if stale:
        session.execute(update(Notification).where(Notification.id.in_(stale)).values(enqueued_at=now)
                        .execution_options(synchronize_session=False))
        for notification_id in stale:
            enqueue_after_commit(session, "jobs.notify.deliver", notification_id)
    result.requeued += len(stale)
    return len(stale)


def sweep_once(session: Session, now: datetime) -> tuple[SweepResult, bool]:
    """One batch of each kind; returns (what it did, whether more may be due). Never commits."""
    result = SweepResult()
    more = _sweep_cases(session, now, result) == BATCH
    more |= _sweep_permits(session, now, result) == BATCH
    more |= _requeue(session, now, result) == BATCH * 4
    return result, more


def run(now: datetime | None = None) -> str:
    """The rq job and the CLI: batches, each its own transaction, until nothing is due."""
    from workflow import db

    from .context import app_context

    total = SweepResult()
    with app_context():
        now = now or utcnow()
        with db.new_session() as session:
            for _ in range(10_000):
                result, more = sweep_once(session, now)
                session.commit()
                total.add(result)
                if not more:
                    break
    log.info("sweep as of %s: %s", now.isoformat(), total)
    return str(total)

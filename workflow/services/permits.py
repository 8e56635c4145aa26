"""Changing a permit's state: the permit's counterpart of `engine.fire`.

Same discipline as for cases: authorise in here (role and jurisdiction), check the version the
caller saw, trigger the shared machine, write the event in the caller's transaction, never
commit.
"""
from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import bindparam, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import NO_VALUE, set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from ..audit_chain import seal_event
from ..read_only import refuse_auditors
from ..deadlines import next_after, permit_events
from ..engine import in_jurisdiction, is_member
from ..errors import Conflict, Forbidden, Invalid, NotFound
from ..metrics import counted_transitions
from ..models import Permit, PermitEvent, User, utcnow
from ..states.permit import PROCESS, SYSTEM
from ..text import normalize

MAX_REASON = 5000


def get_by_number(session: Session, number: str) -> Permit:
    permit = session.scalar(select(Permit).where(Permit.number == number.strip()))
    if permit is None:
        raise NotFound(_("No permit with this number."))
    return permit


def _may(user: User, permit: Permit, role: str) -> bool:
    return (
        role in user.roles
        and in_jurisdiction(user, permit)  # type: ignore[arg-type]  (same province/county fields)
        and permit.organization_id not in user.organization_ids
    )


def allowed_actions(permit: Permit, user: User) -> list[str]:
    names: list[str] = []
    for rule in PROCESS.rules:
        if rule.source == permit.state and rule.role != SYSTEM and rule.action not in names:
            if _may(user, permit, rule.role):
                names.append(rule.action)
    return names


@counted_transitions("permit")  # workflow_transitions_total{kind="permit", action, outcome}
def fire(
    session: Session, permit: Permit, action: str, actor: User | None, *, reason: str | None = None,
    version: int | None = None, now: datetime | None = None, valid_until: datetime | None = None,
    case_id: int | None = None, flush: bool = True,
) -> PermitEvent:
    """Run `action` on `permit` for `actor` (None: the system). `valid_until` goes with `renew`.

    flush=False leaves the writes to the caller, which fires many (the sweep's expiries) and then
    calls `write_fired` once: the permits' UPDATEs and the events' INSERTs go together rather
    than as two round trips per permit."""
    if not isinstance(action, str) or action not in PROCESS.actions:
        raise Invalid(_("Unknown action."), {"action": _("Unknown action.")})
    refuse_auditors(actor)
    if actor is not None and not actor.roles & PROCESS.roles_for_action(action):
        raise Forbidden(_("Your roles do not allow this action."))
    if version is not None and version != permit.version:
        raise Conflict(_("This permit was changed by someone else; reload it and try again."))
    rules = PROCESS.rules_for(action, permit.state)
    if not rules:
        raise Conflict(_("This action is not possible in the permit's current state."))
    if actor is None:
        rule, role = rules[0], SYSTEM
    else:
        usable = [r for r in rules if _may(actor, permit, r.role)]
        if not usable:
            raise Forbidden(_("You may not take this action on this permit."))
        rule, role = usable[0], usable[0].role
    text = normalize(reason) if isinstance(reason, str) else ""
    if rule.comment_required and not text:
        raise Invalid(_("A reason is required."), {"reason": _("A reason is required.")})
    if len(text) > MAX_REASON:
        raise Invalid(_("The reason is too long."), {"reason": _("The reason is too long.")})
    now = now or utcnow()
    from_state = permit.state
    try:
        if valid_until is not None:
            permit.valid_until = valid_until
        permit.last_seq += 1
        PROCESS.fire(permit, action, session=session, actor=actor, now=now)
        permit.next_event_at = next_after(permit_events(permit), now)
        event = PermitEvent(
            permit=permit, permit_id=permit.id, seq=permit.last_seq, at=now,
            actor_id=actor.id if actor else None, role=role, action=action, from_state=from_state,
            to_state=permit.state, reason=text or None, valid_until=permit.valid_until, case_id=case_id,
        )
        seal_event(permit, event)
        session.add(event)
        if flush:
            session.flush()
    except (StaleDataError, IntegrityError) as exc:
        raise Conflict(_("This permit was changed by someone else; reload it and try again.")) from exc
    return event


@functools.cache
def _permit_columns() -> dict[str, str]:
    """Attribute name → column name, for every column of the Permit mapper."""
    return {attr.key: attr.columns[0].name for attr in inspect(Permit).column_attrs}


@functools.cache
def _permit_update():  # type: ignore[no-untyped-def]
    """UPDATE permits SET … WHERE id = :permit_id AND version = :version_read; the SET clause
    comes from the parameters' keys (one compiled statement per set of changed columns)."""
    table = Permit.__table__
    return table.update().where(table.c.id == bindparam("permit_id"), table.c.version == bindparam("version_read"))


def write_fired(session: Session, fired: Iterable[Permit]) -> None:
    """Write permits changed by `fire(..., flush=False)`, then flush their events.

    What a flush of each would write (the changed columns, the version + 1, under the same
    `WHERE version = ?` check; no row means someone else's change won: StaleDataError), but as
    one executemany per set of changed columns, which psycopg sends pipelined: the unit of work
    never batches UPDATEs of a versioned mapper. The ORM is then told the rows hold these
    values, so the flush that follows only INSERTs the events, together.
    """
    columns = _permit_columns()
    groups: dict[tuple[str, ...], list[tuple[Permit, dict[str, Any]]]] = defaultdict(list)
    for permit in fired:
        state = inspect(permit)
        changed = {
            key: state.dict[key] for key, old in state.committed_state.items()
            if key in columns and (old is NO_VALUE or old != state.dict[key])
        }
        if changed:
            changed["version"] = permit.version + 1
            groups[tuple(sorted(changed))].append((permit, changed))
    connection = session.connection()
    for rows in groups.values():
        result = connection.execute(_permit_update(), [
            {**{columns[key]: value for key, value in changed.items()}, "permit_id": permit.id,
             "version_read": permit.version}
            for permit, changed in rows
        ])
        if result.rowcount != len(rows):
            raise StaleDataError(f"{len(rows) - result.rowcount} of {len(rows)} permits changed meanwhile")
        for permit, changed in rows:
            for key, value in changed.items():
                set_committed_value(permit, key, value)
    session.flush()


def history(session: Session, permit: Permit) -> list[PermitEvent]:
    return list(session.scalars(select(PermitEvent).where(PermitEvent.permit_id == permit.id).order_by(PermitEvent.seq)))


def may_see_history(user: User, permit: Permit) -> bool:
    return is_member(user, permit) or (user.is_staff and in_jurisdiction(user, permit))  # type: ignore[arg-type]

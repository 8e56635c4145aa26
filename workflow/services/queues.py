"""Work queues: the cases a user can act on now, oldest first.

Keyset pagination on (state_entered_at, id) keeps every page as cheap as the first, which
OFFSET would not once a province has tens of thousands of cases.
"""
from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import Select, and_, exists, false, func, or_, select, tuple_
from sqlalchemy.orm import Session, selectinload

from .. import registry
from ..db import is_row_id
from ..errors import Invalid
from ..models import AuditEntry, Case, User

MAX_LIMIT = 200


def _encode(case: Case) -> str:
    raw = json.dumps([case.state_entered_at.isoformat(), case.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple[datetime, int]:
    """The keyset a cursor names; anything but what `_encode` writes is a 422 (an id past the
    column, Infinity or a deep nest among them: each was a 500)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, case_id = json.loads(raw)
        moment = datetime.fromisoformat(at)
    except (ValueError, TypeError, RecursionError) as exc:
        raise Invalid(_("Invalid cursor."), {"cursor": _("Invalid cursor.")}) from exc
    if not is_row_id(case_id):
        raise Invalid(_("Invalid cursor."), {"cursor": _("Invalid cursor.")})
    return moment, case_id


def actionable(user: User, kind: str | None = None, state: str | None = None) -> Select[Any]:
    """A query of the cases `user` can act on now, mirroring the engine's checks in SQL."""
    clauses = []
    kinds = [kind] if kind else list(registry.PROCESSES)
    member_of = list(user.organization_ids)
    for k in kinds:
        process = registry.get(k)
        for role in user.roles:
            states = process.states_for_role(role)
            if state:
                states = states & {state}
            if not states:
                continue
            where = [Case.kind == k, Case.state.in_(sorted(states))]
            if role == "applicant":
                where.append(Case.organization_id.in_(member_of) if member_of else false())
            else:
                if user.province_id is not None:
                    where.append(Case.province_id == user.province_id)
                if user.county_id is not None:
                    where.append(Case.county_id == user.county_id)
                if member_of:
                    where.append(Case.organization_id.not_in(member_of))
                decision_states = {r.source for r in process.rules if r.role == role and r.decides}
                if decision_states:
                    recommended = exists().where(
                        AuditEntry.case_id == Case.id,
                        AuditEntry.actor_id == user.id,
                        AuditEntry.action.in_(process.recommend_actions),
                    )
                    where.append(or_(Case.state.not_in(decision_states), ~recommended))
            clauses.append(and_(*where))
    return select(Case).where(or_(*clauses) if clauses else false())


def page(
    session: Session, user: User, *, kind: str | None = None, state: str | None = None,
    limit: int = 50, cursor: str | None = None,
) -> tuple[list[Case], str | None]:
    if kind and kind not in registry.PROCESSES:
        raise Invalid(_("Unknown kind."), {"kind": _("Unknown kind.")})
    limit = max(1, min(int(limit), MAX_LIMIT))
    query = actionable(user, kind, state).order_by(Case.state_entered_at, Case.id)
    if cursor:
        at, case_id = _decode(cursor)
        query = query.where(tuple_(Case.state_entered_at, Case.id) > tuple_(at, case_id))
    query = query.options(selectinload(Case.documents), selectinload(Case.permit))
    rows = list(session.scalars(query.limit(limit + 1)))
    next_cursor = _encode(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], next_cursor


def counts(session: Session, user: User) -> dict[tuple[str, str], int]:
    """(kind, state) → number of cases waiting for the user: the numbers on the queue tabs."""
    sub = actionable(user).subquery()
    rows = session.execute(
        select(sub.c.kind, sub.c.state, func.count()).group_by(sub.c.kind, sub.c.state)
    )
    return {(k, s): n for k, s, n in rows}

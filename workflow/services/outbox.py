"""Writing notification rows that can be created only once.

Each row carries a key naming its subject, kind, due moment and recipient; the insert skips
keys that exist, so a sweep run twice, or two sweeps at once, create nothing twice.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ..models import Membership, Notification, User, UserRole


def applicants_of(session: Session, organization_id: int) -> list[int]:
    return list(session.scalars(
        select(Membership.user_id)
        .join(UserRole, UserRole.user_id == Membership.user_id)
        .where(Membership.organization_id == organization_id, UserRole.role == "applicant")
    ))


def staff_holding(session: Session, roles: Iterable[str], *, province_id: int, county_id: int | None,
                  organization_id: int) -> list[int]:
    """Holders of `roles` whose jurisdiction covers the place, minus the organisation's own members."""
    members = select(Membership.user_id).where(Membership.organization_id == organization_id)
    query = (
        select(User.id).distinct()
        .join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role.in_(list(roles)), User.is_active_flag.is_(True))
        .where(or_(User.province_id.is_(None), User.province_id == province_id))
        .where(or_(User.county_id.is_(None), User.county_id == county_id))
        .where(User.id.not_in(members))
    )
    return list(session.scalars(query))


def add(session: Session, *, user_ids: Iterable[int], kind: str, key: str, now: datetime,
        payload: dict[str, Any], case_id: int | None = None, permit_id: int | None = None) -> list[int]:
    """Insert one row per recipient unless its key exists; returns the ids actually inserted."""
    rows = [
        {"user_id": uid, "kind": kind, "key": f"{key}:{uid}", "payload": payload, "created_at": now,
         "enqueued_at": now, "attempts": 0, "case_id": case_id, "permit_id": permit_id}
        for uid in sorted(set(user_ids))
    ]
    if not rows:
        return []
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    table = Notification.__table__
    statement = insert(table).values(rows).on_conflict_do_nothing(index_elements=["key"]).returning(table.c.id)
    return list(session.execute(statement).scalars())

"""Writing notification rows that can be created only once.

Each row carries a key naming its subject, kind, due moment and recipient; the insert skips
keys that exist, so a sweep run twice, or two sweeps at once, create nothing twice.

Recipients come one case at a time (`applicants_of`, `staff_holding`) or a batch at a time
(`applicants_of_many`, `Staff`), which the sweep uses: a query per batch, not per event.
"""
from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import bindparam, or_, select, text
from sqlalchemy.orm import Session

from ..models import Membership, Notification, User, UserRole
from ..models.types import UTCDateTime


def applicants_of(session: Session, organization_id: int) -> list[int]:
    return applicants_of_many(session, [organization_id]).get(organization_id, [])


def applicants_of_many(session: Session, organization_ids: Iterable[int]) -> dict[int, list[int]]:
    """organisation → its members holding the applicant role, for many organisations in one query."""
    ids = sorted(set(organization_ids))
    found: dict[int, list[int]] = defaultdict(list)
    if not ids:
        return found
    rows = session.execute(
        select(Membership.organization_id, Membership.user_id)
        .join(UserRole, UserRole.user_id == Membership.user_id)
        .where(Membership.organization_id.in_(ids), UserRole.role == "applicant")
    )
    for organization_id, user_id in rows:
        found[organization_id].append(user_id)
    return found


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


@dataclass(frozen=True)
class _Holder:
    user_id: int
    role: str
    province_id: int | None
    county_id: int | None


class Staff:
    """Active holders of some roles, read once, answering `staff_holding` for many places.

    Staff are few and users many (every applicant is one), so the sweep reads the staff once
    and matches jurisdictions in Python; `exclude_members` then asks, in one query per batch,
    which of them belong to the batch's organisations (nobody is reminded as staff of their
    own organisation's case).
    """

    def __init__(self, session: Session, roles: Iterable[str]) -> None:
        self.roles = frozenset(roles)
        rows = session.execute(
            select(User.id, UserRole.role, User.province_id, User.county_id)
            .join(UserRole, UserRole.user_id == User.id)
            .where(UserRole.role.in_(sorted(self.roles)), User.is_active_flag.is_(True))
            .order_by(User.id)
        )
        self._holders = [_Holder(*row) for row in rows]
        self._cache: dict[tuple[frozenset[str], int, int | None], tuple[int, ...]] = {}

    def holding(self, roles: Collection[str], *, province_id: int, county_id: int | None) -> tuple[int, ...]:
        """Holders of `roles` whose jurisdiction covers (province, county), members not yet removed."""
        key = (frozenset(roles), province_id, county_id)
        found = self._cache.get(key)
        if found is None:
            missing = key[0] - self.roles
            assert not missing, f"roles {sorted(missing)} were not read"
            found = self._cache[key] = tuple(sorted({
                h.user_id for h in self._holders
                if h.role in key[0] and h.province_id in (None, province_id) and h.county_id in (None, county_id)
            }))
        return found

    def members(self, session: Session, organization_ids: Iterable[int]) -> set[tuple[int, int]]:
        """(organisation, user) pairs where one of these staff is a member of one of the organisations."""
        staff = sorted({h.user_id for h in self._holders})
        orgs = sorted(set(organization_ids))
        if not staff or not orgs:
            return set()
        return {(o, u) for o, u in session.execute(
            select(Membership.organization_id, Membership.user_id)
            .where(Membership.user_id.in_(staff), Membership.organization_id.in_(orgs))
        )}


@dataclass
class Note:
    """One notification to several recipients: one row each, keyed `{key}:{user_id}`."""

    user_ids: Iterable[int]
    kind: str
    key: str
    payload: dict[str, Any]
    case_id: int | None = None
    permit_id: int | None = None


def add(session: Session, *, user_ids: Iterable[int], kind: str, key: str, now: datetime,
        payload: dict[str, Any], case_id: int | None = None, permit_id: int | None = None) -> list[int]:
    """Insert one row per recipient unless its key exists; returns the ids actually inserted."""
    return add_many(session, [Note(user_ids, kind, key, payload, case_id, permit_id)], now=now)


def add_many(session: Session, notes: Iterable[Note], *, now: datetime) -> list[int]:
    """Rows for many notes in one statement; ids of the rows actually inserted."""
    rows = [
        (uid, note.kind, f"{note.key}:{uid}", note.payload, note.case_id, note.permit_id)
        for note in notes
        for uid in sorted(set(note.user_ids))
    ]
    if not rows:
        return []
    if session.get_bind().dialect.name == "postgresql":
        # One statement with one array per column: its text and its six parameters are the same
        # whatever the number of rows, so the driver and the server parse it once, not per page
        # of VALUES.
        users, kinds, keys, payloads, cases, permits = zip(*rows)
        return list(session.execute(_INSERT_UNNEST, {
            "users": pg_array(users), "kinds": pg_array(kinds), "keys": pg_array(keys),
            "payloads": pg_array([json.dumps(p) for p in payloads]), "cases": pg_array(cases),
            "permits": pg_array(permits), "now": now,
        }).scalars())
    from sqlalchemy.dialects.sqlite import insert

    table = Notification.__table__
    statement = insert(table).on_conflict_do_nothing(index_elements=["key"]).returning(table.c.id)
    return list(session.execute(statement, [
        {"user_id": u, "kind": k, "key": key, "payload": p, "created_at": now, "enqueued_at": now, "attempts": 0,
         "case_id": c, "permit_id": pm}
        for u, k, key, p, c, pm in rows
    ]).scalars())


def pg_array(values: Iterable[Any]) -> str:
    """A PostgreSQL array literal ('{1,NULL,"a\\"b"}') of ints, bools, strings, datetimes and None.

    Passed as one string and cast in SQL (CAST(:x AS integer[])), a long array costs the server
    one parse; psycopg's own adaptation of a Python list is several times slower for strings
    (and JSON), and the sweep sends ten thousand of them.
    """
    out = []
    for v in values:
        if v is None:
            out.append("NULL")
        elif isinstance(v, bool):
            out.append("t" if v else "f")
        elif isinstance(v, int):
            out.append(str(v))
        elif isinstance(v, datetime):
            out.append((v if v.tzinfo else v.replace(tzinfo=timezone.utc)).isoformat())
        elif isinstance(v, str):
            out.append('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"')
        else:
            raise TypeError(f"no array literal for {type(v).__name__}")
    return "{" + ",".join(out) + "}"


_INSERT_UNNEST = text("""
    INSERT INTO notifications (user_id, kind, key, payload, created_at, enqueued_at, attempts, case_id, permit_id)
    SELECT t.user_id, t.kind, t.key, t.payload, :now, :now, 0, t.case_id, t.permit_id
    FROM unnest(CAST(:users AS integer[]), CAST(:kinds AS varchar[]), CAST(:keys AS varchar[]),
                CAST(:payloads AS jsonb[]), CAST(:cases AS integer[]), CAST(:permits AS integer[]))
         AS t(user_id, kind, key, payload, case_id, permit_id)
    ON CONFLICT (key) DO NOTHING
    RETURNING id
""").bindparams(bindparam("now", type_=UTCDateTime()))

"""Work queues: the cases a user can act on now, oldest first.

A queue is a few (kind, state) lists, one per state in which one of the user's roles has
something to do, each within the user's jurisdiction. Each list is one range of the index
(province, kind, state, state_entered_at, id) — or its county or national twin — already in
queue order, so a page is a merge of those ranges: PostgreSQL reads limit + 1 index entries from
each (MergeAppend over index-only scans), whatever the depth, and only the page's rows from the
table. Keyset pagination on (state_entered_at, id) keeps every page as cheap as the first, which
OFFSET would not once a province has tens of thousands of cases. The counts on the queue tabs
are one index-only count per list for the same reason.

The lists are built from the process tables, as the engine checks them (role, jurisdiction,
separation of duties), so the queue never offers what `engine.fire` would refuse.
"""
from __future__ import annotations

import base64
import json
from collections import defaultdict
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import ColumnElement, Select, and_, exists, false, func, or_, select, true, tuple_, union_all
from sqlalchemy.orm import Session, lazyload, selectinload

from .. import registry
from ..db import is_row_id
from ..errors import Invalid
from ..models import AuditEntry, Case, Grant, Organization, User

MAX_LIMIT = 200


def _encode(case: Any) -> str:
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


def lists(user: User, kind: str | None = None, state: str | None = None) -> list[list[ColumnElement[bool]]]:
    """The WHERE clauses of each (kind, state) list the user works, mirroring the engine's checks.

    Every list starts with equalities on kind and state and, for staff, on the province (or
    county): the leading columns of a queue index. Roles that share a (kind, state) — an applicant
    who is also finance, say — share one list with their conditions OR-ed, so no case is listed
    twice.
    """
    kinds = [kind] if kind else list(registry.PROCESSES)
    member_of = list(user.organization_ids)
    grouped: dict[tuple[str, str], list[list[ColumnElement[bool]]]] = defaultdict(list)
    for k in kinds:
        process = registry.get(k)
        for role in sorted(user.roles):
            states = process.states_for_role(role)
            if state:
                states = states & {state}
            decision_states = {r.source for r in process.rules if r.role == role and r.decides}
            for s in sorted(states):
                where: list[ColumnElement[bool]] = []
                if role == "applicant":
                    where.append(Case.organization_id.in_(member_of) if member_of else false())
                else:
                    if user.county_id is not None:
                        where.append(Case.county_id == user.county_id)
                    if user.province_id is not None:
                        where.append(Case.province_id == user.province_id)
                    if member_of:
                        where.append(Case.organization_id.not_in(member_of))
                    if s in decision_states:
                        # Whoever recommended on the case may not decide it (separation of duties).
                        where.append(~exists().where(
                            AuditEntry.case_id == Case.id,
                            AuditEntry.actor_id == user.id,
                            AuditEntry.action.in_(sorted(process.recommend_actions)),
                        ))
                grouped[(k, s)].append(where)
    result = []
    for (k, s), alternatives in grouped.items():
        head = [Case.kind == k, Case.state == s]
        if len(alternatives) == 1:
            result.append(head + alternatives[0])
        else:
            result.append(head + [or_(*(and_(*a) if a else true() for a in alternatives))])
    return result


def actionable(user: User, kind: str | None = None, state: str | None = None) -> Select[Any]:
    """A query of the cases `user` can act on now (every list at once, in no particular order)."""
    wheres = lists(user, kind, state)
    return select(Case).where(or_(*(and_(*w) for w in wheres)) if wheres else false())


def page_query(user: User, *, kind: str | None = None, state: str | None = None, limit: int = 50,
               after: tuple[datetime, int] | None = None) -> Select[Any] | None:
    """The statement of one page: the first limit + 1 cases after `after` (None: nothing to do)."""
    top = _top(user, kind, state, limit, after)
    if top is None:
        return None
    return select(Case).join(top, Case.id == top.c.id).order_by(top.c.state_entered_at, top.c.id)


def _top(user: User, kind: str | None, state: str | None, limit: int,
         after: tuple[datetime, int] | None) -> Any:
    """(id, state_entered_at) of the page's limit + 1 cases: the merge of the lists' ranges."""
    parts = []
    for where in lists(user, kind, state):
        part = select(Case.id, Case.state_entered_at).where(*where)
        if after is not None:
            part = part.where(tuple_(Case.state_entered_at, Case.id) > tuple_(*after))
        parts.append(part.order_by(Case.state_entered_at, Case.id).limit(limit + 1))
    if not parts:
        return None
    if len(parts) > 1:
        # SQLite refuses ORDER BY and LIMIT on a part of a UNION unless the part is a subquery
        # of its own; PostgreSQL runs either form the same way (an index range under a Limit).
        merged = union_all(*(select(*part.subquery().c) for part in parts)).subquery("lists")
    else:
        merged = parts[0].subquery("lists")
    return select(merged.c.id, merged.c.state_entered_at) \
        .order_by(merged.c.state_entered_at, merged.c.id).limit(limit + 1).subquery("top")


def _checked(kind: str | None, limit: int) -> int:
    if kind and kind not in registry.PROCESSES:
        raise Invalid(_("Unknown kind."), {"kind": _("Unknown kind.")})
    return max(1, min(int(limit), MAX_LIMIT))


def _cut(rows: list[Any], limit: int) -> tuple[list[Any], str | None]:
    """The page's `limit` rows, and the cursor after them when the query found one more."""
    return rows[:limit], _encode(rows[limit - 1]) if len(rows) > limit else None


def page(
    session: Session, user: User, *, kind: str | None = None, state: str | None = None,
    limit: int = 50, cursor: str | None = None,
) -> tuple[list[Case], str | None]:
    """One page of the queue after `cursor`, as the API shows it: with documents and permits."""
    limit = _checked(kind, limit)
    query = page_query(user, kind=kind, state=state, limit=limit, after=_decode(cursor) if cursor else None)
    if query is None:
        return [], None
    # The items name the organisation by id: its row, joined by default, is not read.
    query = query.options(selectinload(Case.documents), selectinload(Case.permit), lazyload(Case.organization))
    return _cut(list(session.scalars(query)), limit)


# What the queue screen lists of each case.
ROW_COLUMNS = (Case.id, Case.kind, Case.state, Case.state_entered_at, Case.due_at, Case.overdue,
               Organization.name.label("organization_name"))


def rows_query(user: User, *, state: str | None = None, limit: int = 50,
               after: tuple[datetime, int] | None = None) -> Select[Any] | None:
    """`page_query` for `page_rows`: the same page, as ROW_COLUMNS."""
    top = _top(user, None, state, limit, after)
    if top is None:
        return None
    return (select(*ROW_COLUMNS).join(top, Case.id == top.c.id)
            .join(Organization, Organization.id == Case.organization_id)
            .order_by(top.c.state_entered_at, top.c.id))


def page_rows(
    session: Session, user: User, *, state: str | None = None, limit: int = 50, cursor: str | None = None,
) -> tuple[list[Any], str | None]:
    """`page` as plain rows of ROW_COLUMNS, for the queue screen: the same cases in the same order,
    without building a case and an organisation object per row (a fifth of the page's time)."""
    limit = _checked(None, limit)
    query = rows_query(user, state=state, limit=limit, after=_decode(cursor) if cursor else None)
    if query is None:
        return [], None
    return _cut(list(session.execute(query)), limit)


def prime_grants(session: Session, cases: list[Case]) -> list[Grant]:
    """Load the grant rows and tranches of a page's grant requests in one query: serialising the
    page and listing each case's actions (which ask about tranches) then ask nothing per case.
    The caller keeps the list while it serialises: the session holds its objects weakly."""
    ids = [c.id for c in cases if c.kind == "grant_request"]
    if not ids:
        return []
    return list(session.scalars(select(Grant).where(Grant.case_id.in_(ids)).options(selectinload(Grant.tranches))))


def counts_query(user: User) -> Select[Any] | None:
    """(kind, state, count) of each list: one index-only count per list, in one statement."""
    parts = [select(Case.kind, Case.state, func.count()).where(*where).group_by(Case.kind, Case.state)
             for where in lists(user)]
    if not parts:
        return None
    return union_all(*parts) if len(parts) > 1 else parts[0]  # type: ignore[return-value]


def counts(session: Session, user: User) -> dict[tuple[str, str], int]:
    """(kind, state) → number of cases waiting for the user: the numbers on the queue tabs."""
    query = counts_query(user)
    if query is None:
        return {}
    return {(k, s): n for k, s, n in session.execute(query)}


def case_list_query(user: User, *, state: str | None = None, org_key: str = "", before: int | None = None,
                    limit: int = 25) -> Select[Any]:
    """The auditors' list of submitted cases in the reader's jurisdiction, newest first, after
    case `before` (keyset on id): a range of (province, id) or (province, state, id)."""
    query = select(Case).where(Case.submitted_at.is_not(None))
    if user.province_id is not None:
        query = query.where(Case.province_id == user.province_id)
    if user.county_id is not None:
        query = query.where(Case.county_id == user.county_id)
    if state:
        query = query.where(Case.state == state)
    if org_key:
        query = query.join(Organization).where(Organization.name_key.contains(org_key, autoescape=True))
    if before is not None:
        query = query.where(Case.id < before)
    return query.order_by(Case.id.desc()).limit(limit + 1)

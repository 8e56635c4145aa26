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

The statements depend on a user only through their shape (roles; whether a province, a county,
organisations are set): the values are named parameters, so a statement is built once per shape
and kept (`_bound`), and each web worker compiles the common shapes before its first request
(`precompile`, from workflow.warm_up). The API's page reads plain rows and makes objects only of
the grants the tranche rules look up (`api_page`).
"""
from __future__ import annotations

import base64
import functools
import json
from collections import defaultdict, namedtuple
from datetime import datetime, timezone
from typing import Any, NamedTuple

from flask_babel import gettext as _
from sqlalchemy import (
    ColumnElement, Integer, Select, String, and_, any_, bindparam, cast, exists, false, func, or_, select, true,
    tuple_, union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, lazyload, selectinload

from .. import registry, rows
from ..db import id_array, is_row_id
from ..errors import Invalid
from ..models import STAFF_ROLES, AuditEntry, Case, Document, Grant, Organization, Permit, Tranche, User

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


class Shape(NamedTuple):
    """What decides the form of a user's queue statements: the roles, and which of province,
    county and organisations they have, not their values (those are parameters, see `lists`).
    It stands in for a user when a statement is built for every user of its shape."""

    roles: frozenset[str]
    province: bool
    county: bool
    member: bool

    # What lists() reads of a user: placeholders, replaced by each execution's parameters.
    @property
    def id(self) -> int:
        return 0

    @property
    def organization_ids(self) -> frozenset[int]:
        return frozenset({0}) if self.member else frozenset()

    @property
    def province_id(self) -> int | None:
        return 0 if self.province else None

    @property
    def county_id(self) -> int | None:
        return 0 if self.county else None

    @property
    def is_staff(self) -> bool:
        return bool(self.roles & STAFF_ROLES)


def shape(user: User | Shape) -> Shape:
    return Shape(frozenset(user.roles), user.province_id is not None, user.county_id is not None,
                 bool(user.organization_ids))


_SHAPE_AFTER = {True: (datetime(2000, 1, 1, tzinfo=timezone.utc), 1), False: (datetime(2000, 1, 1), 1)}
# A keyset before every case. A list's first page is asked for as the page after it, so the first
# and the later pages are one statement: compiled, prepared and planned once, and warmed up once
# (queues.precompile) for all of them; as two, each later page's first request in a worker paid
# for its own (20-25 ms at the 99th percentile of bench/queues.py). The index range is the same.
BEFORE_ALL = (datetime(1, 1, 1, tzinfo=timezone.utc), 0)


@functools.lru_cache(maxsize=256)
def _statement(what: str, who: Shape, kind: str | None, state: str | None,
               after_aware: bool | None) -> Select[Any] | None:
    """The statement `what` for every user of shape `who`, built once and kept: each role and
    jurisdiction needs about twenty (tabs, later pages, API kinds, counts); 256 of them take
    ~6 MB (a statement per user would not do: a director's is ~75 KB while being built)."""
    after = None if after_aware is None else _SHAPE_AFTER[after_aware]
    if what == "rows":
        return rows_query(who, state=state, after=after)  # type: ignore[arg-type]
    if what == "api":
        return api_page_query(who, kind=kind, after=after)  # type: ignore[arg-type]
    return counts_query(who)  # type: ignore[arg-type]


def _bound(what: str, user: User, *, kind: str | None = None, state: str | None = None, limit: int = 0,
           after: tuple[datetime, int] | None = None) -> tuple[Select[Any] | None, dict[str, Any]]:
    """The statement `what` ("rows": rows_query, "api": api_page_query, "counts": counts_query)
    of `user`'s shape, built once and kept, and the parameters of this execution: the user's
    values, the number of rows, the cursor's keyset. Building a director's page statement and its
    cache key took ~1.5 ms of a request, and the screen builds two (the page, the tab counts).
    Every execution passes the same parameter names, so a shape has one compiled form."""
    if state is not None and state not in _known_states():
        return None, {}  # no list has it (and a tab's name from the address is not kept)
    if what != "counts" and after is None:
        after = BEFORE_ALL  # the first page is the page after nothing: one statement for every page
    aware = None if after is None else after[0].tzinfo is not None
    statement = _statement(what, shape(user), kind, state, aware)
    values = {"member_of": sorted(user.organization_ids), "county_id": user.county_id,
              "province_id": user.province_id, "actor_id": user.id, "rows_wanted": limit + 1,
              "after_at": after[0] if after else None, "after_id": after[1] if after else None}
    return statement, {name: values[name] for name in _parameters(what, after is not None)}


@functools.cache
def _known_states() -> frozenset[str]:
    return frozenset(s for process in registry.PROCESSES.values() for s in process.states)


def _parameters(what: str, later: bool) -> list[str]:
    """The names of the parameters `_bound` passes: the compiled statement cache knows a statement
    by its form and these names (queues.precompile compiles each form with them)."""
    names = ["actor_id", "county_id", "member_of", "province_id"]
    if what != "counts":
        names.append("rows_wanted")
    if later:
        names += ["after_at", "after_id"]
    return sorted(names)


def lists(user: User, kind: str | None = None, state: str | None = None) -> list[list[ColumnElement[bool]]]:
    """The WHERE clauses of each (kind, state) list the user works, mirroring the engine's checks.

    Every list starts with equalities on kind and state and, for staff, on the province (or
    county): the leading columns of a queue index. Roles that share a (kind, state) — an applicant
    who is also finance, say — share one list with their conditions OR-ed, so no case is listed
    twice.
    """
    kinds = [kind] if kind else list(registry.PROCESSES)
    member_of = sorted(user.organization_ids)
    # The user's values are named parameters, so a statement built for one user serves every user
    # of the same shape (`_bound`) with that user's values.
    orgs = bindparam("member_of", member_of, expanding=True)
    county, province, actor = (bindparam("county_id", user.county_id), bindparam("province_id", user.province_id),
                               bindparam("actor_id", user.id))
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
                    where.append(Case.organization_id.in_(orgs) if member_of else false())
                else:
                    if user.county_id is not None:
                        where.append(Case.county_id == county)
                    if user.province_id is not None:
                        where.append(Case.province_id == province)
                    if member_of:
                        where.append(Case.organization_id.not_in(orgs))
                    if s in decision_states:
                        # Whoever recommended on the case may not decide it (separation of duties).
                        where.append(~exists().where(
                            AuditEntry.case_id == Case.id,
                            AuditEntry.actor_id == actor,
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
    """(id, state_entered_at) of the page's limit + 1 cases: the merge of the lists' ranges.

    The cursor's keyset (after_at, after_id, typed by their values as literals would be) and the
    number of rows (rows_wanted) are named parameters, like the user's values in `lists`."""
    parts = []
    rows_wanted = bindparam("rows_wanted", limit + 1)
    if after is not None:
        after_params = (bindparam("after_at", after[0]), bindparam("after_id", after[1]))
    for where in lists(user, kind, state):
        part = select(Case.id, Case.state_entered_at).where(*where)
        if after is not None:
            part = part.where(tuple_(Case.state_entered_at, Case.id) > tuple_(*after_params))
        parts.append(part.order_by(Case.state_entered_at, Case.id).limit(rows_wanted))
    if not parts:
        return None
    if len(parts) > 1:
        # Each range as a subquery of its own: SQLite refuses a parenthesised SELECT … LIMIT as a
        # member of a UNION, and PostgreSQL plans the same MergeAppend over the ranges either way.
        ranges = [part.subquery() for part in parts]
        merged = union_all(*(select(r.c.id, r.c.state_entered_at) for r in ranges)).subquery("lists")
    else:
        merged = parts[0].subquery("lists")
    return select(merged.c.id, merged.c.state_entered_at) \
        .order_by(merged.c.state_entered_at, merged.c.id).limit(rows_wanted).subquery("top")


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


class QueuedCase:
    """A case of an API queue page as `serialize.case_json` and `engine.allowed_actions` read it:
    its columns, its documents (rows of DOCUMENT_COLUMNS) and its permit's number, and nothing
    else. The page is only serialised, so no Case, Document or Permit object is made for it (that
    was half the page's CPU), nor a Grant or Tranche: `grant` is the grant's row with its
    tranches' rows (QueuedGrant), which the tranche rules and grant_json read as they would the
    objects (grant_request.grant_of)."""

    __slots__ = ("id", "kind", "state", "version", "organization_id", "province_id", "county_id", "data",
                 "created_at", "updated_at", "due_at", "submitted_at", "state_entered_at", "documents", "permit",
                 "grant")

    def __init__(self, values: Any, documents: list[Any], permit_number: str | None, has_permit: bool,
                 grant: Any = None) -> None:
        # One unpacking, not a setattr per column (a page makes fifty): CASE_ATTRIBUTES' order.
        (self.id, self.kind, self.state, self.version, self.organization_id, self.province_id, self.county_id,
         self.data, self.created_at, self.updated_at, self.due_at, self.submitted_at,
         self.state_entered_at) = values[:_N_CASE]
        self.documents = documents
        self.permit = PermitNumber(permit_number) if has_permit else None
        self.grant = grant


@functools.cache
def _record(cls: type, *extra: str) -> Any:
    """A read-only record of `cls`'s attributes in its columns' order, then `extra`: what a
    serialised page reads of a row, for a fraction of what an object of the session costs to
    make, attach and discard (a finance officer's page has about 170 grants and tranches)."""
    return namedtuple(f"Queued{cls.__name__}", [*rows.attributes(cls), *extra])


class PermitNumber(NamedTuple):
    """What case_json reads of a case's permit."""

    number: str | None


# The columns of a queued case (QueuedCase's attributes, in this order) and of its documents.
CASE_ATTRIBUTES = ("id", "kind", "state", "version", "organization_id", "province_id", "county_id", "data",
                   "created_at", "updated_at", "due_at", "submitted_at", "state_entered_at")
DOCUMENT_ATTRIBUTES = ("id", "case_id", "kind", "original_name", "size", "sha256", "uploaded_at", "superseded")
_N_CASE = len(CASE_ATTRIBUTES)


def api_page(
    session: Session, user: User, *, kind: str | None = None, limit: int = 50, cursor: str | None = None,
) -> tuple[list[Any], str | None, list[Any]]:
    """One page of the queue as GET /api/v1/queue serialises it, in three or four statements:
    the page's cases with their permit's number and grant row, their documents, and the tranches
    of its grants. The cases are QueuedCase values, each with its grant's record and its
    tranches' (nothing is added to the session). Returns the cases, the next cursor, and the
    objects to hold while the page is serialised (the ORM's objects on the fallback below:
    the session holds its objects weakly; none otherwise).

    Should the session already hold any of the page's cases, documents, permits, grants or
    tranches (never so in a GET of the API, but possible for a caller with changes pending), the
    ORM's queries answer instead, as they always have: `page` and `prime_grants`."""
    limit = _checked(kind, limit)
    query, params = _bound("api", user, kind=kind, limit=limit, after=_decode(cursor) if cursor else None)
    if query is None:
        return [], None, []
    rows.flush_pending(session)
    connection = session.connection()
    found = connection.execute(query, params).all()
    next_cursor = _encode(found[limit - 1]) if len(found) > limit else None
    found = found[:limit]
    n_case = len(CASE_ATTRIBUTES)
    ids = [row[0] for row in found]
    grant_ids = [row[n_case + 2] for row in found if row[n_case + 2] is not None]
    postgres = connection.dialect.name == "postgresql"
    documents = connection.execute(
        documents_query(postgres), {"case_ids": case_ids_param(ids, postgres)}).all() if ids else []
    tranches = connection.execute(
        tranches_query(postgres), {"case_ids": case_ids_param(grant_ids, postgres)}).all() if grant_ids else []
    held = _held(session)
    if held and (held[Case].intersection(ids) or held[Grant].intersection(grant_ids)
                 or held[Permit].intersection(row[n_case + 1] for row in found if row[n_case + 1] is not None)
                 or held[Document].intersection(d.id for d in documents)
                 or held[Tranche].intersection(t.id for t in tranches)):
        cases, next_cursor = page(session, user, kind=kind, limit=limit, cursor=cursor)
        return cases, next_cursor, prime_grants(session, cases)
    by_case: dict[int, list[Any]] = defaultdict(list)
    for document in documents:
        by_case[document.case_id].append(document)
    tranche_record, grant_record = _record(Tranche), _record(Grant, "tranches")
    by_grant: dict[int, list[Any]] = defaultdict(list)
    for values in tranches:
        by_grant[values.case_id].append(tranche_record._make(values))
    cases = []
    for row in found:
        grant = None
        if row[n_case + 2] is not None:
            grant = grant_record(*row[n_case + 2:], by_grant.get(row[0], []))
        cases.append(QueuedCase(row, by_case.get(row[0], []), row[n_case], row[n_case + 1] is not None, grant))
    return cases, next_cursor, []


def _held(session: Session) -> dict[type, set[Any]]:
    """class -> primary keys of the objects the session holds (usually a handful: the user's):
    one pass over its identity map instead of a look-up per row of the page."""
    found: dict[type, set[Any]] = defaultdict(set)
    for cls, key, _token in session.identity_map.keys():
        found[cls].add(key[0])
    return found


def deciding(user: Any, cases: list[Case]) -> list[Case]:
    """The cases whose actions depend on whether `user` recommended on them: those in a state one
    of the user's roles decides (engine._may_use asks has_recommended for a deciding rule only).
    The API page asks remember_recommendations about these alone: for the rest the answer is
    never read, and the question is not free (finance proposes on every grant of its province,
    so its entries are many; the query took 5 to 45 ms for finance1.tehran on bench_scale)."""
    return [case for case in cases if _decides(frozenset(user.roles), case.kind, case.state)]


@functools.cache
def _decides(roles: frozenset[str], kind: str, state: str) -> bool:
    return any(rule.decides and rule.role in roles for rule in registry.get(kind).rules_from(state))


def api_page_query(user: User, *, kind: str | None = None, limit: int = 50,
                   after: tuple[datetime, int] | None = None) -> Select[Any] | None:
    """`page_query` for `api_page`: the page's cases in queue order, each as CASE_ATTRIBUTES, its
    permit's number and id (NULL: none), and its grant row's columns (rows.columns(Grant); NULLs
    where it has none)."""
    top = _top(user, kind, None, limit, after)
    if top is None:
        return None
    cases, permits, grants = Case.__table__, Permit.__table__, Grant.__table__
    return (select(*(cases.c[name] for name in CASE_ATTRIBUTES), permits.c.number.label("permit_number"),
                   permits.c.id.label("permit_id"), *(c.label(f"grant_{c.name}") for c in rows.columns(Grant)))
            .select_from(top.join(cases, cases.c.id == top.c.id)
                         .outerjoin(permits, permits.c.case_id == cases.c.id)
                         .outerjoin(grants, grants.c.case_id == cases.c.id))
            .order_by(top.c.state_entered_at, top.c.id))


def _of_cases(table: Any, postgres: bool) -> ColumnElement[bool]:
    """table.case_id is one of the parameter `case_ids` (give it as `case_ids_param` makes it): on
    PostgreSQL one array (= ANY), which costs a third of the fifty parameters of an IN list to
    send and compile; elsewhere an IN list."""
    if postgres:
        return table.c.case_id == any_(cast(bindparam("case_ids", type_=String), ARRAY(Integer)))
    return table.c.case_id.in_(bindparam("case_ids", expanding=True))


def case_ids_param(case_ids: list[int], postgres: bool) -> Any:
    """The value of `_of_cases`' parameter: on PostgreSQL the array's text (db.id_array)."""
    return id_array(case_ids) if postgres else case_ids


@functools.cache
def documents_query(postgres: bool = False) -> Select[Any]:
    """The DOCUMENT_ATTRIBUTES of every document of the cases of the parameter `case_ids`
    (case_ids_param), superseded ones too (case_json leaves those out, as it does for a case's
    documents), in Case.documents' order. Built once."""
    table = Document.__table__
    return select(*(table.c[name] for name in DOCUMENT_ATTRIBUTES)) \
        .where(_of_cases(table, postgres)).order_by(table.c.id)


@functools.cache
def tranches_query(postgres: bool = False) -> Select[Any]:
    """The tranches of the grants of the parameter `case_ids`, in Grant.tranches' order."""
    table = Tranche.__table__
    return select(*rows.columns(Tranche)).where(_of_cases(table, postgres)) \
        .order_by(table.c.case_id, table.c.n)


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
    query, params = _bound("rows", user, state=state, limit=limit, after=_decode(cursor) if cursor else None)
    if query is None:
        return [], None
    rows.flush_pending(session)  # what the ORM's execution would do first; the rows are read with Core
    return _cut(session.connection().execute(query, params).all(), limit)


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
    query, params = _bound("counts", user)
    if query is None:
        return {}
    rows.flush_pending(session)
    return {(k, s): n for k, s, n in session.connection().execute(query, params)}


# What the auditors' list of cases shows of each.
LIST_COLUMNS = (Case.id, Case.kind, Case.state, Case.updated_at, Organization.name.label("organization_name"))


def case_list_query(user: User, *, state: str | None = None, org_key: str = "", before: int | None = None,
                    limit: int = 25) -> Select[Any]:
    """The auditors' list of submitted cases in the reader's jurisdiction, newest first, after
    case `before` (keyset on id): a range of (province, id) or (province, state, id). Rows of
    LIST_COLUMNS: the page shows no more, and a whole case (its application data, its objects)
    was most of the page's time."""
    query = select(*LIST_COLUMNS).join(Organization, Organization.id == Case.organization_id) \
        .where(Case.submitted_at.is_not(None))
    if user.province_id is not None:
        query = query.where(Case.province_id == user.province_id)
    if user.county_id is not None:
        query = query.where(Case.county_id == user.county_id)
    if state:
        query = query.where(Case.state == state)
    if org_key:
        query = query.where(Organization.name_key.contains(org_key, autoescape=True))
    if before is not None:
        query = query.where(Case.id < before)
    return query.order_by(Case.id.desc()).limit(limit + 1)


# -- warm-up ----------------------------------------------------------------------------------

# Whose statements are precompiled: each staff role alone in a province, in a county office and
# national. Other shapes compile on their first request.
def _warm_shapes() -> list[Shape]:
    jurisdictions = ((True, False), (True, True), (False, False))
    return [Shape(frozenset({role}), province, county, False)
            for role in ("intake", "expert", "director", "finance") for province, county in jurisdictions]


def warm_statements(postgres: bool) -> list[tuple[Select[Any], list[str]]]:
    """The queue statements of `_warm_shapes` that open a day's work, as `_bound` keeps them,
    with the names of the parameters its execution passes (`_parameters`): the pages of the
    staff screen's first tab ("all": its first page and the later ones are one statement, see
    BEFORE_ALL) and its tab counts, and the API page's documents and tranches.

    Not every tab, kind filter and API page: those 166 statements kept 13 MB more in
    every worker, which took the workers past the 120 MB of bench/load.py (max 129 and 130 MB
    over three minutes), and even the first pages of the screen and the API (39) left them at
    121. Any other page is compiled by its first request, as before."""
    found: list[tuple[Any, list[str]]] = [(documents_query(postgres), ["case_ids"]),
                                          (tranches_query(postgres), ["case_ids"])]
    for who in _warm_shapes():
        found.append((_statement("rows", who, None, None, True), _parameters("rows", True)))
        found.append((_statement("counts", who, None, None, None), _parameters("counts", False)))
    return [(statement, keys) for statement, keys in found if statement is not None]


def precompile(engine: Any) -> int:
    """Compile the queue statements into `engine`'s statement cache, as their first execution
    would (the same cache key: the statement's shape and the names of the parameters the
    execution passes), without executing anything. A worker's first request of each shape
    otherwise pays for it: 5 to 15 ms for a director's page, most of a page's budget. Returns
    how many. `_compile_w_cache` is the step of Connection.execute that does this (SQLAlchemy is
    pinned in setup.cfg)."""
    from sqlalchemy.sql import compiler

    dialect = engine.dialect
    statements = warm_statements(dialect.name == "postgresql")
    for statement, keys in statements:
        statement._compile_w_cache(
            dialect=dialect, compiled_cache=engine._compiled_cache, column_keys=keys, for_executemany=False,
            schema_translate_map=None, linting=dialect.compiler_linting | compiler.WARN_LINTING)
    return len(statements)

"""The auditor console's queries: decisions (audit entries) with their cases, filtered, within the
reader's jurisdiction, newest first, and never unbounded.

Rows are plain tuples (no ORM objects): a page reads 50 of them and an export up to
`EXPORT_CAP`, streamed, so what the console costs does not grow with the history's length.
Filters arrive as text typed by people (Jalali dates in either digit script, names with Arabic
or Persian letters); `read_filters` turns every kind of junk into a field message, never into
an exception past it.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import Select, func, literal, or_, select, true, tuple_
from sqlalchemy.orm import Session, aliased

from .. import audit_chain, calendar, registry
from ..errors import Forbidden, NotFound
from ..models import AuditEntry, Case, Document, Organization, Snapshot, User
from ..models.types import UTCDateTime
from ..models.places import Province
from ..text import name_key, normalize_line, whole_number

PAGE = 50
COUNT_CAP = 1000  # "more than 1,000 found": counting further only costs the database
EXPORT_CAP = 50_000  # rows of one CSV export; past it the file says so in its last row
MAX_TEXT = 200  # longest organisation or reviewer text searched for
MAX_ID = 2**31 - 1  # ids are INTEGER columns
STATE_OF = ("entry", "case")  # the state filter reads the entry's to_state, or the case's state now


def kinds() -> list[str]:
    return sorted(registry.PROCESSES)


def actions() -> list[str]:
    """Every action a case process records (permit events are another history)."""
    return sorted({r.action for p in registry.PROCESSES.values() for r in p.rules})


def states() -> list[str]:
    return sorted({s for p in registry.PROCESSES.values() for s in p.states})


@dataclass
class Filters:
    """What the auditor typed (kept as typed, to fill the form and the links again) and what it
    means for the query."""

    org: str = ""
    reviewer: str = ""
    action: str = ""
    state: str = ""
    state_of: str = "entry"
    kind: str = ""
    date_from: str = ""
    date_to: str = ""
    case: str = ""
    start: datetime | None = None  # UTC, inclusive: Tehran midnight at the start of date_from
    end: datetime | None = None  # UTC, exclusive: Tehran midnight after date_to
    case_id: int | None = None
    errors: dict[str, str] = field(default_factory=dict)

    def args(self) -> dict[str, str]:
        """The filters as query arguments, for the next page's link and the export's."""
        values = {"org": self.org, "reviewer": self.reviewer, "action": self.action, "state": self.state,
                  "kind": self.kind, "from": self.date_from, "to": self.date_to, "case": self.case}
        if self.state and self.state_of != "entry":
            values["state_of"] = self.state_of
        return {k: v for k, v in values.items() if v}


def _day_start(day: date) -> datetime:
    """Tehran midnight of a day, in UTC: the office's day, not UTC's, bounds the range."""
    return datetime.combine(day, time(), tzinfo=calendar.TEHRAN).astimezone(timezone.utc)


def _jalali(text: str) -> date:
    try:
        return calendar.parse_jalali_date(text)
    except (ValueError, OverflowError) as exc:
        raise ValueError(text) from exc


def read_filters(args: Mapping[str, str]) -> Filters:
    """The console's filters from a query string; what cannot be read is named in `errors` and
    left out of the query (the page still answers, with the message beside the field)."""
    def text(name: str) -> str:
        value = args.get(name, "")
        return normalize_line(value)[:MAX_TEXT] if isinstance(value, str) else ""

    def typed(name: str) -> str:
        """Dates and numbers stay as typed (in Persian digits, say); the parsers read any digits."""
        value = args.get(name, "")
        return value.strip()[:MAX_TEXT] if isinstance(value, str) else ""

    f = Filters(org=text("org"), reviewer=text("reviewer"), action=text("action"), state=text("state"),
                kind=text("kind"), date_from=typed("from"), date_to=typed("to"), case=typed("case"))
    state_of = text("state_of")
    f.state_of = state_of if state_of in STATE_OF else "entry"
    if f.action and f.action not in actions():
        f.errors["action"] = _("Unknown action.")
        f.action = ""
    if f.state and f.state not in states():
        f.errors["state"] = _("Unknown state.")
        f.state = ""
    if f.kind and f.kind not in registry.PROCESSES:
        f.errors["kind"] = _("Unknown kind.")
        f.kind = ""
    if f.case:
        number = whole_number(f.case.strip().lstrip("#"))
        if number is not None and 0 < number <= MAX_ID:
            f.case_id = number
        else:
            f.errors["case"] = _("A case number, such as 125.")
    message = _("Enter a Jalali date such as 1404/01/15.")
    first = last = None
    if f.date_from:
        try:
            first = _jalali(f.date_from)
            f.start = _day_start(first)
        except (ValueError, OverflowError):
            f.errors["from"] = message
    if f.date_to:
        try:
            last = _jalali(f.date_to)
            f.end = _day_start(last + timedelta(days=1))
        except (ValueError, OverflowError):
            f.errors["to"] = message
    if first and last and first > last:
        f.errors["to"] = _("The end of the range is before its start.")
        f.start = f.end = None
    return f


def scope(user: User, province: Any = Case.province_id) -> list[Any]:
    """The cases this reader may see as staff: their province (and county), or all of them for
    national staff — the engine's jurisdiction, in SQL. Drafts were never shown to staff.
    `province`: the column the province is read from (see `_entry_scope`)."""
    where: list[Any] = [Case.submitted_at.is_not(None)]
    if user.province_id is not None:
        where.append(province == user.province_id)
    if user.county_id is not None:
        where.append(Case.county_id == user.county_id)
    return where


Actor = aliased(User, name="actor")

# One row of the console and of the export.
COLUMNS = (
    AuditEntry.id, AuditEntry.case_id, AuditEntry.seq, AuditEntry.at, AuditEntry.role, AuditEntry.action,
    AuditEntry.from_state, AuditEntry.to_state, AuditEntry.comment, AuditEntry.hash, AuditEntry.snapshot_hash,
    Case.kind, Case.state.label("case_state"), Organization.name.label("organization"),
    Province.name_fa.label("province_fa"), Province.name_en.label("province_en"),
    Actor.name.label("actor_name"), Actor.email.label("actor_email"),
)


def _entry_scope(user: User) -> list[Any]:
    """`scope` for audit entries: the province read from the entry's own copy of it, so a
    province's entries, newest first, are one range of (province_id, id). The case's
    province is not asked again: the planner, taking the two as independent, would expect
    almost nothing to match and plan for reading everything."""
    return scope(user, province=AuditEntry.province_id)


def _filtered(q: Select[Any], f: Filters, organization_joined: bool) -> Select[Any]:
    return _entry_filtered(_case_filtered(q, f, organization_joined), f)


def _case_filtered(q: Select[Any], f: Filters, organization_joined: bool) -> Select[Any]:
    """The filters on the case an entry belongs to."""
    if f.org:
        if not organization_joined:
            q = q.join(Organization, Organization.id == Case.organization_id)
        q = q.where(Organization.name_key.contains(name_key(f.org), autoescape=True))
    if f.state and f.state_of == "case":
        q = q.where(Case.state == f.state)
    if f.kind:
        q = q.where(Case.kind == f.kind)
    return q


def _entry_filtered(q: Select[Any], f: Filters) -> Select[Any]:
    """The filters on the entry itself."""
    if f.reviewer:
        # The few people whose name or address matches, as a set the entries are checked against
        # while they are read newest first (a join would start from each person's whole history).
        q = q.where(AuditEntry.actor_id.in_(
            select(User.id).where(or_(User.name.icontains(f.reviewer, autoescape=True),
                                      User.email.icontains(f.reviewer, autoescape=True)))))
    if f.action:
        q = q.where(AuditEntry.action == f.action)
    if f.state and f.state_of != "case":
        q = q.where(AuditEntry.to_state == f.state)
    if f.case_id is not None:
        q = q.where(AuditEntry.case_id == f.case_id)
    if f.start is not None:
        q = q.where(AuditEntry.at >= f.start)
    if f.end is not None:
        q = q.where(AuditEntry.at < f.end)
    return q


def query(user: User, f: Filters) -> Select[Any]:
    """Entries matching the filters in the reader's jurisdiction, newest first."""
    q = (select(*COLUMNS)
         .select_from(AuditEntry)
         .join(Case, Case.id == AuditEntry.case_id)
         .join(Organization, Organization.id == Case.organization_id)
         .join(Province, Province.id == Case.province_id)
         .outerjoin(Actor, Actor.id == AuditEntry.actor_id)
         .where(*_entry_scope(user)))
    q = _filtered(q, f, organization_joined=True)
    if _by_time(f):
        # A period's entries, newest first, are one range of (province_id, at, id) or (at, id);
        # by id they would be all entries since the period's end, then sorted.
        return q.order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    return q.order_by(AuditEntry.id.desc())


def _by_time(f: Filters) -> bool:
    return f.start is not None or f.end is not None


def page(session: Session, user: User, f: Filters, before: int | None = None,
         limit: int = PAGE) -> tuple[list[Any], bool]:
    """One page of entries older than entry `before` (keyset: as cheap at the end as at the start;
    on (at, id) within a period, where an id of no entry starts from the newest)."""
    q = query(user, f)
    if before is not None and _by_time(f):
        at = select(AuditEntry.at).where(AuditEntry.id == before).scalar_subquery()
        newest = literal(datetime.max.replace(tzinfo=timezone.utc), UTCDateTime())
        q = q.where(tuple_(AuditEntry.at, AuditEntry.id) < tuple_(func.coalesce(at, newest), before))
    elif before is not None:
        q = q.where(AuditEntry.id < before)
    rows = list(session.execute(q.limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def count(session: Session, user: User, f: Filters, cap: int = COUNT_CAP) -> tuple[int, bool]:
    """How many entries match, counted up to `cap`; True when there are more. Only the tables the
    filters need are joined."""
    if f.kind and session.get_bind().dialect.name == "postgresql":  # SQLite has no LATERAL
        # A kind is a few percent of a province's entries, found only by asking each entry's case:
        # reading entries newest first until a thousand matched took half a second. Read from the
        # cases instead (a range of ix_cases_queue), each case's entries from its own index.
        entries = _entry_filtered(select(AuditEntry.id).where(AuditEntry.case_id == Case.id), f).lateral("e")
        q = _case_filtered(select(entries.c.id).select_from(Case).join(entries, true()).where(*scope(user)),
                           f, organization_joined=False)
    else:
        q = _filtered(select(AuditEntry.id).select_from(AuditEntry).join(Case, Case.id == AuditEntry.case_id)
                      .where(*_entry_scope(user)), f, organization_joined=False)
    n = session.scalar(select(func.count()).select_from(q.limit(cap + 1).subquery())) or 0
    return min(n, cap), n > cap


def stream(session: Session, user: User, f: Filters, cap: int = EXPORT_CAP) -> Iterator[Any]:
    """Up to `cap` + 1 matching rows, fetched in batches (a server-side cursor on PostgreSQL):
    the caller tells a reader when the last one is past the cap."""
    result = session.execute(query(user, f).limit(cap + 1).execution_options(yield_per=1000))
    try:
        yield from result
    finally:
        result.close()


# -- one case's history ------------------------------------------------------------------------

def entries(session: Session, case: Case) -> list[AuditEntry]:
    query = select(AuditEntry).where(AuditEntry.case_id == case.id).order_by(AuditEntry.seq)
    return list(session.scalars(query))


def issued_documents(session: Session, case: Case) -> dict[tuple[str, str], Document]:
    """The case's letters and certificate by (kind, sha256), to link the hashes an entry records."""
    from ..letters import KINDS

    docs = session.scalars(select(Document).where(Document.case_id == case.id, Document.kind.in_(KINDS)))
    return {(d.kind, d.sha256): d for d in docs}


def entry(session: Session, case: Case, seq: int) -> AuditEntry:
    if not 0 < seq <= MAX_ID:
        raise NotFound(_("No such entry."))
    found = session.scalar(select(AuditEntry).where(AuditEntry.case_id == case.id, AuditEntry.seq == seq))
    if found is None:
        raise NotFound(_("No such entry."))
    return found


@dataclass
class SnapshotView:
    """A snapshot as stored, read back: its text, whether that text still hashes to the name the
    entry records, and its content."""

    hash: str
    body: str
    intact: bool
    content: dict[str, Any]


def snapshot(session: Session, digest: str | None) -> SnapshotView | None:
    if not digest:
        return None
    row = session.get(Snapshot, digest)
    if row is None:
        return None
    try:
        content = json.loads(row.body)
    except ValueError:
        content = {}
    if not isinstance(content, dict):
        content = {}
    intact = hashlib.sha256(row.body.encode()).hexdigest() == digest
    return SnapshotView(hash=digest, body=row.body, intact=intact, content=content)


def changed_keys(before: SnapshotView | None, after: SnapshotView | None) -> set[str]:
    """The application's fields that differ between two snapshots (what changed in between)."""
    if before is None or after is None:
        return set()
    old, new = before.content.get("data") or {}, after.content.get("data") or {}
    if not isinstance(old, dict) or not isinstance(new, dict):
        return set()
    return {k for k in set(old) | set(new) if old.get(k) != new.get(k)}


def in_scope(user: User, case: Case) -> bool:
    """The case is in the reader's jurisdiction (the same rule as `scope`, for one loaded case)."""
    return bool(case.submitted_at is not None
                and (user.province_id is None or user.province_id == case.province_id)
                and (user.county_id is None or user.county_id == case.county_id))


def verify_chains(session: Session, user: User, case_id: int | None = None) -> audit_chain.Report:
    """Recompute the chains `user` may read: one case's, or every chain of their jurisdiction
    (national readers: all). A case out of their jurisdiction is a 404, as everywhere, and a
    break elsewhere is not theirs to be told of."""
    from .. import engine

    if not user.has_role("auditor", "admin"):
        raise Forbidden(_("Only auditors and administrators verify the history."))
    if case_id is not None:
        case = engine.get_case(session, user, case_id) if 0 < case_id <= MAX_ID else None
        if case is None or not in_scope(user, case):
            raise NotFound(_("No such case."))
    return audit_chain.verify(session.connection(), case_id=case_id, province_id=user.province_id,
                              county_id=user.county_id)


__all__ = ["COUNT_CAP", "EXPORT_CAP", "PAGE", "Filters", "SnapshotView", "actions", "changed_keys", "count",
           "entries", "entry", "in_scope", "issued_documents", "kinds", "page", "query", "read_filters",
           "scope",
           "snapshot", "states", "stream", "verify_chains"]

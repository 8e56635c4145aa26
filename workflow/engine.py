"""The one place a case changes state.

`fire` authorises (visibility, role, jurisdiction, separation of duties), checks the version
the caller saw, runs the transition through the process's shared machine, and records the
audit entry and outbox rows in the caller's transaction. It never commits: the request, job
or command that called it decides, so a transition and its records land together or not at all.
"""
from __future__ import annotations

import functools
import operator

from datetime import date, datetime, timedelta
from typing import Any, NamedTuple, Protocol

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import Integer, String, bindparam, cast, exists, func, insert, inspect, literal, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, joinedload, lazyload
from sqlalchemy.orm.attributes import NO_VALUE, instance_state, set_committed_value
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError

from . import driver_sql, registry, rows
from .db import id_array
from .audit_chain import entry_hash, snapshot_digest, snapshot_insert, snapshot_text, store_snapshot
from .read_only import refuse_auditors
from .calendar import add_working_days
from .deadlines import next_after, state_events
from .holidays import holidays
from .errors import Conflict, Forbidden, Invalid, NotFound
from .metrics import counted_transitions
from .models import AuditEntry, Case, Document, Membership, Notification, Permit, User, UserRole, utcnow
from .models.types import UTCDateTime
from .process import Process, Rule
from .text import normalize

MAX_COMMENT = 5000
SYSTEM_ROLE = "system"


def is_lost_race(exc: OperationalError) -> bool:
    """A deadlock victim or a serialisation failure lost to a concurrent writer: a 409, not a 500."""
    code = getattr(exc.orig, "sqlstate", None)
    return code in ("40001", "40P01") or "database is locked" in str(exc.orig)


class Recorded(NamedTuple):
    """The audit entry a transition wrote, as written. Not an ORM object: no caller reads an
    entry's relationships after firing, and making one (its identity, attaching it to the
    session) cost more Python than sending its INSERT. A query finds the entry as usual."""

    id: int
    case_id: int
    seq: int
    action: str
    from_state: str
    to_state: str
    hash: str


class Actor(Protocol):
    """What the rules below read of a user. A User answers; so does the API's bearer
    (accounts.Principal), whose attributes are plain where a User's are the ORM's descriptors and
    properties: a queue page asks them of every case it lists, a few dozen reads per case."""

    id: int
    roles: frozenset[str]
    organization_ids: frozenset[int]
    province_id: int | None
    county_id: int | None
    is_staff: bool


def loaded(obj: Any, *names: str) -> tuple[Any, ...]:
    """Attributes of a mapped object (two or more), as reading each would give them, from its
    loaded state.

    Each read of a mapped attribute runs the ORM's descriptor, twenty-odd bytecodes, and a
    transition makes dozens of them. A loaded attribute's value is in the instance's dict (the
    ORM keeps it there, changes included), taken out by an itemgetter (in C, where a list
    comprehension is a call of its own); where one is missing (expired, deferred) all are read
    the ORM's way, which loads it. Plain records (a queue's rows, with slots) are read as they are."""
    values = getattr(obj, "__dict__", None)
    if values is not None:
        try:
            return operator.itemgetter(*names)(values)  # type: ignore[no-any-return]
        except KeyError:
            pass
    return tuple(getattr(obj, name) for name in names)


def _within(user: User | Actor, province_id: int | None, county_id: int | None) -> bool:
    """Staff without a province are national (ministry auditors); otherwise province, then county."""
    if user.province_id is None:
        return True
    if user.province_id != province_id:
        return False
    return user.county_id is None or user.county_id == county_id


def in_jurisdiction(user: User | Actor, case: Case) -> bool:
    return _within(user, case.province_id, case.county_id)


def is_member(user: User | Actor, case: Case) -> bool:
    return case.organization_id in user.organization_ids


def can_see(user: User | Actor, case: Case) -> bool:
    return standing(user, case)[0]


def standing(user: User | Actor, case: Case) -> tuple[bool, bool, bool]:
    """(can_see, is_member, in_jurisdiction) of the pair, each worked out once: the rules of an
    action ask the last two again (see _may_use). Members see their cases; staff, the submitted
    cases of their jurisdiction."""
    organization_id, province_id, county_id, submitted_at = loaded(
        case, "organization_id", "province_id", "county_id", "submitted_at")
    member, juris = organization_id in user.organization_ids, _within(user, province_id, county_id)
    return member or (user.is_staff and submitted_at is not None and juris), member, juris


@functools.cache
def _case_query():  # type: ignore[no-untyped-def]
    """The case with its permit and documents, as ORM entities; built once (statement and loader
    options). Used when the session already holds the case (see _load_case).

    The organisations (the case's and the permit's, both joined by default) are left to load on
    access: the API never reads them and a page that does pays one small query for it.
    """
    return (
        select(Case)
        .options(
            lazyload(Case.organization),
            joinedload(Case.permit).lazyload(Permit.organization),
            joinedload(Case.documents),
        )
        .where(Case.id == bindparam("case_id"))
    )


@functools.cache
def _case_rows():  # type: ignore[no-untyped-def]
    """_case_query's statement as plain columns: the same SQL, read without the ORM's loading."""
    cases, documents, permits = Case.__table__, Document.__table__.alias("documents_1"), \
        Permit.__table__.alias("permits_1")
    return (
        select(*cases.c, *documents.c, *permits.c)
        .select_from(cases.outerjoin(documents, cases.c.id == documents.c.case_id)
                     .outerjoin(permits, cases.c.id == permits.c.case_id))
        .where(cases.c.id == bindparam("case_id"))
        .order_by(documents.c.id)
    )


def _load_case(session: Session, case_id: int) -> Case | None:
    """The case, its documents and its permit in one statement; made by rows.loaded unless the
    session holds any of them already (then the ORM merges the row as it always has)."""
    if rows.held(session, Case, case_id):
        return session.execute(_case_query(), {"case_id": case_id}).unique().scalar_one_or_none()
    rows.flush_pending(session)
    result = driver_sql.run(session, _case_rows(), {"case_id": case_id}).rows
    if not result:
        return None
    n_case, n_doc = len(rows.columns(Case)), len(rows.columns(Document))
    first = result[0]
    documents = [rows.loaded(Document, row[n_case:n_case + n_doc]) for row in result if row[n_case] is not None]
    permit_id = first[n_case + n_doc]
    if any(rows.held(session, Document, d.id) for d in documents) or (
            permit_id is not None and rows.held(session, Permit, permit_id)):
        return session.execute(_case_query(), {"case_id": case_id}).unique().scalar_one_or_none()
    case = rows.loaded(Case, first[:n_case])
    permit = rows.loaded(Permit, first[n_case + n_doc:]) if permit_id is not None else None
    set_committed_value(case, "documents", documents)  # a collection: the ORM makes its list
    # A one-to-one the new object has never had: its loaded value is the object, which is all
    # set_committed_value would record for it.
    case.__dict__["permit"] = permit
    rows.attach(session, case, *documents, *([permit] if permit is not None else []))
    return case


def get_case(session: Session, user: User | Actor, case_id: int) -> Case:
    """The case if the user may see it; otherwise 404, so ids of others' cases leak nothing.

    Its permit and documents come in the same query: every caller shows or checks them.
    """
    case = _load_case(session, case_id)
    if case is None or not can_see(user, case):
        raise NotFound(_("No such case."))
    return case


def has_recommended(session: Session, process: Process, case: Case, user: User | Actor) -> bool:
    """Whether `user` recommended on `case`. Remembered in the session until its next transition
    (`fire` forgets it): listing a case's actions asks it once per decision rule, a queue page
    once per case, and `remember_recommendations` answers a whole page in one query."""
    memo = session.info.setdefault(_RECOMMENDED, {})
    key = (case.id, user.id)
    if key not in memo:
        memo[key] = bool(session.scalar(select(exists().where(
            AuditEntry.case_id == case.id,
            AuditEntry.actor_id == user.id,
            AuditEntry.action.in_(process.recommend_actions),
        ))))
    return memo[key]


_RECOMMENDED = "engine.recommended"


def remember_recommendations(session: Session, cases: list[Case], user: User | Actor) -> None:
    """Answer `has_recommended` for all `cases` at once (a page of a queue)."""
    if not cases:
        return
    ids = [c.id for c in cases]
    if session.get_bind().dialect.name == "postgresql":
        query, params = _recommended_query(True), {"case_ids": id_array(ids), "actor_id": user.id}
    else:
        query, params = _recommended_query(False).where(AuditEntry.case_id.in_(ids)), {"actor_id": user.id}
    found = set(session.scalars(query, params))
    memo = session.info.setdefault(_RECOMMENDED, {})
    for case in cases:
        memo.setdefault((case.id, user.id), case.id in found)


@functools.cache
def _recommended_query(postgres: bool):  # type: ignore[no-untyped-def]
    """Which of the given cases the actor recommended on. On PostgreSQL the ids are one array,
    probed one by one (unnest, EXISTS): the statement is prepared once a connection has run it a
    few times, and PostgreSQL may then plan it once for every page; planned without the ids (an
    IN list or `= ANY`), it scanned all of a director's recommendations instead, 45 ms on
    bench_scale, where each probe is a look-up of one case. Elsewhere the caller adds the IN list."""
    actions = sorted({a for p in registry.PROCESSES.values() for a in p.recommend_actions})
    mine = (AuditEntry.actor_id == bindparam("actor_id"), AuditEntry.action.in_(actions))
    if not postgres:
        return select(AuditEntry.case_id).where(*mine)
    ids = func.unnest(cast(bindparam("case_ids", type_=String), ARRAY(Integer))).table_valued("id") \
        .render_derived(name="ids")
    return select(ids.c.id).where(exists().where(AuditEntry.case_id == ids.c.id, *mine))


def _may_use(session: Session, process: Process, case: Case, user: User | Actor, rule: Rule, *,
             member: bool | None = None, juris: bool | None = None) -> bool:
    """Whether `user` may fire `rule` on `case` (the state aside). `member` and `juris`: is_member
    and in_jurisdiction of the pair when the caller has them already (one case, several rules)."""
    if member is None:
        member = is_member(user, case)
    if rule.role == "applicant":
        return "applicant" in user.roles and member
    if rule.role not in user.roles or member:
        return False
    if not (in_jurisdiction(user, case) if juris is None else juris):
        return False
    return not (rule.decides and has_recommended(session, process, case, user))


def allowed_actions(session: Session, case: Case, user: User | Actor) -> list[str]:
    """What `user` may do to `case` now: the API's `actions` and the buttons on the case page."""
    kind, state = loaded(case, "kind", "state")
    process = registry.get(kind)
    visible, member, juris = standing(user, case)
    if not visible:
        return []
    names: list[str] = []
    for rule in process.rules_from(state):
        if rule.action not in names:
            if _may_use(session, process, case, user, rule, member=member, juris=juris) and (
                rule.available is None or rule.available(session, case)
            ):
                names.append(rule.action)
    return names


def due_at(process: Process, state: str, since: datetime, holidays: frozenset[date] = frozenset(), *,
           thursday_off: bool | None = None) -> datetime | None:
    deadline = process.deadlines.get(state)
    if deadline is None:
        return None
    if deadline.working_days is not None:
        if thursday_off is None:
            thursday_off = current_app.config["THURSDAY_OFF"]
        return add_working_days(since, deadline.working_days, thursday_off=thursday_off, holidays=holidays)
    return since + timedelta(days=deadline.calendar_days or 0)


@counted_transitions()  # workflow_transitions_total{kind, action, outcome}
def fire(
    session: Session,
    case: Case,
    action: str,
    actor: User | None,
    *,
    version: int | None = None,
    comment: str | None = None,
    values: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> Recorded:
    """Run `action` on `case` for `actor` (None: the system itself, e.g. a deadline job)."""
    # Read once, before anything changes: each read of a mapped attribute runs the ORM's descriptor.
    kind, case_id, from_state, version_read, last_seq, submitted_at = loaded(
        case, "kind", "id", "state", "version", "last_seq", "submitted_at")
    process = registry.get(kind)
    if not isinstance(action, str) or action not in process.actions:
        raise Invalid(_("Unknown action."), {"action": _("Unknown action.")})
    if actor is not None:
        visible, member, juris = standing(actor, case)
        if not visible:
            raise NotFound(_("No such case."))
        refuse_auditors(actor)
        if not actor.roles & process.roles_for_action(action):
            raise Forbidden(_("Your roles do not allow this action."))
    if version is not None and version != version_read:
        raise Conflict(_("This case was changed by someone else; reload it and try again."))
    rules = process.rules_for(action, from_state)
    if not rules:
        raise Conflict(_("This action is not possible in the case's current state."))
    if actor is None:
        rule, role = rules[0], SYSTEM_ROLE
    else:
        usable = [r for r in rules if _may_use(session, process, case, actor, r, member=member, juris=juris)]
        if not usable:
            raise Forbidden(_("You may not take this action on this case."))
        rule, role = usable[0], usable[0].role

    text = normalize(comment) if isinstance(comment, str) else ""
    if rule.comment_required and not text:
        raise Invalid(_("A comment is required."), {"comment": _("A comment is required.")})
    if len(text) > MAX_COMMENT:
        raise Invalid(_("The comment is too long."), {"comment": _("The comment is too long.")})
    if rule.available is not None and not rule.available(session, case):
        raise Conflict(_("This action is not possible in the case's current state."))
    details: dict[str, Any] | None = None
    if rule.values is not None:
        details, errors = rule.values(session, case, values or {})
        if errors:
            raise Invalid(_("Some fields need attention."), errors)
    if rule.validate is not None:
        errors = rule.validate(session, case)
        if errors:
            raise Invalid(_("The application is not complete."), errors)

    now = now or utcnow()
    try:
        # What the actor saw, frozen before anything changes; its hash goes into the entry, and
        # the text is stored with the entry (_write_entry).
        snapshot = snapshot_text(case)
        snapshot_hash = snapshot_digest(snapshot)
        # Read before the case is touched: a query now would autoflush the half-changed case
        # and move its version twice in one transition.
        days_off = holidays(session) if rule.dest in process.deadlines else frozenset()
        # Bookkeeping first, so effects see it. It goes into the case's loaded state, not
        # through the attributes' change events: _write_case or _write_rest puts it in the
        # transition's one UPDATE, with whatever the machine and the effects changed (an
        # effect's flush writes only those), so the version moves by exactly one.
        thursday_off = current_app._get_current_object().config["THURSDAY_OFF"]  # type: ignore[attr-defined]
        due = due_at(process, rule.dest, now, days_off, thursday_off=thursday_off)
        events = state_events(process, rule.dest, now, due, holidays=days_off, thursday_off=thursday_off)
        book: dict[str, Any] = {"updated_at": now, "state_entered_at": now, "due_at": due,
                                "next_event_at": next_after(events, now), "overdue": False,
                                "last_seq": last_seq + 1}
        if submitted_at is None and rule.dest not in process.terminal:
            book["submitted_at"] = now
        if rule.recommends and actor is not None:
            book["recommended_by_id"] = actor.id
        case.__dict__.update(book)
        # Effects may add to what the entry records (the hash of a letter they issued, say).
        recorded = dict(details or {})
        process.fire(case, action, session=session, actor=actor, now=now, comment=text, values=recorded)
        to_state, prev_hash, province_id = loaded(case, "state", "head_hash", "province_id")
        link = {"case_id": case_id, "seq": book["last_seq"], "at": now, "actor_id": actor.id if actor else None,
                "role": role, "action": action, "from_state": from_state, "to_state": to_state,
                "comment": text or None, "details": recorded or None, "snapshot_hash": snapshot_hash}
        link_hash = entry_hash(prev_hash, **link)
        # The case row goes first: its `WHERE version = ?` decides a race, so a loser blocks on
        # the row and fails there, not on the audit table's unique key.
        book["head_hash"] = case.__dict__["head_hash"] = link_hash
        if case.version == version_read:  # no effect flushed the case: write it here, head and all
            _write_case(session, case, book)
        else:  # an effect flushed what it changed (a permit needed its id): the rest is left to write
            _write_rest(session, case, book)
        notify = _notify_params(case, action, text, now) if action in process.notify_applicants else None
        entry_id, note_ids = _write_entry(session, snapshot, notify, **link, prev_hash=prev_hash, hash=link_hash,
                                       province_id=province_id)
        session.flush()  # what effects left pending (a permit, say), so its conflicts are caught here
    except (StaleDataError, IntegrityError) as exc:
        raise Conflict(_("This case was changed by someone else; reload it and try again.")) from exc
    except OperationalError as exc:
        if not is_lost_race(exc):
            raise
        raise Conflict(_("This case was changed by someone else; reload it and try again.")) from exc
    session.info.pop(_RECOMMENDED, None)  # a recommendation may just have been made
    if note_ids:
        from jobs.queue import enqueue_after_commit

        for notification_id in note_ids:
            enqueue_after_commit(session, "jobs.notify.deliver", notification_id)
    return Recorded(entry_id, case_id, link["seq"], action, from_state, link["to_state"], link_hash)


@functools.cache
def _case_columns() -> dict[str, str]:
    """Attribute name → column name, for every column of the Case mapper."""
    return {attr.key: attr.columns[0].name for attr in inspect(Case).column_attrs}


@functools.cache
def _renamed_columns() -> tuple[tuple[str, str], ...]:
    """(attribute, column) for each Case attribute named apart from its column (none today)."""
    return tuple((key, name) for key, name in _case_columns().items() if key != name)


@functools.cache
def _case_update():  # type: ignore[no-untyped-def]
    """UPDATE cases SET … WHERE id = :case_id AND version = :version_read, built once.

    The SET clause comes from the parameters' keys; SQLAlchemy compiles and caches one
    statement per set of changed columns.
    """
    table = Case.__table__
    return table.update().where(
        table.c.id == bindparam("case_id"), table.c.version == bindparam("version_read")
    )


def _write_case(session: Session, case: Case, book: dict[str, Any]) -> None:
    """Write the transition's bookkeeping (`book`, already in the case's loaded state), the
    columns the machine and effects changed, and the case's next version, in one UPDATE.

    A flush of the versioned case through the unit of work was the largest part of a
    transition's CPU. The check is the same `WHERE version = ?`: no row means someone else's
    transition won (StaleDataError, a 409). The ORM is then told that the row holds these
    values, so no later flush writes the case again (that would move its version twice).
    """
    state = instance_state(case)
    columns = _case_columns()
    values = state.dict
    # Every value as the object holds it now: an effect that set a bookkeeping column itself wins.
    changed = {key: values[key] for key in book}
    changed.update({
        key: values[key] for key, old in state.committed_state.items()
        if key in columns and (old is NO_VALUE or old != values[key])
    })
    case_id, version = loaded(case, "id", "version")
    changed["version"] = version + 1
    params = dict(changed)  # the UPDATE's parameters are named by column
    for key, name in _renamed_columns():
        if key in params:
            params[name] = params.pop(key)
    params["case_id"], params["version_read"] = case_id, version
    result = driver_sql.run(session, _case_update(), params)
    if result.rowcount != 1:
        raise StaleDataError(f"case {case_id} is no longer at version {version}")
    if all(key in columns for key in state.committed_state):
        # Only columns are marked, and the row now holds every one of them as the object does.
        # Clear the marks as a flush does after writing a row; otherwise the commit would still
        # walk a whole, empty unit of work for the case. `_commit_all` is that post-flush step
        # of SQLAlchemy's (pinned in setup.cfg).
        values["version"] = changed["version"]
        state._commit_all(values, session.identity_map)
    else:  # a pending relationship change keeps its mark: only the columns written are committed
        for key, value in changed.items():
            set_committed_value(case, key, value)


def _write_rest(session: Session, case: Case, book: dict[str, Any]) -> None:
    """The bookkeeping and chain head of a case an effect already flushed, without moving its
    version again (the effect's flush made this transition's one version step)."""
    columns, values = _case_columns(), case.__dict__
    table = Case.__table__
    driver_sql.transaction_connection(session).execute(  # as the object holds them: an effect's own wins
        table.update().where(table.c.id == case.id, table.c.version == case.version)
        .values({columns[key]: values[key] for key in book}))


@functools.cache
def _entry_insert(dialect: str, notify: bool):  # type: ignore[no-untyped-def]
    """INSERT the entry RETURNING its id. On PostgreSQL its snapshot's INSERT and, if `notify`,
    the applicants' outbox rows (RETURNING their ids as an array) ride along as CTEs, so a
    transition's records take one round trip; SQLite has no data-modifying CTEs (separate
    statements there, see _write_entry)."""
    table = AuditEntry.__table__
    statement = table.insert()
    returning: list[Any] = [table.c.id]
    if dialect == "postgresql":
        snapshot = snapshot_insert(dialect).values(
            hash=bindparam("snapshot_key"), body=bindparam("snapshot_body"), created_at=bindparam("snapshot_at"))
        statement = statement.add_cte(snapshot.cte("snapshot"))
        if notify:
            notes = _notify_statement().cte("notes")
            statement = statement.add_cte(notes)
            returning.append(select(func.array_agg(notes.c.id)).scalar_subquery())
    return statement.returning(*returning)


def _write_entry(session: Session, snapshot: str, notify: dict[str, Any] | None,
                 **values: Any) -> tuple[int, list[int]]:
    """INSERT the audit entry, the snapshot it names and the applicants' outbox rows (Core);
    returns the entry's id and the outbox ids. The unit of work would do the same INSERTs at
    several times the CPU."""
    connection = driver_sql.transaction_connection(session)
    dialect = connection.dialect.name
    params = dict(values)
    note_ids: list[int] = []
    if dialect == "postgresql":
        params.update(snapshot_key=values["snapshot_hash"], snapshot_body=snapshot, snapshot_at=values["at"],
                      **(notify or {}))
        row = driver_sql.run(session, _entry_insert(dialect, notify is not None), params).one()
        entry_id = row[0]
        note_ids = sorted(row[1] or []) if notify is not None else []
    else:
        store_snapshot(session, snapshot)
        entry_id = connection.execute(_entry_insert(dialect, False), params).scalar_one()
        if notify is not None:
            note_ids = list(connection.execute(_notify_statement(), notify).scalars())
    return entry_id, note_ids


@functools.cache
def _notify_statement():  # type: ignore[no-untyped-def]
    """INSERT … SELECT of one outbox row per applicant of the organisation, built once.

    Written against the tables, not the mapped classes, so it runs as plain Core on the
    session's connection (no ORM execution step, no autoflush).
    """
    table = Notification.__table__
    members, roles = Membership.__table__, UserRole.__table__
    applicants = (
        select(
            members.c.user_id, bindparam("note_case_id"), bindparam("kind"),
            bindparam("payload", type_=table.c.payload.type), bindparam("now", type_=UTCDateTime()),
            bindparam("now", type_=UTCDateTime()), literal(0),
        )
        .join(roles, roles.c.user_id == members.c.user_id)
        .where(members.c.organization_id == bindparam("organization_id"), roles.c.role == "applicant")
    )
    return (
        insert(table)
        .from_select(["user_id", "case_id", "kind", "payload", "created_at", "enqueued_at", "attempts"],
                     applicants)
        .returning(table.c.id)
    )


def _notify_params(case: Case, action: str, comment: str, now: datetime) -> dict[str, Any]:
    """The parameters of _notify_statement: outbox rows for the organisation's applicants."""
    case_id, organization_id, state = loaded(case, "id", "organization_id", "state")
    return {
        "note_case_id": case_id, "kind": f"case.{action}", "organization_id": organization_id,
        "payload": {"case_id": case_id, "action": action, "state": state, "comment": comment}, "now": now,
    }

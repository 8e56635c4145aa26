"""Tamper-evident history: every audit entry and permit event is chained by SHA-256.

hash(entry) = SHA-256(prev_hash + "\\n" + canonical(entry's fields)), where prev_hash is the
hash of the entry before it on the same case (or permit), "" for the first. The case (permit)
keeps the newest hash as `head_hash`, written in the same UPDATE as the transition, so
removing the newest entries is seen too. Editing a field, deleting, inserting or reordering
entries breaks the chain at the first entry touched; `verify` names it.

Each case entry also records `snapshot_hash`: the hash of what the actor saw (the case's state,
version, data and documents before the action), whose canonical text is kept in `snapshots`.

The canonical encoding is a contract with every hash already stored: a JSON array of the
fields in a fixed order, keys of nested objects sorted, no spaces, UTF-8, times as UTC ISO-8601
with microseconds. Change it only with a new chain version that verify can tell apart.
"""
from __future__ import annotations

import hashlib
import queue
import threading
from hashlib import sha256
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from . import rows

# The encoding and the hash themselves live in chain_encoding (no database imports), so the
# bench's bare baseline computes them exactly as the engine does.
from .chain_encoding import ENCODER as _ENCODER, _escape, canonical, chain_hash, entry_hash, moment  # noqa: F401
from .models import Case, Permit, PermitEvent, Snapshot, utcnow
from .models.types import JSONType, UTCDateTime

def event_hash(prev: str | None, event: PermitEvent) -> str:
    return chain_hash(prev, [event.permit_id, event.seq, moment(event.at), event.actor_id, event.role, event.action,
                             event.from_state, event.to_state, event.reason, moment(event.valid_until),
                             event.case_id])


def seal_event(permit: Permit, event: PermitEvent) -> None:
    """Link a new permit event to the permit's chain; call once its fields are final."""
    event.prev_hash = permit.head_hash
    event.hash = event_hash(permit.head_hash, event)
    permit.head_hash = event.hash


def snapshot_text(case: Case) -> str:
    """What an actor sees of a case when they act on it, as canonical text."""
    documents = [
        {"id": d.id, "kind": d.kind, "name": d.original_name, "sha256": d.sha256, "superseded": d.superseded,
         "tranche_id": d.tranche_id}
        for d in map(rows.plain, case.documents)  # every column read: plain attributes (rows.plain)
    ]
    c = rows.plain(case)
    return _ENCODER.encode({
        "case_id": c.id, "kind": c.kind, "state": c.state, "version": c.version,
        "organization_id": c.organization_id, "data": c.data or {}, "documents": documents,
    })


def snapshot_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def snapshot_insert(dialect: str):  # type: ignore[no-untyped-def]
    """INSERT INTO snapshots … ON CONFLICT (hash) DO NOTHING, for `dialect` (postgresql, sqlite)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(Snapshot.__table__).on_conflict_do_nothing(index_elements=["hash"])


def store_snapshot(session: Session, text: str) -> str:
    """Keep the snapshot (once per distinct content) and return its hash."""
    digest = snapshot_digest(text)
    session.connection().execute(snapshot_insert(session.get_bind().dialect.name),
                                  {"hash": digest, "body": text, "created_at": utcnow()})
    return digest


# -- verification -------------------------------------------------------------------------------

@dataclass
class Break:
    subject: str  # "case" or "permit"
    id: int
    seq: int
    reason: str

    def __str__(self) -> str:
        return f"{self.subject} {self.id} seq {self.seq}: {self.reason}"


@dataclass
class Report:
    checked: int = 0  # entries and events whose hash was recomputed
    chains: int = 0
    broken: Break | None = None
    heads: dict[str, tuple[int, str]] = field(default_factory=dict)  # "case:1" → (seq, hash), when collected

    @property
    def ok(self) -> bool:
        return self.broken is None


# {at}/{until}: the time columns, as stored (SQLite: converted in Python) or, on PostgreSQL,
# already in the canonical text, which spares a datetime per row.
_ENTRY_QUERY = """
    SELECT case_id, seq, {at}, actor_id, role, action, from_state, to_state, comment, details, snapshot_hash,
           prev_hash, hash
    FROM audit_entries {where} ORDER BY case_id, seq
"""
_CASE_QUERY = "SELECT id, head_hash, last_seq FROM cases {where} ORDER BY id"
_EVENT_QUERY = """
    SELECT permit_id, seq, {at}, actor_id, role, action, from_state, to_state, reason, {until}, case_id,
           prev_hash, hash
    FROM permit_events {where} ORDER BY permit_id, seq
"""
_PERMIT_QUERY = "SELECT id, head_hash, last_seq FROM permits {where} ORDER BY id"
_PG_MOMENT = """to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""


def verify(connection: Any, *, case_id: int | None = None, province_id: int | None = None,
           county_id: int | None = None, collect_heads: bool = False, batch: int = 20_000) -> Report:
    """Recompute every chain (or one case's) and stop at the first break.

    `province_id` (and `county_id`) keep to the cases and permits of one jurisdiction: what a
    provincial auditor may verify, and may be told of. `connection` is a SQLAlchemy Connection;
    rows are streamed (a server-side cursor on PostgreSQL), so memory stays flat whatever the
    number of entries. Heads are collected for `digest`.
    """
    report = Report()
    postgres = connection.dialect.name == "postgresql"
    subjects = [("case", _CASE_QUERY, _ENTRY_QUERY, "cases", "case_id")]
    if case_id is None:
        subjects.append(("permit", _PERMIT_QUERY, _EVENT_QUERY, "permits", "permit_id"))
    params = {"id": case_id, "province": province_id, "county": county_id}
    for subject, head_sql, link_sql, table, link_key in subjects:
        moments = {"at": _PG_MOMENT.format("at"), "until": _PG_MOMENT.format("valid_until")} if postgres else \
            {"at": "at", "until": "valid_until"}
        heads_where, links_where = _where(table, link_key, case_id, province_id, county_id)
        head_query = head_sql.format(where=heads_where)
        link_query = link_sql.format(where=links_where, **moments)
        heads = _stream(connection, head_query, params, batch, f"verify_heads_{subject}", typed=False)
        links = _stream(connection, link_query, params, batch, f"verify_links_{subject}", typed=True)
        if postgres:
            text_of = _pg_entry_text if subject == "case" else _pg_event_text
        else:
            text_of = _entry_text if subject == "case" else _event_text
        try:
            broken = _walk(subject, heads, links, text_of, report, collect_heads)
        finally:
            heads.close()
            links.close()
        if broken is not None:
            report.broken = broken
            break
    return report


def _where(table: str, link_key: str, case_id: int | None, province_id: int | None,
           county_id: int | None) -> tuple[str, str]:
    """The WHERE clauses of the heads' and the links' queries ({id}, {province}, {county} are
    bound parameters, filled by _stream)."""
    if case_id is not None:
        return "WHERE id = {id}", f"WHERE {link_key} = {{id}}"
    conditions = []
    if province_id is not None:
        conditions.append("province_id = {province}")
    if county_id is not None:
        conditions.append("county_id = {county}")
    if not conditions:
        return "", ""
    heads = " AND ".join(conditions)
    return f"WHERE {heads}", f"WHERE {link_key} IN (SELECT id FROM {table} WHERE {heads})"


def _stream(connection: Any, sql: str, params: dict[str, Any], batch: int, name: str, typed: bool) -> Any:
    """An iterator of plain tuples. On PostgreSQL a named (server-side) psycopg cursor read
    `batch` rows at a time: SQLAlchemy's result rows cost more than the hashing itself."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SELECT 1")  # make sure the transaction the cursor needs is open
        cursor = connection.connection.driver_connection.cursor(name=name)
        cursor.execute(sql.format(**{key: f"%({key})s" for key in params}), params)
        return _Prefetched(cursor, batch) if typed else _Batches(cursor, batch)
    from sqlalchemy import text

    statement = sql.format(**{key: f":{key}" for key in params})
    query = text(statement)
    if typed:  # SQLite hands back text for times and JSON
        query = query.columns(at=UTCDateTime(), details=JSONType, valid_until=UTCDateTime())
    return connection.execute(query, {key: value for key, value in params.items() if f":{key}" in statement})


class _Batches:
    """Rows of a server-side cursor, fetched `size` at a time: iterating the cursor itself costs
    a Python call per row inside psycopg, several times the price of a list's iteration."""

    def __init__(self, cursor: Any, size: int) -> None:
        self.cursor, self.size = cursor, size

    def __iter__(self) -> Any:
        while rows := self.cursor.fetchmany(self.size):
            yield from rows

    def close(self) -> None:
        self.cursor.close()


class _Prefetched(_Batches):
    """The entries, fetched by a thread one batch ahead: PostgreSQL produces the next batch
    while this thread hashes the current one (psycopg lets go of the GIL while it waits), so
    verify takes about the longer of the two instead of their sum."""

    _DONE = object()

    def __init__(self, cursor: Any, size: int) -> None:
        super().__init__(cursor, size)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._fetch, name="verify-prefetch", daemon=True)
        self._thread.start()

    def _fetch(self) -> None:
        try:
            while not self._stop.is_set():
                rows = self.cursor.fetchmany(self.size)
                self._put(rows or self._DONE)
                if not rows:
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the reading thread, which raises it
            self._put(exc)

    def _put(self, item: Any) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Any:
        while True:
            item = self._queue.get()
            if item is self._DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield from item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.cursor.close()


def _pg_entry_text(row: Any) -> str:
    """`canonical` of an entry row from PostgreSQL (time already canonical text), spelled out for
    the row's known field types: verify spends most of its time here, once per entry."""
    case_id, seq, at, actor, role, action, source, dest, comment, details, snapshot = row[:11]
    return (f"[{case_id},{seq},{_escape(at)},{'null' if actor is None else actor},{_escape(role)},"
            f"{_escape(action)},{'null' if source is None else _escape(source)},{_escape(dest)},"
            f"{'null' if comment is None else _escape(comment)},{_ENCODER.encode(details) if details else 'null'},"
            f"{'null' if snapshot is None else _escape(snapshot)}]")


def _pg_event_text(row: Any) -> str:
    return canonical(list(row[:11]))


def _entry_text(row: Any) -> str:
    return canonical([row[0], row[1], moment(row[2]), row[3], row[4], row[5], row[6], row[7], row[8],
                      row[9] or None, row[10]])


def _event_text(row: Any) -> str:
    return canonical([row[0], row[1], moment(row[2]), row[3], row[4], row[5], row[6], row[7], row[8],
                      moment(row[9]), row[10]])


def _walk(subject: str, heads: Any, links: Any, text_of: Any, report: Report, collect: bool) -> Break | None:
    """Merge the subjects (ordered by id) with their links (ordered by subject, seq)."""
    link_iter = iter(links)
    link = next(link_iter, None)
    for subject_id, head_hash, last_seq in heads:
        report.chains += 1
        prev: str | None = None
        expected = 1
        head_seq = None  # the seq whose hash the subject names as its head
        # Links of subjects that no longer exist (or were never there) come before this one.
        if link is not None and link[0] < subject_id:
            return Break(subject, link[0], link[1], "entry of an unknown " + subject)
        while link is not None and link[0] == subject_id:
            seq = link[1]
            if seq != expected:
                return Break(subject, subject_id, min(seq, expected),
                             "missing entry" if seq > expected else "entry out of order")
            if link[11] != prev:
                return Break(subject, subject_id, seq, "does not follow the entry before it")
            if sha256(f"{prev or ''}\n{text_of(link)}".encode()).hexdigest() != link[12]:  # chain_hash
                return Break(subject, subject_id, seq, "altered: its hash does not match its content")
            report.checked += 1
            prev = link[12]
            if prev == head_hash:
                head_seq = seq
            expected += 1
            link = next(link_iter, None)
        if head_hash != prev:
            if head_seq is not None:
                return Break(subject, subject_id, head_seq + 1, "entry added after the recorded head")
            if head_hash is None:
                return Break(subject, subject_id, 1, "history where none was recorded")
            return Break(subject, subject_id, expected, "entries missing at the end")
        if (last_seq or 0) != expected - 1:
            return Break(subject, subject_id, expected, "the sequence does not match the entries")
        if collect and prev is not None:
            report.heads[f"{subject}:{subject_id}"] = (expected - 1, prev)
    if link is not None:
        return Break(subject, link[0], link[1], "entry of an unknown " + subject)
    return None


def digest_of(heads: dict[str, tuple[int, str]]) -> str:
    """One hash over all heads, in a fixed order: what an operator keeps elsewhere."""
    lines = "".join(f"{key} {seq} {value}\n" for key, (seq, value) in sorted(heads.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def check_against(connection: Any, heads: dict[str, tuple[int, str]]) -> Break | None:
    """Each head in an earlier digest must still be the hash at that seq: then nothing up to it
    changed (the chain is verified from its start to now, so every earlier link is fixed too)."""
    from sqlalchemy import text

    for key, (seq, value) in sorted(heads.items()):
        subject, _sep, raw_id = key.partition(":")
        table, column = ("audit_entries", "case_id") if subject == "case" else ("permit_events", "permit_id")
        found = connection.execute(text(f"SELECT hash FROM {table} WHERE {column} = :id AND seq = :seq"),
                                   {"id": int(raw_id), "seq": seq}).scalar()
        if found != value:
            return Break(subject, int(raw_id), seq, "differs from the digest" if found else "gone since the digest")
    return None

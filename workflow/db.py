"""Database wiring: one declarative base, one engine and session factory per app.

We use plain SQLAlchemy rather than Flask-SQLAlchemy so that services, jobs and the CLI share
the same `Session` type and the request (or job, or command) visibly owns the transaction.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from flask import Flask, current_app, g, has_request_context, request
from flask.globals import _cv_app
from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from . import json_codec

# Stable constraint names make Alembic migrations reproducible across SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# Ids are INTEGER columns; a larger number can name no row, and PostgreSQL refuses to compare
# with it (an error, not an empty result).
MAX_ID = 2**31 - 1


# Every PostgreSQL session's start-up options. A request reads a page: neither JIT compilation
# nor parallel workers pay for themselves there (each costs milliseconds to start, more than such
# a query takes), and on a small server the cores they would take are the other requests'.
# PostgreSQL picks them from cost estimates, which for LIMIT queries over large tables are often
# far above what the query will read. UTC: timestamps come back in `timezone.utc`, which
# UTCDateTime passes as they are.
SESSION_OPTIONS = "-c jit=off -c max_parallel_workers_per_gather=0 -c timezone=UTC"


def startup_options(url: str, option: str) -> str:
    """libpq's start-up `options` for `url` with `option` added: connect_args replace the URL's
    own `?options=…`, so an operator's options (a search_path, say) must be carried over."""
    given = make_url(url).query.get("options")
    return f"{option} {given}" if isinstance(given, str) and given else option


def id_array(ids: Iterable[int]) -> str:
    """`ids` in PostgreSQL's text form of an integer array ('{1,2,3}'), for a parameter the
    statement casts to INTEGER[]. psycopg adapts a list one element at a time, in Python (a queue
    page of the API sends three lists of fifty); this is one join, and PostgreSQL parses it."""
    return "{" + ",".join(map(str, ids)) + "}"


def digits_up_to(limit: int) -> str:
    """A regular expression for the whole numbers 1..limit, written without leading zeros.

    The URL converter matches ids with it, so a larger number matches no route at all: checked
    only after matching (werkzeug's `max`), it made werkzeug answer 405 with a wrong Allow
    header where a sibling route took another method (PATCH /applications/99999999999).
    """
    text = str(limit)
    options = [rf"[1-9]\d{{0,{len(text) - 2}}}"] if len(text) > 1 else []
    for i, digit in enumerate(text):
        low = 1 if i == 0 else 0
        if int(digit) > low:
            rest = len(text) - i - 1
            options.append(f"{text[:i]}[{low}-{int(digit) - 1}]" + (rf"\d{{{rest}}}" if rest else ""))
    options.append(text)
    return "(?:" + "|".join(options) + ")"


ROW_ID_PATTERN = digits_up_to(MAX_ID)


def is_row_id(value: object) -> bool:
    """Whether `value` could be the id of a row (a positive int that fits the column)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID


class _ResultColumns:
    """What psycopg's Column reads of a cursor, frozen at one result: the cursor itself may have
    run another statement by the time a column is looked at."""

    __slots__ = ("pgresult", "_encoding", "adapters")

    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self.pgresult = cursor.pgresult
        self._encoding = cursor._encoding
        self.adapters = cursor.adapters


class LazyDescription(Sequence[psycopg.Column]):
    """`cursor.description` whose columns are made when read.

    psycopg builds a Column per result column (name decoded, type looked up) each time
    `description` is read, and SQLAlchemy reads it for every statement, but for a statement
    compiled before it only checks that there is one and counts it. For the case a transition
    loads (45 columns) that was more of the CPU than sending the query and reading its rows.
    """

    __slots__ = ("_result", "_columns")

    def __init__(self, cursor: psycopg.Cursor[Any], count: int) -> None:
        self._result = _ResultColumns(cursor)
        self._columns: list[psycopg.Column | None] = [None] * count

    def __len__(self) -> int:
        return len(self._columns)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self._columns))[index]]
        position = range(len(self._columns))[index]  # negative counts from the end; IndexError past it
        column = self._columns[position]
        if column is None:
            column = self._columns[position] = psycopg.Column(self._result, position)  # type: ignore[arg-type]
        return column

    def __eq__(self, other: object) -> bool:
        return list(self) == list(other) if isinstance(other, (list, LazyDescription)) else NotImplemented

    def __repr__(self) -> str:
        return repr(list(self))


# The statuses for which psycopg describes a result that has no columns ("SELECT ;").
_ROWS = frozenset({psycopg.pq.ExecStatus.TUPLES_OK, psycopg.pq.ExecStatus.SINGLE_TUPLE,
                   psycopg.pq.ExecStatus.TUPLES_CHUNK})


class Cursor(psycopg.Cursor[Any]):
    """psycopg's cursor with a LazyDescription; everything else is psycopg's."""

    @property
    def description(self) -> LazyDescription | None:  # type: ignore[override]
        result = self.pgresult
        if result and (result.nfields or result.status in _ROWS):
            return LazyDescription(self, result.nfields)
        return None


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine with the per-backend settings this app relies on."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets the web app, the worker and the CLI read while one of them writes.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    # Recycle instead of pinging on every checkout: a ping is a round trip per request.
    kwargs.setdefault("pool_recycle", 1800)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    # SESSION_OPTIONS, then the caller's own (read-only, a statement timeout), then the URL's.
    connect_args = kwargs.setdefault("connect_args", {})
    own = connect_args.get("options")
    connect_args["options"] = startup_options(url, f"{SESSION_OPTIONS} {own}" if own else SESSION_OPTIONS)
    connect_args.setdefault("cursor_factory", Cursor)
    # JSON columns are parsed by orjson (the standard library where it declines): a queue page
    # of the API reads a hundred documents.
    kwargs.setdefault("json_deserializer", json_codec.loads)
    return create_engine(url, **kwargs)


log = logging.getLogger(__name__)
# Methods that only read: their session's transaction ends with COMMIT when nothing was written.
READING_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_READING, _WROTE = "db.reading", "db.wrote"


def init_app(app: Flask) -> None:
    engine = make_engine(app.config["DATABASE_URL"])
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    event.listen(factory, "after_flush", _note_write)
    event.listen(factory, "after_commit", _forget_write)
    event.listen(factory, "after_rollback", _forget_write)
    app.extensions["db_engine"] = engine
    app.extensions["db_sessionmaker"] = factory
    app.extensions[_IDLE] = _IdleSession()
    app.teardown_appcontext(_close_session)


class _Held:
    """What one thread keeps between its requests: the session its last request closed and, once
    `hold_connections` is on, the Connection its sessions are bound to (see _take_session)."""

    __slots__ = ("session", "connection", "pool", "since", "busy")

    def __init__(self) -> None:
        self.session: Session | None = None
        self.connection: Connection | None = None
        self.pool: Any = None  # the engine's pool when the connection was taken
        self.since = 0.0  # time.time() when it was taken, as the pool times its connections
        self.busy = False  # a request's session is using the connection now

    def release(self, *, discard: bool = False) -> None:
        """Give the held connection back to its pool (closed outright if `discard`: it may be
        broken, or its pool disposed of, where it would otherwise wait to be garbage-collected)."""
        conn, self.connection, self.session, self.busy = self.connection, None, None, False
        if conn is None:
            return
        try:
            if discard:
                conn.invalidate()
            conn.close()
        except Exception:  # noqa: BLE001 - a connection that will not close is dropped all the same
            log.warning("could not close a held database connection", exc_info=True)

    def __del__(self) -> None:
        # The thread ended (threading.local drops what it kept for it): the connection goes back
        # to the pool now, not whenever the garbage collector finds it (SQLAlchemy warns then).
        self.release()


class _IdleSession(threading.local):
    """Per thread: its _Held."""

    def __init__(self) -> None:
        self.held = _Held()


_IDLE = "db_idle_session"
_HOLD = "db_hold_connections"  # the session factory whose sessions are bound to held connections
# A held connection is given back and replaced after this long, as the pool recycles its own
# (make_engine's pool_recycle): a server-side idle timeout or a failover never finds it stale.
HOLD_SECONDS = 1800


def hold_connections(app: Flask) -> None:
    """Bind each thread's request sessions to a connection the thread keeps (wsgi.py, in a web
    worker: its threads live as long as the process).

    Taking a pooled connection for every request and giving it back costs more Python than the
    transaction's own statements (SQLAlchemy's Connection and pool bookkeeping: a tenth of an API
    transition, bench/transitions.py). A held connection is outside any transaction between
    requests, exactly as a pooled one; the session begins and commits or rolls back its own
    transaction on it. An app context opened inside a request gets a pooled connection, as before.
    """
    app.extensions[_HOLD] = app.extensions["db_sessionmaker"]


def _take_session(app: Flask) -> Session:
    """A session for the request: the one this thread's previous request closed, else a new one.

    A closed Session is as new (no objects, no transaction, SQLAlchemy resets it for reuse),
    but a new one is not free: its construction and, on first use, the look-up of each event
    it fires (attach, begin, commit; a missed attribute, then a listener joined per instance)
    were a tenth of a transition's Python. Taken, not shared: an app context opened inside a
    request (a test's, a CLI command's) finds none idle and makes its own.
    """
    factory = app.extensions["db_sessionmaker"]
    held: _Held = app.extensions[_IDLE].held
    if app.extensions.get(_HOLD) is factory and not held.busy:
        conn = _held_connection(held, factory.kw["bind"])
        if conn is not None:
            sess, held.session, held.busy = held.session, None, True
            if sess is not None and sess.bind is conn:
                return sess
            return factory(bind=conn)  # type: ignore[no-any-return]
    sess = held.session
    if sess is not None and held.connection is None:
        held.session = None
        if type(sess) is factory.class_:  # made by the factory in use (a test may swap it)
            return sess
    return factory()  # type: ignore[no-any-return]


def _held_connection(held: _Held, engine: Engine) -> Connection | None:
    """The thread's held connection, replaced if it broke, its pool was disposed of or it is old;
    None if none can be had now (the session then connects when first used, and fails there)."""
    conn = held.connection
    # The pool notes when it last saw the server drop a connection (its _invalidate_time, the
    # same check its own checkout makes): every connection made before then is presumed dead,
    # so each thread replaces its own at once rather than failing one request to find out.
    if conn is not None and (conn.closed or conn.invalidated or held.pool is not engine.pool
                             or time.time() - held.since > HOLD_SECONDS
                             or engine.pool._invalidate_time > held.since):
        held.release(discard=True)
        conn = None
    if conn is None:
        try:
            conn = engine.connect()
        except SQLAlchemyError:
            return None
        held.connection, held.pool, held.since = conn, engine.pool, time.time()
    return conn


def _put_back(app: Flask, sess: Session) -> None:
    """Keep a closed session for this thread's next request, if it is as a new one would be."""
    held: _Held = app.extensions[_IDLE].held
    clean = not (sess.in_transaction() or sess.identity_map or sess.new or sess.deleted)
    if held.connection is not None:
        if sess.bind is held.connection:
            held.busy = False
            if not clean:  # not closed cleanly: neither it nor its connection is kept
                held.release(discard=True)
                return
            sess.info.clear()
            held.session = sess
        return  # a pooled session alongside the held one: let it go
    if not clean:
        return
    sess.info.clear()
    held.session = sess


def engine() -> Engine:
    return current_app.extensions["db_engine"]


def new_session() -> Session:
    """A session for work outside a request (jobs, CLI); the caller commits and closes it."""
    return current_app.extensions["db_sessionmaker"]()


def session() -> Session:
    """The request's session: created on first use, ended and closed at teardown (end_request).

    Kept in the app context's `g`, found through Flask's context variable rather than the `g`
    proxy: a request asks for its session several times, and each proxy lookup is a few dozen
    bytecodes of werkzeug's (Flask is pinned in setup.cfg)."""
    ctx = _cv_app.get(None)
    if ctx is None:  # outside an app context: the error the `g` proxy would give
        return g.db_session  # type: ignore[no-any-return]
    sess = ctx.g.get("db_session")
    if sess is None:
        sess = ctx.g.db_session = _take_session(ctx.app)
        sess.info[_READING] = has_request_context() and \
            request._get_current_object().method in READING_METHODS  # type: ignore[attr-defined]
    return sess  # type: ignore[no-any-return]


def _note_write(sess: Session, _context: object) -> None:
    sess.info[_WROTE] = True


def _forget_write(sess: Session) -> None:
    sess.info.pop(_WROTE, None)  # committed or undone: the transaction that follows starts clean


def _close_session(exc: BaseException | None) -> None:
    sess = g._get_current_object().pop("db_session", None)  # type: ignore[attr-defined]
    if sess is not None:
        end_request(sess, exc, reading=bool(sess.info.get(_READING)))
        _put_back(current_app._get_current_object(), sess)  # type: ignore[attr-defined]


def end_request(sess: Session, exc: BaseException | None, *, reading: bool) -> None:
    """Close the request's session; the transaction of a request that only read ends with COMMIT.

    psycopg forgets every statement it has prepared on the connection at each ROLLBACK (it
    cannot know what a rolled-back transaction changed in the schema), and a pooled connection
    is rolled back after each request: no statement then ever reaches the fifth execution at
    which psycopg prepares it, and PostgreSQL parses and plans every list page's statements
    anew, which took 1 to 4 ms of a queue page on bench_scale. A transaction that wrote nothing
    commits exactly as it rolls back, and the prepared statements stay. Anything else -- an
    error, a change pending or flushed -- is rolled back as before. (A reading request's view
    that writes commits its own work, as every view that changes something does.)
    """
    try:
        if (reading and exc is None and sess.in_transaction() and not sess.info.get(_WROTE)
                and not (sess.new or sess.dirty or sess.deleted)):
            sess.commit()
    except SQLAlchemyError:
        log.warning("could not end a reading request's transaction", exc_info=True)
    finally:
        sess.close()

"""Reading from a replica: the pages that only read (the auditor's console and case list, the
statistics and the CSV exports) can take their load off the primary.

With DATABASE_REPLICA_URL unset they read the primary, through the request's own session.
With it set they read through a second engine whose every transaction is read-only
(`default_transaction_read_only` on PostgreSQL, `query_only` on SQLite), so a write through it
fails even when the URL points at a writable database by mistake.

A replica lags the primary by a moment, which these pages can bear: they show history and
totals. Who is signed in is always read from the primary (Flask-Login's loader uses
db.session()), so a role granted or withdrawn a moment ago counts at once, and so does
everything a decision depends on (engine, queues, forms).
"""
from __future__ import annotations

from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from . import db


def make_read_only_engine(url: str) -> Any:
    if url.startswith("sqlite"):
        engine = db.make_engine(url)

        @event.listens_for(engine, "connect")
        def _query_only(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA query_only=ON")
            cur.close()

        return engine
    # Set when the connection starts: no extra round trip per transaction.
    return db.make_engine(url, connect_args={"options": "-c default_transaction_read_only=on"})


def init_app(app: Flask) -> None:
    url = app.config.get("DATABASE_REPLICA_URL")
    if not url:
        return
    engine = make_read_only_engine(url)
    app.extensions["replica_engine"] = engine
    app.extensions["replica_sessionmaker"] = sessionmaker(bind=engine, expire_on_commit=False)
    app.teardown_appcontext(_close_session)


def new_session() -> Session:
    """A session for reading outside the request's (a streamed export); the caller closes it."""
    factory = current_app.extensions.get("replica_sessionmaker")
    return factory() if factory is not None else db.new_session()


def session() -> Session:
    """The request's reading session: the replica's when there is one, else the request's own."""
    factory = current_app.extensions.get("replica_sessionmaker")
    if factory is None:
        return db.session()
    sess = g.get("replica_session")
    if sess is None:
        sess = g.replica_session = factory()
    return sess


def _close_session(exc: BaseException | None) -> None:
    sess = g.pop("replica_session", None)
    if sess is not None:
        # The replica's transactions are read-only (default_transaction_read_only): each ends
        # with COMMIT, which keeps the statements psycopg prepared (see db.end_request).
        db.end_request(sess, exc, reading=True)


register = init_app

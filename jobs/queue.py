"""The rq queue the app enqueues into, and enqueueing that waits for the commit.

A job enqueued before its transaction commits could run, find nothing, and be lost; so the
engine only records what to enqueue and this module sends it from the session's after_commit
hook. If Redis is down the rows stay undelivered in the outbox rather than failing the
decision the user just took.
"""
from __future__ import annotations

import logging
from typing import Any

import redis
from flask import Flask, current_app
from rq import Queue
from sqlalchemy import event
from sqlalchemy.orm import Session

from workflow import redis_conn

from .tracing import TracedQueue

log = logging.getLogger(__name__)
PENDING = "enqueue_after_commit"
_told_no_redis = False  # whether this process has said so (see _after_commit)


def init_app(app: Flask) -> None:
    factory = app.extensions["db_sessionmaker"]
    event.listen(factory, "after_commit", _after_commit)
    event.listen(factory, "after_rollback", _after_rollback)
    app.extensions["rq_queue"] = None


def connection(app: Flask | None = None) -> redis.Redis | None:
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    conn = app.extensions.get("redis")
    if conn is None:
        conn = redis_conn.connect(app.config)  # REDIS_URL, or the master Sentinel names
        if conn is None:
            return None
        app.extensions["redis"] = conn
    return conn


def get_queue(app: Flask | None = None) -> Queue | None:
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    conn = connection(app)
    if conn is None:
        return None
    return TracedQueue(app.config["RQ_QUEUE"], connection=conn)  # jobs carry the request id


def enqueue_after_commit(session: Session, func: str, *args: Any) -> None:
    session.info.setdefault(PENDING, []).append((func, args))


def take_pending(session: Session, func: str) -> list[tuple[Any, ...]]:
    """Remove and return the arguments of `func` jobs the session would enqueue after its commit,
    for a caller that enqueues them itself (the sweep batches the lapses' deliveries with its own)."""
    pending = session.info.get(PENDING, [])
    taken = [args for f, args in pending if f == func]
    if taken:
        session.info[PENDING] = [(f, args) for f, args in pending if f != func]
    return taken


def _after_commit(session: Session) -> None:
    pending = session.info.pop(PENDING, [])
    if not pending:
        return
    try:
        queue = get_queue()
    except RuntimeError:  # no app context: nothing to enqueue into
        queue = None
    if queue is None:
        # A fact of the configuration, not news about this commit: said once per process at
        # INFO, then at DEBUG (a line per commit doubled the lines a transition logs).
        global _told_no_redis
        level = logging.DEBUG if _told_no_redis else logging.INFO
        _told_no_redis = True
        log.log(level, "no Redis configured; %d job(s) left in the outbox", len(pending))
        return
    from .notify import RETRY

    try:
        for func, args in pending:
            retry = RETRY if func == "jobs.notify.deliver" else None
            queue.enqueue(func, *args, retry=retry, failure_ttl=7 * 24 * 3600)
    except redis.RedisError:
        log.exception("enqueue failed; %d job(s) stay in the outbox", len(pending))


def _after_rollback(session: Session) -> None:
    session.info.pop(PENDING, None)

"""Delivery of outbox rows: in-app at once, by e-mail when SMTP is configured.

Idempotent and exactly-once from our side: each row is locked while it is sent and marked
delivered in the same transaction, one transaction per row, so a job that runs twice
(re-enqueued by the sweep after a lost job, or retried by rq) finds it delivered and skips it.

Two jobs: `deliver(id)` for one row (what a decision enqueues) and `deliver_batch(ids)` for many
(what the sweep enqueues: one rq job costs several Redis round trips and more CPU than sending
the message, so a batch carries DELIVERY_BATCH rows). Each row of a batch is still its own
transaction, so a row that fails never sends the others again.

A temporary SMTP failure is retried with backoff (RETRY), MAX_ATTEMPTS in all, then the row is
marked failed for the admins' list. A single-row job raises and rq retries it. In a batch the
failing row is committed with its error and handed on to a single-row job of its own, scheduled
after the first interval with the rest of RETRY, and the batch goes on with the next row; if the
server cannot be reached at all (or timed out), the rows not yet tried wait for the same
interval in one new batch job, not charged an attempt. While a retry waits, `enqueued_at` is
the moment it will run, so the sweep's lease (which re-enqueues rows whose job was lost) counts
from there and does not cut the backoff short. A message that cannot even be written (rendering fails) is marked failed
at once: retrying would fail the same way for ever.

The one window left is SMTP's own: a server that accepted the message (250 after DATA) just
before the worker died sees it again on the next attempt. The Message-ID is the same on every
attempt (derived from the row), so the receiving side can recognise the repeat.
"""
from __future__ import annotations

import base64
import contextlib
import functools
import logging
import re
import smtplib
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from email.header import Header
from typing import Any, Protocol

import redis
from flask import current_app
from rq import Retry, get_current_job
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.engine import Connection

from .context import app_context
from .mailer import mailer, timed_out

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5
RETRY = Retry(max=MAX_ATTEMPTS - 1, interval=[10, 60, 300, 900])
# A row that failed in a batch has had its first attempt and waited the first interval.
RETRY_AFTER_BATCH = Retry(max=MAX_ATTEMPTS - 2, interval=RETRY.intervals[1:])
DELIVER = "jobs.notify.deliver"
DELIVER_BATCH = "jobs.notify.deliver_batch"
# Rows per batch job: large enough that rq's cost per job is small beside the messages', small
# enough that two workers share a sweep's rows evenly and a killed worker strands few of them
# (until the sweep's lease enqueues them again).
DELIVERY_BATCH = 50
FAILURE_TTL = 7 * 24 * 3600  # rq keeps a failed job's record a week


class _Temporary(Exception):
    """A row's SMTP attempt failed and is to be retried (its error and attempts are committed)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def deliver(notification_id: int) -> str:
    """One row; on a temporary failure the error propagates and rq retries the job."""
    with app_context():
        with _rows() as rows:
            try:
                return _attempt(rows, notification_id, _retry_delay)
            except _Temporary as temporary:
                raise temporary.error from None


def deliver_batch(ids: list[int]) -> str:
    """Many rows, one transaction each; says how many ended how."""
    with app_context():
        first = RETRY.intervals[0]
        outcomes: Counter[str] = Counter()
        retrying: list[int] = []
        waiting: list[int] = []
        with _rows() as rows:
            for index, notification_id in enumerate(ids):
                try:
                    outcomes[_attempt(rows, notification_id, lambda: first)] += 1
                except _Temporary as temporary:
                    outcomes["retrying"] += 1
                    retrying.append(notification_id)
                    # A server that cannot be reached, or stops answering, would cost every
                    # row left the same wait: they are not tried now.
                    if mailer.unreachable or timed_out(temporary.error):
                        waiting = _postpone(ids[index + 1:], first)
                        outcomes["waiting"] += len(waiting)
                        break
        _schedule(retrying, waiting, first)
        return ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))


def _attempt(rows: "_Rows", notification_id: int, retry_delay: Callable[[], int]) -> str:
    """Lock the row, send it, record the outcome and commit. Raises _Temporary (after committing
    the attempt) when the SMTP failure is worth retrying."""
    from workflow.models import utcnow

    from .messages import render_parts

    row = rows.lock(notification_id)
    if row is None:
        rows.release()
        return "missing"
    if row.delivered_at is not None or row.failed_at is not None:
        rows.release()
        return "already handled"
    attempts = row.attempts + 1
    config = current_app.config
    host = config["SMTP_HOST"]

    def record(delivered_at: datetime | None = None, failed_at: datetime | None = None,
               enqueued_at: datetime | None = None, last_error: str | None = None) -> None:
        rows.record({"nid": notification_id, "attempts": attempts, "delivered_at": delivered_at,
                     "failed_at": failed_at, "last_error": last_error, "enqueued_at": enqueued_at})

    if host:
        sender = config["MAIL_FROM"]
        try:
            subject, body = render_parts(row.kind, row.payload, row.locale)
        except Exception as exc:  # noqa: BLE001 - any rendering error is permanent
            record(last_error=f"{type(exc).__name__}: {exc}"[:2000], failed_at=utcnow())
            log.exception("notification %s cannot be rendered; marked failed", notification_id)
            return "failed"
        message = _message(sender, row.email, subject, body, message_id(notification_id, row.row_key, sender))
        try:
            mailer.send(host, config["SMTP_PORT"], sender, row.email, message)
        except (OSError, smtplib.SMTPException) as exc:
            error = f"{type(exc).__name__}: {exc}"[:2000]
            if attempts >= MAX_ATTEMPTS:
                record(last_error=error, failed_at=utcnow())
                log.warning("notification %s failed for good: %s", notification_id, error)
                return "failed"
            record(last_error=error, enqueued_at=utcnow() + timedelta(seconds=retry_delay()))
            raise _Temporary(exc) from exc
    record(delivered_at=utcnow(), last_error=None)
    return "delivered"


class _Rows(Protocol):
    """One row's transaction: `lock` begins it, `record` (UPDATE and COMMIT) or `release`
    (ROLLBACK) ends it."""

    def lock(self, notification_id: int) -> Any: ...
    def record(self, values: dict[str, Any]) -> None: ...
    def release(self) -> None: ...


@contextlib.contextmanager
def _rows() -> Iterator[_Rows]:
    from workflow import db

    engine = db.engine()
    if engine.dialect.name == "postgresql":
        raw = engine.raw_connection()
        try:
            yield _PipelinedRows(raw.driver_connection)
        finally:
            raw.close()  # back to the pool, which rolls back whatever is left open
    else:
        with engine.connect() as conn:
            yield _CoreRows(conn)


class _CoreRows:
    """Any database: SQLAlchemy Core on one connection (the ORM's unit of work and identity map
    would cost more than the rest of the row's database work)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.lock_row, self.update_row = _statements()

    def lock(self, notification_id: int) -> Any:
        return self.conn.execute(self.lock_row, {"nid": notification_id}).first()

    def record(self, values: dict[str, Any]) -> None:
        self.conn.execute(self.update_row, values)
        self.conn.commit()

    def release(self) -> None:
        self.conn.rollback()


class _PipelinedRows:
    """PostgreSQL: BEGIN goes with the SELECT … FOR UPDATE and the UPDATE with the COMMIT, in
    psycopg's pipeline mode, so a row costs two round trips to the server instead of four (on a
    busy machine each one waits for the server to be scheduled; they were most of a delivery's
    time). The same statements as _statements()'s."""

    LOCK = ("SELECT n.attempts, n.delivered_at, n.failed_at, n.kind, n.key AS row_key, n.payload, u.email, u.locale "
            "FROM notifications n JOIN users u ON u.id = n.user_id WHERE n.id = %(nid)s FOR UPDATE OF n")
    RECORD = ("UPDATE notifications SET attempts = %(attempts)s, delivered_at = %(delivered_at)s, "
              "failed_at = %(failed_at)s, last_error = %(last_error)s, "
              "enqueued_at = coalesce(%(enqueued_at)s, enqueued_at) WHERE id = %(nid)s")

    def __init__(self, conn: Any) -> None:
        from psycopg.rows import namedtuple_row

        self.conn = conn
        self.cursor = conn.cursor(row_factory=namedtuple_row)

    def lock(self, notification_id: int) -> Any:
        with self.conn.pipeline():
            self.cursor.execute(self.LOCK, {"nid": notification_id})
        return self.cursor.fetchone()

    def record(self, values: dict[str, Any]) -> None:
        with self.conn.pipeline():
            self.cursor.execute(self.RECORD, values)
            self.conn.commit()

    def release(self) -> None:
        self.conn.rollback()


@functools.cache
def _statements() -> tuple[Any, Any]:
    """(lock and read one row, record its attempt), built once per process. The attempt's
    UPDATE leaves enqueued_at as it is unless a retry moves it."""
    from workflow.models import Notification, User

    table, n, u = Notification.__table__, Notification.__table__.c, User.__table__.c
    lock = (
        select(n.attempts, n.delivered_at, n.failed_at, n.kind, n.key.label("row_key"), n.payload, u.email, u.locale)
        .join_from(table, User.__table__, u.id == n.user_id)
        .where(n.id == bindparam("nid")).with_for_update(of=table)
    )
    record = update(table).where(n.id == bindparam("nid")).values(
        attempts=bindparam("attempts"), delivered_at=bindparam("delivered_at"), failed_at=bindparam("failed_at"),
        last_error=bindparam("last_error"),
        enqueued_at=func.coalesce(bindparam("enqueued_at", type_=n.enqueued_at.type), n.enqueued_at),
    )
    return lock, record


def _postpone(ids: list[int], seconds: int) -> list[int]:
    """Rows not tried yet because the server is unreachable: leased until they are tried again."""
    from workflow import db
    from workflow.models import Notification, utcnow

    if not ids:
        return []
    n = Notification.__table__.c
    with db.engine().begin() as conn:
        waiting = list(conn.scalars(
            update(Notification.__table__).where(n.id.in_(ids), n.delivered_at.is_(None), n.failed_at.is_(None))
            .values(enqueued_at=utcnow() + timedelta(seconds=seconds)).returning(n.id)
        ))
    return sorted(waiting)


def _schedule(retrying: list[int], waiting: list[int], seconds: int) -> None:
    """After the rows' commit: a job for each failed row and one for the rows not tried. If Redis
    is down, their `enqueued_at` lets the sweep enqueue them again once it has passed."""
    from .queue import get_queue

    if not (retrying or waiting):
        return
    queue = get_queue()
    if queue is None:
        return
    delay = timedelta(seconds=seconds)
    try:
        for notification_id in retrying:
            queue.enqueue_in(delay, DELIVER, notification_id, retry=RETRY_AFTER_BATCH, failure_ttl=FAILURE_TTL)
        if waiting:
            queue.enqueue_in(delay, DELIVER_BATCH, waiting, retry=RETRY, failure_ttl=FAILURE_TTL)
    except redis.RedisError:
        log.exception("scheduling retries failed; the sweep enqueues %d row(s) again after their lease",
                      len(retrying) + len(waiting))


def _retry_delay() -> int:
    """Seconds until rq runs the current job again (0 when it will not retry it)."""
    job = get_current_job()
    if job is None or not job.retries_left:
        return 0
    return job.get_retry_interval()


def message_id(notification_id: int, key: str | None, sender: str) -> str:
    """The same on every attempt for one notification, so a receiving system can recognise a
    repeat (email.utils.make_msgid adds the time and a random number: a new id each attempt)."""
    local = re.sub(r"[^A-Za-z0-9._-]", ".", key or "")
    domain = sender.rpartition("@")[2] or "ngo-permits.local"
    return f"<n{notification_id}.{local}@{domain}>" if local else f"<n{notification_id}@{domain}>"


def _message(sender: str, to: str, subject: str, body: str, msg_id: str) -> bytes:
    """The message as sent: plain UTF-8 text in base64 (no server needs 8BITMIME for it), the
    subject RFC 2047-encoded unless it is plain ASCII. Written out directly because
    email.message.EmailMessage parses and refolds every header, about a third of the worker's
    CPU per message."""
    if not (subject.isascii() and subject.isprintable()):
        subject = Header(subject, "utf-8", header_name="Subject").encode(linesep="\r\n")
    head = (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: {msg_id}\r\nMIME-Version: 1.0\r\n"
            'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: base64\r\n\r\n')
    text = "".join(line + "\n" for line in body.splitlines())  # as EmailMessage.set_content writes it
    return head.encode("utf-8") + base64.encodebytes(text.encode("utf-8")).replace(b"\n", b"\r\n")

"""Delivery of outbox rows: in-app at once, by e-mail when SMTP is configured.

Idempotent and exactly-once from our side: the row is locked while it is sent and marked
delivered in the same transaction, so a job that runs twice (re-enqueued by the sweep after a
lost job, or retried by rq) finds it delivered and stops. A temporary SMTP failure raises, and
rq retries with backoff; after MAX_ATTEMPTS the row is marked failed for the admins' list.
While a retry waits, `enqueued_at` is the moment rq will run it, so the sweep's lease (which
re-enqueues rows whose job was lost) counts from there and does not cut the backoff short.
A message that cannot even be written (rendering fails) is marked failed at once: retrying
would fail the same way for ever.

The one window left is SMTP's own: a server that accepted the message (250 after DATA) just
before the worker died sees it again on the next attempt. The Message-ID is the same on every
attempt (derived from the row), so the receiving side can recognise the repeat.
"""
from __future__ import annotations

import logging
import re
import smtplib
from datetime import timedelta
from email.message import EmailMessage

from flask import current_app
from rq import Retry, get_current_job
from sqlalchemy import select

from .context import app_context

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5
RETRY = Retry(max=MAX_ATTEMPTS - 1, interval=[10, 60, 300, 900])


def deliver(notification_id: int) -> str:
    from workflow import db
    from workflow.models import Notification, utcnow

    from .messages import render

    with app_context():
        with db.new_session() as session:
            row = session.scalar(
                select(Notification).where(Notification.id == notification_id).with_for_update()
            )
            if row is None:
                return "missing"
            if row.delivered_at is not None or row.failed_at is not None:
                return "already handled"
            row.attempts += 1
            host = current_app.config["SMTP_HOST"]
            if host:
                sender, recipient = current_app.config["MAIL_FROM"], row.user.email  # loads the user
                try:
                    subject, body = render(row)
                except Exception as exc:  # noqa: BLE001 - any rendering error is permanent
                    row.last_error = f"{type(exc).__name__}: {exc}"[:2000]
                    row.failed_at = utcnow()
                    session.commit()
                    log.exception("notification %s cannot be rendered; marked failed", row.id)
                    return "failed"
                try:
                    _send(host, current_app.config["SMTP_PORT"], sender, recipient, subject, body,
                          message_id(row.id, row.key, sender))
                except (OSError, smtplib.SMTPException) as exc:
                    row.last_error = f"{type(exc).__name__}: {exc}"[:2000]
                    if row.attempts >= MAX_ATTEMPTS:
                        row.failed_at = utcnow()
                        session.commit()
                        log.warning("notification %s failed for good: %s", row.id, row.last_error)
                        return "failed"
                    row.enqueued_at = utcnow() + timedelta(seconds=_retry_delay())
                    session.commit()
                    raise  # rq retries with backoff
            row.delivered_at = utcnow()
            row.last_error = None
            session.commit()
            return "delivered"


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


def _send(host: str, port: int, sender: str, to: str, subject: str, body: str, msg_id: str) -> None:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = msg_id
    message.set_content(body)
    with smtplib.SMTP(host, port, timeout=30) as smtp:
        smtp.send_message(message)

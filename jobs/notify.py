"""Delivery of outbox rows: in-app at once, by e-mail when SMTP is configured.

Idempotent and exactly-once from our side: the row is locked while it is sent and marked
delivered in the same transaction, so a job that runs twice (re-enqueued by the sweep after a
lost job, or retried by rq) finds it delivered and stops. A temporary SMTP failure raises, and
rq retries with backoff; after MAX_ATTEMPTS the row is marked failed for the admins' list.
"""
from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage
from email.utils import make_msgid

from flask import current_app
from rq import Retry
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
                subject, body = render(row)
                try:
                    _send(host, current_app.config["SMTP_PORT"], current_app.config["MAIL_FROM"],
                          row.user.email, subject, body, row.key or f"n{row.id}")
                except (OSError, smtplib.SMTPException) as exc:
                    row.last_error = f"{type(exc).__name__}: {exc}"[:2000]
                    if row.attempts >= MAX_ATTEMPTS:
                        row.failed_at = utcnow()
                        session.commit()
                        log.warning("notification %s failed for good: %s", row.id, row.last_error)
                        return "failed"
                    session.commit()
                    raise  # rq retries with backoff
            row.delivered_at = utcnow()
            row.last_error = None
            session.commit()
            return "delivered"


def _send(host: str, port: int, sender: str, to: str, subject: str, body: str, key: str) -> None:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    # Stable per notification, so a receiving system can recognise a repeat.
    message["Message-ID"] = make_msgid(idstring=key.replace(":", "."), domain="ngo-permits.local")
    message.set_content(body)
    with smtplib.SMTP(host, port, timeout=30) as smtp:
        smtp.send_message(message)

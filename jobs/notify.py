"""Delivery of notification rows.

Delivery is idempotent: a row already marked delivered is skipped, so a job run twice (a
worker killed after sending, say) does not deliver twice from our side.
"""
from __future__ import annotations

import logging

from sqlalchemy import select

from .context import app_context

log = logging.getLogger(__name__)


def deliver(notification_id: int) -> str:
    from workflow import db
    from workflow.models import Notification, utcnow

    with app_context():
        with db.new_session() as session:
            row = session.scalar(
                select(Notification).where(Notification.id == notification_id).with_for_update()
            )
            if row is None:
                return "missing"
            if row.delivered_at is not None:
                return "already delivered"
            row.attempts += 1
            # In-app delivery: the row is what the notification bell reads. E-mail comes with
            # the jobs issue; it will send here, before marking the row delivered.
            row.delivered_at = utcnow()
            session.commit()
            log.info("delivered notification %s (%s) to user %s", row.id, row.kind, row.user_id)
            return "delivered"

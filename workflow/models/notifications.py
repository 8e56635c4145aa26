"""The notification outbox: rows written in the transaction that made them due, delivered by rq.

Writing the row first and enqueueing after commit means a crash between the two loses no
message: an undelivered row stays in the database and the sweep enqueues it again. `key` is
unique: a reminder for (subject, kind, due moment) can be created only once, however many
sweeps run, twice or at the same time.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import Base
from .types import JSONType, UTCDateTime, utcnow
from .users import User


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_user_unread", "user_id", "read_at"),
        # Undelivered rows, for the sweep's re-enqueue and the admins' failed list.
        Index("ix_notifications_pending", "delivered_at", "failed_at", "enqueued_at"),
        # The admins' list of failed deliveries, newest first, without passing the delivered ones.
        Index("ix_notifications_failed", "failed_at", "id", postgresql_where=text("failed_at IS NOT NULL"),
              sqlite_where=text("failed_at IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    permit_id: Mapped[int | None] = mapped_column(ForeignKey("permits.id"))
    kind: Mapped[str] = mapped_column(String(40))
    key: Mapped[str | None] = mapped_column(String(200), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()

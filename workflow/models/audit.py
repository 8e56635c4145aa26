"""The audit trail: one row per transition, written in the same commit as the state change."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import Base
from .types import JSONType, UTCDateTime, utcnow
from .users import User


class AuditEntry(Base):
    __tablename__ = "audit_entries"
    # (case_id, seq) unique: a second writer that slipped past the version check still fails here.
    __table_args__ = (UniqueConstraint("case_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(40))
    from_state: Mapped[str | None] = mapped_column(String(40))
    to_state: Mapped[str] = mapped_column(String(40))
    comment: Mapped[str | None] = mapped_column(Text)
    # What the action carried besides the comment: a score, a proposed amount and tranches,
    # the tranche a payment or report concerns. Auditors read the figures the decision rested on.
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONType)

    actor: Mapped[User | None] = relationship(lazy="joined")
    # Declared so the unit of work writes the case (and its version check) before the entry.
    case: Mapped["Case"] = relationship()  # noqa: F821

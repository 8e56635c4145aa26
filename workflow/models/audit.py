"""The audit trail: one row per transition, written in the same commit as the state change."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import Base
from .types import JSONType, UTCDateTime, utcnow
from .users import User


class AuditEntry(Base):
    __tablename__ = "audit_entries"
    # (case_id, seq) unique: a second writer that slipped past the version check still fails here.
    __table_args__ = (
        UniqueConstraint("case_id", "seq"),
        # Statistics and the auditor console ask for a period's decisions.
        # Also a period's entries newest first, nationally (the console's date filter).
        Index("ix_audit_entries_at", "at", "id"),
        # The auditor console: a province's entries newest first, all or in a period
        # (services/audit_search.py). The case id rides along (INCLUDE, PostgreSQL): the console's
        # counts join each match to its case, from the index alone (0011).
        Index("ix_audit_entries_province_id_id", "province_id", "id", postgresql_include=["case_id"]),
        Index("ix_audit_entries_province_at", "province_id", "at", "id"),
        # Its action and state filters, counted up to a thousand from a range each (0009).
        Index("ix_audit_entries_province_action", "province_id", "action", "id", postgresql_include=["case_id"]),
        Index("ix_audit_entries_province_to_state", "province_id", "to_state", "id",
              postgresql_include=["case_id"]),
        # "Did this user recommend on this case?" (the queues, the engine), from the index alone.
        Index("ix_audit_entries_actor_id", "actor_id", "action", "case_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    # The case's province, copied so the console finds a province's entries by one index range. Not
    # part of the chained fields (a case's province never changes once it has history); filled by
    # the engine, and on PostgreSQL by a trigger for any other writer (migration 0008).
    province_id: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    role: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(40))
    from_state: Mapped[str | None] = mapped_column(String(40))
    to_state: Mapped[str] = mapped_column(String(40))
    comment: Mapped[str | None] = mapped_column(Text)
    # What the action carried besides the comment: a score, a proposed amount and tranches,
    # the tranche a payment or report concerns. Auditors read the figures the decision rested on.
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # The hash chain (workflow/audit_chain.py): what the actor saw, the entry before, this one.
    snapshot_hash: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))

    actor: Mapped[User | None] = relationship(lazy="joined")
    # Declared so the unit of work writes the case (and its version check) before the entry.
    case: Mapped["Case"] = relationship()  # noqa: F821


class Snapshot(Base):
    """What an actor saw when they acted: the case's data and documents, frozen.

    Keyed by the SHA-256 of its canonical text, which the audit entry records; many entries
    that saw the same thing share one row. Kept as the exact text that was hashed, so an
    auditor can check it without trusting any re-encoding.
    """

    __tablename__ = "snapshots"

    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

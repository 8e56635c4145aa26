"""Cases (applications) and their documents.

One table serves every process kind: the kind names the state machine in the registry and
`data` holds the kind's form. `version` is SQLAlchemy's version counter, so every UPDATE of a
case is `... WHERE id = ? AND version = ?` and a lost race surfaces as StaleDataError (409).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import Base
from .organizations import Organization
from .types import JSONType, UTCDateTime, utcnow


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (
        # The queues (services/queues.py): one range per (kind, state) list in queue order, keyset on
        # (state_entered_at, id); a province's, a county office's, national staff's.
        Index("ix_cases_queue", "province_id", "kind", "state", "state_entered_at", "id"),
        Index("ix_cases_queue_county", "county_id", "kind", "state", "state_entered_at", "id",
              postgresql_where=text("county_id IS NOT NULL"), sqlite_where=text("county_id IS NOT NULL")),
        Index("ix_cases_queue_national", "kind", "state", "state_entered_at", "id"),
        # The auditors' list of cases, newest first, all or in one state (views/queues.py).
        Index("ix_cases_province_id_id", "province_id", "id"),
        Index("ix_cases_province_state_id", "province_id", "state", "id"),
        Index("ix_cases_state_id", "state", "id"),
        Index("ix_cases_org_state", "organization_id", "state"),
        # The sweep asks only "what is due now?": one index range, however many cases exist.
        Index("ix_cases_next_event_at", "next_event_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    province_id: Mapped[int] = mapped_column(ForeignKey("provinces.id"))
    county_id: Mapped[int | None] = mapped_column(ForeignKey("counties.id"))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    state_entered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set when the case first leaves the applicant's hands; staff never see a mere draft.
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Who recommended: the engine refuses that person the decision (separation of duties).
    recommended_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    # The earliest deadline event (reminder, escalation, lapse) not yet handled by the sweep.
    next_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set by escalation one working day after the SLA; cleared when the case moves on.
    overdue: Mapped[bool] = mapped_column(default=False, server_default="0")
    # The hash of the newest audit entry: deleting the last entries would otherwise go unseen.
    head_hash: Mapped[str | None] = mapped_column(String(64))

    organization: Mapped[Organization] = relationship(lazy="joined")
    documents: Mapped[list["Document"]] = relationship(
        back_populates="case", order_by="Document.id", lazy="select"
    )
    permit: Mapped["Permit | None"] = relationship(  # noqa: F821
        back_populates="case", uselist=False, lazy="select", foreign_keys="Permit.case_id"
    )

    __mapper_args__ = {"version_id_col": version}


class Document(Base):
    """An uploaded file, stored outside the web root under a generated name."""

    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    original_name: Mapped[str] = mapped_column(String(255))
    stored_name: Mapped[str] = mapped_column(String(80), unique=True)
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A replaced statute stays for the history; only the current one counts for submission.
    superseded: Mapped[bool] = mapped_column(default=False)
    # A receipt belongs to the spending report of one tranche of a grant.
    tranche_id: Mapped[int | None] = mapped_column(ForeignKey("tranches.id"), index=True)

    case: Mapped[Case] = relationship(back_populates="documents")


class IdempotencyKey(Base):
    """Remembers which case a client's retried POST created, so a retry never makes a second."""

    __tablename__ = "idempotency_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    key: Mapped[str] = mapped_column(String(200))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("uq_idempotency_user_key", "user_id", "key", unique=True),)

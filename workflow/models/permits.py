"""Issued permits and their own history.

A permit outlives the case that issued it: it is suspended, reinstated, revoked, expires and
is renewed. Those events are kept per permit in `permit_events`, with their own sequence, so
the permit's history reads whole without walking the cases that touched it.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import Base
from .cases import Case
from .organizations import Organization
from .types import UTCDateTime, utcnow
from .users import User


class Permit(Base):
    __tablename__ = "permits"
    __table_args__ = (
        Index("ix_permits_state_valid_until", "state", "valid_until"),
        Index("ix_permits_next_event_at", "next_event_at"),
        # A province's permits, for its statistics.
        Index("ix_permits_province_id", "province_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str | None] = mapped_column(String(40), unique=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), unique=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    province_id: Mapped[int] = mapped_column(ForeignKey("provinces.id"))
    county_id: Mapped[int | None] = mapped_column(ForeignKey("counties.id"))
    state: Mapped[str] = mapped_column(String(20), default="active")
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    last_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The renewal under way, if any. Claimed with the permit's version check, so of two
    # renewals opened at once exactly one succeeds.
    open_renewal_case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    # The next reminder, expiry or end of grace the sweep must handle.
    next_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The hash of the newest permit event (the permit's own chain).
    head_hash: Mapped[str | None] = mapped_column(String(64))

    case: Mapped[Case] = relationship(back_populates="permit", foreign_keys=[case_id])
    organization: Mapped[Organization] = relationship(lazy="joined")

    # Like cases: every UPDATE names the version read, so two directors cannot both act.
    __mapper_args__ = {"version_id_col": version}


class PermitEvent(Base):
    """One row per change of a permit's state or validity, written with the change."""

    __tablename__ = "permit_events"
    __table_args__ = (UniqueConstraint("permit_id", "seq"), Index("ix_permit_events_at", "at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    permit_id: Mapped[int] = mapped_column(ForeignKey("permits.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    role: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(40))
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The renewal case behind a `renew` event.
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))

    actor: Mapped[User | None] = relationship(lazy="joined")
    # Declared so a flush writes the permit (and its version check) before its event.
    permit: Mapped[Permit] = relationship()

"""Grant programmes (funding calls), the grants they award and the tranches paid out.

Money is whole rials in BigInteger columns: a provincial budget of billions of tomans is past
what a 32-bit integer holds, and a float would lose rials.

A programme's `awarded_rials` is a counter kept beside its budget with a CHECK that it never
passes the budget. Approvals add to it with a conditional UPDATE, so the database, not the
application, guarantees the budget is never over-committed: two directors approving at the
same moment are serialised on the programme's row and the one that would exceed is refused.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import Base
from .cases import Case
from .places import Province
from .types import JSONType, UTCDateTime, utcnow


class Programme(Base):
    __tablename__ = "programmes"
    __table_args__ = (
        CheckConstraint("awarded_rials <= budget_rials", name="awards_within_budget"),
        CheckConstraint("awarded_rials >= 0 AND disbursed_rials >= 0", name="counters_not_negative"),
        CheckConstraint("budget_rials > 0 AND max_award_rials > 0 AND max_award_rials <= budget_rials",
                        name="amounts"),
        CheckConstraint("opens_on <= closes_on", name="dates"),
        UniqueConstraint("province_id", "fiscal_year", "name_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(200))
    province_id: Mapped[int] = mapped_column(ForeignKey("provinces.id"), index=True)
    fiscal_year: Mapped[int] = mapped_column(Integer)  # Jalali year, e.g. 1405
    budget_rials: Mapped[int] = mapped_column(BigInteger)
    max_award_rials: Mapped[int] = mapped_column(BigInteger)
    awarded_rials: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    disbursed_rials: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    opens_on: Mapped[date] = mapped_column(Date)
    closes_on: Mapped[date] = mapped_column(Date)
    # Field-of-activity codes an applicant's permit must be in.
    fields: Mapped[list[str]] = mapped_column(JSONType, default=list)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    province: Mapped[Province] = relationship()


class Grant(Base):
    """The money side of one grant request, from the moment it is opened.

    Created with the case so the programme a request is for is a column (the reserved and
    awarded sums are queries on it), then filled in as the request moves: the expert's score,
    finance's proposed amount and tranches, the director's award, refunds.
    """

    __tablename__ = "grants"

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    programme_id: Mapped[int] = mapped_column(ForeignKey("programmes.id"), index=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    score: Mapped[int | None] = mapped_column(Integer)
    proposed_rials: Mapped[int | None] = mapped_column(BigInteger)
    proposed_tranches: Mapped[list[int] | None] = mapped_column(JSONType)
    awarded_rials: Mapped[int | None] = mapped_column(BigInteger)
    awarded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refunded_rials: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

    case: Mapped[Case] = relationship()
    programme: Mapped[Programme] = relationship()
    tranches: Mapped[list["Tranche"]] = relationship(order_by="Tranche.n", lazy="select")


class Tranche(Base):
    """One payment of an awarded grant and the spending report that must follow it.

    pending → released → reported → accepted, with `returned` when finance sends a report back
    for correction. The next tranche is released only after this one's report is accepted.
    """

    __tablename__ = "tranches"
    __table_args__ = (
        UniqueConstraint("case_id", "n"),
        CheckConstraint("amount_rials > 0", name="amount_positive"),
        # The sweep's question about reports: which reminders are due now?
        Index("ix_tranches_next_event_at", "next_event_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("grants.case_id"), index=True)
    n: Mapped[int] = mapped_column(Integer)
    amount_rials: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(20), default="pending")
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    report_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # [{item, budgeted_rials, spent_rials}]
    report_lines: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    spent_rials: Mapped[int | None] = mapped_column(BigInteger)
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refund_rials: Mapped[int | None] = mapped_column(BigInteger)
    return_comment: Mapped[str | None] = mapped_column(Text)
    next_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    grant: Mapped[Grant] = relationship(back_populates="tranches")

"""Statistics pages computed ahead of time.

A year's figures for a province aggregate two years of its history (every step of every case,
with its working days): seconds per page on a national data set. jobs/statistics.py computes
them every hour and keeps them here, one row per (Jalali year, province or the whole country);
the page reads its row and says how old it is, and computes the figures itself only when there
is no row fresh enough (services/statistics.py: `for_page`).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base
from .types import JSONType, UTCDateTime


class StatisticsReport(Base):
    __tablename__ = "statistics_reports"
    __table_args__ = (UniqueConstraint("year", "scope"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    year: Mapped[int] = mapped_column(Integer)
    # A province's id as text, or "all" for the whole country: one unique key for both (a NULL
    # province would not be unique).
    scope: Mapped[str] = mapped_column(String(12))
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    body: Mapped[dict[str, Any]] = mapped_column(JSONType)

"""NGOs. The name key makes uniqueness blind to Arabic/Persian letter and ZWNJ variants."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import Base
from .places import County, Province
from .types import UTCDateTime, utcnow


class Organization(Base):
    __tablename__ = "organizations"
    __table_args__ = (UniqueConstraint("province_id", "name_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(200))
    province_id: Mapped[int] = mapped_column(ForeignKey("provinces.id"), index=True)
    county_id: Mapped[int | None] = mapped_column(ForeignKey("counties.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    # Loaded on access: the transition path never needs them, pages get them from the identity map.
    province: Mapped[Province] = relationship()
    county: Mapped[County | None] = relationship()

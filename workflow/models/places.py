"""Provinces and counties: the jurisdictions staff belong to and cases are filed in."""
from __future__ import annotations

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import Base


class Province(Base):
    __tablename__ = "provinces"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name_fa: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    counties: Mapped[list["County"]] = relationship(
        back_populates="province", order_by="County.name_fa"
    )

    def name(self, locale: str) -> str:
        return self.name_fa if locale == "fa" else self.name_en


class County(Base):
    __tablename__ = "counties"
    __table_args__ = (UniqueConstraint("province_id", "name_en"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    province_id: Mapped[int] = mapped_column(ForeignKey("provinces.id"), index=True)
    name_fa: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    province: Mapped[Province] = relationship(back_populates="counties")

    def name(self, locale: str) -> str:
        return self.name_fa if locale == "fa" else self.name_en

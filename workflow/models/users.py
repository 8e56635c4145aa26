"""Users, their roles and their organisation memberships.

A user may hold several roles (an office is small; one person is often intake and expert), so
roles are rows, not a column. Staff carry a province and optionally a county: that is their
jurisdiction. Applicants act through memberships of organisations.
"""
from __future__ import annotations

import hashlib
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import Boolean, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .. import passwords
from ..db import Base
from .places import County, Province
from .types import UTCDateTime, utcnow

ROLES = ("applicant", "intake", "expert", "director", "finance", "auditor", "admin")
STAFF_ROLES = frozenset({"intake", "expert", "director", "finance", "auditor", "admin"})


def parse_grants(roles: str | None, organization_ids: str | None) -> tuple[frozenset[str], frozenset[int]]:
    """A user's roles and organisation ids from the comma-joined lists the user queries
    aggregate (services/accounts.py): what `User.prime` and the API's bearer hold."""
    return (frozenset(filter(None, (roles or "").split(","))),
            frozenset(int(x) for x in (organization_ids or "").split(",") if x))


class User(UserMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(300))
    province_id: Mapped[int | None] = mapped_column(ForeignKey("provinces.id"), index=True)
    county_id: Mapped[int | None] = mapped_column(ForeignKey("counties.id"))
    is_active_flag: Mapped[bool] = mapped_column("is_active", Boolean, default=True)
    locale: Mapped[str | None] = mapped_column(String(5))
    # How amounts are shown to this user: people speak tomans, the books are in rials.
    money_unit: Mapped[str] = mapped_column(String(6), default="toman", server_default="toman")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    province: Mapped[Province | None] = relationship()
    county: Mapped[County | None] = relationship()
    role_rows: Mapped[list["UserRole"]] = relationship(cascade="all, delete-orphan")
    memberships: Mapped[list["Membership"]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )

    @property
    def is_active(self) -> bool:  # Flask-Login asks this
        return self.is_active_flag

    # Every request asks for roles and memberships several times; `accounts.load_user` fetches
    # them with the user in one query and primes these, so no relationship load is needed.
    @property
    def roles(self) -> frozenset[str]:
        primed = self.__dict__.get("_primed_roles")
        return primed if primed is not None else frozenset(r.role for r in self.role_rows)

    @property
    def organization_ids(self) -> frozenset[int]:
        primed = self.__dict__.get("_primed_org_ids")
        return primed if primed is not None else frozenset(m.organization_id for m in self.memberships)

    def prime(self, roles: str | None, organization_ids: str | None) -> None:
        self.__dict__["_primed_roles"], self.__dict__["_primed_org_ids"] = parse_grants(roles, organization_ids)

    def has_role(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))

    @property
    def is_staff(self) -> bool:
        return bool(self.roles & STAFF_ROLES)

    def set_password(self, password: str) -> None:
        self.password_hash = passwords.hash_password(password)

    def check_password(self, password: str) -> bool:
        return passwords.verify(self.password_hash, password)


class UserRole(Base):
    __tablename__ = "user_roles"
    __table_args__ = (UniqueConstraint("user_id", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20))


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "organization_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    user: Mapped[User] = relationship(back_populates="memberships")
    organization: Mapped["Organization"] = relationship()  # noqa: F821


class ApiToken(Base):
    """Bearer tokens for the API; only a hash is stored so a database leak grants nothing."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    user: Mapped[User] = relationship(lazy="joined")

    @staticmethod
    def hash(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

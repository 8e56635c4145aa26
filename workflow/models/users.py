"""Users, their roles and their organisation memberships.

A user may hold several roles (an office is small; one person is often intake and expert), so
roles are rows, not a column. Staff carry a province and optionally a county: that is their
jurisdiction. Applicants act through memberships of organisations.
"""
from __future__ import annotations

import hashlib
import threading
from datetime import datetime

from flask import current_app, has_app_context
from flask_login import UserMixin
from sqlalchemy import Boolean, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from ..db import Base
from .places import County, Province
from .types import UTCDateTime, utcnow

# Werkzeug's scrypt takes 32 MB for every hash it computes. A worker's threads signing people in
# at the same moment would each take that (four at once doubled a worker's memory under load);
# one at a time per process bounds it, and a sign-in waits at most for another's ~50 ms.
_HASHING = threading.Lock()

ROLES = ("applicant", "intake", "expert", "director", "finance", "auditor", "admin")
STAFF_ROLES = frozenset({"intake", "expert", "director", "finance", "auditor", "admin"})


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
        self.__dict__["_primed_roles"] = frozenset(filter(None, (roles or "").split(",")))
        self.__dict__["_primed_org_ids"] = frozenset(int(x) for x in (organization_ids or "").split(",") if x)

    def has_role(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))

    @property
    def is_staff(self) -> bool:
        return bool(self.roles & STAFF_ROLES)

    def set_password(self, password: str) -> None:
        # Tests turn the work factor down; production keeps werkzeug's strong default.
        method = current_app.config.get("PASSWORD_HASH_METHOD") if has_app_context() else None
        with _HASHING:
            self.password_hash = generate_password_hash(password, method=method or "scrypt")

    def check_password(self, password: str) -> bool:
        with _HASHING:
            return check_password_hash(self.password_hash, password)


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

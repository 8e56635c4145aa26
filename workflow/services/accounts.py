"""Users, organisations, sign-in and API tokens."""
from __future__ import annotations

import functools
import secrets
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import String, bindparam, cast, func, literal_column, select
from sqlalchemy.orm import Session

from .. import driver_sql, passwords, rows
from ..errors import Conflict, Invalid
from ..models import (
    ROLES, STAFF_ROLES, ApiToken, County, Membership, Notification, Organization, Province, User, UserRole, utcnow,
)
from ..models.users import parse_grants
from ..text import name_key, normalize_line


def find_province(session: Session, name: str) -> Province | None:
    """By Persian or English name or code, blind to letter variants."""
    key = name_key(name)
    for province in session.scalars(select(Province)):
        if key in (name_key(province.name_fa), name_key(province.name_en), name_key(province.code)):
            return province
    return None


def find_county(session: Session, province: Province, name: str) -> County | None:
    key = name_key(name)
    for county in province.counties:
        if key in (name_key(county.name_fa), name_key(county.name_en)):
            return county
    return None


def create_organization(
    session: Session, *, name: str, province: Province, county: County | None = None
) -> Organization:
    clean = normalize_line(name)
    if len(clean) < 3:
        raise Invalid(_("The name must be 3 to 200 characters long."), {"name": "too short"})
    key = name_key(clean)
    clash = session.scalar(
        select(Organization.id).where(Organization.province_id == province.id, Organization.name_key == key)
    )
    if clash:
        raise Conflict(_("Another organisation in this province already has this name."))
    org = Organization(name=clean, name_key=key, province_id=province.id, county_id=county.id if county else None)
    session.add(org)
    session.flush()
    return org


def create_user(
    session: Session, *, email: str, password: str, name: str, roles: list[str],
    province: Province | None = None, county: County | None = None,
    organizations: list[Organization] | None = None,
) -> User:
    email = normalize_email(email)
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise Invalid(f"Unknown role(s): {', '.join(unknown)}", {"role": ", ".join(unknown)})
    if session.scalar(select(User.id).where(User.email == email)):
        raise Conflict(f"A user with e-mail {email} exists already.")
    user = User(email=email, name=normalize_line(name), province_id=province.id if province else None,
                county_id=county.id if county else None)
    user.set_password(password)
    user.role_rows = [UserRole(role=r) for r in dict.fromkeys(roles)]
    user.memberships = [Membership(organization_id=o.id) for o in organizations or []]
    session.add(user)
    session.flush()
    return user


def normalize_email(email: str | None) -> str:
    """The form an address is stored and looked up in; the sign-in throttle keys on it too."""
    return (email or "").strip().lower()


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The user these credentials belong to, or None.

    A hash older than the configured argon2 one is replaced while the plain password is at hand;
    the caller commits (the request owns the transaction). Every path verifies one hash, so the
    answer takes as long for an unknown address as for a known one.
    """
    user = session.scalar(select(User).where(User.email == normalize_email(email)))
    if user is None:
        passwords.spend_verify_time(password or "")
        return None
    if not user.check_password(password or "") or not user.is_active:
        return None
    if passwords.needs_rehash(user.password_hash):
        user.set_password(password)
    return user


def issue_token(session: Session, user: User) -> tuple[str, datetime]:
    token = secrets.token_urlsafe(32)
    expires = utcnow() + timedelta(hours=current_app.config["TOKEN_HOURS"])
    session.add(ApiToken(user_id=user.id, token_hash=ApiToken.hash(token), expires_at=expires))
    session.flush()
    return token, expires


@functools.cache
def _principal_query():  # type: ignore[no-untyped-def]
    """The user's columns, roles and organisation ids; built once: constructing it costs more
    than running it.

    The separator is a literal column: given as a string, SQLAlchemy renders it through a
    "literal execute" parameter, which re-processes the SQL text on every execution.
    """
    comma = literal_column("','")
    roles = (
        select(func.aggregate_strings(UserRole.role, comma))
        .where(UserRole.user_id == User.id)
        .scalar_subquery()
    )
    orgs = (
        select(func.aggregate_strings(cast(Membership.organization_id, String), comma))
        .where(Membership.user_id == User.id)
        .scalar_subquery()
    )
    return select(*rows.columns(User), roles, orgs)


def _principal(session: Session, row: Any) -> User:
    """The user of a _principal_query row, as a query loads it, with roles and memberships primed."""
    n = len(rows.columns(User))
    if rows.held(session, User, row[0]):
        # The session's object is the user (a query would return it too); get() refreshes it
        # should it have been expired.
        user = session.get(User, row[0])
    else:
        user = rows.loaded(User, row[:n])
        rows.attach(session, user)
    user.prime(row[n], row[n + 1])
    return user


def load_user(session: Session, user_id: int) -> User | None:
    """The user with roles and memberships, in one query (every signed-in page asks)."""
    rows.flush_pending(session)
    row = session.connection().execute(_user_query(), {"user_id": user_id}).one_or_none()
    return None if row is None else _principal(session, row)


@functools.cache
def _user_query():  # type: ignore[no-untyped-def]
    return _principal_query().where(User.id == bindparam("user_id"))


def load_signed_in_user(session: Session, user_id: int) -> tuple[User | None, int]:
    """The signed-in user of a page, as `load_user`, and how many of their notifications are
    unread (the bell every page's header shows): one round trip for what was two."""
    rows.flush_pending(session)
    row = session.connection().execute(_signed_in_query(), {"user_id": user_id}).one_or_none()
    return (None, 0) if row is None else (_principal(session, row), row[-1] or 0)


@functools.cache
def _signed_in_query():  # type: ignore[no-untyped-def]
    unread = (
        select(func.count()).select_from(Notification)
        .where(Notification.user_id == User.id, Notification.read_at.is_(None))
        .scalar_subquery()
    )
    return _user_query().add_columns(unread)


@functools.cache
def _token_query():  # type: ignore[no-untyped-def]
    return (
        _principal_query()
        .add_columns(ApiToken.expires_at)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == bindparam("token_hash"))
    )


def user_for_token(session: Session, token: str) -> Principal | None:
    """The bearer token's user, with roles and memberships, in one query."""
    rows.flush_pending(session)
    row = driver_sql.run(session, _token_query(), {"token_hash": ApiToken.hash(token)}).one_or_none()
    if row is None:
        return None
    expires_at, is_active = row[-1], row[rows.position(User, "is_active_flag")]
    if expires_at <= utcnow() or not is_active:
        return None
    return Principal(row)


@functools.cache
def _principal_positions() -> tuple[int, ...]:
    return tuple(rows.position(User, name) for name in Principal.COLUMNS)


class Principal:
    """The API's bearer as the rules, the services and the request log read it: the user's own
    columns, roles, organisations and jurisdiction, made from the token query's row. An ORM
    User made for every call (its identity, attached to the session, then its attributes read
    through the ORM's descriptors a few dozen times) cost more than the call's SQL; the few
    endpoints that need more of the user (/me: its province and organisations) read it from
    `record`, the ORM object, loaded in the request's session the first time it is asked for.
    Any attribute not held here is read from it, so the bearer stands in for the User."""

    COLUMNS = ("id", "email", "name", "province_id", "county_id", "locale", "money_unit")
    __slots__ = (*COLUMNS, "roles", "organization_ids", "is_staff", "_record")
    is_authenticated = True  # as Flask-Login's UserMixin says of a User
    is_active = True  # an inactive user's token finds no one (user_for_token)

    def __init__(self, row: Any) -> None:
        (self.id, self.email, self.name, self.province_id, self.county_id, self.locale,
         self.money_unit) = (row[i] for i in _principal_positions())
        n = len(rows.columns(User))
        self.roles, self.organization_ids = parse_grants(row[n], row[n + 1])
        self.is_staff = bool(self.roles & STAFF_ROLES)
        self._record: User | None = None

    def has_role(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))

    @property
    def record(self) -> User:
        """The user as an object of the request's session (roles and memberships primed)."""
        if self._record is None:
            from .. import db

            found = load_user(db.session(), self.id)
            if found is None:  # deleted since the token was read: as if the token had found no one
                raise LookupError(f"user {self.id} is gone")
            self._record = found
        return self._record

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # a slot not set, or a protocol probe (copy, pickle): not the user's
            raise AttributeError(name)
        return getattr(self.record, name)

    def __repr__(self) -> str:
        return f"<Principal {self.id} {self.email}>"

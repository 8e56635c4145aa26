"""Column types that behave the same on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Always hand back aware UTC datetimes; SQLite would otherwise return naive ones and
    comparisons with `utcnow()` would fail only on the laptop."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)

    def bind_processor(self, dialect: Any) -> Any:
        """process_bind_param, with the same way out for PostgreSQL: the app's datetimes are made
        in `timezone.utc` (utcnow), and such a value is sent as it is (a transition sends eight)."""
        if dialect.name != "postgresql" or self.impl_instance.bind_processor(dialect) is not None:
            return super().bind_processor(dialect)
        return _utc_as_is(self.process_bind_param, dialect)

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        """process_result_value, with a way out first for what needs nothing done: PostgreSQL
        sessions run in UTC (db.make_engine), so psycopg hands back datetimes already in
        `timezone.utc`. A list page reads a few hundred; TypeDecorator's own processor made two
        calls for each. Elsewhere (SQLite) TypeDecorator's, which parses the stored text first."""
        if dialect.name != "postgresql" or self.impl_instance.result_processor(dialect, coltype) is not None:
            return super().result_processor(dialect, coltype)
        return _utc_as_is(self.process_result_value, dialect)


def _utc_as_is(convert: Any, dialect: Any) -> Any:
    """A processor that passes None and datetimes in `timezone.utc` as they are, and gives any
    other value to `convert` (UTCDateTime's process_*_value)."""
    utc = timezone.utc

    def process(value: datetime | None) -> datetime | None:
        if value is None or value.tzinfo is utc:
            return value
        return convert(value, dialect)

    return process


JSONType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)

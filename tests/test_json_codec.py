"""workflow/json_codec.py: orjson does the app's JSON where it can; what it cannot do goes to the
standard library, so what the app reads and writes is the same whichever of the two did it."""
from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask, jsonify
from markupsafe import Markup
from sqlalchemy import bindparam, text

from workflow import db, json_codec
from workflow.models.types import UTCDateTime


@dataclasses.dataclass
class Point:
    x: int
    y: int


VALUES: list[Any] = [
    {"name": "انجمن حمایت از کودکان کار", "n": 3, "ok": True, "none": None, "f": 1.5, "list": [1, "۲", {"b": 2, "a": 1}]},
    {"big": 2**70, "small": -(2**65)},                      # past 64 bits: orjson refuses, json writes
    {1: "one", 2: "two"},                                   # integer keys: json writes them as strings
    {"at": datetime(2026, 3, 20, 12, 30, tzinfo=timezone.utc), "day": date(2026, 3, 21)},  # Flask: HTTP dates
    {"amount": Decimal("1250000.50"), "point": Point(1, 2), "html": Markup("<b>x</b>")},
    ["\u200c", "نیم\u200cفاصله", "😀", "\x00", "</script>"],
]


@pytest.fixture
def flask_app() -> Flask:
    from workflow import WorkflowFlask

    return WorkflowFlask(__name__)


@pytest.mark.parametrize("value", VALUES)
def test_bodies_say_what_flask_would_have_said(flask_app: Flask, value: Any) -> None:
    stock = Flask(__name__)
    with flask_app.app_context():
        ours = jsonify(value)
        ours_text = flask_app.json.dumps(value)
    with stock.app_context():
        theirs = jsonify(value)
        theirs_text = stock.json.dumps(value)
    assert ours.mimetype == "application/json"
    assert json.loads(ours.get_data()) == json.loads(theirs.get_data())
    assert json.loads(ours_text) == json.loads(theirs_text)
    assert ours.get_data().endswith(b"\n")


def test_text_is_utf8_and_keys_are_sorted(flask_app: Flask) -> None:
    with flask_app.app_context():
        body = jsonify({"b": "کرمان", "a": 1}).get_data()
    assert body == '{"a":1,"b":"کرمان"}\n'.encode()


def test_what_nobody_can_write_is_still_an_error(flask_app: Flask) -> None:
    with flask_app.app_context(), pytest.raises(TypeError):
        jsonify({"s": {1, 2}})


def test_debug_bodies_stay_indented(flask_app: Flask) -> None:
    flask_app.debug = True
    with flask_app.app_context():
        assert jsonify({"a": 1}).get_data() == b'{\n  "a": 1\n}\n'


@pytest.mark.parametrize("raw", [
    b'{"a": [1, 2.5, "\\u06a9"], "b": null}',
    b'{"n": 123456789012345678901234567890}',          # valid JSON, refused by orjson
    '{"t": "متن"}',
    memoryview(b'{"n": 123456789012345678901234567890}'),
])
def test_loads_reads_what_json_reads(raw: Any) -> None:
    expected = json.loads(bytes(raw) if isinstance(raw, memoryview) else raw)
    assert json_codec.loads(raw) == expected


def test_malformed_text_is_still_an_error() -> None:
    with pytest.raises(ValueError):
        json_codec.loads(b'{"a": ')


def test_postgresql_json_comes_through_the_codec(app: Any, backend: Any) -> None:
    """JSON columns: what PostgreSQL stores comes back as it went in, numbers past 64 bits too."""
    if backend.name != "postgresql":
        pytest.skip("the json_deserializer is the PostgreSQL engine's")
    with app.app_context(), db.new_session() as session:
        row = session.execute(text(
            "SELECT CAST('{\"n\": 123456789012345678901234567890, \"t\": \"کرمان\"}' AS jsonb)")).scalar_one()
    assert row == {"n": 123456789012345678901234567890, "t": "کرمان"}


def test_timestamps_come_back_in_utc_whatever_the_session_zone(app: Any, backend: Any) -> None:
    """UTCDateTime passes PostgreSQL's UTC datetimes as they are and converts any other zone."""
    if backend.name != "postgresql":
        pytest.skip("PostgreSQL sessions' zone")
    column = text("SELECT CAST('2026-03-20 12:30:00+00' AS timestamptz) AS at").columns(at=UTCDateTime())
    with app.app_context(), db.new_session() as session:
        assert session.execute(text("SHOW timezone")).scalar_one() == "UTC"
        at = session.execute(column).scalar_one()
        assert at == datetime(2026, 3, 20, 12, 30, tzinfo=timezone.utc) and at.tzinfo is timezone.utc
        session.execute(text("SET LOCAL timezone = 'Asia/Tehran'"))
        at = session.execute(column).scalar_one()
        assert at == datetime(2026, 3, 20, 12, 30, tzinfo=timezone.utc) and at.tzinfo is timezone.utc
        session.rollback()


def test_timestamps_are_sent_as_the_instant_they_name(app: Any, backend: Any) -> None:
    """UTCDateTime's parameters: UTC as it is, another zone converted, a naive one taken as UTC."""
    from zoneinfo import ZoneInfo

    at = datetime(2026, 3, 20, 12, 30, tzinfo=timezone.utc)
    sent = [at, at.astimezone(ZoneInfo("Asia/Tehran")), at.replace(tzinfo=None), None]
    query = text("SELECT CAST(:at AS VARCHAR)").bindparams(bindparam("at", type_=UTCDateTime()))
    with app.app_context(), db.new_session() as session:
        dialect = session.get_bind().dialect
        process = UTCDateTime().bind_processor(dialect)
        processed = [process(v) if process else v for v in sent]
        if backend.name == "postgresql":
            assert processed[0] is at and processed[1] == at and processed[1].tzinfo is timezone.utc
            assert processed[2] == at and processed[3] is None
        stored = [session.execute(query, {"at": v}).scalar_one() for v in sent[:3]]
    assert len(set(stored)) == 1, stored  # the same instant, however it was given


def test_id_array_is_postgresql_array_text(app: Any, backend: Any) -> None:
    assert db.id_array([3, 1, 2]) == "{3,1,2}" and db.id_array([]) == "{}"
    if backend.name != "postgresql":
        return
    with app.app_context(), db.new_session() as session:
        got = session.execute(text("SELECT CAST(:ids AS INTEGER[])"), {"ids": db.id_array([3, 1, 2])}).scalar_one()
    assert got == [3, 1, 2]


@pytest.mark.parametrize("raw", [
    b'[18446744073709551615, -9223372036854775808, 123456789012345678]',
    b'{"iban": "IR123456789012345678901234", "x": NaN}',
    '{"x": "\\ud800"}',
    b'[18446744073709551616]',                                   # past 64 bits: orjson says a float
    '{"n": 18446744073709551616, "t": "کرمان"}',          # the same, in text with Persian
    '{"t": "۱۲۳۴۵۶۷۸۹۰۱۲۳۴۵۶۷۸۹۰", "n": 123456789012345678}',  # Persian digits are no run
])
def test_loads_edges_read_as_json_reads(raw: Any) -> None:
    expected = json.loads(raw)
    got = json_codec.loads(raw)
    assert repr(got) == repr(expected)

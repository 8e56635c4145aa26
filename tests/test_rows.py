"""rows.plain: a row's values as plain attributes, equal to what the ORM's attributes read."""
from __future__ import annotations

from collections import namedtuple

from sqlalchemy import select

from workflow import db, rows
from workflow.models import Case


def test_plain_reads_what_the_object_reads(app, api):
    case_id = api.ready()
    with app.app_context(), db.new_session() as session:
        case = session.scalar(select(Case).where(Case.id == case_id))
        plain = rows.plain(case)
        assert plain is not case
        for attribute in rows.attributes(Case):
            assert getattr(plain, attribute) == getattr(case, attribute), attribute
        case.state = "changed, not flushed"  # what the object holds now, as its attribute would say
        assert rows.plain(case).state == "changed, not flushed"
        session.expire(case, ["state"])  # a column not loaded: the object itself, whose read loads it
        assert rows.plain(case) is case
        assert case.state != "changed, not flushed"
    record = namedtuple("Record", ["id"])(1)
    assert rows.plain(record) is record

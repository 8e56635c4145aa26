"""The transition endpoint's shortcuts (issue 2's bench) change nothing a caller can see.

The case is read with Core and made into session objects by workflow/rows.py, the bearer
into an accounts.Principal; these tests hold them to what the ORM returns, and show that
nothing about a user outlives the request that read it. psycopg's cursor description is made lazily
(workflow/db.py); it must describe every result as psycopg does.
"""
from __future__ import annotations

from typing import Any

import psycopg
import pytest
from sqlalchemy import delete, inspect, select, update

from tests.support import TO_AWAITING
from workflow import db, engine
from workflow.models import ApiToken, Case, Document, Permit, User, UserRole
from workflow.services import accounts


def _columns(obj: Any) -> dict[str, Any]:
    return {attr.key: getattr(obj, attr.key) for attr in inspect(type(obj)).column_attrs}


def _approved_case(api: Any) -> int:
    case_id = api.ready()
    api.advance(case_id, *TO_AWAITING, ("approve", "director"))
    return case_id


def test_case_made_from_rows_is_the_orm_query_s(app, api, world):
    case_id = _approved_case(api)
    director = world.users["director"]
    with app.test_request_context():
        with db.new_session() as orm_session, db.new_session() as session:
            expected = orm_session.execute(engine._case_query(), {"case_id": case_id}).unique().scalar_one()
            user = accounts.load_user(session, director)
            case = engine.get_case(session, user, case_id)

            assert expected.permit is not None and expected.documents  # the comparison covers both
            assert _columns(case) == _columns(expected)
            assert [_columns(d) for d in case.documents] == [_columns(d) for d in expected.documents]
            assert _columns(case.permit) == _columns(expected.permit)
            for obj in (case, case.permit, *case.documents):
                state = inspect(obj)
                assert state.persistent and not state.modified and state.session is session
            assert not session.dirty and not session.new
            # Relationships not read with it load on access, as after the query.
            assert case.organization.id == case.organization_id
            assert case.documents[0].case is case and case.permit.case is case
            # A second read in the same session is the same object, by the ORM's query.
            assert engine.get_case(session, user, case_id) is case


def test_case_made_from_rows_writes_like_a_loaded_one(app, api, world):
    case_id = api.ready()
    with app.test_request_context():
        with db.new_session() as session:
            user = accounts.load_user(session, world.users["ngo"])
            case = engine.get_case(session, user, case_id)
            version = case.version
            engine.fire(session, case, "submit", user, version=version)
            session.commit()
        with db.new_session() as session:
            row = session.execute(select(Case.state, Case.version).where(Case.id == case_id)).one()
    assert tuple(row) == ("submitted", version + 1)


def test_objects_the_session_holds_are_kept(app, api, world):
    case_id = api.ready()
    with app.test_request_context():
        with db.new_session() as session:
            user = accounts.load_user(session, world.users["ngo"])
            document = session.scalars(select(Document).where(Document.case_id == case_id)).one()
            document.original_name = "changed, not flushed"
            case = engine.get_case(session, user, case_id)
            assert case.documents == [document]
            assert case.documents[0].original_name == "changed, not flushed"

            held = session.get(Case, case_id)
            assert engine.get_case(session, user, case_id) is held is case
            assert accounts.load_user(session, world.users["ngo"]) is user


def test_no_permit_and_no_documents(app, api, world):
    case_id = api.create()["id"]
    with app.test_request_context():
        with db.new_session() as session:
            case = engine.get_case(session, accounts.load_user(session, world.users["ngo"]), case_id)
            assert case.documents == [] and case.permit is None
            assert session.scalar(select(Permit).where(Permit.case_id == case_id)) is None


def test_nothing_about_the_bearer_outlives_its_request(api, app, session, world):
    """Roles taken away, a user deactivated, a token deleted: the very next request knows."""
    case_id = api.ready()
    api.advance(case_id, ("submit", "ngo"))
    version = api.get(f"/api/v1/applications/{case_id}", "intake").get_json()["version"]
    token = api.token("intake")
    intake = world.users["intake"]
    assert api.get("/api/v1/me", "intake").get_json()["roles"] == ["intake"]

    session.execute(delete(UserRole).where(UserRole.user_id == intake))
    session.commit()
    assert api.get("/api/v1/me", "intake").get_json()["roles"] == []
    r = api.post(f"/api/v1/applications/{case_id}/transitions", "intake", {"action": "accept", "version": version})
    assert r.status_code == 404  # no staff role: a submitted case of another organisation is not theirs to see

    session.add(UserRole(user_id=intake, role="intake"))
    session.commit()
    assert api.get("/api/v1/me", "intake").status_code == 200
    session.execute(update(User).where(User.id == intake).values(is_active_flag=False))
    session.commit()
    assert api.get("/api/v1/me", "intake").status_code == 401

    session.execute(update(User).where(User.id == intake).values(is_active_flag=True))
    session.commit()
    assert api.get("/api/v1/me", "intake").status_code == 200
    session.execute(delete(ApiToken).where(ApiToken.token_hash == ApiToken.hash(token)))
    session.commit()
    assert api.get("/api/v1/me", "intake").status_code == 401


@pytest.mark.postgres
def test_lazy_description_describes_as_psycopg_does(app, backend):
    if backend.name != "postgresql":
        pytest.skip("psycopg's cursor is the PostgreSQL driver's")
    query = "SELECT 1 AS a, now() AS b, '{}'::jsonb AS c, 'x'::varchar(7) AS d, NULL::numeric(10, 2) AS e"
    with app.extensions["db_engine"].connect() as connection:
        driver = connection.connection.driver_connection
        cursor = driver.cursor()
        assert isinstance(cursor, db.Cursor)
        plain = psycopg.Cursor(driver)
        cursor.execute(query)
        plain.execute(query)
        lazy, described = cursor.description, plain.description
        assert len(lazy) == len(described) == 5
        assert [tuple(c) for c in lazy] == [tuple(c) for c in described]
        assert [c.name for c in lazy[1:3]] == ["b", "c"] and lazy[-1].name == "e"
        with pytest.raises(IndexError):
            lazy[5]
        # Columns read after the cursor moved on still describe the result they came from.
        rows = cursor.description
        cursor.execute("SELECT 2 AS z")
        assert [c.name for c in rows] == ["a", "b", "c", "d", "e"] and cursor.description[0].name == "z"
        cursor.execute("SET LOCAL statement_timeout = 0")
        assert cursor.description is None
        cursor.execute("SELECT")
        assert cursor.description is not None and len(cursor.description) == 0


@pytest.mark.parametrize("flushes", [False, True])
def test_an_effect_s_own_bookkeeping_wins_and_the_version_moves_once(app, api, world, monkeypatch, flushes):
    """fire puts its bookkeeping in the case's loaded state and its one UPDATE; an effect that
    sets one of those columns itself (and may flush, as issuing a permit does) is what lands."""
    from datetime import datetime, timezone

    from workflow.process import Process

    case_id = api.ready()
    chosen = datetime(2031, 5, 5, 12, 0, tzinfo=timezone.utc)
    fire = Process.fire

    def with_effect(self: Any, case: Any, action: str, **context: Any) -> None:
        fire(self, case, action, **context)
        case.next_event_at = chosen
        if flushes:
            context["session"].flush()

    monkeypatch.setattr(Process, "fire", with_effect)
    case, version, recorded, row = _submit(app, world, case_id)
    assert case.next_event_at == chosen and case.version == version + 1
    assert tuple(row)[:5] == ("submitted", version + 1, recorded.seq, recorded.hash, chosen)


def _submit(app: Any, world: Any, case_id: int) -> tuple[Case, int, Any, Any]:
    """The applicant submits through engine.fire and commits: the case as the session left it,
    the version it had, what fire recorded, and the row as the database then holds it."""
    with app.test_request_context():
        with db.new_session() as session:
            user = accounts.load_user(session, world.users["ngo"])
            case = engine.get_case(session, user, case_id)
            version = case.version
            recorded = engine.fire(session, case, "submit", user, version=version)
            session.commit()
        with db.new_session() as session:
            row = session.execute(select(Case.state, Case.version, Case.last_seq, Case.head_hash,
                                         Case.next_event_at, Case.submitted_at).where(Case.id == case_id)).one()
    return case, version, recorded, row


def test_the_case_update_takes_the_changed_attributes_as_its_parameters(app, api, world):
    """_write_case names the UPDATE's parameters by column; Case's attributes are named as its
    columns, so none is renamed (a column named apart from its attribute shows here first)."""
    assert engine._renamed_columns() == ()
    _case, version, recorded, row = _submit(app, world, api.ready())
    assert tuple(row)[:4] == ("submitted", version + 1, recorded.seq, recorded.hash)
    assert row.submitted_at is not None


def test_the_bearer_reads_as_its_user(app, api, world):
    """accounts.Principal: what the token query read, equal to the ORM user's; anything else is
    read from the user itself, loaded in the request's session on first need."""
    token = api.token("intake")
    with app.test_request_context():
        with db.new_session() as session:
            expected = accounts.load_user(session, world.users["intake"])
            bearer = accounts.user_for_token(db.session(), token)
            assert isinstance(bearer, accounts.Principal) and bearer._record is None
            for name in (*accounts.Principal.COLUMNS, "roles", "organization_ids", "is_staff", "is_active"):
                assert getattr(bearer, name) == getattr(expected, name), name
            assert bearer.has_role("intake", "admin") and not bearer.has_role("admin")
            with pytest.raises(AttributeError):
                bearer._not_a_column  # noqa: B018 - a private name never reaches the user
            assert bearer._record is None
            # Not held: read from the user, loaded once into the request's session.
            assert bearer.province.id == expected.province_id and bearer.created_at == expected.created_at
            assert bearer.record is bearer.record and inspect(bearer.record).session is db.session()


def test_loaded_reads_as_the_attributes_read(app, api, world):
    """engine.loaded gives what reading each attribute gives: from the loaded state, the ORM's
    way once one is expired (which loads it), and a record with slots as it is."""
    case_id = api.ready()
    with app.test_request_context():
        with db.new_session() as session:
            case = session.get(Case, case_id)
            assert case is not None
            names = ("id", "state", "version", "province_id")
            assert engine.loaded(case, *names) == tuple(getattr(case, n) for n in names)
            session.expire(case, ["state"])
            assert "state" not in case.__dict__
            assert engine.loaded(case, "id", "state") == (case_id, "draft")
            assert case.__dict__["state"] == "draft"  # loaded again by the read

    class Record:
        __slots__ = ("a", "b")

        def __init__(self) -> None:
            self.a, self.b = 1, 2

    assert engine.loaded(Record(), "b", "a") == (2, 1)

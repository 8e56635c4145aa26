"""workflow/driver_sql.py runs a transition's statements on psycopg's cursor: what comes back,
what is refused and what happens to the connection must be what SQLAlchemy's execution gives."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
import pytest
from sqlalchemy import bindparam, event, insert, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from workflow import db, driver_sql, engine
from workflow.models import ApiToken, AuditEntry, Case, Snapshot
from workflow.services import accounts

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg(backend):  # type: ignore[no-untyped-def]
    if backend.name != "postgresql":
        pytest.skip("the shortcut is psycopg's; elsewhere SQLAlchemy runs every statement")
    return backend


def _both(session: Any, statement: Any, params: dict[str, Any]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    ours = [tuple(r) for r in driver_sql.run(session, statement, params).rows]
    theirs = [tuple(r) for r in session.connection().execute(statement, params).all()]
    return ours, theirs


def test_the_hot_statements_take_the_shortcut(app, pg):
    with app.app_context(), db.new_session() as session:
        dialect = session.connection().dialect
        statements = [
            (accounts._token_query(), {"token_hash": "x"}),
            (engine._case_rows(), {"case_id": 1}),
            (engine._case_update(), {"state": "x", "version": 2, "case_id": 1, "version_read": 1}),
            (engine._entry_insert("postgresql", True), {}),
        ]
        for statement, params in statements:
            keys = tuple(sorted(params))
            if not params:  # the entry: every column the engine passes, as _write_entry does
                keys = tuple(sorted(["case_id", "seq", "at", "actor_id", "role", "action", "from_state",
                                     "to_state", "comment", "details", "snapshot_hash", "prev_hash", "hash",
                                     "province_id", "snapshot_key", "snapshot_body", "snapshot_at",
                                     "note_case_id", "kind", "organization_id", "payload", "now"]))
            assert driver_sql._prepare(statement, dialect, keys) is not None, statement


def test_rows_and_types_are_sqlalchemy_s(app, api, world, pg):
    case_id = api.ready()
    token = api.tokens["ngo"]
    with app.app_context(), db.new_session() as session:
        ours, theirs = _both(session, engine._case_rows(), {"case_id": case_id})
        assert ours == theirs and ours
        created = ours[0][[c.name for c in Case.__table__.columns].index("created_at")]
        assert isinstance(created, datetime) and created.tzinfo == timezone.utc
        assert isinstance(ours[0][[c.name for c in Case.__table__.columns].index("data")], dict)
        ours, theirs = _both(session, accounts._token_query(), {"token_hash": ApiToken.hash(token)})
        assert ours == theirs and len(ours) == 1 and ours[0][-1].tzinfo == timezone.utc
        assert driver_sql.run(session, engine._case_rows(), {"case_id": 10**9}).one_or_none() is None


def test_update_counts_rows_and_binds_types(app, api, pg):
    case_id = api.ready()
    moment = datetime(2026, 3, 20, 12, 30, tzinfo=timezone.utc)
    with app.app_context(), db.new_session() as session:
        version = session.scalar(select(Case.version).where(Case.id == case_id))
        stale = driver_sql.run(session, engine._case_update(),
                               {"updated_at": moment, "case_id": case_id, "version_read": version + 7})
        assert stale.rowcount == 0
        done = driver_sql.run(session, engine._case_update(),
                              {"updated_at": moment, "data": {"name": "ي ۱"}, "case_id": case_id,
                               "version_read": version})
        assert done.rowcount == 1 and done.rows == []
        session.commit()
        row = session.execute(select(Case.updated_at, Case.data).where(Case.id == case_id)).one()
    assert row == (moment, {"name": "ي ۱"})


def test_values_fixed_in_the_statement_are_sent_converted(app, api, pg):
    """A literal in the statement (its own bind, with the column's processing: JSON here) goes
    with the caller's values; one computed per execution, or a required one left out, is
    SQLAlchemy's to evaluate or refuse."""
    case_id = api.ready()
    with app.app_context(), db.new_session() as session:
        dialect = session.connection().dialect
        literal = select(Case.id, Case.state).where(
            Case.id == bindparam("case_id"), Case.state == "draft",
            Case.data != {"name": "ي"})
        plan = driver_sql._prepare(literal, dialect, ("case_id",))
        assert plan is not None and sorted(plan.fixed) == ["data_1", "state_1"]
        assert isinstance(plan.fixed["data_1"], Jsonb)  # processed once, as SQLAlchemy would each time
        ours, theirs = _both(session, literal, {"case_id": case_id, "unused": 1})
        assert ours == theirs == [(case_id, "draft")]
        computed = select(Case.id).where(Case.id == bindparam("now", callable_=lambda: case_id))
        assert driver_sql._prepare(computed, dialect, ()) is None
        assert driver_sql.run(session, computed, {}).rows == [(case_id,)]
        with pytest.raises(Exception, match="A value is required for bind parameter 'case_id'"):
            driver_sql.run(session, select(Case.id).where(Case.id == bindparam("case_id")), {"x": 1})


def test_errors_are_sqlalchemy_s_and_leave_the_transaction_to_its_owner(app, pg):
    statement = insert(Snapshot).values(hash=bindparam("h"), body=bindparam("b"), created_at=bindparam("at"))
    now = datetime.now(timezone.utc)
    with app.app_context(), db.new_session() as session:
        driver_sql.run(session, statement, {"h": "same", "b": "{}", "at": now})
        with pytest.raises(IntegrityError) as caught:
            driver_sql.run(session, statement, {"h": "same", "b": "{}", "at": now})
        assert isinstance(caught.value.orig, psycopg.errors.UniqueViolation)
        session.rollback()  # the owner's rollback works and the session goes on
        assert session.scalar(select(Snapshot.hash).where(Snapshot.hash == "same")) is None


def test_a_dropped_connection_is_invalidated(app, pg):
    with app.app_context(), db.new_session() as session:
        pid = session.scalar(text("SELECT pg_backend_pid()"))
        pooled = session.connection().connection
        with db.engine().connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(OperationalError) as caught:
            driver_sql.run(session, engine._case_rows(), {"case_id": 1})
        assert caught.value.connection_invalidated
        assert not pooled.is_valid
        session.rollback()
        assert session.scalar(text("SELECT 1")) == 1  # a new connection from the pool


def test_what_sqlalchemy_must_run_still_runs(app, api, pg):
    case_id = api.ready()
    with app.app_context(), db.new_session() as session:
        dialect = session.connection().dialect
        # An IN list rendered per call, and a Python-side default (AuditEntry.at): SQLAlchemy's.
        listed = select(Case.id).where(Case.id.in_(bindparam("ids", expanding=True)))
        assert driver_sql._prepare(listed, dialect, ("ids",)) is None
        assert driver_sql.run(session, listed, {"ids": [case_id, 10**9]}).rows == [(case_id,)]
        defaulted = insert(AuditEntry)
        assert driver_sql._prepare(defaulted, dialect, ("case_id",)) is None


def test_listeners_see_every_statement(app, api, pg):
    """A listener on the engine (tracing, a debugger) makes SQLAlchemy run the statement, so it
    is seen; the answer is the same."""
    case_id = api.ready()
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        seen.append(statement)

    with app.app_context():
        eng = db.engine()
        event.listen(eng, "before_cursor_execute", record)
        try:
            with db.new_session() as session:
                rows = driver_sql.run(session, engine._case_rows(), {"case_id": case_id}).rows
        finally:
            event.remove(eng, "before_cursor_execute", record)
    assert rows and rows[0][0] == case_id
    assert any("FROM cases" in s for s in seen)


def test_dbapi_errors_keep_their_statement(app, pg):
    with app.app_context(), db.new_session() as session:
        with pytest.raises(DBAPIError) as caught:
            driver_sql.run(session, engine._case_update(), {"version": "not a number", "case_id": 1,
                                                            "version_read": 1})
        assert "UPDATE cases" in caught.value.statement
        # Reported as SQLAlchemy reports it: the statement with its names, and the values by name.
        assert "%(version)s" in caught.value.statement and caught.value.params["version"] == "not a number"


def test_the_transaction_s_connection_is_session_connection_s(app, backend):
    """transaction_connection answers what Session.connection would, whatever the session's state."""
    same = driver_sql.transaction_connection
    with app.app_context(), db.new_session() as session:
        assert session._transaction is None
        first = same(session)  # begins the transaction, as session.connection() would
        assert session.in_transaction() and first is session.connection() and same(session) is first
        session.commit()
        second = same(session)  # a new transaction after the commit
        assert second is session.connection()
        with session.begin_nested():
            assert same(session) is session.connection()
            assert same(session).in_nested_transaction()
        session.rollback()
        assert session._transaction is None and same(session) is session.connection()
    with app.app_context(), db.new_session() as session, session.begin():
        assert same(session) is session.connection()
    with app.app_context(), db.new_session() as session:
        with pytest.raises(RuntimeError):
            with session.begin():
                same(session)
                raise RuntimeError("undone")
        # the block's transaction is gone: a new one, not the closed one's connection
        assert same(session) is session.connection() and session.in_transaction()


def test_named_placeholders_become_positional_in_their_order() -> None:
    """psycopg is handed a tuple built in C, in the order the SQL names the values; a name used
    twice, cast at each use, is sent twice. SQL with a literal %% keeps its names (psycopg reads
    them itself), and so does a name used twice without a cast: sent once, PostgreSQL infers one
    type for both uses."""
    sql, ordered = driver_sql._positional(
        "INSERT INTO t (a, b, c) VALUES (%(b)s, %(now)s::TIMESTAMP, %(now)s::TIMESTAMP)")
    assert sql == "INSERT INTO t (a, b, c) VALUES (%s, %s::TIMESTAMP, %s::TIMESTAMP)"
    assert ordered is not None and ordered({"now": 1, "b": 2, "unused": 3}) == (2, 1, 1)
    repeated = "SELECT %(x)s IS NULL OR c = %(x)s::INTEGER"
    assert driver_sql._positional(repeated) == (repeated, None)
    sql, ordered = driver_sql._positional("SELECT x FROM t WHERE id = %(id)s")
    assert (sql, ordered({"id": 7})) == ("SELECT x FROM t WHERE id = %s", (7,))  # type: ignore[misc]
    sql, ordered = driver_sql._positional("SELECT 1")
    assert (sql, ordered({})) == ("SELECT 1", ())  # type: ignore[misc]
    assert driver_sql._positional("SELECT '100%%' WHERE id = %(id)s") == (
        "SELECT '100%%' WHERE id = %(id)s", None)


def test_a_statement_with_a_literal_percent_runs_with_its_names(app, pg):
    with app.app_context(), db.new_session() as session:
        statement = select(text("'100%' AS share"), bindparam("n", type_=AuditEntry.seq.type))
        plan = driver_sql._plan(statement, session.connection().dialect, ("n",))
        assert plan is not None and plan.ordered is None and "%%" in plan.sql
        ours, theirs = _both(session, statement, {"n": 4})
        assert ours == theirs == [("100%", 4)]
        session.rollback()

"""How a request's transaction ends (workflow/db.end_request): a reading request that wrote nothing
commits, so the statements psycopg prepared on the connection survive it; anything that wrote, or
failed, is rolled back as before, and a view's own commit stands."""
from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import sessionmaker

from workflow import db
from workflow.models import Holiday


def _routes(app: Any) -> None:
    """Views that do what a careless GET might, added before the app serves its first request."""

    def flushed() -> str:
        session = db.session()
        session.add(Holiday(day=date(2031, 1, 1), name="flushed, never committed"))
        session.flush()
        return "ok"

    def pending() -> str:
        db.session().add(Holiday(day=date(2031, 1, 2), name="pending, never committed"))
        return "ok"

    def failed() -> str:
        session = db.session()
        session.add(Holiday(day=date(2031, 1, 3), name="flushed, then the view failed"))
        session.flush()
        raise RuntimeError("the view failed")

    def committed_then_read() -> str:
        session = db.session()
        session.add(Holiday(day=date(2031, 1, 4), name="committed by the view"))
        session.commit()
        return str(session.scalar(select(func.count()).select_from(Holiday)))

    def core_write() -> str:
        # A Core UPDATE no flush sees: a view that writes this way commits it itself.
        db.session().execute(text("UPDATE holidays SET name = 'core' WHERE day = '2031-01-04'"))
        db.session().commit()
        return "ok"

    for name, view in (("flushed", flushed), ("pending", pending), ("failed", failed),
                       ("committed", committed_then_read), ("core", core_write)):
        app.add_url_rule(f"/_test/{name}", f"_test_{name}", view)


def _names(app: Any) -> set[str]:
    with app.app_context(), db.new_session() as s:
        return set(s.scalars(select(Holiday.name).where(Holiday.day >= date(2031, 1, 1))))


def test_what_a_reading_request_wrote_without_committing_is_rolled_back(app):
    _routes(app)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    client = app.test_client()
    for name in ("flushed", "pending"):
        assert client.get(f"/_test/{name}").status_code == 200
    assert client.get("/_test/failed").status_code == 500
    assert _names(app) == set()
    assert client.get("/_test/committed").status_code == 200
    assert client.get("/_test/core").status_code == 200
    assert _names(app) == {"core"}


def test_a_reading_request_commits_and_keeps_prepared_statements(app, backend, web):
    if backend.name != "postgresql":
        pytest.skip("prepared statements are psycopg's")
    assert web.login("intake").status_code == 302
    for _ in range(12):  # psycopg prepares a statement at its fifth execution on a connection
        status, _html = web.page("/queue")
        assert status == 200
    engine = app.extensions["db_engine"]
    pooled = [engine.raw_connection() for _ in range(engine.pool.checkedin())]  # each one the pool holds
    try:
        counts = [raw.driver_connection.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0]
                  for raw in pooled]
    finally:
        for raw in pooled:
            raw.close()
    assert max(counts) >= 3, counts  # the user, the queue page and its counts at least


def test_a_thread_s_next_request_takes_its_closed_session_clean(app):
    """db.session(): the session a request closed is the next one's on that thread, emptied;
    an app context opened inside a request gets its own; a session left unclean is not kept."""
    seen: list[Any] = []

    def keep() -> str:
        session = db.session()
        assert not session.identity_map and not session.info.get("left") and not session.in_transaction()
        session.info["left"] = True  # something a request leaves in info: the next one must not see it
        session.add(Holiday(day=date(2031, 2, 1), name="pending, then rolled back"))
        with app.app_context():  # inside a request: not the request's session
            assert db.session() is not session
        seen.append(session)
        return "ok"

    app.add_url_rule("/_test/keep", "_test_keep", keep)
    client = app.test_client()
    for _ in range(3):
        assert client.get("/_test/keep").status_code == 200
    assert seen[0] is seen[1] is seen[2]
    assert "pending, then rolled back" not in _names(app)  # each request's pending row was rolled back
    # A factory swapped in (as a test may): the idle session of the old one is not handed out.
    original = app.extensions["db_sessionmaker"]
    app.extensions["db_sessionmaker"] = sessionmaker(bind=app.extensions["db_engine"], expire_on_commit=False)
    try:
        assert client.get("/_test/keep").status_code == 200
        assert seen[-1] is not seen[0] and type(seen[-1]) is app.extensions["db_sessionmaker"].class_
    finally:
        app.extensions["db_sessionmaker"] = original
    # Closed with a transaction still open (end_request did not run): dropped, not reused.
    stray = db._take_session(app)
    stray.connection()
    db._put_back(app, stray)
    assert app.extensions[db._IDLE].held.session is not stray
    stray.close()


@pytest.fixture
def held_routes(app: Any) -> Any:
    """Views for the held-connection tests; the holidays they write are deleted afterwards."""
    seen: list[Any] = []
    _held_routes(app, seen)
    yield seen
    with app.app_context(), db.new_session() as s:
        s.execute(text("DELETE FROM holidays WHERE day >= '2031-03-01'"))
        s.commit()


def _held_routes(app: Any, seen: list[Any]) -> None:
    def held() -> str:
        session = db.session()
        conn = session.connection()
        seen.append(conn)
        with app.app_context():  # inside a request: a pooled connection, its own transaction
            inner = db.session()
            assert inner.connection() is not conn
            inner.add(Holiday(day=date(2031, 3, len(seen)), name=f"inner {len(seen)}"))
            inner.commit()
        session.add(Holiday(day=date(2031, 4, len(seen)), name=f"outer {len(seen)}"))
        session.commit()
        return "ok"

    def broken() -> str:
        db.session().connection().invalidate()  # as SQLAlchemy does when the server drops it
        return "ok"

    def unclean() -> str:
        db.session().connection()
        # A transaction left open where end_request did not run: the request's session is taken
        # from `g` and put back as it is.
        db._put_back(app, app_ctx_session())
        return "ok"

    def app_ctx_session() -> Any:
        from flask import g
        return g.pop("db_session")

    for name, view in (("held", held), ("broken", broken), ("unclean", unclean)):
        app.add_url_rule(f"/_test/{name}", f"_test_{name}", view)


def test_a_web_worker_s_thread_keeps_one_connection_between_its_requests(app, held_routes):
    """db.hold_connections (wsgi.py, in gunicorn): every request of a thread runs on one
    Connection, outside any transaction between requests; each request's transaction commits
    on it; an app context opened inside a request is on a pooled connection of its own."""
    seen = held_routes
    db.hold_connections(app)
    engine = app.extensions["db_engine"]
    client = app.test_client()
    for _ in range(3):
        assert client.get("/_test/held").status_code == 200
    assert seen[0] is seen[1] is seen[2]
    assert not seen[0].in_transaction() and not seen[0].closed
    assert engine.pool.checkedout() == 1  # the held one; the inner sessions' went back
    names = _names(app)
    assert {f"outer {i}" for i in (1, 2, 3)} | {f"inner {i}" for i in (1, 2, 3)} <= names


def test_a_held_connection_is_replaced_when_broken_disposed_of_or_old(app, held_routes, monkeypatch):
    seen = held_routes
    db.hold_connections(app)
    engine = app.extensions["db_engine"]
    client = app.test_client()
    assert client.get("/_test/held").status_code == 200
    assert client.get("/_test/broken").status_code == 200
    assert client.get("/_test/held").status_code == 200
    assert seen[1] is not seen[0] and seen[0].closed  # invalidated: closed and replaced

    engine.dispose()  # a test's or an operator's: the old pool's connections must not linger
    assert client.get("/_test/held").status_code == 200
    assert seen[2] is not seen[1] and seen[1].closed

    monkeypatch.setattr(db, "HOLD_SECONDS", -1)  # every connection is now too old to keep
    assert client.get("/_test/held").status_code == 200
    assert seen[3] is not seen[2] and seen[2].closed
    monkeypatch.undo()

    # A session put back with its transaction open: neither it nor the connection is kept.
    assert client.get("/_test/unclean").status_code == 200
    held = app.extensions[db._IDLE].held
    assert held.connection is None and held.session is None and not held.busy
    assert client.get("/_test/held").status_code == 200
    assert seen[4] is not seen[3] and not seen[4].closed


def test_a_thread_s_held_connection_goes_back_to_the_pool_when_the_thread_ends(app, held_routes):
    import threading
    import warnings

    seen = held_routes
    db.hold_connections(app)
    engine = app.extensions["db_engine"]
    before = engine.pool.checkedout()
    statuses: list[int] = []
    thread = threading.Thread(target=lambda: statuses.append(app.test_client().get("/_test/held").status_code))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        thread.start()
        thread.join()
        import gc
        gc.collect()
    assert statuses == [200]
    assert seen[0].closed and engine.pool.checkedout() == before
    assert not [w for w in caught if "garbage collector" in str(w.message)]


def test_once_the_server_dropped_a_connection_every_thread_replaces_its_own(app, backend, held_routes):
    """After a restart of PostgreSQL every held connection is dead. The first request to find one
    fails, as it would with a pooled connection; the pool then presumes every older connection
    dead, and the other threads replace theirs before using them, instead of each failing once."""
    from concurrent.futures import ThreadPoolExecutor

    if backend.name != "postgresql":
        pytest.skip("a server that drops connections")
    seen = held_routes
    db.hold_connections(app)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    engine = app.extensions["db_engine"]
    client = app.test_client()
    with ThreadPoolExecutor(1) as other:  # one thread that lives through the test, as a worker's
        get = lambda: other.submit(lambda: app.test_client().get("/_test/held").status_code).result()  # noqa: E731
        assert get() == 200 and client.get("/_test/held").status_code == 200
        pids = []
        for conn in seen:  # idle between requests; its own transaction, ended here
            with conn.begin():
                pids.append(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
        with engine.connect() as admin:
            for pid in pids:
                admin.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
        assert client.get("/_test/held").status_code == 500  # the first to find out
        assert get() == 200  # the other thread's connection was replaced before use
        assert client.get("/_test/held").status_code == 200

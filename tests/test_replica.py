"""DATABASE_REPLICA_URL: the read-only pages read the replica, everything else the primary.

The replica here is a copy of the primary's database taken while a case awaited its decision
(a replica that lags), and the case is approved on the primary afterwards; in the copy the
auditor also lost their role. So a page that shows the case awaiting read the replica, one that
shows it approved read the primary, and an auditor who can still open the console was
recognised from the primary.
"""
from __future__ import annotations

import csv
import io
import os
import re
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask
from sqlalchemy import text
from sqlalchemy.exc import InternalError, OperationalError

from tests.conftest import PG_ADMIN, build_app
from tests.support import TO_AWAITING, Api, Web, World
from workflow import db, replica
from workflow.models import Province

pytestmark = pytest.mark.postgres


def copy_database(url: str) -> tuple[str, str]:
    """CREATE DATABASE … TEMPLATE: needs nobody else connected to the source."""
    source = url.rsplit("/", 1)[1]
    name = f"wf_replica_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE datname = %s AND pid <> pg_backend_pid()", (source,))
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
    return name, url.rsplit("/", 1)[0] + "/" + name


def drop_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture
def lagging(app: Flask, api: Api, world: World, backend: Any) -> Any:
    """(case id, replica URL): the case awaiting its decision on the replica, approved on the
    primary; the auditor without roles on the replica."""
    if backend.name != "postgresql":
        pytest.skip("the replica test copies a PostgreSQL database")
    case_id = api.ready()
    api.advance(case_id, *TO_AWAITING)
    app.extensions["db_engine"].dispose()
    name, url = copy_database(app.config["DATABASE_URL"])
    try:
        with psycopg.connect(libpq(url), autocommit=True) as conn:
            conn.execute("DELETE FROM user_roles WHERE user_id = %s", (world.users["auditor"],))
        r = api.advance(case_id, ("approve", "director", "approved on the primary"))
        assert r.get_json()["state"] == "approved"
        yield case_id, url
    finally:
        drop_database(name)


def _csv(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def test_read_only_pages_read_the_replica_which_cannot_be_written_and_the_rest_the_primary(
        app: Flask, api: Api, world: World, lagging: Any, tmp_path: Path, redis_url: str | None) -> None:
    case_id, replica_url = lagging
    both = build_app(app.config["DATABASE_URL"], tmp_path, redis_url, DATABASE_REPLICA_URL=replica_url)
    try:
        on_replica, on_primary = both.test_client(), app.test_client()
        for client in (on_replica, on_primary):
            assert Web(client, World(world.users, world.orgs)).login("auditor").status_code == 302

        def page(client: Any, url: str) -> str:
            r = client.get(url)
            assert r.status_code == 200, (url, r.status_code)
            return r.get_data(as_text=True)

        # /audit, the list of every case: awaiting on the replica, approved on the primary.
        assert "badge approved" in page(on_primary, "/audit")
        listed = page(on_replica, "/audit")
        assert "badge approved" not in listed and "badge awaiting_decision" in listed
        assert f"/cases/{case_id}" in listed  # the auditor sees the case: identity and scope held

        # The auditor's console, timeline and export: no approval on the replica.
        assert 'data-action="approve"' in page(on_primary, "/audit/decisions")
        assert 'data-action="approve"' not in page(on_replica, "/audit/decisions")
        assert 'data-action="approve"' not in page(on_replica, f"/audit/cases/{case_id}")
        assert 'data-action="recommend_approval"' in page(on_replica, f"/audit/cases/{case_id}")
        primary_rows = _csv(on_primary.get("/audit/decisions.csv").data)
        replica_rows = _csv(on_replica.get("/audit/decisions.csv").data)
        assert len(primary_rows) == len(replica_rows) + 1
        assert "approve" in {row[9] for row in primary_rows} - {row[9] for row in replica_rows}

        # Statistics and their CSV: one permit issued this year on the primary, none on the replica.
        primary_stats = {row[0]: row[1:] for row in _csv(on_primary.get("/statistics.csv").data)}
        replica_stats = {row[0]: row[1:] for row in _csv(on_replica.get("/statistics.csv").data)}
        changed = {label for label in primary_stats if primary_stats[label] != replica_stats.get(label)}
        issued = [label for label in changed
                  if primary_stats[label][0] == "1" and replica_stats[label][0] == "0"]
        assert issued, (primary_stats, replica_stats)
        assert page(on_replica, "/statistics") != page(on_primary, "/statistics")

        # Pages where decisions are taken read the primary: the case is approved there.
        replica_api = Api(on_replica, world)
        r = replica_api.get(f"/api/v1/applications/{case_id}", "director")
        assert r.status_code == 200 and r.get_json()["state"] == "approved"
        director = Web(both.test_client(), World(world.users, world.orgs))
        assert director.login("director").status_code == 302
        status, shown = director.page(f"/cases/{case_id}")
        assert status == 200 and '<span class="badge approved">' in shown

        # /readyz reports the replica beside the primary.
        checks = both.test_client().get("/readyz").get_json()["checks"]
        assert checks["database_replica"]["ok"] is True and checks["database_replica"]["required"] is False

        # Writing through the replica's sessions is impossible, even though this copy is an
        # ordinary writable database: every transaction on it is read-only.
        with both.test_request_context():
            session = replica.session()
            assert session.get_bind().url.database == replica_url.rsplit("/", 1)[1]
            assert session.execute(text("SHOW transaction_read_only")).scalar_one() == "on"
            with pytest.raises(InternalError, match="read-only transaction"):
                session.execute(text("UPDATE organizations SET name = name"))
            session.rollback()
            session.add(Province(code="XX", name_fa="آزمون", name_en="Test"))
            with pytest.raises(InternalError, match="read-only transaction"):
                session.flush()
            session.rollback()
            streamed = replica.new_session()  # the CSV export's own session
            try:
                with pytest.raises(InternalError, match="read-only transaction"):
                    streamed.execute(text("DELETE FROM holidays"))
            finally:
                streamed.close()
        with psycopg.connect(libpq(replica_url)) as conn:
            assert conn.execute("SELECT count(*) FROM provinces WHERE code = 'XX'").fetchone() == (0,)
    finally:
        for key in ("db_engine", "replica_engine", "health_db", "health_replica"):
            if key in both.extensions:
                both.extensions[key].dispose()


def test_without_a_replica_reading_pages_use_the_request_session(app: Flask) -> None:
    from workflow import db

    with app.test_request_context():
        assert replica.session() is db.session()
        assert "replica_engine" not in app.extensions


def test_a_replica_that_is_down_does_not_make_the_web_unready(app: Flask, tmp_path: Path) -> None:
    """Every web machine reads the same replica: 503 on it would take them all out at once."""
    both = build_app(app.config["DATABASE_URL"], tmp_path, None, HEALTH_TIMEOUT_SECONDS=1,
                     DATABASE_REPLICA_URL="postgresql+psycopg://postgres@127.0.0.1:1/nothing")
    r = both.test_client().get("/readyz")
    body = r.get_json()
    assert r.status_code == 200, body
    assert body["checks"]["database_replica"] == {"ok": False, "error": "OperationalError", "required": False,
                                                  "ms": body["checks"]["database_replica"]["ms"]}
    for key in ("db_engine", "replica_engine", "health_db", "health_replica"):
        if key in both.extensions:
            both.extensions[key].dispose()


def test_sqlite_replica_is_query_only(tmp_path: Path) -> None:
    from workflow.db import make_engine

    path = tmp_path / "copy.sqlite"
    with make_engine(f"sqlite:///{path}").begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    engine = replica.make_read_only_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 0
        with pytest.raises(OperationalError, match=re.compile("readonly|read-only|query_only", re.I)):
            conn.execute(text("INSERT INTO t VALUES (1)"))
    engine.dispose()


def test_replica_url_options_are_kept_beside_read_only(app: Flask, backend: Any) -> None:
    if backend.name != "postgresql":
        pytest.skip("libpq start-up options")
    url = app.config["DATABASE_URL"] + "?options=-csearch_path%3Dpublic,pg_catalog"
    engine = replica.make_read_only_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SHOW transaction_read_only")).scalar_one() == "on"
            assert conn.execute(text("SHOW search_path")).scalar_one().replace(" ", "") == "public,pg_catalog"
            # and every session's own settings (db.SESSION_OPTIONS)
            assert conn.execute(text("SHOW jit")).scalar_one() == "off"
            assert conn.execute(text("SHOW timezone")).scalar_one() == "UTC"
    finally:
        engine.dispose()


def test_the_primary_keeps_url_options_beside_its_own(app: Flask, backend: Any) -> None:
    if backend.name != "postgresql":
        pytest.skip("libpq start-up options")
    engine = db.make_engine(app.config["DATABASE_URL"] + "?options=-csearch_path%3Dpublic,pg_catalog")
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SHOW search_path")).scalar_one().replace(" ", "") == "public,pg_catalog"
            assert conn.execute(text("SHOW jit")).scalar_one() == "off"
            assert conn.execute(text("SHOW timezone")).scalar_one() == "UTC"
            assert conn.execute(text("SHOW transaction_read_only")).scalar_one() == "off"
    finally:
        engine.dispose()

"""Fixtures: an app per test on PostgreSQL + Redis when they are there, else on SQLite.

Under CI=true the services are required: a missing one fails the run instead of quietly
testing less. On a laptop without them the tests that need them skip with a message, and the
rest run on a SQLite file migrated once per session and copied for each test.
"""
from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis as redis_lib
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from tests.live_server import migrate as _migrate
from workflow import create_app, db
from workflow.config import TestConfig

PG_ADMIN = os.environ.get("TEST_PG_ADMIN", "host=127.0.0.1 port=5432 user=postgres dbname=test")
PG_URL = os.environ.get("TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/{db}")
REDIS_HOST = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/{db}")
# First Redis db of this run's test processes; a second run at the same time on the same
# server (another checkout) sets it apart so the two never flush each other's db.
REDIS_DB_BASE = int(os.environ.get("TEST_REDIS_DB_BASE", "1"))
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
ARTIFACTS = Path(__file__).parent / "artifacts"
REFERENCE_TABLES = {"provinces", "counties", "holidays", "alembic_version"}


def _pg_ok() -> str | None:
    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=3):
            return None
    except Exception as exc:  # noqa: BLE001 - any failure means: not reachable
        return f"PostgreSQL at {PG_ADMIN!r} unreachable: {exc}"


def _redis_ok() -> str | None:
    try:
        redis_lib.Redis.from_url(REDIS_HOST.format(db=0), socket_connect_timeout=3).ping()
        return None
    except Exception as exc:  # noqa: BLE001
        return f"Redis at {REDIS_HOST.format(db=0)!r} unreachable: {exc}"


PG_PROBLEM = _pg_ok()
REDIS_PROBLEM = _redis_ok()


def pytest_sessionstart(session: pytest.Session) -> None:
    problems = [p for p in (PG_PROBLEM, REDIS_PROBLEM) if p]
    if CI and problems:
        pytest.exit("CI=true but a required service is missing: " + "; ".join(problems), returncode=3)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "postgres" in item.keywords and PG_PROBLEM:
            item.add_marker(pytest.mark.skip(reason=f"needs PostgreSQL: {PG_PROBLEM}"))
        if "redis" in item.keywords and REDIS_PROBLEM:
            item.add_marker(pytest.mark.skip(reason=f"needs Redis: {REDIS_PROBLEM}"))


def _worker_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(re.sub(r"\D", "", worker) or 0)


@dataclass
class Backend:
    name: str
    url: str
    template: Path | None = None


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A PostgreSQL database of this test process, migrated once, dropped at the end."""
    if PG_PROBLEM:
        pytest.skip(f"needs PostgreSQL: {PG_PROBLEM}")
    name = f"wf_test_{_worker_index()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_URL.format(db=name)
    _migrate(url)
    yield url
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.sqlite"
    _migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest) -> Backend:
    """PostgreSQL when reachable (always under CI), otherwise SQLite."""
    if PG_PROBLEM is None:
        return Backend("postgresql", request.getfixturevalue("pg_url"))
    return Backend("sqlite", "", request.getfixturevalue("sqlite_template"))


@pytest.fixture(scope="session")
def redis_url() -> str | None:
    if REDIS_PROBLEM:
        return None
    url = REDIS_HOST.format(db=REDIS_DB_BASE + _worker_index())
    return url


def _truncate(app: Flask) -> None:
    engine = app.extensions["db_engine"]
    tables = [t for t in db.Base.metadata.sorted_tables if t.name not in REFERENCE_TABLES]
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE " + ", ".join(f'"{t.name}"' for t in tables) + " RESTART IDENTITY CASCADE"))


def build_app(url: str, tmp_path: Path, redis_url: str | None, **extra: Any) -> Flask:
    config = TestConfig(DATABASE_URL=url, REDIS_URL=redis_url or "", UPLOAD_DIR=tmp_path / "uploads", **extra)
    return create_app(config)


@pytest.fixture
def app(backend: Backend, tmp_path: Path, redis_url: str | None) -> Iterator[Flask]:
    if backend.name == "sqlite":
        assert backend.template is not None
        copy = tmp_path / "test.sqlite"
        shutil.copy(backend.template, copy)
        url = f"sqlite:///{copy}"
    else:
        url = backend.url
    if redis_url:
        redis_lib.Redis.from_url(redis_url).flushdb()
    application = build_app(url, tmp_path, redis_url)
    if backend.name == "postgresql":
        _truncate(application)
    yield application
    application.extensions["db_engine"].dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def session(app: Flask) -> Iterator[Any]:
    """A session for arranging data and checking results, outside any request.

    No app context stays pushed during the test: the test client would reuse it, sharing `g`
    (and so the request's session and CSRF token) across requests.
    """
    with app.app_context():
        sess = db.new_session()
    yield sess
    sess.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


from tests.support import *  # noqa: E402,F401,F403  (world, api, web helpers as fixtures)

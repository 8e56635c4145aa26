"""/healthz (liveness) and /readyz (readiness), for load balancers and process supervisors.

/healthz answers from the process alone: a process that answers it is alive, and restarting it
would not help when the database is down. /readyz says whether this process can serve: the
database and Redis answer within HEALTH_TIMEOUT_SECONDS. A load balancer stops sending requests
to a machine whose /readyz is 503, and sends them again once it is 200.

Both are public (a probe has no credentials), so they say what failed, never how: the error's
class name, not a host name, user or message. The full error goes to the log.

The checks use connections of their own, with short timeouts: the app's pool waits for a free
connection as long as a request would, and its connections have no connect timeout, so a
probe through it would hang exactly when it should answer quickly. The read replica, when
there is one, is reported but does not make the process unready: every web machine reads the
same replica, so failing on it would take the whole site out for the read-only pages' sake.
"""
from __future__ import annotations

import logging
import time
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify
from sqlalchemy import text
from sqlalchemy.engine import Engine

from . import redis_conn
from .db import make_engine

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)
NO_STORE = {"Cache-Control": "no-store"}


@bp.get("/healthz")
def healthz():  # type: ignore[no-untyped-def]
    return jsonify(status="ok"), 200, NO_STORE


def probe_engine(app: Flask, url: str, key: str) -> Engine:
    """An engine for probes only: one pooled connection (checked before use, so a restarted
    database is reconnected rather than reported down), bounded connect and statement time."""
    engine = app.extensions.get(key)
    if engine is None:
        timeout = app.config["HEALTH_TIMEOUT_SECONDS"]
        if url.startswith("sqlite"):
            engine = make_engine(url, pool_pre_ping=True)
        else:
            # libpq counts connect_timeout in whole seconds and treats less than 2 as 2.
            engine = make_engine(url, pool_size=1, max_overflow=1, pool_timeout=timeout, pool_pre_ping=True,
                                 connect_args={"connect_timeout": max(2, int(timeout + 0.999)),
                                               "options": f"-c statement_timeout={int(timeout * 1000)}"})
        app.extensions[key] = engine
    return engine


def redis_client(app: Flask) -> Any:
    """A Redis client with short timeouts (for probes and scrapes), or None without Redis."""
    if "health_redis" not in app.extensions:
        timeout = app.config["HEALTH_TIMEOUT_SECONDS"]
        app.extensions["health_redis"] = redis_conn.connect(app.config, timeout=timeout)
    return app.extensions["health_redis"]


def _timed(check: Any) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        check()
    except Exception as exc:  # noqa: BLE001 - any failure means: not reachable
        log.warning("readiness check failed: %s", exc.__class__.__name__, exc_info=True)
        return {"ok": False, "error": exc.__class__.__name__,
                "ms": round((time.perf_counter() - start) * 1000, 1)}
    return {"ok": True, "ms": round((time.perf_counter() - start) * 1000, 1)}


def _select_one(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1")).scalar_one()


def checks(app: Flask) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Each check's result, and the names of the required ones that failed."""
    config = app.config
    primary = probe_engine(app, config["DATABASE_URL"], "health_db")
    results = {"database": _timed(lambda: _select_one(primary))}
    client = redis_client(app)
    if client is None:
        # No Redis is a supported mode (jobs stay in the outbox); production configures one.
        results["redis"] = {"ok": True, "skipped": "not configured"}
    else:
        results["redis"] = _timed(client.ping)
    if config.get("DATABASE_REPLICA_URL"):
        results["database_replica"] = _timed(
            lambda: _select_one(probe_engine(app, config["DATABASE_REPLICA_URL"], "health_replica")))
        results["database_replica"]["required"] = False
    failed = [name for name, r in results.items() if not r["ok"] and r.get("required", True)]
    return results, failed


@bp.get("/readyz")
def readyz():  # type: ignore[no-untyped-def]
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    results, failed = checks(app)
    if failed:
        return jsonify(status="unavailable", failed=failed, checks=results), 503, NO_STORE
    return jsonify(status="ok", checks=results), 200, NO_STORE


def register(app: Flask) -> None:
    app.register_blueprint(bp)

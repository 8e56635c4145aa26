"""Baseline for bench/transitions.py: the transition endpoint as bare Flask + psycopg, no SQLAlchemy.

It issues the statements the real `POST /api/v1/applications/<id>/transitions` needs for an
`accept` (read from the real request's SQL, see bench/transitions.py --trace), in one
transaction, minus what is pure ORM overhead:

    token → user           SELECT ... FROM api_tokens JOIN users WHERE token_hash = ?
    roles, memberships     SELECT role FROM user_roles ...; SELECT organization_id FROM memberships ...
    case (+ permit number) SELECT ... FROM cases LEFT JOIN permits ... WHERE id = ?
    documents (response)   SELECT ... FROM documents WHERE case_id = ?
    transition             UPDATE cases SET ..., version = version + 1 WHERE id = ? AND version = ?
    audit                  INSERT INTO audit_entries ...
    outbox                 SELECT applicants of the organisation; INSERT INTO notifications ...
    COMMIT

Not repeated here: the real path's pool pre-ping, its two `counties` selectin loads and its
separate `permits` selectin load. Only what an `accept` needs of the process table is encoded.
Served by gunicorn exactly like `wsgi:app`: `gunicorn ... bench.bare_app:app` with DATABASE_URL.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import psycopg
from flask import Flask, jsonify, request

from workflow.calendar import add_working_days  # pure function: no SQLAlchemy, no app

DSN = os.environ.get("DATABASE_URL", "").replace("postgresql+psycopg://", "postgresql://", 1)
THURSDAY_OFF = os.environ.get("THURSDAY_OFF", "1") not in ("0", "false", "no")
CHANGED = "This case was changed by someone else; reload it and try again."
STAFF_ROLES = frozenset({"intake", "expert", "director", "finance", "auditor", "admin"})
# (action, source state) → (destination, role, working days allowed in the destination)
RULES = {("accept", "submitted"): ("under_review", "intake", 10)}
NOTIFY = frozenset({"accept", "return_for_correction", "approve", "reject"})

app = Flask(__name__)


class Pool:
    """The smallest connection pool that works under gthread: reuse, never more than are asked for."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.idle: queue.LifoQueue[psycopg.Connection[Any]] = queue.LifoQueue()

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            conn = self.idle.get_nowait()
        except queue.Empty:
            conn = psycopg.connect(self.dsn)
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        finally:
            if conn.closed or conn.broken:
                conn.close()
            else:
                conn.rollback()  # no-op after commit; ends any transaction left open
                self.idle.put(conn)


pool = Pool(DSN)


def error(status: int, code: str, message: str) -> Any:
    return jsonify(error={"code": code, "message": message, "fields": {}}), status


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@app.get("/api/v1/permits/<number>")
def permit(number: str) -> Any:
    with pool.connection() as conn:
        row = conn.execute("SELECT number, state FROM permits WHERE number = %s",
                           (number.strip(),)).fetchone()
    if row is None:
        return error(404, "not_found", "No permit with this number.")
    return jsonify(number=row[0], state=row[1])


@app.post("/api/v1/applications/<int:case_id>/transitions")
def transition(case_id: int) -> Any:
    scheme, _sep, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return error(401, "unauthorized", "Sign in first.")
    data = request.get_json(force=True, silent=True)
    if not isinstance(data, dict):
        return error(400, "bad_request", "The body must be a JSON object.")
    action, version, comment = data.get("action"), data.get("version"), data.get("comment")
    if not isinstance(action, str) or not isinstance(version, int) or isinstance(version, bool):
        return error(422, "invalid", "Some fields need attention.")
    text = comment.strip() if isinstance(comment, str) else ""

    with pool.connection() as conn:
        token_hash = hashlib.sha256(token.strip().encode()).hexdigest()
        user = conn.execute(
            "SELECT u.id, u.province_id, u.county_id, u.is_active, t.expires_at "
            "FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = %s", (token_hash,),
        ).fetchone()
        now = datetime.now(timezone.utc)
        if user is None or not user[3] or user[4] <= now:
            return error(401, "unauthorized", "Sign in first.")
        user_id, province_id, county_id = user[0], user[1], user[2]
        roles = {r for (r,) in conn.execute("SELECT role FROM user_roles WHERE user_id = %s", (user_id,))}
        orgs = {o for (o,) in conn.execute("SELECT organization_id FROM memberships WHERE user_id = %s",
                                           (user_id,))}

        case = conn.execute(
            "SELECT c.id, c.kind, c.state, c.version, c.organization_id, c.province_id, c.county_id, c.data, "
            "c.submitted_at, c.created_at, c.updated_at, c.due_at, p.number "
            "FROM cases c LEFT JOIN permits p ON p.case_id = c.id WHERE c.id = %s", (case_id,),
        ).fetchone()
        member = case is not None and case[4] in orgs
        in_jurisdiction = case is not None and (
            province_id is None or (province_id == case[5] and (county_id is None or county_id == case[6]))
        )
        if case is None or not (member or (roles & STAFF_ROLES and case[8] is not None and in_jurisdiction)):
            return error(404, "not_found", "No such case.")
        docs = conn.execute(
            "SELECT id, kind, original_name, size, sha256, uploaded_at FROM documents "
            "WHERE case_id = %s AND NOT superseded ORDER BY id", (case_id,),
        ).fetchall()

        known_roles = {role for (act, _src), (_dst, role, _days) in RULES.items() if act == action}
        if not known_roles:
            return error(422, "invalid", "Unknown action.")
        if not roles & known_roles:
            return error(403, "forbidden", "Your roles do not allow this action.")
        if version != case[3]:
            return error(409, "conflict", CHANGED)
        rule = RULES.get((action, case[2]))
        if rule is None:
            return error(409, "conflict", "This action is not possible in the case's current state.")
        dest, role, days = rule
        if role not in roles or not in_jurisdiction or member:
            return error(403, "forbidden", "You may not take this action on this case.")

        due = add_working_days(now, days, thursday_off=THURSDAY_OFF)
        try:
            updated = conn.execute(
                "UPDATE cases SET state = %s, version = version + 1, updated_at = %s, state_entered_at = %s, "
                "due_at = %s, last_seq = last_seq + 1 WHERE id = %s AND version = %s "
                "RETURNING version, last_seq",
                (dest, now, now, due, case_id, version),
            ).fetchone()
            if updated is None:
                conn.rollback()
                return error(409, "conflict", CHANGED)
            new_version, seq = updated
            conn.execute(
                "INSERT INTO audit_entries "
                "(case_id, seq, at, actor_id, role, action, from_state, to_state, comment) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (case_id, seq, now, user_id, role, action, case[2], dest, text or None),
            )
            if action in NOTIFY:
                applicants = [u for (u,) in conn.execute(
                    "SELECT m.user_id FROM memberships m JOIN user_roles r ON r.user_id = m.user_id "
                    "WHERE m.organization_id = %s AND r.role = 'applicant'", (case[4],))]
                payload = json.dumps({"action": action, "state": dest, "comment": text,
                                      "permit_number": case[12]})
                with conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO notifications (user_id, case_id, kind, payload, created_at, attempts) "
                        "VALUES (%s, %s, %s, %s, %s, 0)",
                        [(uid, case_id, f"case.{action}", payload, now) for uid in applicants],
                    )
            conn.commit()
        except (psycopg.errors.UniqueViolation, psycopg.errors.DeadlockDetected):
            conn.rollback()
            return error(409, "conflict", "This conflicts with a change made at the same moment; try again.")

    return jsonify(
        id=case[0], kind=case[1], state=dest, version=new_version, organization_id=case[4],
        data=case[7] or {},
        documents=[{"id": d[0], "kind": d[1], "name": d[2], "size": d[3], "sha256": d[4],
                    "uploaded_at": iso(d[5])} for d in docs],
        actions=[],  # an intake officer has nothing left to do in under_review
        created_at=iso(case[9]), updated_at=iso(now), due_at=iso(due), permit_number=case[12],
    )

"""Baseline for bench/transitions.py: the transition endpoint as bare Flask + psycopg, no SQLAlchemy.

It sends the database the same statements, in the same order and one transaction, as the real
`POST /api/v1/applications/<id>/transitions` does for an `accept` (see bench/transitions.py
--trace), so the real/bare ratio measures what the app's own Python costs, not a different plan:

    token → user, roles, memberships
        SELECT users.*, (SELECT string_agg(role) …), (SELECT string_agg(organization_id) …),
               api_tokens.expires_at FROM users JOIN api_tokens … WHERE token_hash = ?
    case, its permit and documents
        SELECT cases.*, documents.*, permits.* FROM cases LEFT JOIN documents LEFT JOIN permits
        WHERE cases.id = ? ORDER BY documents.id
    transition   UPDATE cases SET state, version, updated_at, state_entered_at, due_at,
                 next_event_at, last_seq, head_hash WHERE id = ? AND version = ?   (no row: 409)
    audit        WITH snapshot AS (INSERT INTO snapshots … ON CONFLICT (hash) DO NOTHING),
                      notes AS (INSERT INTO notifications … SELECT the organisation's applicants
                                … RETURNING id)
                 INSERT INTO audit_entries … RETURNING id, (SELECT array_agg(id) FROM notes)
                 (what the actor saw, as canonical JSON; the entry chained: SHA-256 of the
                 previous head and the entry's canonical text, by workflow.chain_encoding;
                 the outbox rows of the organisation's applicants)
    COMMIT

and, like the real app, `SELECT day FROM holidays` at most once a minute per process (the due
date and the first deadline event are counted in working days).

The checks are the real endpoint's, hand-written: bearer token and expiry (401), a JSON object
without NUL (400), action and version present (422), visibility (404), role for the action (403),
version seen (409), rule for the current state (409), jurisdiction and separation of duties (403).
Only `accept` is implemented; the other rules listed serve the response's `actions`.
Served by gunicorn exactly like `wsgi:app`: `gunicorn ... bench.bare_app:app` with DATABASE_URL.
"""
from __future__ import annotations

import contextlib
import hashlib
import math
import os
import queue
import time
from collections.abc import Iterator
from datetime import date, datetime, timezone
from typing import Any

import psycopg
from flask import Flask, jsonify, request
from psycopg.types.json import Jsonb

from workflow.calendar import add_working_days  # pure function: no SQLAlchemy, no app
from workflow.chain_encoding import ENCODER, entry_hash  # pure functions too

DSN = os.environ.get("DATABASE_URL", "").replace("postgresql+psycopg://", "postgresql://", 1)
THURSDAY_OFF = os.environ.get("THURSDAY_OFF", "1") not in ("0", "false", "no")
MAX_BODY = int(os.environ.get("API_MAX_BODY_BYTES", 256 * 1024))
CHANGED = "This case was changed by someone else; reload it and try again."
STAFF_ROLES = frozenset({"intake", "expert", "director", "finance", "auditor", "admin"})
# (action, source state) → (destination, role); only `accept` may be fired here.
RULES = {
    ("accept", "submitted"): ("under_review", "intake"),
    ("return_for_correction", "submitted"): ("needs_correction", "intake"),
    ("return_for_correction", "under_review"): ("needs_correction", "expert"),
    ("recommend_approval", "under_review"): ("awaiting_decision", "expert"),
    ("recommend_rejection", "under_review"): ("awaiting_decision", "expert"),
}
FIREABLE = frozenset({"accept"})
WORKING_DAYS = {"under_review": 10}  # the SLA of accept's destination
HOLIDAYS_TTL = 60.0

USER_SQL = (
    "SELECT users.id, users.email, users.name, users.password_hash, users.province_id, users.county_id, "
    "users.is_active, users.locale, users.money_unit, users.created_at, "
    "(SELECT string_agg(user_roles.role, ',') FROM user_roles WHERE user_roles.user_id = users.id), "
    "(SELECT string_agg(CAST(memberships.organization_id AS VARCHAR), ',') FROM memberships "
    "WHERE memberships.user_id = users.id), "
    "api_tokens.expires_at FROM users JOIN api_tokens ON api_tokens.user_id = users.id "
    "WHERE api_tokens.token_hash = %s"
)
CASE_SQL = (
    "SELECT c.id, c.kind, c.state, c.version, c.organization_id, c.province_id, c.county_id, c.data, "
    "c.created_by_id, c.created_at, c.updated_at, c.state_entered_at, c.submitted_at, c.due_at, "
    "c.recommended_by_id, c.last_seq, c.next_event_at, c.overdue, c.head_hash, "
    "d.id, d.case_id, d.kind, d.original_name, d.stored_name, d.content_type, d.size, d.sha256, "
    "d.uploaded_by_id, d.uploaded_at, d.superseded, d.tranche_id, "
    "p.id, p.number, p.case_id, p.organization_id, p.province_id, p.county_id, p.state, p.issued_at, "
    "p.valid_until, p.version, p.last_seq, p.open_renewal_case_id, p.next_event_at, p.head_hash "
    "FROM cases c LEFT OUTER JOIN documents d ON c.id = d.case_id "
    "LEFT OUTER JOIN permits p ON c.id = p.case_id "
    "WHERE c.id = %s ORDER BY d.id"
)
# Column positions in CASE_SQL's rows.
C_ID, C_KIND, C_STATE, C_VERSION, C_ORG, C_PROVINCE, C_COUNTY, C_DATA = range(8)
C_CREATED, C_SUBMITTED, C_LAST_SEQ, C_HEAD = 9, 12, 15, 18
D_ID, D_KIND, D_NAME, D_SIZE, D_SHA, D_AT, D_SUPERSEDED, D_TRANCHE = 19, 21, 22, 25, 26, 28, 29, 30
P_NUMBER = 32
UPDATE_SQL = (
    "UPDATE cases SET state = %s, version = %s, updated_at = %s, state_entered_at = %s, due_at = %s, "
    "last_seq = %s, next_event_at = %s, head_hash = %s WHERE cases.id = %s AND cases.version = %s"
)
AUDIT_SQL = (
    "WITH snapshot AS (INSERT INTO snapshots (hash, body, created_at) VALUES (%s, %s, %s) "
    "ON CONFLICT (hash) DO NOTHING), "
    "notes AS (INSERT INTO notifications (user_id, case_id, kind, payload, created_at, enqueued_at, attempts) "
    "SELECT memberships.user_id, %s, %s, %s, %s, %s, 0 FROM memberships "
    "JOIN user_roles ON user_roles.user_id = memberships.user_id "
    "WHERE memberships.organization_id = %s AND user_roles.role = 'applicant' RETURNING notifications.id) "
    "INSERT INTO audit_entries (case_id, seq, province_id, at, actor_id, role, action, from_state, to_state, "
    "comment, details, snapshot_hash, prev_hash, hash) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "RETURNING audit_entries.id, (SELECT array_agg(notes.id) FROM notes)"
)

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
_holidays: tuple[float, frozenset[date]] | None = None


def holidays(conn: psycopg.Connection[Any]) -> frozenset[date]:
    """Official holidays, read at most once a minute per process (as workflow.holidays does)."""
    global _holidays
    if _holidays is None or time.monotonic() - _holidays[0] >= HOLIDAYS_TTL:
        _holidays = (time.monotonic(), frozenset(d for (d,) in conn.execute("SELECT holidays.day FROM holidays")))
    return _holidays[1]


def error(status: int, code: str, message: str, fields: dict[str, str] | None = None) -> Any:
    return jsonify(error={"code": code, "message": message, "fields": fields or {}}), status


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def has_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_nul(v) for v in value)
    return False


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
    request.max_content_length = MAX_BODY
    data = request.get_json(force=True, silent=True)
    if not isinstance(data, dict) or has_nul(data):
        return error(400, "bad_request", "The body must be a JSON object.")
    scheme, _sep, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return error(401, "unauthorized", "Sign in first.")

    with pool.connection() as conn:
        user = conn.execute(USER_SQL, (hashlib.sha256(token.strip().encode()).hexdigest(),)).fetchone()
        now = datetime.now(timezone.utc)
        if user is None or user[12] <= now or not user[6]:
            return error(401, "unauthorized", "Sign in first.")
        user_id, province_id, county_id = user[0], user[4], user[5]
        roles = frozenset(filter(None, (user[10] or "").split(",")))
        orgs = frozenset(int(x) for x in (user[11] or "").split(",") if x)

        rows = conn.execute(CASE_SQL, (case_id,)).fetchall()
        case = rows[0] if rows else None
        member = case is not None and case[C_ORG] in orgs
        in_jurisdiction = case is not None and (
            province_id is None
            or (province_id == case[C_PROVINCE] and (county_id is None or county_id == case[C_COUNTY]))
        )
        if case is None or not (
            member or (roles & STAFF_ROLES and case[C_SUBMITTED] is not None and in_jurisdiction)
        ):
            return error(404, "not_found", "No such case.")

        action, version, comment = data.get("action"), data.get("version"), data.get("comment")
        fields = {}
        if not isinstance(action, str) or not action:
            fields["action"] = "Name the action."
        if not isinstance(version, int) or isinstance(version, bool):
            fields["version"] = "Send the version of the case you saw."
        if comment is not None and not isinstance(comment, str):
            fields["comment"] = "The comment must be text."
        if fields:
            return error(422, "invalid", "Some fields need attention.", fields)
        text = comment.strip() if isinstance(comment, str) else ""

        known_roles = {role for (act, _src), (_dst, role) in RULES.items() if act == action}
        if not known_roles or action not in FIREABLE:
            return error(422, "invalid", "Unknown action.", {"action": "Unknown action."})
        if not roles & known_roles:
            return error(403, "forbidden", "Your roles do not allow this action.")
        if version != case[C_VERSION]:
            return error(409, "conflict", CHANGED)
        from_state = case[C_STATE]
        rule = RULES.get((action, from_state))
        if rule is None:
            return error(409, "conflict", "This action is not possible in the case's current state.")
        dest, role = rule
        if role not in roles or not in_jurisdiction or member:
            return error(403, "forbidden", "You may not take this action on this case.")

        # What the actor saw, frozen and hashed (workflow.audit_chain.snapshot_text's shape).
        snapshot = ENCODER.encode({
            "case_id": case_id, "kind": case[C_KIND], "state": from_state, "version": version,
            "organization_id": case[C_ORG], "data": case[C_DATA] or {},
            "documents": [{"id": d[D_ID], "kind": d[D_KIND], "name": d[D_NAME], "sha256": d[D_SHA],
                           "superseded": d[D_SUPERSEDED], "tranche_id": d[D_TRANCHE]}
                          for d in rows if d[D_ID] is not None],
        })
        snapshot_hash = hashlib.sha256(snapshot.encode()).hexdigest()
        # Due date and the first deadline event (half the SLA), as workflow.deadlines derives them.
        days, off = WORKING_DAYS[dest], holidays(conn)
        due = add_working_days(now, days, thursday_off=THURSDAY_OFF, holidays=off)
        half = add_working_days(now, math.ceil(days / 2), thursday_off=THURSDAY_OFF, holidays=off)
        escalate = add_working_days(due, 1, thursday_off=THURSDAY_OFF, holidays=off)
        next_event_at = min((e for e in (half, due, escalate) if e > now), default=None)
        new_version, seq = version + 1, case[C_LAST_SEQ] + 1
        prev = case[C_HEAD]
        head = entry_hash(prev, case_id=case_id, seq=seq, at=now, actor_id=user_id, role=role, action=action,
                          from_state=from_state, to_state=dest, comment=text or None, details=None,
                          snapshot_hash=snapshot_hash)
        try:
            updated = conn.execute(UPDATE_SQL, (dest, new_version, now, now, due, seq, next_event_at, head, case_id,
                                                version))
            if updated.rowcount != 1:
                conn.rollback()
                return error(409, "conflict", CHANGED)
            # `accept` (the one action fired here) notifies the applicants: their outbox rows come
            # with the entry, as in the engine.
            payload = Jsonb({"case_id": case_id, "action": action, "state": dest, "comment": text})
            conn.execute(AUDIT_SQL, (snapshot_hash, snapshot, now, case_id, f"case.{action}", payload, now, now,
                                     case[C_ORG], case_id, seq, case[C_PROVINCE], now, user_id, role, action,
                                     from_state, dest,
                                     text or None, None, snapshot_hash, prev, head)).fetchone()
            conn.commit()
        except (psycopg.errors.UniqueViolation, psycopg.errors.DeadlockDetected):
            conn.rollback()
            return error(409, "conflict", "This conflicts with a change made at the same moment; try again.")

    # What the user may do next: staff rules of the new state, never on their own organisation's case.
    actions = list(dict.fromkeys(
        act for (act, src), (_dst, r) in RULES.items() if src == dest and r in roles
    )) if in_jurisdiction and not member else []
    return jsonify(
        id=case[C_ID], kind=case[C_KIND], state=dest, version=new_version, organization_id=case[C_ORG],
        data=case[C_DATA] or {},
        documents=[{"id": d[D_ID], "kind": d[D_KIND], "name": d[D_NAME], "size": d[D_SIZE], "sha256": d[D_SHA],
                    "uploaded_at": iso(d[D_AT])} for d in rows if d[D_ID] is not None and not d[D_SUPERSEDED]],
        actions=actions,
        created_at=iso(case[C_CREATED]), updated_at=iso(now), due_at=iso(due),
        permit_number=case[P_NUMBER],
    )

"""The tamper-evident history: entries edited, deleted, inserted or reordered directly in the
database are caught by `flask audit verify`, which names the case (or permit) and seq.

The tampering is done the way an administrator with database access would: plain SQL, with
PostgreSQL's append-only triggers switched off for that session (a superuser can do that;
the chain is what still catches it).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from tests.support import Api, TO_AWAITING
from workflow.audit_chain import chain_hash, moment
from workflow.models import AuditEntry, Case, Permit, Snapshot


def verify(app: Any, *args: str) -> tuple[int, str]:
    """`flask audit verify` as an operator runs it: (exit code, what it printed on both streams)."""
    r = app.test_cli_runner().invoke(args=["audit", "verify", *args])
    return r.exit_code, r.output


def history(api: Api) -> tuple[int, int, str]:
    """A permit issued after a correction round (6 entries), then suspended (2 permit events), and
    another organisation's submitted application (1 entry)."""
    case_id = api.ready()
    api.advance(case_id, ("submit", "ngo"), ("return_for_correction", "intake", "نشانی ناقص است"),
                ("resubmit", "ngo"), *TO_AWAITING[1:], ("approve", "director"))
    number = api.get(f"/api/v1/applications/{case_id}", "ngo").get_json()["permit_number"]
    r = api.post(f"/api/v1/permits/{number}/transitions", "director", {"action": "suspend", "reason": "بازرسی"})
    assert r.status_code == 200
    other = api.ready("s_ngo", "org3", name="جمعیت زنان کارآفرین سیرجان", county="Sirjan")
    api.advance(other, ("submit", "s_ngo"))
    return case_id, other, number


def tamper(session: Any, *statements: str, **params: Any) -> None:
    """Run SQL past the append-only triggers (PostgreSQL) and commit."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET session_replication_role = replica"))
    for statement in statements:
        session.execute(text(statement), params)
    session.commit()
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET session_replication_role = DEFAULT"))
        session.commit()


def test_intact_history_verifies(app: Any, api: Api, session: Any) -> None:
    case_id, other, _number = history(api)
    code, out = verify(app)
    assert code == 0, out
    entries = session.scalar(text("SELECT count(*) FROM audit_entries"))
    events = session.scalar(text("SELECT count(*) FROM permit_events"))
    assert (entries, events) == (7, 2)
    assert f"checked {entries + events} entries" in out and out.strip().endswith("OK")
    code, out = verify(app, "--case", str(case_id))
    assert code == 0 and "checked 6 entries in 1 chains" in out
    case = session.get(Case, case_id)
    last = session.scalar(select(AuditEntry).where(AuditEntry.case_id == case_id).order_by(AuditEntry.seq.desc()))
    assert case.head_hash == last.hash and last.prev_hash is not None


def test_each_entry_keeps_what_the_actor_saw(api: Api, session: Any) -> None:
    case_id, _other, _number = history(api)
    entries = session.scalars(select(AuditEntry).where(AuditEntry.case_id == case_id).order_by(AuditEntry.seq)).all()
    for entry in entries:
        body = session.get(Snapshot, entry.snapshot_hash).body
        assert hashlib.sha256(body.encode()).hexdigest() == entry.snapshot_hash
        seen = json.loads(body)
        assert seen["state"] == entry.from_state and seen["case_id"] == case_id
        assert seen["version"] == entry.seq  # each transition moved the version by one
        assert [d["kind"] for d in seen["documents"]] == ["statute"]
    first_seen = json.loads(session.get(Snapshot, entries[0].snapshot_hash).body)
    assert first_seen["data"]["address"].startswith("کرمان")
    # The entry's hash covers its snapshot's hash: recomputing with another one gives another hash.
    e = entries[2]
    fields = [e.case_id, e.seq, moment(e.at), e.actor_id, e.role, e.action, e.from_state, e.to_state, e.comment,
              e.details, e.snapshot_hash]
    assert chain_hash(e.prev_hash, fields) == e.hash
    assert chain_hash(e.prev_hash, fields[:-1] + ["0" * 64]) != e.hash


@pytest.mark.parametrize("how, statements, seq, reason", [
    ("edit", ["UPDATE audit_entries SET comment = 'تأیید شد' WHERE case_id = :c AND seq = 2"], 2, "altered"),
    ("edit the actor", ["UPDATE audit_entries SET actor_id = actor_id + 1 WHERE case_id = :c AND seq = 4"], 4,
     "altered"),
    ("delete", ["DELETE FROM audit_entries WHERE case_id = :c AND seq = 3"], 3, "missing entry"),
    ("delete the newest", ["DELETE FROM audit_entries WHERE case_id = :c AND seq = 6"], 6, "missing at the end"),
    ("insert", ["UPDATE audit_entries SET seq = seq + 100 WHERE case_id = :c AND seq >= 3",
                "UPDATE audit_entries SET seq = seq - 99 WHERE case_id = :c AND seq >= 103",
                "INSERT INTO audit_entries (case_id, seq, at, actor_id, role, action, from_state, to_state, comment, "
                "prev_hash, hash) SELECT case_id, 3, at, actor_id, role, 'withdraw', from_state, 'withdrawn', NULL, "
                "hash, hash FROM audit_entries WHERE case_id = :c AND seq = 2"], 3, "altered"),
    ("reorder", ["UPDATE audit_entries SET seq = 100 WHERE case_id = :c AND seq = 2",
                 "UPDATE audit_entries SET seq = 2 WHERE case_id = :c AND seq = 3",
                 "UPDATE audit_entries SET seq = 3 WHERE case_id = :c AND seq = 100"], 2, "does not follow"),
])
def test_tampering_is_caught_at_the_right_case_and_seq(app: Any, api: Api, session: Any, how: str,
                                                       statements: list[str], seq: int, reason: str) -> None:
    case_id, _other, _number = history(api)
    assert verify(app)[0] == 0
    tamper(session, *statements, c=case_id)
    code, out = verify(app)
    assert code == 1, (how, out)
    assert f"first break at case {case_id} seq {seq}:" in out, (how, out)
    assert reason in out, (how, out)


def test_a_forged_entry_appended_with_a_valid_hash_is_caught(app: Any, api: Api, session: Any) -> None:
    """Whoever knows the algorithm can compute a correct-looking link; the case's head says otherwise."""
    case_id, _other, _number = history(api)
    last = session.scalar(select(AuditEntry).where(AuditEntry.case_id == case_id).order_by(AuditEntry.seq.desc()))
    fields = [case_id, 7, moment(last.at), last.actor_id, "director", "revoke", "approved", "rejected", None, None, None]
    forged = chain_hash(last.hash, fields)
    tamper(session, "INSERT INTO audit_entries (case_id, seq, at, actor_id, role, action, from_state, to_state, "
                    "prev_hash, hash) VALUES (:c, 7, :at, :actor, 'director', 'revoke', 'approved', 'rejected', :p, :h)",
           c=case_id, at=last.at, actor=last.actor_id, p=last.hash, h=forged)
    code, out = verify(app, "--case", str(case_id))
    assert code == 1 and f"case {case_id} seq 7: entry added after the recorded head" in out, out


def test_permit_events_are_chained_too(app: Any, api: Api, session: Any) -> None:
    _case_id, _other, number = history(api)
    permit_id = session.scalar(select(Permit.id).where(Permit.number == number))
    tamper(session, "UPDATE permit_events SET reason = 'درخواست خود سمن' WHERE permit_id = :p AND seq = 2", p=permit_id)
    code, out = verify(app)
    assert code == 1 and f"first break at permit {permit_id} seq 2: altered" in out, out


def test_digest_catches_a_chain_rewritten_from_the_start(app: Any, api: Api, session: Any, tmp_path: Path) -> None:
    """An attacker who rewrites an entry and recomputes every later hash and the head passes a plain
    verify; the digest kept elsewhere does not agree."""
    case_id, _other, _number = history(api)
    out_file = tmp_path / "digest.json"
    r = app.test_cli_runner().invoke(args=["audit", "digest", "--out", str(out_file)])
    assert r.exit_code == 0, r.output
    digest = json.loads(out_file.read_text())
    assert digest["heads"][f"case:{case_id}"][0] == 6 and len(digest["digest"]) == 64
    assert verify(app, "--against", str(out_file))[0] == 0

    a = AuditEntry
    rows = session.execute(select(a.id, a.case_id, a.seq, a.at, a.actor_id, a.role, a.action, a.from_state,
                                  a.to_state, a.comment, a.details, a.snapshot_hash)
                           .where(a.case_id == case_id).order_by(a.seq)).all()
    prev = None
    updates = []
    for r in rows:
        comment = "بدون ایراد" if r.seq == 2 else r.comment
        value = chain_hash(prev, [r.case_id, r.seq, moment(r.at), r.actor_id, r.role, r.action, r.from_state,
                                  r.to_state, comment, r.details or None, r.snapshot_hash])
        updates.append((r.id, comment, prev, value))
        prev = value
    statements = [f"UPDATE audit_entries SET comment = :c{i}, prev_hash = :p{i}, hash = :h{i} WHERE id = :id{i}"
                  for i in range(len(updates))] + ["UPDATE cases SET head_hash = :head WHERE id = :case"]
    params: dict[str, Any] = {"head": prev, "case": case_id}
    for i, (row_id, comment, p, h) in enumerate(updates):
        params.update({f"c{i}": comment, f"p{i}": p, f"h{i}": h, f"id{i}": row_id})
    tamper(session, *statements, **params)

    assert verify(app)[0] == 0  # the rewritten chain is consistent in itself
    code, out = verify(app, "--against", str(out_file))
    assert code == 1 and f"case {case_id} seq 6: differs from the digest" in out, out

    body = json.loads(out_file.read_text())
    body["heads"][f"case:{case_id}"][1] = prev  # someone "fixes" the digest file too
    out_file.write_text(json.dumps(body))
    code, out = verify(app, "--against", str(out_file))
    assert code == 1 and "digest file was altered" in out, out


@pytest.mark.postgres
def test_postgres_refuses_update_and_delete_of_history(app: Any, api: Api, session: Any) -> None:
    from sqlalchemy.exc import DBAPIError

    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("the append-only triggers are PostgreSQL's")
    history(api)
    for statement in ("UPDATE audit_entries SET comment = 'x'", "DELETE FROM audit_entries",
                      "UPDATE permit_events SET reason = 'x'", "DELETE FROM snapshots"):
        with pytest.raises(DBAPIError, match="append-only"):
            session.execute(text(statement))
        session.rollback()
    assert session.scalar(text("SELECT count(*) FROM audit_entries WHERE comment = 'x'")) == 0


def test_api_verify_for_auditors(app: Any, api: Api, session: Any) -> None:
    case_id, _other, _number = history(api)
    r = api.get("/api/v1/audit/verify", "auditor")
    assert r.status_code == 200 and r.get_json()["ok"] is True and r.get_json()["checked"] == 9
    assert api.get(f"/api/v1/audit/verify?case={case_id}", "auditor").get_json()["checked"] == 6
    for who in ("ngo", "director", "intake"):
        assert api.get("/api/v1/audit/verify", who).status_code == 403, who
    assert api.get("/api/v1/audit/verify?case=abc", "auditor").status_code == 422
    tamper(session, "UPDATE audit_entries SET to_state = 'rejected' WHERE case_id = :c AND seq = 6", c=case_id)
    body = api.get("/api/v1/audit/verify", "auditor").get_json()
    assert body["ok"] is False and body["broken"] == {"subject": "case", "id": case_id, "seq": 6,
                                                      "reason": "altered: its hash does not match its content"}


def test_history_written_before_the_chain_is_chained_by_the_migration(tmp_path: Path) -> None:
    """An installation upgraded from revision 0005 gets its existing entries chained in order."""
    from alembic import command
    from sqlalchemy import create_engine

    from workflow import create_app
    from workflow.audit_chain import verify as verify_chains
    from workflow.config import TestConfig
    from workflow.migrate import alembic_config

    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    cfg = alembic_config(url)
    command.upgrade(cfg, "0005")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO provinces (id, code, name_fa, name_en) VALUES (1, 'kerman', 'کرمان', 'Kerman')"))
        conn.execute(text("INSERT INTO users (id, email, name, password_hash, is_active, created_at) "
                          "VALUES (1, 'a@b.ir', 'a', 'x', 1, '2026-01-01 00:00:00')"))
        conn.execute(text("INSERT INTO organizations (id, name, name_key, province_id, created_at) "
                          "VALUES (1, 'سمن', 'سمن', 1, '2026-01-01 00:00:00')"))
        conn.execute(text("INSERT INTO cases (id, kind, state, version, organization_id, province_id, data, "
                          "created_by_id, created_at, updated_at, state_entered_at, last_seq, overdue) VALUES "
                          "(1, 'permit_issuance', 'under_review', 3, 1, 1, '{}', 1, '2026-01-01 00:00:00', "
                          "'2026-01-01 00:00:00', '2026-01-01 00:00:00', 2, 0)"))
        for seq, (action, a, b) in enumerate((("submit", "draft", "submitted"),
                                              ("accept", "submitted", "under_review")), start=1):
            conn.execute(text("INSERT INTO audit_entries (case_id, seq, at, actor_id, role, action, from_state, "
                              "to_state) VALUES (1, :s, :at, 1, 'applicant', :a, :f, :t)"),
                         {"s": seq, "at": f"2026-01-0{seq} 10:00:00.000000", "a": action, "f": a, "t": b})
    engine.dispose()
    command.upgrade(cfg, "head")
    app = create_app(TestConfig(DATABASE_URL=url, REDIS_URL=""))
    with app.app_context():
        engine = app.extensions["db_engine"]
        with engine.connect() as conn:
            report = verify_chains(conn)
            assert report.ok and report.checked == 2, report
            assert conn.execute(text("SELECT head_hash FROM cases")).scalar() == conn.execute(
                text("SELECT hash FROM audit_entries WHERE seq = 2")).scalar()
        engine.dispose()


def test_canonical_text_is_the_json_encoders() -> None:
    """The fast field-by-field encoding must give the very text the JSON encoder gives, or
    hashes written by one would not verify with the other."""
    from workflow.audit_chain import _ENCODER, canonical

    tricky = [1, 0, -5, 10**17, "2025-03-21T06:00:00.000007+00:00", None, 'a"b\\c\n\t\x01\x7f', "ی‌ک ي ك ۱۲۳",
              {"b": [1, "2", None], "a": {"z": None, "y": "کُد"}}, [3, "x"], "", "\u2028"]
    assert canonical(tricky) == _ENCODER.encode(tricky)


def test_verify_spells_postgres_rows_like_canonical() -> None:
    """verify's row-shaped encoding (for speed) must give `canonical`'s text for every field mix."""
    from workflow.audit_chain import _pg_entry_text, canonical

    rows = [
        (7, 3, "2026-12-01T10:00:00.000001+00:00", 4, "expert", "recommend_approval", "under_review",
         "finance_review", 'خوب "است"\n', {"score": 82, "a": [1, None]}, "f" * 64, "p", "h"),
        (7, 1, "2026-12-01T10:00:00.000000+00:00", None, "system", "lapse", None, "withdrawn", None, None, None,
         None, "h"),
        (7, 2, "2026-12-01T10:00:00.000000+00:00", 1, "applicant", "submit", "draft", "submitted", "", {}, "s", "p", "h"),
    ]
    for row in rows:
        assert _pg_entry_text(row) == canonical([*row[:9], row[9] or None, row[10]])

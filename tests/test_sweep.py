"""The sweep as if at chosen moments: reminders, escalation, lapse, expiry, once each."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.support import TO_AWAITING
from workflow.calendar import add_working_days
from workflow.holidays import read_data_file
from workflow.models import AuditEntry, Case, Notification, Permit, User


def sweep(app, now) -> str:
    r = app.test_cli_runner().invoke(args=["jobs", "sweep", "--now", now.isoformat()])
    assert r.exit_code == 0, r.output
    return r.output


def kinds(session, **where) -> list[tuple[str, str]]:
    session.expire_all()
    rows = session.execute(
        select(Notification.kind, User.email).join(User, User.id == Notification.user_id)
        .filter_by(**where).where(~Notification.kind.startswith("case."))
        .order_by(Notification.kind, User.email)
    ).all()
    return [(k, e.split("@")[0]) for k, e in rows]


def test_staff_sla_reminders_and_escalation(app, api, session):
    case_id = api.ready()
    api.advance(case_id, ("submit", "ngo"))
    case = session.get(Case, case_id)
    entered, due, version = case.state_entered_at, case.due_at, case.version
    days_off = frozenset(day for day, _name in read_data_file())
    assert due == add_working_days(entered, 3, holidays=days_off, thursday_off=True)
    sweep(app, entered + timedelta(minutes=1))
    assert kinds(session, case_id=case_id) == []
    half = add_working_days(entered, 2, holidays=days_off, thursday_off=True)
    sweep(app, half)
    assert kinds(session, case_id=case_id) == [("sla_half", "intake")]  # not Sirjan's, not Qazvin's, not a member
    sweep(app, half)
    assert kinds(session, case_id=case_id) == [("sla_half", "intake")]  # nothing twice
    sweep(app, due)
    assert ("sla_due", "intake") in kinds(session, case_id=case_id)
    later = add_working_days(due, 1, holidays=days_off, thursday_off=True)
    sweep(app, later)
    assert ("sla_escalate", "director") in kinds(session, case_id=case_id)
    assert ("sla_escalate", "expert_director") in kinds(session, case_id=case_id)
    session.expire_all()
    case = session.get(Case, case_id)
    assert case.overdue and case.next_event_at is None and case.version == version  # bookkeeping keeps it
    # the escalation shows in the queue and the case moves on normally
    assert api.act(case_id, "accept", "intake").status_code == 200
    session.expire_all()
    assert not session.get(Case, case_id).overdue


def test_correction_reminders_then_lapse(app, api, session):
    case_id = api.ready()
    api.advance(case_id, ("submit", "ngo"), ("return_for_correction", "intake", "امضای مؤسسان"))
    due = session.get(Case, case_id).due_at
    sweep(app, due - timedelta(days=7))
    assert kinds(session, case_id=case_id) == [("correction_7d", "member_intake"), ("correction_7d", "ngo"),
                                               ("correction_7d", "ngo_b")]
    sweep(app, due - timedelta(hours=23))
    assert len([k for k, _ in kinds(session, case_id=case_id) if k == "correction_1d"]) == 3
    out = sweep(app, due + timedelta(minutes=5))
    assert "lapsed 1" in out
    session.expire_all()
    case = session.get(Case, case_id)
    assert case.state == "withdrawn" and case.next_event_at is None
    last = session.scalar(select(AuditEntry).where(AuditEntry.case_id == case_id).order_by(AuditEntry.seq.desc()))
    assert (last.action, last.actor_id, last.role) == ("lapse", None, "system")
    assert "lapsed 0" in sweep(app, due + timedelta(days=1))


def test_missed_sweeps_catch_up_in_order(app, api, session):
    """A sweep after a long outage sends what is due and lapses the case, once."""
    case_id = api.ready()
    api.advance(case_id, ("submit", "ngo"), ("return_for_correction", "intake", "x"))
    due = session.get(Case, case_id).due_at
    sweep(app, due + timedelta(days=3))
    got = kinds(session, case_id=case_id)
    assert {k for k, _ in got} == {"correction_7d", "correction_1d"}
    session.expire_all()
    assert session.get(Case, case_id).state == "withdrawn"


def test_permit_reminders_expiry_and_grace(app, api, session):
    case_id = api.ready()
    number = api.advance(case_id, *TO_AWAITING, ("approve", "director")).get_json()["permit_number"]
    permit = session.scalar(select(Permit).where(Permit.number == number))
    end = permit.valid_until
    for days, kind in ((60, "permit_60d"), (30, "permit_30d"), (7, "permit_7d")):
        sweep(app, end - timedelta(days=days))
        assert kind in {k for k, _ in kinds(session, permit_id=permit.id)}
    assert api.client.get(f"/api/v1/permits/{number}").get_json()["state"] == "active"
    session.expire_all()
    before = session.get(Permit, permit.id)
    version, seq = before.version, before.last_seq
    out = sweep(app, end + timedelta(seconds=1))
    assert "expired 1" in out
    assert api.client.get(f"/api/v1/permits/{number}").get_json()["state"] == "expired"
    session.expire_all()
    expired = session.get(Permit, permit.id)
    # One transition: the version moves once, the event's seq is the permit's next.
    assert (expired.state, expired.version, expired.last_seq) == ("expired", version + 1, seq + 1)
    assert expired.next_event_at == end + timedelta(days=90)
    sweep(app, end + timedelta(days=91))
    got = kinds(session, permit_id=permit.id)
    assert [k for k, u in got if u == "ngo"] == ["expire", "grace_end", "permit_30d", "permit_60d", "permit_7d"]
    history = api.get(f"/api/v1/permits/{number}/history", "ngo").get_json()["entries"]
    assert history[-1]["action"] == "expire" and history[-1]["role"] == "system"
    session.expire_all()
    assert session.get(Permit, permit.id).next_event_at is None


def test_renewed_permit_gets_new_reminders(app, api, session):
    case_id = api.ready()
    number = api.advance(case_id, *TO_AWAITING, ("approve", "director")).get_json()["permit_number"]
    permit = session.scalar(select(Permit).where(Permit.number == number))
    permit.valid_until = permit.valid_until.replace(year=permit.valid_until.year - 3) + timedelta(days=20)
    permit.next_event_at = permit.valid_until - timedelta(days=60)
    session.commit()
    sweep(app, permit.valid_until - timedelta(days=30))
    renewal = api.post("/api/v1/applications", "ngo", {"kind": "permit_renewal", "organization_id": permit.organization_id,
                                                       "data": {"permit_number": number,
                                                                "activity_report": "گزارش کامل فعالیت‌های سال گذشته سازمان"}})
    rid = renewal.get_json()["id"]
    api.advance(rid, ("submit", "ngo"), ("accept", "intake"), ("recommend_approval", "expert"), ("approve", "director"))
    session.expire_all()
    renewed = session.get(Permit, permit.id)
    assert renewed.next_event_at == renewed.valid_until - timedelta(days=60)


@pytest.mark.postgres
def test_two_sweeps_at_once_create_nothing_twice(app, api, session, backend):
    if backend.name != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    ids = []
    for org, who, county, name in (("org1", "ngo", "Kerman", None), ("org3", "s_ngo", "Sirjan", "جمعیت زنان کارآفرین سیرجان")):
        kw = {"county": county, **({"name": name} if name else {})}
        cid = api.ready(who, org, **kw)
        api.advance(cid, ("submit", who), ("return_for_correction", "intake", "x"))
        ids.append(cid)
    due = max(session.get(Case, i).due_at for i in ids)
    outputs: list[str] = []
    barrier = threading.Barrier(2)

    def run():
        barrier.wait()
        outputs.append(sweep(app, due + timedelta(minutes=1)))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    session.expire_all()
    assert sorted(session.get(Case, i).state for i in ids) == ["withdrawn", "withdrawn"]
    keys = session.scalars(select(Notification.key).where(Notification.key.is_not(None))).all()
    assert len(keys) == len(set(keys)) and len(keys) == 3 * 2 + 1 * 2  # 7d and 1d to each org's applicants
    assert session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "lapse")) == 2


def test_lost_jobs_are_enqueued_again(app, api, session):
    case_id = api.ready()
    api.advance(case_id, ("submit", "ngo"), ("accept", "intake"))
    rows = session.scalars(select(Notification).where(Notification.case_id == case_id)).all()
    assert rows and all(r.enqueued_at for r in rows)
    later = rows[0].enqueued_at + timedelta(seconds=app.config["DELIVERY_LEASE_SECONDS"] + 1)
    assert f"requeued {len(rows)}" in sweep(app, later)
    assert "requeued 0" in sweep(app, later)

"""Renewal: the window, who may apply, one at a time, and what approval does to the permit."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from tests.support import TO_AWAITING, hidden_fields
from workflow.models import Permit, utcnow
from workflow.text import ascii_digits

REPORT = "در سال گذشته ۱۲ کارگاه آموزشی برای ۳۰۰ کودک کار در کرمان برگزار شد."


@pytest.fixture
def permit(api, session):
    case_id = api.ready()
    number = api.advance(case_id, *TO_AWAITING, ("approve", "director")).get_json()["permit_number"]
    return session.scalar(select(Permit).where(Permit.number == number))


def _expire_in(session, permit, days: float) -> datetime:
    permit.valid_until = utcnow() + timedelta(days=days)
    session.commit()
    return permit.valid_until


def _open(api, permit, who="ngo", **data):
    body = {"kind": "permit_renewal", "organization_id": permit.organization_id,
            "data": {"permit_number": permit.number, **data}}
    return api.post("/api/v1/applications", who, body)


def test_renewal_window(api, session, permit):
    _expire_in(session, permit, 200)
    r = _open(api, permit)
    assert r.status_code == 409 and "90" in ascii_digits(r.get_json()["error"]["message"])
    _expire_in(session, permit, -91)
    assert _open(api, permit).status_code == 409
    _expire_in(session, permit, -89)   # in the grace period
    assert _open(api, permit).status_code == 201


def test_only_members_and_never_revoked(api, session, permit):
    _expire_in(session, permit, 30)
    r = api.post("/api/v1/applications", "q_ngo", {"kind": "permit_renewal", "organization_id": api.world.orgs["org2"],
                                                  "data": {"permit_number": permit.number}})
    assert r.status_code == 422 and "permit_number" in r.get_json()["error"]["fields"]
    assert _open(api, permit, "intake").status_code == 403
    assert api.post(f"/api/v1/permits/{permit.number}/transitions", "director",
                    {"action": "revoke", "reason": "تخلف"}).status_code == 200
    assert _open(api, permit).status_code == 409


def test_one_open_renewal_per_permit(api, session, permit):
    _expire_in(session, permit, 30)
    first = _open(api, permit)
    assert first.status_code == 201
    assert _open(api, permit, "ngo_b").status_code == 409
    api.act(first.get_json()["id"], "withdraw", "ngo")
    assert _open(api, permit, "ngo_b").status_code == 201


def test_renewal_approved_extends_and_keeps_number(api, session, permit):
    old_end = _expire_in(session, permit, 30)
    case = _open(api, permit).get_json()
    assert case["state"] == "draft" and case["data"]["permit_number"] == permit.number
    r = api.act(case["id"], "submit", "ngo")
    assert r.status_code == 422 and "activity_report" in r.get_json()["error"]["fields"]
    r = api.patch(f"/api/v1/applications/{case['id']}", "ngo",
                  {"data": {"permit_number": permit.number, "activity_report": REPORT}, "version": case["version"]})
    assert r.status_code == 200 and r.get_json()["data"]["activity_report"].startswith("در سال گذشته 12")
    assert "send_inquiry" not in str(r.get_json())
    api.advance(case["id"], ("submit", "ngo"), ("accept", "intake"), ("recommend_approval", "expert"))
    assert api.act(case["id"], "send_inquiry", "expert", "x").status_code == 422  # no inquiry in renewals
    done = api.advance(case["id"], ("approve", "director")).get_json()
    assert done["state"] == "approved"
    session.expire_all()
    renewed = session.get(Permit, permit.id)
    assert renewed.number == permit.number and renewed.state == "active"
    years = (renewed.valid_until - old_end).days
    assert 365 * 3 - 1 <= years <= 365 * 3 + 2
    history = api.get(f"/api/v1/permits/{permit.number}/history", "ngo").get_json()["entries"]
    assert [e["action"] for e in history] == ["issue", "renew"] and history[1]["case_id"] == case["id"]
    assert renewed.open_renewal_case_id is None


def test_expired_permit_renewed_from_approval_day(api, session, permit):
    _expire_in(session, permit, -10)
    permit.state = "expired"
    session.commit()
    case = _open(api, permit, activity_report=REPORT).get_json()
    api.advance(case["id"], ("submit", "ngo"), ("accept", "intake"), ("recommend_approval", "expert"),
                ("approve", "director"))
    session.expire_all()
    renewed = session.get(Permit, permit.id)
    assert renewed.state == "active"
    assert renewed.valid_until > utcnow() + timedelta(days=365 * 3 - 2)


def test_suspended_permit_stays_suspended_when_renewed(api, session, permit):
    _expire_in(session, permit, 20)
    api.post(f"/api/v1/permits/{permit.number}/transitions", "director", {"action": "suspend", "reason": "بازرسی"})
    case = _open(api, permit, activity_report=REPORT).get_json()
    api.advance(case["id"], ("submit", "ngo"), ("accept", "intake"), ("recommend_approval", "expert"),
                ("approve", "director"))
    session.expire_all()
    assert session.get(Permit, permit.id).state == "suspended"


def test_rejected_renewal_frees_the_permit(api, session, permit):
    _expire_in(session, permit, 20)
    case = _open(api, permit, activity_report=REPORT).get_json()
    api.advance(case["id"], ("submit", "ngo"), ("accept", "intake"), ("recommend_rejection", "expert", "گزارش ناقص"),
                ("reject", "director", "گزارش فعالیت ناقص است"))
    assert _open(api, permit, "ngo_b").status_code == 201


def test_renew_from_the_dashboard(api, web, session, permit):
    import re

    _expire_in(session, permit, 45)
    web.login("ngo")
    status, html = web.page("/portal/")
    assert status == 200 and "days-left soon" in html and ("۴۴" in html or "۴۵" in html)
    block = re.search(r'<form[^>]*action="/portal/renewals/new".*?</form>', html, re.S).group(0)
    r = web.client.post("/portal/renewals/new", data=hidden_fields(block))
    assert r.status_code == 302 and "/edit" in r.location
    form = web.client.get(r.location).get_data(as_text=True)
    token = re.search(r'id="csrf_token"[^>]*value="([^"]+)"', form).group(1)
    version = re.search(r'id="version"[^>]*value="(\d+)"', form).group(1)
    r = web.client.post(r.location, data={"csrf_token": token, "version": version, "activity_report": REPORT,
                                          "submit": "1"})
    assert r.status_code == 302 and "/cases/" in r.location
    html = web.client.get(r.location).get_data(as_text=True)
    assert "badge submitted" in html and permit.number.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")) in html
    status, html = web.page("/portal/")
    assert "/portal/renewals/new" not in html  # one renewal at a time

"""Grant programmes, grant requests, tranches and spending reports, through the JSON API.

Every transition of the grant-request process, each eligibility rule, the budget guard and
the tranche/report cycle. The concurrency of approvals against one budget is in
test_grants_concurrency.py (a real server on PostgreSQL).
"""
from __future__ import annotations

from datetime import date, timedelta
from io import BytesIO
from typing import Any

import pytest
from sqlalchemy import select, text, update

from tests.files import png
from tests.support import PDF, TO_AWAITING, Api
from workflow.models import AuditEntry, Programme, Tranche, utcnow
from workflow.money import parse_amount, shown_amount

PNG = png()  # a real one: receipts are checked for a well-formed image, not only its first bytes
TODAY = date.today()


def programme_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "name": "حمایت از کودکان کار ۱۴۰۵", "province": "Kerman", "fiscal_year": 1405,
        "budget_rials": 20_000_000_000, "opens_on": (TODAY - timedelta(days=10)).isoformat(),
        "closes_on": (TODAY + timedelta(days=30)).isoformat(), "fields": ["children", "women"],
        "max_award_rials": 1_000_000_000,
    }
    body.update(overrides)
    return body


def request_data(programme_id: int, **overrides: Any) -> dict[str, Any]:
    data = {
        "programme_id": programme_id, "title": "کلاس‌های سوادآموزی کودکان کار",
        "summary": "آموزش خواندن و نوشتن به ۴۰ کودک کار در محله‌های حاشیه کرمان.",
        "requested_rials": 900_000_000,
        "budget_lines": [{"item": "حق‌التدریس", "rials": 600_000_000}, {"item": "لوازم‌التحریر", "rials": "۳۰۰٬۰۰۰٬۰۰۰"}],
    }
    data.update(overrides)
    return data


def issue_permit(api: Api, org: str = "org1", who: str = "ngo", **data: Any) -> str:
    """An activity permit for `org`, through the real issuance process."""
    case_id = api.ready(who, org, **data)
    api.advance(case_id, ("submit", who), ("accept", "intake"), ("recommend_approval", "expert"))
    r = api.advance(case_id, ("approve", "director"))
    return r.get_json()["permit_number"]


def create_programme(api: Api, who: str = "finance", **overrides: Any) -> dict[str, Any]:
    r = api.post("/api/v1/programmes", who, programme_body(**overrides))
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def open_request(api: Api, programme_id: int, who: str = "ngo", org: str = "org1", **overrides: Any) -> dict[str, Any]:
    r = api.post("/api/v1/applications", who, {"kind": "grant_request", "organization_id": api.world.orgs[org],
                                               "data": request_data(programme_id, **overrides)})
    assert r.status_code == 201, r.get_json()
    return r.get_json()


TO_FINANCE = (("submit", "ngo"), ("accept", "intake"))


def to_decision(api: Api, case_id: int, amount: int = 900_000_000, tranches: list[int] | None = None) -> None:
    api.advance(case_id, *TO_FINANCE)
    assert api.act(case_id, "recommend_approval", "expert", "برنامه خوبی است", score=82).status_code == 200
    r = api.act(case_id, "propose_amount", "finance", amount_rials=amount,
                tranches=tranches or [500_000_000, 400_000_000])
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["state"] == "awaiting_decision"


def report(api: Api, case_id: int, n: int, lines: list[dict[str, Any]], files: list[tuple[bytes, str]] | None = None,
           who: str = "ngo") -> Any:
    import json

    data: dict[str, Any] = {"lines": json.dumps(lines)}
    data["receipts"] = [(BytesIO(content), name) for content, name in (files if files is not None else [(PDF, "r.pdf")])]
    return api.client.post(f"/api/v1/grants/{case_id}/tranches/{n}/report", headers=api.headers(who), data=data,
                           content_type="multipart/form-data")


@pytest.fixture
def funded(api: Api) -> dict[str, Any]:
    """org1 holds a permit in Kerman (field children); an open Kerman programme funds children."""
    number = issue_permit(api)
    programme = create_programme(api)
    return {"permit": number, "programme": programme}


# -- programmes --------------------------------------------------------------------------------

def test_programme_is_created_by_finance_with_its_figures(api: Api) -> None:
    p = create_programme(api, budget_rials="۲۰٬۰۰۰٬۰۰۰٬۰۰۰")
    assert p["budget_rials"] == 20_000_000_000
    assert (p["reserved_rials"], p["awarded_rials"], p["disbursed_rials"]) == (0, 0, 0)
    assert p["remaining_rials"] == 20_000_000_000 and p["is_open"] is True
    assert p["province"]["name_en"] == "Kerman" and p["fiscal_year"] == 1405
    assert api.get(f"/api/v1/programmes/{p['id']}", "ngo").get_json()["name"] == "حمایت از کودکان کار 1405"  # digits normalised
    listed = api.get("/api/v1/programmes?province=کرمان", "expert").get_json()["items"]
    assert [x["id"] for x in listed] == [p["id"]]
    assert api.get("/api/v1/programmes?province=Qazvin", "expert").get_json()["items"] == []


def test_programme_admin_anywhere_finance_only_at_home(api: Api) -> None:
    assert api.post("/api/v1/programmes", "admin", programme_body(province="Qazvin")).status_code == 201
    assert api.post("/api/v1/programmes", "finance", programme_body(province="Qazvin")).status_code == 403
    for who in ("ngo", "expert", "director", "auditor"):
        assert api.post("/api/v1/programmes", who, programme_body()).status_code == 403, who
    assert api.post("/api/v1/programmes", None, programme_body()).status_code == 401


@pytest.mark.parametrize("overrides, field", [
    ({"name": "ab"}, "name"),
    ({"province": "Atlantis"}, "province"),
    ({"fiscal_year": 2026}, "fiscal_year"),
    ({"budget_rials": 0}, "budget_rials"),
    ({"budget_rials": -5}, "budget_rials"),
    ({"budget_rials": "a lot"}, "budget_rials"),
    ({"max_award_rials": 30_000_000_000}, "max_award_rials"),
    ({"opens_on": "1405-01-01x"}, "opens_on"),
    ({"closes_on": (TODAY - timedelta(days=20)).isoformat()}, "closes_on"),
    ({"fields": []}, "fields"),
    ({"fields": ["knitting"]}, "fields"),
])
def test_programme_bad_input_is_a_field_error(api: Api, overrides: dict[str, Any], field: str) -> None:
    r = api.post("/api/v1/programmes", "finance", programme_body(**overrides))
    assert r.status_code == 422, r.get_json()
    assert field in r.get_json()["error"]["fields"]


def test_programme_name_unique_per_province_and_year(api: Api) -> None:
    create_programme(api)
    r = api.post("/api/v1/programmes", "finance", programme_body(name="حمايت از كودكان كار ۱۴۰۵"))
    assert r.status_code == 422 and "name" in r.get_json()["error"]["fields"]
    assert api.post("/api/v1/programmes", "finance", programme_body(fiscal_year=1406)).status_code == 201
    assert api.get("/api/v1/programmes/99999", "finance").status_code == 404


# -- the request and its review ----------------------------------------------------------------

def test_whole_grant_story_through_the_api(api: Api, funded: dict[str, Any], session: Any) -> None:
    pid = funded["programme"]["id"]
    case = open_request(api, pid)
    cid = case["id"]
    assert case["state"] == "draft" and case["data"]["budget_lines"][1]["rials"] == 300_000_000
    assert case["grant"]["programme_id"] == pid
    api.advance(cid, *TO_FINANCE)

    r = api.act(cid, "recommend_approval", "expert", "خوب")
    assert r.status_code == 422 and "score" in r.get_json()["error"]["fields"]
    assert api.act(cid, "recommend_approval", "expert", "خوب", score=101).status_code == 422
    assert api.act(cid, "recommend_approval", "expert", score=82).status_code == 422  # comment required
    r = api.act(cid, "recommend_approval", "expert", "برنامه خوبی است", score=82)
    assert r.status_code == 200 and r.get_json()["state"] == "finance_review"
    assert r.get_json()["grant"]["score"] == 82

    for bad, field in (
        ({"amount_rials": 950_000_000, "tranches": [950_000_000]}, "amount_rials"),  # over the request
        ({"amount_rials": 900_000_000, "tranches": [500_000_000, 300_000_000]}, "tranches"),  # sum
        ({"amount_rials": 900_000_000, "tranches": [180_000_000] * 5}, "tranches"),  # five
        ({"amount_rials": 900_000_000, "tranches": []}, "tranches"),
        ({"amount_rials": "nine", "tranches": [900_000_000]}, "amount_rials"),
    ):
        r = api.act(cid, "propose_amount", "finance", **bad)
        assert r.status_code == 422 and field in r.get_json()["error"]["fields"], (bad, r.get_json())
    assert api.act(cid, "propose_amount", "expert", amount_rials=900_000_000, tranches=[900_000_000]).status_code == 403
    r = api.act(cid, "propose_amount", "finance", amount_rials="۹۰۰٬۰۰۰٬۰۰۰", tranches=[500_000_000, "400,000,000"])
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["grant"]["proposed_tranches"] == [500_000_000, 400_000_000]
    figures = api.get(f"/api/v1/programmes/{pid}", "finance").get_json()
    assert figures["reserved_rials"] == 900_000_000 and figures["awarded_rials"] == 0

    r = api.act(cid, "approve", "director")
    assert r.status_code == 200 and r.get_json()["state"] == "approved"
    figures = api.get(f"/api/v1/programmes/{pid}", "finance").get_json()
    assert (figures["reserved_rials"], figures["awarded_rials"], figures["remaining_rials"]) == (
        0, 900_000_000, 19_100_000_000)
    items = api.get(f"/api/v1/grants/{cid}/tranches", "ngo").get_json()["items"]
    assert [(t["n"], t["amount_rials"], t["state"]) for t in items] == [(1, 500_000_000, "pending"),
                                                                       (2, 400_000_000, "pending")]
    assert "release_tranche" in api.get(f"/api/v1/applications/{cid}", "finance").get_json()["actions"]

    # Tranches in order, each after the previous report is accepted.
    assert api.post(f"/api/v1/grants/{cid}/tranches/2/release", "finance").status_code == 409
    assert api.post(f"/api/v1/grants/{cid}/tranches/1/release", "ngo").status_code == 403
    assert api.post(f"/api/v1/grants/{cid}/tranches/9/release", "finance").status_code == 404
    r = api.post(f"/api/v1/grants/{cid}/tranches/1/release", "finance")
    assert r.status_code == 200, r.get_json()
    first = r.get_json()["items"][0]
    assert first["state"] == "released" and first["report_due_at"]
    assert api.post(f"/api/v1/grants/{cid}/tranches/1/release", "finance").status_code == 409
    assert api.post(f"/api/v1/grants/{cid}/tranches/2/release", "finance").status_code == 409
    assert api.get(f"/api/v1/programmes/{pid}", "finance").get_json()["disbursed_rials"] == 500_000_000

    lines = [{"item": "حق‌التدریس", "budgeted_rials": 300_000_000, "spent_rials": 300_000_000},
             {"item": "لوازم‌التحریر", "budgeted_rials": 200_000_000, "spent_rials": "۱۵۰٬۰۰۰٬۰۰۰"}]
    r = report(api, cid, 1, lines, files=[])
    assert r.status_code == 422 and "receipts" in r.get_json()["error"]["fields"]
    r = report(api, cid, 1, lines, files=[(b"MZ\x90\x00 not a receipt", "receipt.pdf")])
    assert r.status_code == 422 and "receipts" in r.get_json()["error"]["fields"]
    too_much = [{"item": "همه", "budgeted_rials": 500_000_000, "spent_rials": 600_000_000}]
    assert report(api, cid, 1, too_much).status_code == 422
    assert report(api, cid, 1, lines, who="ngo_b").status_code == 200  # any member of the organisation
    tranche = api.get(f"/api/v1/grants/{cid}/tranches", "finance").get_json()["items"][0]
    assert tranche["state"] == "reported" and tranche["report"]["spent_rials"] == 450_000_000
    assert len(tranche["report"]["receipts"]) == 1
    # the refused attempts left no receipt rows
    assert session.scalar(text("SELECT count(*) FROM documents WHERE kind = 'receipt'")) == 1

    assert api.post(f"/api/v1/grants/{cid}/tranches/1/report/return", "finance", {}).status_code == 422
    r = api.post(f"/api/v1/grants/{cid}/tranches/1/report/return", "finance", {"comment": "رسید لوازم ناخواناست"})
    assert r.status_code == 200 and r.get_json()["items"][0]["state"] == "returned"
    assert r.get_json()["items"][0]["return_comment"] == "رسید لوازم ناخواناست"
    assert api.post(f"/api/v1/grants/{cid}/tranches/1/report/accept", "finance").status_code == 409
    r = api.post(f"/api/v1/grants/{cid}/tranches/1/report", "ngo", {"lines": lines, "comment": "رسید خوانا پیوست شد"})
    assert r.status_code == 200, r.get_json()  # the receipts already attached still count
    assert api.post(f"/api/v1/grants/{cid}/tranches/1/report/accept", "ngo").status_code == 403
    r = api.post(f"/api/v1/grants/{cid}/tranches/1/report/accept", "finance")
    assert r.status_code == 200
    first = r.get_json()["items"][0]
    assert first["state"] == "accepted" and first["refund_rials"] == 50_000_000
    assert r.get_json()["grant"]["refunded_rials"] == 50_000_000

    assert api.act(cid, "close", "finance").status_code == 409  # tranche 2 not done
    assert api.post(f"/api/v1/grants/{cid}/tranches/2/release", "finance").status_code == 200
    r = report(api, cid, 2, [{"item": "حق‌التدریس", "budgeted_rials": 400_000_000, "spent_rials": 400_000_000}],
               files=[(PNG, "receipt.png"), (PDF, "invoice.pdf")])
    assert r.status_code == 200, r.get_json()
    assert api.post(f"/api/v1/grants/{cid}/tranches/2/report/accept", "finance").status_code == 200
    assert "close" in api.get(f"/api/v1/applications/{cid}", "finance").get_json()["actions"]
    r = api.act(cid, "close", "finance")
    assert r.status_code == 200 and r.get_json()["state"] == "closed"
    figures = api.get(f"/api/v1/programmes/{pid}", "finance").get_json()
    assert (figures["awarded_rials"], figures["disbursed_rials"], figures["refunded_rials"]) == (
        900_000_000, 900_000_000, 50_000_000)

    history = api.get(f"/api/v1/applications/{cid}/history", "auditor").get_json()["entries"]
    assert [e["action"] for e in history] == [
        "submit", "accept", "recommend_approval", "propose_amount", "approve", "release_tranche", "submit_report",
        "return_report", "submit_report", "accept_report", "release_tranche", "submit_report", "accept_report", "close"]
    details = {e.action: e.details for e in session.scalars(
        select(AuditEntry).where(AuditEntry.case_id == cid).order_by(AuditEntry.seq))}
    assert details["recommend_approval"] == {"score": 82}
    assert details["propose_amount"] == {"amount_rials": 900_000_000, "tranches": [500_000_000, 400_000_000]}
    assert details["accept_report"] == {"tranche": 2, "amount_rials": 400_000_000}


def test_budget_lines_must_add_up_and_stay_within_the_maximum(api: Api, funded: dict[str, Any]) -> None:
    pid = funded["programme"]["id"]
    cid = open_request(api, pid, requested_rials=800_000_000)["id"]
    r = api.act(cid, "submit", "ngo")
    assert r.status_code == 422 and "budget_lines" in r.get_json()["error"]["fields"]
    r = api.patch(f"/api/v1/applications/{cid}", "ngo", {
        "version": api.get(f"/api/v1/applications/{cid}", "ngo").get_json()["version"],
        "data": request_data(pid, requested_rials=2_000_000_000,
                             budget_lines=[{"item": "همه", "rials": 2_000_000_000}])})
    assert r.status_code == 422 and "requested_rials" in r.get_json()["error"]["fields"]
    r = api.post("/api/v1/applications", "ngo", {"kind": "grant_request", "organization_id": api.world.orgs["org1"],
                                                 "data": request_data(pid, requested_rials="-3")})
    assert r.status_code == 422 and "requested_rials" in r.get_json()["error"]["fields"]


def test_one_open_request_per_programme_but_several_programmes(api: Api, funded: dict[str, Any]) -> None:
    pid = funded["programme"]["id"]
    open_request(api, pid)
    r = api.post("/api/v1/applications", "ngo", {"kind": "grant_request", "organization_id": api.world.orgs["org1"],
                                                 "data": request_data(pid)})
    assert r.status_code == 409
    other = create_programme(api, name="مراکز مشاوره پیش از ازدواج")
    assert open_request(api, other["id"])["state"] == "draft"
    qazvin = create_programme(api, who="admin", province="Qazvin")
    r = api.post("/api/v1/applications", "ngo", {"kind": "grant_request", "organization_id": api.world.orgs["org1"],
                                                 "data": request_data(qazvin["id"])})
    assert r.status_code == 422 and "programme_id" in r.get_json()["error"]["fields"]


def test_eligibility_lists_every_reason(api: Api, app: Any, session: Any) -> None:
    # org3 has no permit at all; the programme is closed and funds only the elderly.
    closed = create_programme(api, fields=["elderly"], opens_on=(TODAY - timedelta(days=40)).isoformat(),
                              closes_on=(TODAY - timedelta(days=5)).isoformat())
    cid = open_request(api, closed["id"], who="s_ngo", org="org3")["id"]
    r = api.act(cid, "submit", "s_ngo")
    assert r.status_code == 422
    assert {"permit", "programme_id"} <= set(r.get_json()["error"]["fields"])


def test_eligibility_field_suspended_permit_and_overdue_report(api: Api, funded: dict[str, Any], session: Any) -> None:
    pid = funded["programme"]["id"]
    elderly = create_programme(api, name="سالمندان", fields=["elderly"])
    cid = open_request(api, elderly["id"])["id"]
    r = api.act(cid, "submit", "ngo")
    assert r.status_code == 422 and set(r.get_json()["error"]["fields"]) == {"field"}

    # An awarded grant whose first report is overdue blocks a request to another programme.
    first = open_request(api, pid)["id"]
    to_decision(api, first)
    api.advance(first, ("approve", "director"))
    assert api.post(f"/api/v1/grants/{first}/tranches/1/release", "finance").status_code == 200
    third = create_programme(api, name="آموزش کودکان", fields=["children"])
    other = open_request(api, third["id"])["id"]
    assert api.act(other, "submit", "ngo").status_code == 200  # not overdue yet
    api.act(other, "withdraw", "ngo")
    session.execute(update(Tranche).where(Tranche.case_id == first).values(report_due_at=utcnow() - timedelta(days=1)))
    session.commit()
    fourth = create_programme(api, name="کودکان خیابانی", fields=["children"])
    blocked = open_request(api, fourth["id"])["id"]
    r = api.act(blocked, "submit", "ngo")
    assert r.status_code == 422 and set(r.get_json()["error"]["fields"]) == {"reports"}

    # A suspended permit is not an active one.
    r = api.post(f"/api/v1/permits/{funded['permit']}/transitions", "director", {"action": "suspend", "reason": "بازرسی"})
    assert r.status_code == 200
    r = api.act(blocked, "submit", "ngo")
    assert r.status_code == 422 and {"permit", "reports"} <= set(r.get_json()["error"]["fields"])


def test_approval_beyond_the_budget_is_409_and_changes_nothing(api: Api, session: Any) -> None:
    issue_permit(api)
    issue_permit(api, org="org3", who="s_ngo", name="جمعیت زنان کارآفرین سیرجان", county="Sirjan")
    p = create_programme(api, budget_rials=1_500_000_000, max_award_rials=1_000_000_000)
    a = open_request(api, p["id"])["id"]
    b = open_request(api, p["id"], who="s_ngo", org="org3")["id"]
    api.advance(b, ("submit", "s_ngo"), ("accept", "intake"))
    assert api.act(b, "recommend_approval", "expert", "خوب", score=70).status_code == 200
    assert api.act(b, "propose_amount", "finance", amount_rials=900_000_000, tranches=[900_000_000]).status_code == 200
    to_decision(api, a)
    assert api.get(f"/api/v1/programmes/{p['id']}", "director").get_json()["reserved_rials"] == 1_800_000_000
    assert api.act(a, "approve", "director").status_code == 200
    before = api.get(f"/api/v1/applications/{b}", "director").get_json()
    r = api.act(b, "approve", "director")
    assert r.status_code == 409
    assert "600,000,000" in r.get_json()["error"]["message"]
    after = api.get(f"/api/v1/applications/{b}", "director").get_json()
    assert (after["state"], after["version"]) == ("awaiting_decision", before["version"])
    assert api.get(f"/api/v1/grants/{b}/tranches", "director").get_json()["items"] == []
    figures = api.get(f"/api/v1/programmes/{p['id']}", "director").get_json()
    assert (figures["awarded_rials"], figures["remaining_rials"]) == (900_000_000, 600_000_000)
    assert session.scalar(select(Programme.awarded_rials).where(Programme.id == p["id"])) == 900_000_000
    # The director can still send it back or reject it.
    assert api.act(b, "reject", "director", "بودجه کافی نیست").status_code == 200


def test_database_refuses_over_commitment_whoever_writes(app: Any, api: Api, session: Any) -> None:
    """The CHECK constraint holds even for a writer that skips the conditional UPDATE."""
    from sqlalchemy.exc import IntegrityError

    p = create_programme(api, budget_rials=1_000_000_000, max_award_rials=1_000_000_000)
    with pytest.raises(IntegrityError):
        session.execute(update(Programme).where(Programme.id == p["id"]).values(awarded_rials=1_000_000_001))
        session.flush()
    session.rollback()


def test_separation_of_duties_and_roles(api: Api, funded: dict[str, Any], app: Any) -> None:
    from workflow import db
    from workflow.services import accounts

    with app.test_request_context(), db.new_session() as s:
        kerman = accounts.find_province(s, "kerman")
        accounts.create_user(s, email="fd@test.ir", password="secret-pass-1", name="fd", roles=["finance", "director"],
                             province=kerman)
        s.commit()
    api.world.users["fd"] = 0
    cid = open_request(api, funded["programme"]["id"])["id"]
    api.advance(cid, *TO_FINANCE)
    assert api.act(cid, "recommend_approval", "expert", "خوب", score=90).status_code == 200
    assert api.act(cid, "propose_amount", "fd", amount_rials=900_000_000, tranches=[900_000_000]).status_code == 200
    r = api.act(cid, "approve", "fd")
    assert r.status_code == 403  # proposed the money: may not approve it
    assert api.act(cid, "approve", "expert").status_code == 403
    assert api.act(cid, "send_back", "director", "امتیاز را بازبینی کنید").status_code == 200
    assert api.act(cid, "recommend_rejection", "expert2").status_code == 422  # comment required
    r = api.act(cid, "recommend_rejection", "expert2", "هزینه‌ها بالاست")
    assert r.status_code == 200 and r.get_json()["state"] == "finance_review"
    assert api.act(cid, "propose_amount", "finance", amount_rials=500_000_000, tranches=[500_000_000]).status_code == 200
    assert api.act(cid, "reject", "director", "مطابق نظر کارشناس").get_json()["state"] == "rejected"
    # Rejected: the programme may be asked again.
    assert open_request(api, funded["programme"]["id"])["state"] == "draft"


def test_return_withdraw_and_tranches_of_others(api: Api, funded: dict[str, Any]) -> None:
    cid = open_request(api, funded["programme"]["id"])["id"]
    api.advance(cid, ("submit", "ngo"))
    assert api.act(cid, "return_for_correction", "intake", "بودجه را دقیق‌تر بنویسید").status_code == 200
    assert api.act(cid, "resubmit", "ngo").get_json()["state"] == "submitted"
    assert api.act(cid, "withdraw", "ngo").get_json()["state"] == "withdrawn"
    assert api.get(f"/api/v1/grants/{cid}/tranches", "q_intake").status_code == 404
    assert api.get(f"/api/v1/grants/{cid}/tranches", "stranger").status_code == 404
    assert api.get(f"/api/v1/grants/{cid}/tranches", "ngo").get_json()["items"] == []


def test_money_parsing_and_display() -> None:
    assert parse_amount("۱٬۲۳۴٬۵۶۷") == 1234567
    assert parse_amount("١٢٣،٤٥٦") == 123456
    assert parse_amount("12,000", "toman") == 120000
    assert parse_amount("۱۲۳۴٫۵", "toman") == 12345
    assert parse_amount("1.250.000") == 1250000
    for bad in ("1.5", "-5", "", "abc", "12a", True, 1.5, None, [1]):
        assert parse_amount(bad) is None, bad
    assert shown_amount(12345, "toman", True) == "۱٬۲۳۴٫۵"
    assert shown_amount(1_000_000_000, "toman", False) == "100,000,000"
    assert shown_amount(1_000_000_000, "rial", True) == "۱٬۰۰۰٬۰۰۰٬۰۰۰"


def test_report_reminders_and_overdue_through_the_sweep(app: Any, api: Api, funded: dict[str, Any], session: Any) -> None:
    from tests.test_sweep import kinds, sweep

    cid = open_request(api, funded["programme"]["id"])["id"]
    to_decision(api, cid)
    api.advance(cid, ("approve", "director"))
    assert api.post(f"/api/v1/grants/{cid}/tranches/1/release", "finance").status_code == 200
    session.expire_all()
    item = session.scalar(select(Tranche).where(Tranche.case_id == cid, Tranche.n == 1))
    due = item.report_due_at
    assert due - item.released_at == timedelta(days=app.config["GRANT_REPORT_DAYS"])
    assert item.next_event_at == due - timedelta(days=7)

    sweep(app, due - timedelta(days=8))
    assert kinds(session, case_id=cid) == []
    sweep(app, due - timedelta(days=7))
    # org1's members with the applicant role (member_intake is one too)
    assert kinds(session, case_id=cid) == [("report_7d", "member_intake"), ("report_7d", "ngo"), ("report_7d", "ngo_b")]
    sweep(app, due - timedelta(days=7))  # nothing twice
    sweep(app, due + timedelta(hours=1))
    assert [k for k in kinds(session, case_id=cid) if k[0] == "report_due"] == [
        ("report_due", "member_intake"), ("report_due", "ngo"), ("report_due", "ngo_b")]
    sweep(app, due + timedelta(days=1))
    assert [k for k in kinds(session, case_id=cid) if k[0] == "report_overdue"] == [
        ("report_overdue", "finance"), ("report_overdue", "member_intake"), ("report_overdue", "ngo"),
        ("report_overdue", "ngo_b")]
    session.expire_all()
    assert session.get(Tranche, item.id).next_event_at is None
    total = len(kinds(session, case_id=cid))
    sweep(app, due + timedelta(days=2))
    assert len(kinds(session, case_id=cid)) == total

    # Filed (here, before the real due date), returned: the deadline stands (at least two weeks
    # from the return) and its reminders are scheduled again.
    lines = [{"item": "حق‌التدریس", "budgeted_rials": 500_000_000, "spent_rials": 500_000_000}]
    assert report(api, cid, 1, lines).status_code == 200
    session.expire_all()
    assert session.get(Tranche, item.id).next_event_at is None
    assert api.post(f"/api/v1/grants/{cid}/tranches/1/report/return", "finance",
                    {"comment": "رسیدها مهر ندارند"}).status_code == 200
    session.expire_all()
    returned = session.get(Tranche, item.id)
    assert returned.state == "returned" and returned.report_due_at == due
    assert returned.next_event_at == due - timedelta(days=7)


def test_numbers_past_any_id_are_refused_cleanly(api: Api, funded: dict[str, Any]) -> None:
    """Ids are INTEGER columns: a larger number names no row (404/422), never a database error."""
    huge = 99_999_999_999_999_999_999
    r = api.post("/api/v1/programmes", "finance", programme_body(province=str(huge)))
    assert r.status_code == 422 and "province" in r.get_json()["error"]["fields"]
    assert api.post("/api/v1/programmes", "finance", programme_body(province=2**40)).status_code == 422
    for url in (f"/api/v1/programmes/{huge}", f"/api/v1/applications/{huge}", f"/api/v1/grants/{huge}/tranches",
                f"/api/v1/applications/{2**31}/history"):
        assert api.get(url, "finance").status_code == 404, url
    assert api.post(f"/api/v1/grants/1/tranches/{huge}/release", "finance").status_code == 404
    r = api.post("/api/v1/applications", "ngo", {"kind": "grant_request", "organization_id": api.world.orgs["org1"],
                                                 "data": request_data(2**40)})
    assert r.status_code == 422 and "programme_id" in r.get_json()["error"]["fields"]
    cid = open_request(api, funded["programme"]["id"])["id"]
    to_decision(api, cid)
    api.advance(cid, ("approve", "director"))
    r = api.act(cid, "release_tranche", "finance", tranche=2**40)
    assert r.status_code == 422 and "tranche" in r.get_json()["error"]["fields"]


def test_a_report_of_more_lines_than_taken_is_refused_not_cut(api: Api) -> None:
    """The report's lines past the 50th were dropped without a word, and the spent total with them."""
    issue_permit(api)
    case_id = open_request(api, create_programme(api)["id"])["id"]
    to_decision(api, case_id)
    api.advance(case_id, ("approve", "director"))
    assert api.post(f"/api/v1/grants/{case_id}/tranches/1/release", "finance", {}).status_code == 200
    lines = [{"item": f"قلم {n}", "budgeted_rials": 1_000_000, "spent_rials": 1_000_000} for n in range(51)]
    r = report(api, case_id, 1, lines)
    assert r.status_code == 422 and "lines" in r.get_json()["error"]["fields"], r.get_json()
    tranche = api.get(f"/api/v1/grants/{case_id}/tranches", "ngo").get_json()["items"][0]
    assert tranche["state"] == "released" and tranche["report"] is None

"""The engine's rules beyond the role table: separation of duties, comments, data, audit."""
from __future__ import annotations

from sqlalchemy import select

from tests.support import TO_AWAITING
from workflow.models import AuditEntry, Notification, Permit


def test_recommender_may_not_decide(api):
    case_id = api.ready()
    api.advance(case_id, ("submit", "ngo"), ("accept", "intake"))
    api.advance(case_id, ("recommend_approval", "expert_director"))
    r = api.act(case_id, "approve", "expert_director")
    assert r.status_code == 403
    assert "approve" not in api.get(f"/api/v1/applications/{case_id}", "expert_director").get_json()["actions"]
    assert api.act(case_id, "approve", "director").status_code == 200


def test_earlier_recommender_still_barred_after_send_back(api):
    case_id = api.ready()
    api.advance(case_id, ("submit", "ngo"), ("accept", "intake"), ("recommend_approval", "expert_director"),
                ("send_back", "director", "check the founders"), ("recommend_approval", "expert"))
    assert api.act(case_id, "approve", "expert_director").status_code == 403


def test_expert_director_may_decide_what_others_recommended(api):
    case_id = api.ready()
    api.advance(case_id, *TO_AWAITING)
    assert api.act(case_id, "approve", "expert_director").status_code == 200


def test_member_may_not_act_as_staff_on_own_org(api):
    case_id = api.ready()
    api.advance(case_id, ("submit", "ngo"))
    r = api.act(case_id, "accept", "member_intake")
    assert r.status_code == 403
    # but as an applicant of the same organisation it may act
    assert api.act(case_id, "withdraw", "member_intake").status_code == 200


def test_county_staff_see_only_their_county(api):
    case_id = api.ready("s_ngo", "org3", county="Sirjan", name="جمعیت زنان کارآفرین سیرجان")
    api.advance(case_id, ("submit", "s_ngo"))
    assert api.get(f"/api/v1/applications/{case_id}", "sirjan_intake").status_code == 200
    assert api.act(case_id, "accept", "sirjan_intake").status_code == 200
    other = api.ready()
    api.advance(other, ("submit", "ngo"))
    assert api.get(f"/api/v1/applications/{other}", "sirjan_intake").status_code == 404


def test_comment_required(api):
    case_id = api.ready()
    api.advance(case_id, ("submit", "ngo"))
    for comment in (None, "", "   "):
        r = api.act(case_id, "return_for_correction", "intake", comment=comment)
        assert r.status_code == 422 and "comment" in r.get_json()["error"]["fields"]
    assert api.get(f"/api/v1/applications/{case_id}", "ngo").get_json()["state"] == "submitted"


def test_submit_incomplete_is_422_with_every_field(api):
    case = api.create(data={"name": "انجمن نمونه", "founders": [{"full_name": "یک نفر", "national_id": "0499370899"}]})
    r = api.act(case["id"], "submit", "ngo")
    assert r.status_code == 422
    fields = r.get_json()["error"]["fields"]
    assert {"field", "county", "address", "founders", "statute"} <= set(fields)
    assert api.get(f"/api/v1/applications/{case['id']}", "ngo").get_json()["state"] == "draft"


def test_audit_entry_per_transition(api, session):
    case_id = api.ready()
    api.advance(case_id, ("submit", "ngo"), ("accept", "intake"), ("send_inquiry", "expert", "استعلام از دادگستری"),
                ("record_inquiry", "expert", "پاسخ: بلامانع"), ("recommend_approval", "expert"),
                ("approve", "director"))
    history = api.get(f"/api/v1/applications/{case_id}/history", "auditor").get_json()["entries"]
    assert [e["seq"] for e in history] == [1, 2, 3, 4, 5, 6]
    assert [(e["action"], e["role"], e["from_state"], e["to_state"]) for e in history] == [
        ("submit", "applicant", "draft", "submitted"),
        ("accept", "intake", "submitted", "under_review"),
        ("send_inquiry", "expert", "under_review", "inquiry"),
        ("record_inquiry", "expert", "inquiry", "under_review"),
        ("recommend_approval", "expert", "under_review", "awaiting_decision"),
        ("approve", "director", "awaiting_decision", "approved"),
    ]
    assert history[2]["comment"] == "استعلام از دادگستری"
    assert history[0]["actor"]["name"] == "ngo" and history[0]["at"].endswith("+00:00")
    rows = session.scalars(select(AuditEntry).where(AuditEntry.case_id == case_id)).all()
    assert len(rows) == 6


def test_approval_issues_permit_and_notifies(api, session, app):
    case_id = api.ready()
    r = api.advance(case_id, *TO_AWAITING, ("approve", "director"))
    body = r.get_json()
    assert body["state"] == "approved" and body["permit_number"]
    permit = session.scalar(select(Permit).where(Permit.case_id == case_id))
    assert permit.number == body["permit_number"] and permit.state == "active"
    years = app.config["PERMIT_VALIDITY_YEARS"]
    assert (permit.valid_until - permit.issued_at).days in (365 * years, 365 * years + 1)
    public = api.get(f"/api/v1/permits/{permit.number}").get_json()
    assert public["organization"] == "انجمن حمایت از کودکان کار کرمان" and public["state"] == "active"
    kinds = session.scalars(select(Notification.kind).where(Notification.case_id == case_id)).all()
    # two applicants of org1 hear of acceptance and of approval
    assert sorted(kinds).count("case.approve") == 3  # ngo, ngo_b, member_intake (also an applicant)
    assert "case.accept" in kinds


def test_validity_is_configurable(api, app):
    app.config["PERMIT_VALIDITY_YEARS"] = 1
    case_id = api.ready()
    api.advance(case_id, *TO_AWAITING, ("approve", "director"))
    permit = api.get(f"/api/v1/permits/{api.get(f'/api/v1/applications/{case_id}', 'ngo').get_json()['permit_number']}").get_json()
    from datetime import datetime

    days = (datetime.fromisoformat(permit["valid_until"]) - datetime.fromisoformat(permit["issued_at"])).days
    assert days in (365, 366)


def test_permit_numbers_unique_across_cases(api):
    numbers = set()
    for org, who, county, name in (("org1", "ngo", "Kerman", None), ("org3", "s_ngo", "Sirjan", "جمعیت زنان کارآفرین سیرجان")):
        kw = {"county": county, **({"name": name} if name else {})}
        case_id = api.ready(who, org, **kw)
        api.advance(case_id, (("submit", who)), ("accept", "intake"), ("recommend_approval", "expert"), ("approve", "director"))
        numbers.add(api.get(f"/api/v1/applications/{case_id}", who).get_json()["permit_number"])
    assert len(numbers) == 2


def test_resubmit_after_correction(api):
    case_id = api.ready()
    api.advance(case_id, ("submit", "ngo"), ("return_for_correction", "intake", "آدرس ناقص است"))
    case = api.get(f"/api/v1/applications/{case_id}", "ngo").get_json()
    assert case["state"] == "needs_correction" and case["due_at"]
    data = dict(case["data"], address="کرمان، بلوار جمهوری، کوچه ۵، پلاک ۸")
    r = api.patch(f"/api/v1/applications/{case_id}", "ngo", {"data": data, "version": case["version"]})
    assert r.status_code == 200 and r.get_json()["data"]["address"].endswith("پلاک 8")
    assert api.act(case_id, "resubmit", "ngo").status_code == 200


def test_no_second_permit_application_while_one_is_live(api):
    case_id = api.ready()
    api.advance(case_id, *TO_AWAITING, ("approve", "director"))
    r = api.post("/api/v1/applications", "ngo", {"kind": "permit_issuance", "organization_id": api.world.orgs["org1"],
                                                "data": {}})
    message = r.get_json()["error"]["message"]
    assert r.status_code == 409 and "تمدید" in message

"""The JSON API contract: every status code the issue names, and no 500 on any input."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.support import PASSWORD, PDF, TO_AWAITING, good_data
from workflow.models import Case, IdempotencyKey


def test_token_and_me(api, world):
    r = api.client.post("/api/v1/token", json={"email": "NGO@test.ir ", "password": PASSWORD})
    assert r.status_code == 200 and r.get_json()["token"] and r.get_json()["expires_at"]
    assert api.client.post("/api/v1/token", json={"email": "ngo@test.ir", "password": "wrong"}).status_code == 401
    assert api.client.post("/api/v1/token", json={"email": 5, "password": []}).status_code == 401
    assert api.client.get("/api/v1/me").status_code == 401
    assert api.client.get("/api/v1/me", headers={"Authorization": "Bearer nonsense"}).status_code == 401
    assert api.client.get("/api/v1/me", headers={"Authorization": "Basic abc"}).status_code == 401
    me = api.get("/api/v1/me", "ngo").get_json()
    assert me["email"] == "ngo@test.ir" and me["roles"] == ["applicant"]
    assert me["organizations"] == [{"id": world.orgs["org1"], "name": "انجمن حمایت از کودکان کار کرمان"}]
    staff = api.get("/api/v1/me", "sirjan_intake").get_json()
    assert (staff["province"], staff["county"]) == ("Kerman", "Sirjan")


def test_expired_token_is_401(api, app, session):
    from datetime import timedelta

    from workflow.models import ApiToken, utcnow

    token = api.token("ngo")
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == ApiToken.hash(token)))
    row.expires_at = utcnow() - timedelta(seconds=1)
    session.commit()
    assert api.get("/api/v1/me", "ngo").status_code == 401


def test_reference(api):
    ref = api.get("/api/v1/reference", "ngo").get_json()
    assert len(ref["provinces"]) == 31
    kerman = next(p for p in ref["provinces"] if p["name_en"] == "Kerman")
    names = {c["name_fa"] for c in kerman["counties"]}
    assert {"فاریاب", "قلعه گنج", "منوجان", "عنبرآباد", "ریگان", "نرماشیر", "ارزوئیه", "رابر", "کوهبنان"} <= names
    qazvin = next(p for p in ref["provinces"] if p["name_en"] == "Qazvin")
    assert len(qazvin["counties"]) >= 6
    assert {"children", "women", "addiction_recovery"} <= {f["code"] for f in ref["fields"]}


def test_create_get_and_normalise(api, world):
    data = good_data(name="  انجمن حمايت از   كودكان كار كرمان ", county="كرمان",
                     founders=[{"full_name": "علي  رضايي", "national_id": "۰۴۹۹۳۷۰۸۹۹"},
                               {"full_name": "زهرا", "national_id": "٠٧٩٠٤١٩٩٠٤"}])
    case = api.create(data=data)
    assert case["state"] == "draft" and case["version"] == 1 and case["permit_number"] is None
    assert case["data"]["name"] == "انجمن حمایت از کودکان کار کرمان"
    assert case["data"]["county"] == "کرمان"
    assert case["data"]["founders"][0] == {"full_name": "علی رضایی", "national_id": "0499370899"}
    assert case["data"]["founders"][1]["national_id"] == "0790419904"
    assert set(case["actions"]) == {"submit", "withdraw"}
    got = api.get(f"/api/v1/applications/{case['id']}", "ngo").get_json()
    assert got == case
    for key in ("id", "kind", "state", "version", "organization_id", "data", "actions", "created_at",
                "updated_at", "due_at", "permit_number"):
        assert key in got


@pytest.mark.parametrize("bad,field", [
    ({"founders": [{"full_name": "الف", "national_id": "1234567890"}]}, "founders.0.national_id"),
    ({"founders": [{"full_name": "الف", "national_id": "049937089"}]}, "founders.0.national_id"),
    ({"founders": [{"full_name": "الف", "national_id": "1111111111"}]}, "founders.0.national_id"),
    ({"founders": [{"full_name": "", "national_id": "0499370899"}]}, "founders.0.full_name"),
    ({"founders": [{"full_name": "a", "national_id": "0499370899"}, {"full_name": "b", "national_id": "۰۴۹۹۳۷۰۸۹۹"}]},
     "founders.1.national_id"),
    ({"founders": "three people"}, "founders"),
    ({"field": "astrology"}, "field"),
    ({"county": "Takestan"}, "county"),           # a county of Qazvin, not Kerman
    ({"name": "ab"}, "name"),
    ({"name": "مجمع خيرين اشتغال قزوين"}, None),  # same name in another province is fine
])
def test_create_validation(api, session, bad, field):
    before = session.scalar(select(func.count(Case.id)))
    r = api.post("/api/v1/applications", "ngo", {"kind": "permit_issuance", "organization_id": api.world.orgs["org1"],
                                                "data": good_data(**bad)})
    if field is None:
        assert r.status_code == 201
        return
    assert r.status_code == 422, r.get_json()
    assert field in r.get_json()["error"]["fields"]
    assert session.scalar(select(func.count(Case.id))) == before


def test_name_unique_per_province_after_normalisation(api, world):
    # org3 exists in Kerman as «جمعیت زنان کارآفرین سیرجان»: org1 may not take it, in any spelling.
    r = api.post("/api/v1/applications", "ngo", {"kind": "permit_issuance", "organization_id": world.orgs["org1"],
                                                "data": good_data(name="جمعيت زنان كارآفرين\u200cسيرجان")})
    assert r.status_code == 422 and "name" in r.get_json()["error"]["fields"]


def test_create_forbidden_and_bad_requests(api, world):
    body = {"kind": "permit_issuance", "organization_id": world.orgs["org2"], "data": good_data()}
    assert api.post("/api/v1/applications", "ngo", body).status_code == 403        # not a member
    assert api.post("/api/v1/applications", "intake", dict(body, organization_id=world.orgs["org1"])).status_code == 403
    assert api.post("/api/v1/applications", "ngo", dict(body, kind="spaceship")).status_code == 422
    assert api.post("/api/v1/applications", "ngo", dict(body, organization_id="1")).status_code == 422
    assert api.post("/api/v1/applications", None, body).status_code == 401


def test_one_open_application_per_organisation(api):
    api.create()
    r = api.post("/api/v1/applications", "ngo", {"kind": "permit_issuance", "organization_id": api.world.orgs["org1"],
                                                "data": good_data()})
    assert r.status_code == 409


def test_idempotency_key(api, session):
    body = {"kind": "permit_issuance", "organization_id": api.world.orgs["org1"], "data": good_data()}
    first = api.post("/api/v1/applications", "ngo", body, headers={"Idempotency-Key": "k-1"})
    again = api.post("/api/v1/applications", "ngo", body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 201 and again.status_code == 201
    assert first.get_json()["id"] == again.get_json()["id"]
    assert session.scalar(select(func.count(Case.id))) == 1
    assert session.scalar(select(func.count(IdempotencyKey.id))) == 1


def test_patch(api):
    case = api.create()
    url = f"/api/v1/applications/{case['id']}"
    r = api.patch(url, "ngo", {"data": good_data(address="قلعه گنج، خیابان ۱۷ شهریور"), "version": case["version"]})
    assert r.status_code == 200 and r.get_json()["version"] == case["version"] + 1
    assert api.patch(url, "ngo", {"data": good_data(), "version": case["version"]}).status_code == 409  # stale
    assert api.patch(url, "ngo", {"data": good_data()}).status_code == 422                             # no version
    v = r.get_json()["version"]
    bad = api.patch(url, "ngo", {"data": good_data(field="nope"), "version": v})
    assert bad.status_code == 422 and api.get(url, "ngo").get_json()["data"]["field"] == "children"
    assert api.patch(url, "ngo_b", {"data": good_data(), "version": v}).status_code == 200  # other member
    assert api.patch(url, "q_ngo", {"data": good_data(), "version": v + 1}).status_code == 404
    api.upload(case["id"])
    api.act(case["id"], "submit", "ngo")
    v = api.get(url, "ngo").get_json()["version"]
    assert api.patch(url, "ngo", {"data": good_data(), "version": v}).status_code == 409  # not editable


def test_upload_checks_content(api):
    case = api.create()
    assert api.upload(case["id"], content=b"MZ\x90\x00 not a pdf", name="statute.pdf").status_code == 422
    assert api.upload(case["id"], content=b"", name="x.pdf").status_code == 422
    assert api.upload(case["id"], content=PDF, name="../../etc/passwd").status_code == 201
    assert api.upload(case["id"], who="q_ngo").status_code == 404


def test_stale_version_conflict(api):
    case_id = api.ready()
    v = api.get(f"/api/v1/applications/{case_id}", "ngo").get_json()["version"]
    assert api.act(case_id, "submit", "ngo", version=v - 1).status_code == 409
    assert api.act(case_id, "submit", "ngo", version=v).status_code == 200
    assert api.act(case_id, "withdraw", "ngo", version=v).status_code == 409


def test_transition_body_errors(api):
    case_id = api.ready()
    url = f"/api/v1/applications/{case_id}/transitions"
    assert api.post(url, "ngo", {"version": 1}).status_code == 422
    assert api.post(url, "ngo", {"action": "submit"}).status_code == 422
    assert api.post(url, "ngo", {"action": "submit", "version": "2"}).status_code == 422
    assert api.post(url, "ngo", {"action": "fly", "version": 2}).status_code == 422
    assert api.post(url, "ngo", {"action": "submit", "version": 2, "comment": {"x": 1}}).status_code == 422


def test_queue_keyset_pagination(api, world, session):
    ids = []
    for org, who, county, name in (("org1", "ngo", "Kerman", None),
                                   ("org3", "s_ngo", "Sirjan", "جمعیت زنان کارآفرین سیرجان")):
        kw = {"county": county, **({"name": name} if name else {})}
        case_id = api.ready(who, org, **kw)
        api.advance(case_id, ("submit", who))
        ids.append(case_id)
    first = api.get("/api/v1/queue?limit=1", "intake").get_json()
    assert [c["id"] for c in first["items"]] == ids[:1] and first["next_cursor"]
    second = api.get(f"/api/v1/queue?limit=1&cursor={first['next_cursor']}", "intake").get_json()
    assert [c["id"] for c in second["items"]] == ids[1:] and second["next_cursor"] is None
    assert api.get("/api/v1/queue", "expert").get_json()["items"] == []
    assert [c["id"] for c in api.get("/api/v1/queue", "sirjan_intake").get_json()["items"]] == ids[1:]
    assert api.get("/api/v1/queue", "q_intake").get_json()["items"] == []
    assert api.get("/api/v1/queue?limit=0", "intake").status_code == 422
    assert api.get("/api/v1/queue?cursor=%%%", "intake").status_code == 422
    assert api.get("/api/v1/queue?kind=nope", "intake").status_code == 422
    assert api.get("/api/v1/queue?limit=abc", "intake").status_code == 422


def test_queue_hides_what_a_director_recommended(api):
    case_id = api.ready()
    api.advance(case_id, ("submit", "ngo"), ("accept", "intake"), ("recommend_approval", "expert_director"))
    assert api.get("/api/v1/queue", "expert_director").get_json()["items"] == []
    assert [c["id"] for c in api.get("/api/v1/queue", "director").get_json()["items"]] == [case_id]


def test_history_and_visibility(api):
    case_id = api.ready()
    assert api.get(f"/api/v1/applications/{case_id}", "intake").status_code == 404  # a draft is private
    api.advance(case_id, *TO_AWAITING)
    for who in ("ngo", "intake", "expert", "director", "auditor", "admin"):
        assert api.get(f"/api/v1/applications/{case_id}/history", who).status_code == 200
    for who in ("q_ngo", "stranger", "q_intake", "q_director", "sirjan_intake"):
        assert api.get(f"/api/v1/applications/{case_id}/history", who).status_code == 404
        assert api.get(f"/api/v1/applications/{case_id}", who).status_code == 404
    assert api.get("/api/v1/applications/999999", "ngo").status_code == 404


def test_public_permit(api):
    assert api.client.get("/api/v1/permits/1405-13-000001").status_code == 404
    case_id = api.ready()
    number = api.advance(case_id, *TO_AWAITING, ("approve", "director")).get_json()["permit_number"]
    body = api.client.get(f"/api/v1/permits/{number}").get_json()
    assert set(body) == {"number", "organization", "state", "issued_at", "valid_until"}


def test_malformed_and_oversized(api, app):
    h = {**api.headers("ngo"), "Content-Type": "application/json"}
    r = api.client.post("/api/v1/applications", data="{not json", headers=h)
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "bad_request"
    assert api.client.post("/api/v1/applications", data="[1, 2]", headers=h).status_code == 400
    big = '{"data": "' + "x" * (app.config["API_MAX_BODY_BYTES"] + 10) + '"}'
    r = api.client.post("/api/v1/applications", data=big, headers=h)
    assert r.status_code == 413 and r.get_json()["error"]["code"] == "too_large"
    assert api.client.get("/api/v1/nothing-here").status_code == 404
    assert api.client.delete("/api/v1/me", headers=h).status_code == 405


GARBAGE = [None, 0, -1, 1.5, True, "", "x" * 5000, [], {}, [{}], {"a": None}, "\x00", "١٢٣", 10**30]


@pytest.mark.parametrize("value", GARBAGE, ids=[repr(v)[:20] for v in GARBAGE])
def test_no_500_on_odd_input(api, value):
    case_id = api.ready()
    calls = [
        ("post", "/api/v1/applications", {"kind": value, "organization_id": value, "data": value}),
        ("post", "/api/v1/applications", {"kind": "permit_issuance", "organization_id": api.world.orgs["org1"],
                                          "data": {"name": value, "field": value, "county": value,
                                                   "address": value, "founders": [value, {"full_name": value,
                                                                                        "national_id": value}]}}),
        ("patch", f"/api/v1/applications/{case_id}", {"data": value, "version": value}),
        ("patch", f"/api/v1/applications/{case_id}", {"data": {"founders": value}, "version": 1}),
        ("post", f"/api/v1/applications/{case_id}/transitions", {"action": value, "version": value, "comment": value}),
        ("post", f"/api/v1/applications/{case_id}/transitions", {"action": "submit", "version": 2, "comment": value}),
        ("post", "/api/v1/token", {"email": value, "password": value}),
    ]
    for method, url, body in calls:
        r = getattr(api, method)(url, "ngo", body) if method == "patch" else api.post(url, "ngo", body)
        assert r.status_code < 500, (url, body, r.get_json())
        assert set(r.get_json()) >= ({"error"} if r.status_code >= 400 else set())

"""Numbers typed by people and programs: any script's digits read, anything else a 4xx.

`str.isdigit()` says yes to digits that int() refuses ("²", "①"), and int() refuses text of
more than 4,300 digits; both were 500s on the API (and on a few pages) before every such place
read numbers through `text.whole_number`.
"""
from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support import Api, hidden_fields
from tests.test_grants import create_programme, issue_permit, open_request, programme_body, to_decision
from workflow.money import parse_amount
from workflow.text import whole_number

LONG = "1" * 5000


@pytest.mark.parametrize("text, number", [
    ("42", 42), (" ۴۲ ", 42), ("٤٢", 42), ("007", 7), ("0", 0),
    ("²", None), ("①", None), ("１２", None), ("-1", None), ("4.2", None), ("", None), ("  ", None),
    (LONG, None), ("9" * 31, None), ("9" * 30, int("9" * 30)),
])
def test_whole_number(text: str, number: int | None) -> None:
    assert whole_number(text) == number


def test_whole_number_takes_only_text() -> None:
    assert whole_number(None) is None and whole_number(7) is None and whole_number(["1"]) is None


def test_an_amount_too_long_to_read_is_no_amount() -> None:
    assert parse_amount(LONG) is None and parse_amount("0" * 100 + "1") is None
    assert parse_amount("100000000000000000") == 10**17 and parse_amount("۱۲٬۵۰۰") == 12_500


@pytest.mark.parametrize("query", ["limit=²", f"limit={LONG[:200]}", "limit=0"])
def test_queue_limit(api: Api, query: str) -> None:
    r = api.get(f"/api/v1/queue?{query}", "intake")
    assert r.status_code == 422 and "limit" in r.get_json()["error"]["fields"]


@pytest.mark.parametrize("case", ["²", "0", "2147483648", "99999999999999999999"])
def test_audit_verify_case(api: Api, case: str) -> None:
    r = api.get(f"/api/v1/audit/verify?case={case}", "auditor")
    assert r.status_code == 422 and "case" in r.get_json()["error"]["fields"]
    # A well-formed number (Persian digits too) is read: no such case in this world, so a 404.
    assert api.get("/api/v1/audit/verify?case=۱", "auditor").status_code == 404


def test_programmes_province_filter(api: Api) -> None:
    r = api.get("/api/v1/programmes?province=²", "ngo")
    assert r.status_code == 422 and "province" in r.get_json()["error"]["fields"]


@pytest.mark.parametrize("field, value", [
    ("province", "²"), ("fiscal_year", "²"), ("budget_rials", LONG), ("max_award_rials", LONG),
])
def test_programme_fields(api: Api, field: str, value: str) -> None:
    r = api.post("/api/v1/programmes", "finance", programme_body(**{field: value}))
    assert r.status_code == 422 and field in r.get_json()["error"]["fields"], r.get_json()


@pytest.mark.parametrize("data, field", [
    ({"programme_id": "²"}, "programme_id"),
    ({"programme_id": LONG}, "programme_id"),
    ({"programme_id": 1, "requested_rials": LONG}, "requested_rials"),
])
def test_grant_request_data(api: Api, data: dict[str, Any], field: str) -> None:
    create_programme(api)
    r = api.post("/api/v1/applications", "ngo", {"kind": "grant_request", "organization_id": api.world.orgs["org1"],
                                                 "data": data})
    assert r.status_code == 422 and field in r.get_json()["error"]["fields"], r.get_json()


@pytest.fixture
def released(api: Api) -> int:
    """An approved grant of org1 whose first tranche is paid."""
    issue_permit(api)
    case_id = open_request(api, create_programme(api)["id"])["id"]
    to_decision(api, case_id)
    api.advance(case_id, ("approve", "director"))
    assert api.post(f"/api/v1/grants/{case_id}/tranches/1/release", "finance", {}).status_code == 200
    return case_id


def test_tranche_values(api: Api, released: int) -> None:
    r = api.act(released, "submit_report", "ngo", tranche="²")
    assert r.status_code == 422 and "tranche" in r.get_json()["error"]["fields"], r.get_json()
    r = api.client.post(f"/api/v1/grants/{released}/tranches/1/report", headers=api.headers("ngo"),
                        data={"lines": "[]", "version": "²"}, content_type="multipart/form-data")
    assert r.status_code == 422 and "version" in r.get_json()["error"]["fields"], r.get_json()


def test_score(api: Api) -> None:
    issue_permit(api)
    case_id = open_request(api, create_programme(api)["id"])["id"]
    api.advance(case_id, ("submit", "ngo"), ("accept", "intake"))
    for score in ("²", LONG):
        r = api.act(case_id, "recommend_approval", "expert", "ok", score=score)
        assert r.status_code == 422 and "score" in r.get_json()["error"]["fields"], r.get_json()
    assert api.act(case_id, "recommend_approval", "expert", "ok", score="۸۲").status_code == 200


@pytest.mark.parametrize("who, url, expected", [
    ("auditor", "/audit?before=²", 200),
    ("auditor", f"/audit?before={LONG[:100]}", 200),
    ("auditor", "/audit/decisions?before=²", 200),
    ("auditor", "/audit/decisions?case=²", 422),  # the console names the field it could not read
    ("ngo", "/notifications?before=²", 200),
    ("ngo", f"/notifications?before={LONG[:100]}", 200),
])
def test_pages_that_page_by_id(api: Api, web: Any, who: str, url: str, expected: int) -> None:
    web.login(who)
    status, _html = web.page(url)
    assert status == expected, url


def test_a_form_with_a_tampered_version_is_refused_not_a_500(api: Api, web: Any) -> None:
    case_id = api.ready()
    api.advance(case_id, ("submit", "ngo"))
    web.login("intake")
    html = web.client.get(f"/cases/{case_id}").get_data(as_text=True)
    form = re.search(rf'<form[^>]*action="/cases/{case_id}/transition/accept".*?</form>', html, re.S)
    assert form, "no accept form on the page"
    fields = hidden_fields(form.group(0))
    assert fields["accept-version"] == "2"
    r = web.client.post(f"/cases/{case_id}/transition/accept", data={**fields, "accept-version": "²"})
    assert r.status_code == 302
    assert "تغییر" in web.client.get(f"/cases/{case_id}").get_data(as_text=True)  # "changed by someone else"
    assert api.get(f"/api/v1/applications/{case_id}", "ngo").get_json()["state"] == "submitted"

"""A permit's life after issuance: suspend, reinstate, revoke, with history and jurisdiction."""
from __future__ import annotations

import pytest

from tests.support import TO_AWAITING


@pytest.fixture
def number(api):
    case_id = api.ready()
    return api.advance(case_id, *TO_AWAITING, ("approve", "director")).get_json()["permit_number"]


def _act(api, number, action, who, reason=None, **extra):
    body = {"action": action, **extra}
    if reason is not None:
        body["reason"] = reason
    return api.post(f"/api/v1/permits/{number}/transitions", who, body)


def test_suspend_reinstate_revoke(api, number):
    r = _act(api, number, "suspend", "director", "گزارش مالی سال گذشته ارائه نشده است")
    assert r.status_code == 200 and r.get_json()["state"] == "suspended"
    assert r.get_json()["actions"] == ["reinstate", "revoke"]
    assert api.client.get(f"/api/v1/permits/{number}").get_json()["state"] == "suspended"
    assert _act(api, number, "suspend", "director", "again").status_code == 409
    assert _act(api, number, "reinstate", "director").get_json()["state"] == "active"
    assert _act(api, number, "revoke", "director", "فعالیت خارج از اساسنامه").get_json()["state"] == "revoked"
    for action in ("reinstate", "suspend", "revoke"):
        assert _act(api, number, action, "director", "x").status_code == 409
    history = api.get(f"/api/v1/permits/{number}/history", "auditor").get_json()["entries"]
    assert [(e["seq"], e["action"], e["from_state"], e["to_state"]) for e in history] == [
        (1, "issue", None, "active"), (2, "suspend", "active", "suspended"),
        (3, "reinstate", "suspended", "active"), (4, "revoke", "active", "revoked")]
    assert history[1]["reason"] == "گزارش مالی سال گذشته ارائه نشده است" and history[1]["role"] == "director"
    assert api.get(f"/api/v1/permits/{number}/history", "ngo").status_code == 200
    assert api.get(f"/api/v1/permits/{number}/history", "q_director").status_code == 404


def test_who_may(api, number):
    for who in ("ngo", "intake", "expert", "auditor", "finance", "admin"):
        assert _act(api, number, "suspend", who, "x").status_code == 403, who
    assert _act(api, number, "suspend", "q_director", "x").status_code == 403
    assert _act(api, number, "expire", "director").status_code == 403   # only the system expires
    assert _act(api, number, "suspend", None, "x").status_code == 401
    assert api.client.get(f"/api/v1/permits/{number}").get_json()["state"] == "active"


def test_reason_and_input_errors(api, number):
    r = _act(api, number, "suspend", "director")
    assert r.status_code == 422 and "reason" in r.get_json()["error"]["fields"]
    assert _act(api, number, "revoke", "director", "  ").status_code == 422
    assert _act(api, number, "fly", "director", "x").status_code == 422
    assert _act(api, number, 7, "director", "x").status_code == 422
    assert _act(api, number, "suspend", "director", {"a": 1}).status_code == 422
    assert _act(api, "0000-00-000000", "suspend", "director", "x").status_code == 404
    v = api.post(f"/api/v1/permits/{number}/transitions", "director",
                 {"action": "suspend", "reason": "x", "version": 999}).status_code
    assert v == 409
    assert api.client.get(f"/api/v1/permits/{number}").get_json()["state"] == "active"


def test_director_suspends_from_the_permit_page(api, web, number):
    import re

    web.login("director")
    status, html = web.page(f"/permits/{number}")
    assert status == 200 and "permit-history" in html
    block = re.search(r'<form[^>]*action="/permits/[^"]+/transition/suspend".*?</form>', html, re.S).group(0)
    fields = dict(re.findall(r'name="([^"]+)" type="hidden" value="([^"]*)"', block))
    r = web.client.post(f"/permits/{number}/transition/suspend", data={**fields, "suspend-comment": "عدم ارائه گزارش"})
    assert r.status_code == 302
    assert api.client.get(f"/api/v1/permits/{number}").get_json()["state"] == "suspended"
    status, html = web.page(f"/permits/{number}")
    assert "عدم ارائه گزارش" in html and "badge suspended" in html
    # a visitor sees the state but neither the history nor the forms
    visitor = web.client.application.test_client()
    html = visitor.get(f"/permits/{number}").get_data(as_text=True)
    assert "badge suspended" in html and "permit-history" not in html and "/transition/" not in html

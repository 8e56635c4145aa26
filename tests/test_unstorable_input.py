"""Input that no database or encoder takes is a 400 or 422 wherever it comes in, never a 500.

Each case here was a 500: NUL in JSON sent as text/plain (the API reads any body as JSON, and
only bodies labelled JSON were checked), a lone surrogate escaped in JSON (UTF-8 cannot encode
it for PostgreSQL), JSON nested a few hundred levels deep (RecursionError), and queue cursors
naming Infinity, a deep nest or an id past any column; NUL in an uploaded file's name or in an
Idempotency-Key.
"""
from __future__ import annotations

import base64
import json
from io import BytesIO

import pytest

from tests.support import PDF, Api, good_data
from tests.test_grants import create_programme, issue_permit, open_request, to_decision
from workflow.views.errors import MAX_DEPTH, unstorable, unstorable_json

CREATE = '{"kind": "permit_issuance", "organization_id": %d, "data": {"name": %s}}'


@pytest.mark.parametrize("value, bad", [
    ("متن", False), ({"a": ["b", {"c": "d"}]}, False), (None, False), (12, False),
    ("a\x00b", True), ("a\ud800", True), ({"\udfff": 1}, True), ([[["\x00"]]], True),
    ([[], [[]]], False),
])
def test_unstorable(value: object, bad: bool) -> None:
    assert unstorable(value) is bad


def test_unstorable_depth_without_recursion() -> None:
    nested: list = []
    for _ in range(MAX_DEPTH):
        nested = [nested]
    assert not unstorable(nested)
    deep: list = []
    for _ in range(100_000):  # walked without recursion: no RecursionError
        deep = [deep]
    assert unstorable(deep)


@pytest.mark.parametrize("content_type", ["text/plain", None, "application/json"])
@pytest.mark.parametrize("text", ['"ab\\u0000c"', '"\\ud800abc"', '"abc\\udfff"'])
def test_text_that_cannot_be_stored_is_400_whatever_the_content_type(api: Api, content_type: str | None,
                                                                     text: str) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    r = api.client.post("/api/v1/token", data='{"email": %s, "password": "x"}' % text, headers=headers)
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "bad_request"
    r = api.client.post("/api/v1/applications", data=CREATE % (api.world.orgs["org1"], text),
                        headers={**api.headers("ngo"), **headers})
    assert r.status_code == 400, r.get_json()


@pytest.mark.parametrize("depth", [MAX_DEPTH + 2, 400, 5000, 50_000])
def test_json_nested_past_any_body_is_400(api: Api, depth: int) -> None:
    nest = "[" * depth + "]" * depth
    r = api.client.post("/api/v1/token", data=nest, headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    r = api.client.post("/api/v1/applications", data=CREATE % (api.world.orgs["org1"], nest),
                        headers={**api.headers("ngo"), "Content-Type": "text/plain"})
    assert r.status_code == 400


def test_a_body_of_ours_still_passes(api: Api) -> None:
    r = api.client.post("/api/v1/applications", data=json.dumps(
        {"kind": "permit_issuance", "organization_id": api.world.orgs["org1"], "data": good_data()}),
        headers={**api.headers("ngo"), "Content-Type": "text/plain"})
    assert r.status_code == 201, r.get_json()


def test_report_lines_sent_as_form_text(api: Api) -> None:
    issue_permit(api)
    case_id = open_request(api, create_programme(api)["id"])["id"]
    to_decision(api, case_id)
    api.advance(case_id, ("approve", "director"))
    assert api.post(f"/api/v1/grants/{case_id}/tranches/1/release", "finance", {}).status_code == 200
    url = f"/api/v1/grants/{case_id}/tranches/1/report"
    for lines, status in [('[{"item": "a\\u0000", "budgeted_rials": 1, "spent_rials": 1}]', 400),
                          ('[{"item": "\\ud800", "budgeted_rials": 1, "spent_rials": 1}]', 400),
                          ("[" * 5000 + "]" * 5000, 422)]:
        r = api.client.post(url, headers=api.headers("ngo"), data={"lines": lines}, content_type="multipart/form-data")
        assert r.status_code == status, (lines[:40], r.get_json())


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize("text", [
    '["2026-01-01T00:00:00+00:00", Infinity]', '["2026-01-01T00:00:00+00:00", 1' + "0" * 40 + "]",
    '["2026-01-01T00:00:00+00:00", 2147483648]', '["2026-01-01T00:00:00+00:00", true]',
    "[" * 3000 + "]" * 3000, '["2026-01-01\\u0000", 1]', '{"a": 1}', "\xff",
])
def test_a_cursor_not_of_ours_is_422(api: Api, text: str) -> None:
    r = api.get(f"/api/v1/queue?cursor={_cursor(text)}", "intake")
    assert r.status_code == 422 and "cursor" in r.get_json()["error"]["fields"]


def test_a_cursor_of_ours_pages(api: Api) -> None:
    api.advance(api.ready(), ("submit", "ngo"))
    api.advance(api.ready("s_ngo", "org3", name="جمعیت زنان کارآفرین سیرجان"), ("submit", "s_ngo"))
    first = api.get("/api/v1/queue?limit=1", "intake").get_json()
    second = api.get(f"/api/v1/queue?limit=1&cursor={first['next_cursor']}", "intake").get_json()
    assert len(first["items"]) == len(second["items"]) == 1 and first["items"][0]["id"] != second["items"][0]["id"]


def test_a_file_name_that_cannot_be_stored_is_400(api: Api) -> None:
    case = api.create()
    r = api.client.post(f"/api/v1/applications/{case['id']}/documents", headers=api.headers("ngo"),
                        data={"file": (BytesIO(PDF), "a\x00.pdf")}, content_type="multipart/form-data")
    assert r.status_code == 400
    assert api.get(f"/api/v1/applications/{case['id']}", "ngo").get_json()["documents"] == []
    assert api.upload(case["id"], name="اساسنامه.pdf").status_code == 201


def test_an_idempotency_key_that_cannot_be_stored_is_400(api: Api) -> None:
    body = {"kind": "permit_issuance", "organization_id": api.world.orgs["org1"], "data": good_data()}
    assert api.post("/api/v1/applications", "ngo", body, headers={"Idempotency-Key": "a\x00b"}).status_code == 400
    assert api.post("/api/v1/applications", "ngo", body, headers={"Idempotency-Key": "a-b"}).status_code == 201



@pytest.mark.parametrize("raw", [
    b'{"a": "plain", "b": [1, 2, {"c": null}]}', b'{"a": "ab\\u0000c"}', b'{"a": "\\ud800"}',
    b'{"a": "\\ud83d\\ude00"}', b'{"a": "\xed\xa0\x80"}', '{"a": "\ud7a3 \u06a9"}'.encode(),
    b"[" * MAX_DEPTH + b"]" * MAX_DEPTH, b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1),
    b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}',
])
def test_the_text_shortcut_says_what_the_walk_says(raw: bytes) -> None:
    """unstorable_json skips the walk only where the JSON text rules out what it looks for."""
    data = json.loads(raw)  # the standard library, as the app's request parser
    assert unstorable_json(raw, data) == unstorable(data)


def test_surrogate_bytes_in_a_json_body_are_400(api: Api) -> None:
    # Not an escape: the bytes UTF-8 would give U+D800, which json.loads lets through.
    r = api.client.post("/api/v1/token", data=b'{"email": "\xed\xa0\x80", "password": "x"}',
                        headers={"Content-Type": "application/json"})
    assert r.status_code == 400

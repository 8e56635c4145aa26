"""The OpenAPI document: it describes exactly the API's routes, it is valid OpenAPI 3.1, every
answer of a whole story through the API keeps to it, and schemathesis finds nothing against it.

Schemathesis runs in-process (WSGI) against the app fixture, so on PostgreSQL when it is there,
through its own engine (what `schemathesis run` does: the documented examples, the coverage
phase's edge values, then generated data that fits the schema and data that does not), with a
fixed seed, derandomised, and a bounded number of examples: the same requests every run.
"""
from __future__ import annotations

import re
from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events, from_schema

from tests.support import PASSWORD, Api, World, good_data
from tests.test_grants import create_programme, issue_permit, open_request, report, to_decision
from workflow import db
from workflow.db import MAX_ID
from workflow.services import accounts

DOC = "/api/v1/openapi.json"
FLASK_PARAM = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance", "response_headers_conformance")
EXAMPLES = 10  # generated requests per operation, for data that fits the schema and for data that does not


def _routes(app: Flask) -> dict[tuple[str, str], str]:
    """(OpenAPI path, method) → endpoint, for every /api/v1 rule of the URL map."""
    found = {}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            path = FLASK_PARAM.sub(r"{\1}", rule.rule)
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                found[(path, method.lower())] = rule.endpoint
    return found


def _documented(doc: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(path, method): op["operationId"] for path, item in doc["paths"].items() for method, op in item.items()}


def test_document_describes_exactly_the_routes(app: Flask, client: FlaskClient) -> None:
    r = client.get(DOC)
    assert r.status_code == 200 and r.mimetype == "application/json"
    doc = r.get_json()
    assert doc["openapi"].startswith("3.1")
    routes, documented = _routes(app), _documented(doc)
    assert sorted(set(routes) - set(documented)) == [], "routes the document does not describe"
    assert sorted(set(documented) - set(routes)) == [], "operations the app does not have"
    assert documented == routes, "operationId must name the view's endpoint"


def test_document_is_valid_openapi_and_cacheable(app: Flask, client: FlaskClient) -> None:
    schemathesis.openapi.from_wsgi(DOC, app).validate()  # against the OpenAPI 3.1 meta-schema
    r = client.get(DOC)
    assert r.cache_control.public and r.cache_control.max_age == 3600 and r.headers["ETag"]
    again = client.get(DOC, headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304 and not again.data


def test_id_bounds_are_the_converters(app: Flask, client: FlaskClient) -> None:
    doc = client.get(DOC).get_json()
    for path, item in doc["paths"].items():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["schema"].get("type") == "integer":
                    assert (parameter["schema"]["minimum"], parameter["schema"]["maximum"]) == (1, MAX_ID), path
    assert app.url_map.bind("localhost").match(f"/api/v1/applications/{MAX_ID}")[1] == {"case_id": MAX_ID}


@pytest.mark.parametrize("method, path", [
    ("PATCH", f"/api/v1/applications/{MAX_ID + 1}"),
    ("PATCH", "/api/v1/applications/3000000000"),
    ("PATCH", "/api/v1/applications/99999999999999999999"),
    ("GET", f"/api/v1/applications/{MAX_ID + 1}"),
    ("POST", f"/api/v1/applications/{MAX_ID + 1}/transitions"),
    ("GET", "/api/v1/applications/0"),
    ("PATCH", "/api/v1/applications/0"),
    ("POST", f"/api/v1/grants/1/tranches/{MAX_ID + 1}/report"),
])
def test_an_id_past_the_column_is_404_whatever_the_method(api: Api, method: str, path: str) -> None:
    """Found by schemathesis: PATCH /applications/<a number past INTEGER> answered 405 with
    `Allow: GET` (the converter's `max` is checked after werkzeug matched the route, and the
    GET rule beside it counted as a match); no route takes such a number, so it is a 404."""
    r = api.client.open(path, method=method, headers=api.headers("ngo"), json={})
    assert r.status_code == 404, (method, path, r.status_code)
    assert r.get_json()["error"]["code"] == "not_found"


# -- every answer of a story through the whole API keeps to the document --------------------

class ContractClient(FlaskClient):
    """A test client that holds every /api/v1 answer to the document (status and body)."""

    document: dict[str, Any]
    schema: Any
    seen: set[tuple[str, int]]

    def open(self, *args: Any, **kwargs: Any) -> Any:
        response = super().open(*args, **kwargs)
        request = response.request
        if request.path.startswith("/api/v1/") and request.path != DOC:
            endpoint, _args = self.application.url_map.bind("localhost").match(request.path, method=request.method)
            operation = self.schema.find_operation_by_id(endpoint)
            documented = operation.definition.raw["responses"]
            assert str(response.status_code) in documented, (endpoint, response.status_code, response.get_json())
            operation.validate_response(response)
            self.seen.add((endpoint, response.status_code))
        return response


@pytest.fixture
def contract(app: Flask, world: World) -> Api:
    app.test_client_class = ContractClient
    client = app.test_client()
    assert isinstance(client, ContractClient)
    client.document = client.get(DOC).get_json()
    client.schema = schemathesis.openapi.from_wsgi(DOC, app)
    client.seen = set()
    return Api(client, world)


def test_a_whole_story_keeps_to_the_document(contract: Api, app: Flask) -> None:
    """Every operation's success answer is met at least once, and each answer is as documented."""
    api = contract
    client: ContractClient = api.client  # type: ignore[assignment]
    assert api.client.post("/api/v1/token", json={"email": "ngo@test.ir", "password": "wrong"}).status_code == 401
    too_large = "x" * (app.config["API_MAX_BODY_BYTES"] + 1)
    assert api.client.post("/api/v1/token", data=too_large, content_type="application/json").status_code == 413
    api.get("/api/v1/me", "ngo")
    api.get("/api/v1/reference", "ngo")
    number = issue_permit(api)  # create, upload, transitions, approval
    api.get("/api/v1/applications/1", "ngo")
    assert api.patch("/api/v1/applications/1", "ngo", {"version": 1, "data": {}}).status_code == 409  # approved
    api.get("/api/v1/applications/1/history", "ngo")
    qazvin = good_data(name="مجمع خیرین اشتغال قزوین", county="Qazvin")
    draft = api.create("q_ngo", "org2", qazvin)
    assert api.patch(f"/api/v1/applications/{draft['id']}", "q_ngo",
                     {"version": draft["version"], "data": {**qazvin, "address": "قزوین، خیابان پیروزی"}}
                     ).status_code == 200
    api.get("/api/v1/queue?kind=permit_issuance&limit=1", "director")
    api.get(f"/api/v1/permits/{number}")
    assert api.post(f"/api/v1/permits/{number}/transitions", "director",
                    {"action": "suspend", "reason": "بازرسی"}).status_code == 200
    api.get(f"/api/v1/permits/{number}/history", "director")
    assert api.post(f"/api/v1/permits/{number}/transitions", "director", {"action": "reinstate"}).status_code == 200
    programme = create_programme(api)
    api.get("/api/v1/programmes?province=Kerman", "ngo")
    api.get(f"/api/v1/programmes/{programme['id']}", "ngo")
    grant = open_request(api, programme["id"])
    to_decision(api, grant["id"], tranches=[500_000_000, 400_000_000])
    api.advance(grant["id"], ("approve", "director"))
    api.get(f"/api/v1/grants/{grant['id']}/tranches", "ngo")
    assert api.post(f"/api/v1/grants/{grant['id']}/tranches/1/release", "finance", {}).status_code == 200
    lines = [{"item": "حق‌التدریس", "budgeted_rials": 500_000_000, "spent_rials": 450_000_000}]
    assert report(api, grant["id"], 1, lines).status_code == 200
    assert api.post(f"/api/v1/grants/{grant['id']}/tranches/1/report/return", "finance",
                    {"comment": "رسید خوانا نیست"}).status_code == 200
    assert api.post(f"/api/v1/grants/{grant['id']}/tranches/1/report", "ngo", {"lines": lines}).status_code == 200
    assert api.post(f"/api/v1/grants/{grant['id']}/tranches/1/report/accept", "finance").status_code == 200
    assert api.get("/api/v1/audit/verify", "auditor").get_json()["ok"] is True
    api.get(f"/api/v1/audit/verify?case={grant['id']}", "auditor")
    expected = {
        ("api.token", 200), ("api.me", 200), ("api.reference", 200), ("api.create_application", 201),
        ("api.get_application", 200), ("api.patch_application", 200), ("api.upload_document", 201),
        ("api.transition", 200), ("api.history", 200), ("api.queue", 200), ("api.permit", 200),
        ("api.permit_transition", 200), ("api.permit_history", 200), ("api.audit_verify", 200),
        ("api.create_programme", 201), ("api.list_programmes", 200), ("api.get_programme", 200),
        ("api.tranches", 200), ("api.release_tranche", 200), ("api.tranche_report", 200),
        ("api.accept_report", 200), ("api.return_report", 200), ("api.token", 401), ("api.token", 413),
    }
    assert sorted(expected - client.seen) == []
    assert {endpoint for endpoint, _status in expected} | {"api_docs.openapi"} == set(_routes(app).values())


# -- schemathesis ----------------------------------------------------------------------------

def _arrange(app: Flask, api: Api, world: World) -> None:
    """Something of everything for the generated requests to find, at the ids the document's
    examples use (1): a permit (case 1), an approved grant with a released tranche and its
    report, a draft elsewhere, and an office user who holds every staff role of Kerman but the
    auditor's (so the same person reaches every staff operation)."""
    with app.test_request_context(), db.new_session() as s:
        kerman = accounts.find_province(s, "kerman")
        office = accounts.create_user(s, email=world.email("office"), password=PASSWORD, name="office",
                                      roles=["intake", "expert", "director", "finance"], province=kerman)
        s.commit()
        world.users["office"] = office.id
    issue_permit(api)
    create_programme(api, name="یک برنامه دیگر")  # id 1 stays free for the examples' grant request
    programme = create_programme(api, name="برنامه‌ای که پول داد")
    grant = open_request(api, programme["id"])
    to_decision(api, grant["id"])
    api.advance(grant["id"], ("approve", "director"))
    assert api.post(f"/api/v1/grants/{grant['id']}/tranches/1/release", "finance", {}).status_code == 200
    lines = [{"item": "حق‌التدریس", "budgeted_rials": 500_000_000, "spent_rials": 450_000_000}]
    assert report(api, grant["id"], 1, lines).status_code == 200
    api.create("q_ngo", "org2", good_data(name="مجمع خیرین اشتغال قزوین", county="Qazvin"))


def _config(token: str) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict({
        "seed": 1405,
        "headers": {"Authorization": f"Bearer {token}"},
        "suppress-health-check": ["all"],
        "warnings": False,
        # NUL too: the API promises a 400 for it wherever it comes in.
        "generation": {"max-examples": EXAMPLES, "deterministic": True, "database": "none", "mode": "all",
                       "allow-x00": True},
        "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
        "phases": {"stateful": {"enabled": False}},
    })


def _failures(app: Flask, token: str) -> tuple[list[str], set[str], int]:
    """Run schemathesis; (what failed, the operations it tested, how many answers it checked)."""
    schema = schemathesis.openapi.from_wsgi(DOC, app, config=_config(token))
    failures: list[str] = []
    tested: set[str] = set()
    answers = 0
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            if event.status != "skip":
                tested.add(str(event.label))
            answers += sum(1 for i in event.recorder.interactions.values() if i.response is not None)
            for checks in event.recorder.checks.values():
                failures += [f"{event.label} [{event.phase}] {c.name}: {c.failure_info.failure}"
                             for c in checks if c.failure_info is not None]
        elif isinstance(event, (events.NonFatalError, events.FatalError)):
            failures.append(f"{getattr(event, 'label', 'engine')}: {getattr(event, 'value', event)!r}")
    return failures, tested, answers


@pytest.mark.slow
@pytest.mark.parametrize("who", ["ngo", "office"])
def test_schemathesis_finds_nothing(app: Flask, api: Api, world: World, who: str) -> None:
    _arrange(app, api, world)
    failures, tested, answers = _failures(app, api.token(who))
    assert not failures, "\n\n".join(sorted(set(failures)))
    # A run that tested nothing would pass too: every operation was exercised (but the document
    # itself, which schemathesis leaves out), many times over.
    assert tested == {f"{method.upper()} {path}" for path, method in _routes(app) if path != DOC}, sorted(tested)
    assert answers > 20 * len(tested)

"""Twenty directors approve twenty different grant requests of one programme at the same instant.

The requests add up to more than the programme's budget. Each approval reads its own case's
version, so the version check cannot help: what must hold is the database's guard on the
programme row (a conditional UPDATE, backed by a CHECK). Against a real gunicorn on
PostgreSQL: the awarded total never exceeds the budget, every approval that would exceed it
gets 409 with nothing changed, and remaining = budget − the awards recorded.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.live_server import Gunicorn, cheap_password_hashing, libpq_dsn
from tests.support import PASSWORD, PDF, good_data
from tests.test_concurrency import _group, live_server, odd, race_requests, summary

pytestmark = [pytest.mark.postgres, *_group("live_gunicorn_grants")]

REQUESTS = 20
AMOUNT = 100_000_000  # rials per request
BUDGET = 1_050_000_000  # room for ten awards and a remainder too small for an eleventh


@dataclass
class Arranged:
    url: str
    programme_id: int = 0
    cases: list[int] = field(default_factory=list)  # awaiting_decision, one per organisation
    versions: list[int] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)  # one director each


def arrange(url: str, upload_dir: Path) -> Arranged:
    """Twenty NGOs with permits, each with a grant request proposed at 100 M rials, and twenty
    directors; every step through the real engine and services."""
    from workflow import create_app, db, engine
    from workflow.config import TestConfig
    from workflow.services import accounts, applications, grants

    out = Arranged(url)
    app = create_app(TestConfig(DATABASE_URL=url, REDIS_URL="", UPLOAD_DIR=upload_dir))
    try:
        with app.test_request_context(), cheap_password_hashing(), db.new_session() as s:
            kerman = accounts.find_province(s, "kerman")
            county = accounts.find_county(s, kerman, "Kerman")

            def person(email: str, roles: list[str], **kw: Any) -> Any:
                return accounts.create_user(s, email=email, password=PASSWORD, name=email.split("@")[0],
                                            roles=roles, **kw)

            intake = person("intake@test.ir", ["intake"], province=kerman)
            expert = person("expert@test.ir", ["expert"], province=kerman)
            director = person("director@test.ir", ["director"], province=kerman)
            finance = person("finance@test.ir", ["finance"], province=kerman)
            today = date.today()
            programme = grants.create_programme(s, finance, {
                "name": "تسهیل‌گری محله‌ها", "province": "Kerman", "fiscal_year": 1405, "budget_rials": BUDGET,
                "max_award_rials": AMOUNT, "opens_on": (today - timedelta(days=1)).isoformat(),
                "closes_on": (today + timedelta(days=30)).isoformat(), "fields": ["children"]})
            out.programme_id = programme.id
            for i in range(REQUESTS):
                name = f"انجمن محله {i:02d} کرمان"
                org = accounts.create_organization(s, name=name, province=kerman, county=county)
                ngo = person(f"ngo{i:02d}@test.ir", ["applicant"], organizations=[org])
                permit_case, _ = applications.create(s, ngo, kind="permit_issuance", organization_id=org.id,
                                                     data=good_data(name=name))
                applications.attach_document(s, ngo, permit_case, content=PDF, filename="statute.pdf")
                for action, actor in (("submit", ngo), ("accept", intake), ("recommend_approval", expert),
                                      ("approve", director)):
                    engine.fire(s, permit_case, action, actor)
                case, _ = applications.create(s, ngo, kind="grant_request", organization_id=org.id, data={
                    "programme_id": programme.id, "title": f"کلاس درس محله {i}", "summary": "آموزش کودکان کار",
                    "requested_rials": AMOUNT, "budget_lines": [{"item": "آموزش", "rials": AMOUNT}]})
                engine.fire(s, case, "submit", ngo)
                engine.fire(s, case, "accept", intake)
                engine.fire(s, case, "recommend_approval", expert, comment="خوب", values={"score": 80})
                engine.fire(s, case, "propose_amount", finance, values={"amount_rials": AMOUNT, "tranches": [AMOUNT]})
                assert case.state == "awaiting_decision"
                out.cases.append(case.id)
                out.versions.append(case.version)
                approver = person(f"director{i:02d}@test.ir", ["director"], province=kerman)
                out.tokens.append(accounts.issue_token(s, approver)[0])
            s.commit()
    finally:
        app.extensions["db_engine"].dispose()
    return out


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Arranged, Gunicorn]]:
    yield from live_server("wf_grants_race", arrange, tmp_path_factory, workers=4, threads=8)


def test_twenty_directors_never_over_commit_the_budget(live: tuple[Arranged, Gunicorn]) -> None:
    arranged, server = live
    requests = [(f"/api/v1/applications/{case_id}/transitions", token, {"action": "approve", "version": version})
                for case_id, version, token in zip(arranged.cases, arranged.versions, arranged.tokens)]
    results = race_requests(server.port, requests)
    counts = summary(results)
    assert counts[200] + counts[409] == REQUESTS, (counts, odd(results, server))
    # Ten awards fit the budget; each approval is refused only when the budget cannot take it.
    assert counts[200] == BUDGET // AMOUNT, (counts, odd(results, server))
    # Every refusal is the budget's (the message names what remains: 50,000,000 after ten
    # awards), not a lost race of some other kind.
    refusals = [body["error"] for status, body in results if status == 409]
    assert all(e["code"] == "conflict" and f"{BUDGET - 10 * AMOUNT:,}" in e["message"] for e in refusals), refusals

    with psycopg.connect(libpq_dsn(arranged.url)) as conn:
        awarded, budget = conn.execute("SELECT awarded_rials, budget_rials FROM programmes WHERE id = %s",
                                       (arranged.programme_id,)).fetchone()
        recorded = conn.execute("SELECT coalesce(sum(awarded_rials), 0), count(awarded_rials) FROM grants "
                                "WHERE programme_id = %s", (arranged.programme_id,)).fetchone()
        states = dict(conn.execute("SELECT state, count(*) FROM cases WHERE kind = 'grant_request' GROUP BY state"))
        approvals = conn.execute("SELECT count(*) FROM audit_entries a JOIN cases c ON c.id = a.case_id "
                                 "WHERE c.kind = 'grant_request' AND a.action = 'approve'").fetchone()[0]
        tranches = conn.execute("SELECT count(*) FROM tranches").fetchone()[0]
    print(f"awarded {awarded} of {budget}; grants recorded {recorded}; states {states}")
    assert awarded <= budget
    assert awarded == recorded[0] == counts[200] * AMOUNT
    assert recorded[1] == approvals == tranches == counts[200]
    assert states == {"approved": counts[200], "awaiting_decision": counts[409]}

    remaining = _get(server.port, f"/api/v1/programmes/{arranged.programme_id}", arranged.tokens[0])["remaining_rials"]
    assert remaining == budget - awarded == BUDGET - counts[200] * AMOUNT


def _get(port: int, path: str, token: str) -> Any:
    import http.client
    import json

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()

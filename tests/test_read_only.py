"""Auditors can never change anything: every writing route refuses them.

The routes come from the app's URL map, so a route added later is covered without editing
this test. Each is called as the auditor, through the pages (with a valid CSRF token, so the
refusal is the auditor rule's, not CSRF's) and through the API, and nothing in the database
may change.
"""
from __future__ import annotations

import re
from typing import Any

from sqlalchemy import text

from tests.support import TO_AWAITING, Api, Web
from workflow import db
from workflow.read_only import PERSONAL, SAFE_METHODS

SAMPLE = {"int": "1", "default": "approve", "string": "approve", "path": "x"}


def writing_routes(app: Any) -> list[tuple[str, str, str]]:
    """(method, url, endpoint) for every route that accepts a writing method."""
    found = []
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) - SAFE_METHODS):
            url = rule.rule
            for converter, name in re.findall(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>", rule.rule):
                value = SAMPLE.get(converter or "default", "1")
                url = re.sub(rf"<(?:\w+(?:\([^)]*\))?:)?{name}>", value, url)
            found.append((method, url, rule.endpoint))
    return found


def row_counts(app: Any) -> dict[str, int]:
    with app.app_context():
        with db.new_session() as s:
            return {t.name: s.scalar(text(f'SELECT count(*) FROM "{t.name}"')) for t in db.Base.metadata.sorted_tables}


def test_every_writing_route_refuses_auditors(app: Any, api: Api, web: Web) -> None:
    case_id = api.ready()
    api.advance(case_id, *TO_AWAITING)
    routes = writing_routes(app)
    assert len(routes) >= 25, routes  # the map was read
    api.token("auditor")  # signing in is not a change of the record; done before counting
    assert web.login("auditor").status_code == 302
    token = web.csrf(web.page("/notifications")[1])  # any page with a form carries the session's token
    before = row_counts(app)

    refused, allowed = [], []
    for method, url, endpoint in routes:
        if endpoint in PERSONAL or endpoint == "static":
            allowed.append(endpoint)
            continue
        if url.startswith("/api/"):
            r = api.client.open(url, method=method, headers=api.headers("auditor"), json={"action": "approve"})
        else:
            r = web.client.open(url, method=method, data={"csrf_token": token, "comment": "x"})
        assert r.status_code == 403, (method, url, r.status_code, r.get_data(as_text=True)[:200])
        refused.append(url)
    print(f"{len(refused)} writing routes refused the auditor; personal routes left: {sorted(set(allowed))}")
    assert row_counts(app) == before


def test_the_engine_refuses_auditors_whatever_their_other_roles(app: Any, api: Api) -> None:
    """A person made auditor and director at once still cannot decide: the engine checks it too."""
    from workflow import engine
    from workflow.errors import Forbidden
    from workflow.models import Case, User, UserRole

    case_id = api.ready()
    api.advance(case_id, *TO_AWAITING)
    with app.test_request_context(), db.new_session() as s:
        s.add(UserRole(user_id=s.get(User, api.world.users["director"]).id, role="auditor"))
        s.commit()
    r = api.act(case_id, "approve", "director")
    assert r.status_code == 403
    with app.test_request_context(), db.new_session() as s:
        from workflow.services.accounts import load_user

        director = load_user(s, api.world.users["director"])
        case = s.get(Case, case_id)
        try:
            engine.fire(s, case, "approve", director)
            raise AssertionError("the engine let an auditor decide")
        except Forbidden:
            s.rollback()
        assert s.get(Case, case_id).state == "awaiting_decision"


def test_nul_anywhere_in_the_query_is_a_400(api: Api, web: Web) -> None:
    """A NUL sent percent-encoded in a query is refused before any page reads it."""
    web.login("auditor")
    for url in ("/audit?org=%00", "/audit/decisions?organization=a%00b", "/programmes?x=1&x=%00"):
        assert web.client.get(url).status_code == 400, url
    assert api.get("/api/v1/queue?kind=%00", "intake").status_code == 400

"""`make run`'s database is a SQLite file, and CI runs the suite on PostgreSQL: these tests run on
SQLite wherever they run, so what SQLite would refuse (a UNION of limited lists, a LATERAL join,
a data-modifying CTE) is caught here and not by someone trying the demo.

Every page and call that reads a list is walked: the work queues (HTML and API, every role),
the auditors' lists and console with each filter, the dashboard counts, notifications and the
statistics page (computed, and kept by its job).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import Backend
from tests.support import TO_AWAITING


@pytest.fixture
def backend(sqlite_template: Path) -> Backend:
    """This module's app is on SQLite even where PostgreSQL is up (overrides conftest's)."""
    return Backend("sqlite", "", sqlite_template)


def test_the_story_and_every_list_on_sqlite(app, api, web, world):
    assert app.config["DATABASE_URL"].startswith("sqlite")
    first, second = api.ready(), api.ready(who="s_ngo", org="org3", name="جمعیت زنان کارآفرین سیرجان", county="Sirjan")
    api.advance(first, ("submit", "ngo"))
    api.advance(second, ("submit", "s_ngo"))

    # The intake's queue lists both, by the API (two pages of one) and on the page.
    r = api.get("/api/v1/queue?limit=1", "intake")
    assert r.status_code == 200, r.get_json()
    page = r.get_json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    rest = api.get(f"/api/v1/queue?limit=1&cursor={page['next_cursor']}", "intake").get_json()
    assert {page["items"][0]["id"], rest["items"][0]["id"]} == {first, second}
    web.login("intake")
    status, html = web.page("/queue")
    assert status == 200 and f"/cases/{first}" in html
    for tab in ("submitted", "under_review"):
        assert web.page(f"/queue?state={tab}")[0] == 200

    api.advance(first, *TO_AWAITING[1:], ("approve", "director"))
    number = api.get(f"/api/v1/applications/{first}", "ngo").get_json()["permit_number"]
    assert number and api.get(f"/api/v1/permits/{number}").status_code == 200
    for who in ("expert", "director", "finance"):
        assert api.get("/api/v1/queue", who).status_code == 200, who

    client = web.client
    client.post("/logout", data={"csrf_token": web.csrf(web.page("/queue")[1])})
    web.login("auditor")
    for url in ("/audit", "/audit?state=approved", "/audit/decisions", "/audit/decisions?action=approve",
                "/audit/decisions?kind=permit_issuance", "/audit/decisions?state=approved&state_of=case",
                f"/audit/cases/{first}", "/notifications", "/statistics"):
        status, html = web.page(url)
        assert status == 200, (url, status)
    status, html = web.page("/audit/decisions?kind=permit_issuance")
    assert re.search(r'data-case="%d"' % first, html)

    # The statistics job on SQLite, and the page reading what it kept.
    result = app.test_cli_runner().invoke(args=["jobs", "statistics"])
    assert result.exit_code == 0, result.output
    status, html = web.page("/statistics")
    assert status == 200 and 'class="muted as-of"' in html

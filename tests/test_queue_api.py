"""GET /api/v1/queue reads its page with Core (queues.api_page) instead of the ORM's loaders: the
answer must be the one the ORM path gave, item for item, for every kind of user and case.

The world: permit applications in each staff state (one returned for correction, one with its
statute replaced, so superseded documents are there; one given a permit row, so permit_number is
set); grant requests before finance, before the director and approved, with tranches pending,
released, reported and accepted. Each user walks the queue at several page sizes; every page is
compared with the old path (queues.page, prime_grants, remember_recommendations, case_json) and
every item with case_json of the case as engine.get_case loads it alone.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask

from tests.support import Api
from tests.test_grants import TO_FINANCE, create_programme, issue_permit, open_request, report
from workflow import db, engine
from workflow.models import Case, Grant, Membership, Permit, utcnow
from workflow.services import accounts, queues
from workflow.views.serialize import case_json

WHO = ("ngo", "ngo_b", "s_ngo", "stranger", "intake", "sirjan_intake", "member_intake", "q_intake", "expert",
       "expert2", "director", "expert_director", "finance", "auditor", "admin", "q_director")
LINES = [{"item": "حق‌التدریس", "budgeted_rials": 300_000_000, "spent_rials": 250_000_000}]


def _grant_to_approval(api: Api, programme_id: int, tranches: list[int]) -> int:
    cid = open_request(api, programme_id, requested_rials=sum(tranches),
                       budget_lines=[{"item": "همه", "rials": sum(tranches)}])["id"]
    api.advance(cid, *TO_FINANCE)
    assert api.act(cid, "recommend_approval", "expert", "خوب", score=70).status_code == 200
    r = api.act(cid, "propose_amount", "finance", amount_rials=sum(tranches), tranches=tranches)
    assert r.status_code == 200, r.get_json()
    return cid


ORG_NAMES = {"org4": "انجمن دوستداران کتاب کرمان", "org5": "کانون هنرمندان جوان کرمان",
             "org6": "جمعیت یاوران سالمندان کرمان", "org7": "انجمن حامیان محیط زیست کرمان",
             "org8": "خانه فرهنگ کودکان کرمان", "org9": "انجمن نیکوکاران محله کرمان"}


def _more_organisations(app: Flask, world: Any) -> None:
    """Kerman organisations whose members are ngo and ngo_b: one open application each."""
    with app.test_request_context():
        with db.new_session() as s:
            kerman = accounts.find_province(s, "kerman")
            for key, name in ORG_NAMES.items():
                org = accounts.create_organization(s, name=name, province=kerman,
                                                   county=accounts.find_county(s, kerman, "Kerman"))
                s.flush()
                world.orgs[key] = org.id
                for who in ("ngo", "ngo_b"):
                    s.add(Membership(user_id=world.users[who], organization_id=org.id))
            s.commit()


@pytest.fixture
def queued(api: Api, app: Flask, world: Any, session: Any) -> dict[str, int]:
    """Cases in every list the users above work (and org1's permit, decided, in none)."""
    _more_organisations(app, world)

    def ready(org: str) -> int:
        return api.ready("ngo", org, name=ORG_NAMES[org])

    cases: dict[str, int] = {}
    cases["submitted"] = ready("org9")
    api.advance(cases["submitted"], ("submit", "ngo"))
    cases["sirjan"] = api.ready("s_ngo", "org3", name="جمعیت زنان کارآفرین سیرجان", county="Sirjan")
    api.advance(cases["sirjan"], ("submit", "s_ngo"))
    cases["qazvin"] = api.ready("q_ngo", "org2", name="مجمع خیرین اشتغال قزوین", county="Qazvin")
    api.advance(cases["qazvin"], ("submit", "q_ngo"))
    cases["review"] = ready("org4")
    api.advance(cases["review"], ("submit", "ngo"), ("accept", "intake"))
    cases["deciding"] = ready("org5")
    api.advance(cases["deciding"], ("submit", "ngo"), ("accept", "intake"), ("recommend_approval", "expert"))
    cases["deciding_ed"] = ready("org6")  # recommended by the expert who is also a director
    api.advance(cases["deciding_ed"], ("submit", "ngo"), ("accept", "intake"),
                ("recommend_approval", "expert_director"))
    # Returned for correction, its statute replaced: one superseded document, one current.
    cases["corrected"] = ready("org7")
    api.advance(cases["corrected"], ("submit", "ngo"), ("return_for_correction", "intake"))
    assert api.upload(cases["corrected"], name="statute-2.pdf").status_code == 201
    cases["replaced"] = ready("org8")
    assert api.upload(cases["replaced"], name="statute-2.pdf").status_code == 201
    api.advance(cases["replaced"], ("submit", "ngo"))
    issue_permit(api)  # org1's permit (an approved application, in no queue), for its grant requests

    names = iter(["حمایت از کودکان کار", "سوادآموزی زنان", "ورزش نوجوانان", "کتابخانه‌های روستایی",
                  "آب سالم روستاها", "درمان اعتیاد", "مهارت‌آموزی جوانان", "سلامت سالمندان", "هنر کودکان"])

    def programme() -> int:  # an organisation asks each programme once
        return create_programme(api, name=next(names))["id"]

    cases["grant_new"] = open_request(api, programme())["id"]
    api.advance(cases["grant_new"], ("submit", "ngo"))
    cases["grant_finance"] = open_request(api, programme(), requested_rials=100_000_000,
                                          budget_lines=[{"item": "همه", "rials": 100_000_000}])["id"]
    api.advance(cases["grant_finance"], *TO_FINANCE)
    assert api.act(cases["grant_finance"], "recommend_approval", "expert", "خوب", score=60).status_code == 200
    cases["grant_deciding"] = _grant_to_approval(api, programme(), [100_000_000])
    # Approved: tranches pending (release), released (a report due), reported (finance reviews).
    cases["grant_pending"] = _grant_to_approval(api, programme(), [100_000_000, 50_000_000])
    cases["grant_released"] = _grant_to_approval(api, programme(), [100_000_000, 50_000_000])
    cases["grant_reported"] = _grant_to_approval(api, programme(), [300_000_000, 50_000_000])
    cases["grant_accepted"] = _grant_to_approval(api, programme(), [300_000_000])
    for key in ("grant_pending", "grant_released", "grant_reported", "grant_accepted"):
        api.advance(cases[key], ("approve", "director"))
    for key in ("grant_released", "grant_reported", "grant_accepted"):
        assert api.post(f"/api/v1/grants/{cases[key]}/tranches/1/release", "finance").status_code == 200
    cases["draft"] = open_request(api, programme(), requested_rials=100_000_000,
                                  budget_lines=[{"item": "همه", "rials": 100_000_000}])["id"]
    for key in ("grant_reported", "grant_accepted"):
        assert report(api, cases[key], 1, LINES).status_code == 200
    assert api.post(f"/api/v1/grants/{cases['grant_accepted']}/tranches/1/report/accept",
                    "finance").status_code == 200

    # A permit row on a case still in the queues: the page must name its number.
    org = session.get(Case, cases["review"])
    session.add(Permit(number="PERMIT-TEST-1", case_id=org.id, organization_id=org.organization_id,
                       province_id=org.province_id, county_id=org.county_id, state="active", issued_at=utcnow(),
                       valid_until=utcnow() + timedelta(days=365), version=1))
    session.commit()
    return cases


def _old_page(session: Any, user: Any, **kw: Any) -> tuple[list[dict[str, Any]], str | None]:
    """The queue page as GET /api/v1/queue made it before api_page (the ORM's loaders)."""
    items, cursor = queues.page(session, user, **kw)
    held = queues.prime_grants(session, items)  # noqa: F841
    engine.remember_recommendations(session, items, user)
    return [case_json(session, c, user) for c in items], cursor


def _alone(session: Any, user: Any, case_id: int) -> dict[str, Any]:
    """case_json of one case as GET /api/v1/applications/<id> makes it."""
    return case_json(session, engine.get_case(session, user, case_id), user)


def test_api_queue_pages_are_the_orm_pages(app: Flask, api: Api, world: Any, queued: dict[str, int]) -> None:
    dump = app.json.dumps  # the API's JSON, so dates and numbers compare as the client sees them
    import json

    seen: set[int] = set()
    shapes: set[tuple[str, bool, bool, bool]] = set()
    for who in WHO:
        for kind in (None, "permit_issuance", "grant_request"):
            for limit in (1, 3, 50):
                url = f"/api/v1/queue?limit={limit}" + (f"&kind={kind}" if kind else "")
                cursor: str | None = None
                walked: list[dict[str, Any]] = []
                while True:
                    r = api.get(url + (f"&cursor={cursor}" if cursor else ""), who)
                    assert r.status_code == 200, (who, r.get_json())
                    got = r.get_json()
                    with app.test_request_context():
                        session = db.new_session()
                        user = accounts.load_user(session, world.users[who])
                        old_items, old_cursor = _old_page(session, user, kind=kind, limit=limit, cursor=cursor)
                        session.close()
                    assert got == json.loads(dump({"items": old_items, "next_cursor": old_cursor})), (who, url)
                    walked += got["items"]
                    cursor = got["next_cursor"]
                    if cursor is None:
                        break
                with app.test_request_context():
                    session = db.new_session()
                    user = accounts.load_user(session, world.users[who])
                    for item in walked:
                        assert item == json.loads(dump(_alone(session, user, item["id"]))), (who, item["id"])
                    session.close()
                ids = [item["id"] for item in walked]
                assert len(ids) == len(set(ids))
                for item in walked:
                    seen.add(item["id"])
                    shapes.add((item["kind"], bool(item["actions"]),
                                bool(item["documents"]), item["permit_number"] is not None))
    # The world reached what the comparison is for.
    assert set(queued.values()) <= seen
    assert {("permit_issuance", True, True), ("grant_request", True, True),  # receipts
            ("grant_request", True, False)} <= {shape[:3] for shape in shapes}
    assert any(shape[3] for shape in shapes)  # a permit number


def test_api_queue_world_has_what_it_claims(api: Api, queued: dict[str, int]) -> None:
    """The cases the comparison above walks are the varied ones it says (superseded documents,
    tranches in several states, a page whose actions depend on them)."""
    corrected = api.get(f"/api/v1/applications/{queued['corrected']}", "ngo").get_json()
    assert [d["name"] for d in corrected["documents"]] == ["statute-2.pdf"]
    finance = {c["id"]: c for c in api.get("/api/v1/queue?limit=200", "finance").get_json()["items"]}
    assert finance[queued["grant_pending"]]["actions"] == ["release_tranche"]
    assert set(finance[queued["grant_reported"]]["actions"]) == {"accept_report", "return_report"}
    assert finance[queued["grant_accepted"]]["actions"] == ["close"]  # its one tranche accepted
    assert finance[queued["grant_released"]]["actions"] == []  # listed (approved), nothing until the report
    assert finance[queued["grant_finance"]]["actions"] == ["propose_amount"]
    assert finance[queued["grant_finance"]]["grant"]["score"] == 60
    ngo = {c["id"]: c for c in api.get("/api/v1/queue?limit=200", "ngo").get_json()["items"]}
    assert ngo[queued["grant_released"]]["actions"] == ["submit_report"]
    assert queued["corrected"] in ngo
    director = {c["id"] for c in api.get("/api/v1/queue?limit=200", "expert_director").get_json()["items"]}
    assert queued["deciding"] in director and queued["deciding_ed"] not in director
    review = api.get(f"/api/v1/applications/{queued['review']}", "expert").get_json()
    assert review["permit_number"] == "PERMIT-TEST-1"


def test_api_page_falls_back_when_the_session_holds_the_objects(app: Flask, world: Any,
                                                               queued: dict[str, int]) -> None:
    """A session that already holds a case, grant or tranche of the page (changed, say) gets the
    ORM's answer, which keeps its objects as they are."""
    with app.test_request_context():
        session = db.new_session()
        user = accounts.load_user(session, world.users["finance"])
        grant = session.get(Grant, queued["grant_reported"])
        assert grant is not None and grant.tranches
        case = session.get(Case, queued["grant_finance"])
        case.data = {**case.data, "title": "changed, not flushed"}
        items, cursor, held = queues.api_page(session, user, limit=50)
        assert case in items and grant in held
        assert case.data["title"] == "changed, not flushed"  # autoflushed, not overwritten
        fresh = db.new_session()
        expected, expected_cursor = _old_page(fresh, accounts.load_user(fresh, world.users["finance"]), limit=50)
        fresh.close()
        assert [c.id for c in items] == [e["id"] for e in expected] and cursor == expected_cursor
        session.rollback()
        session.close()


def test_api_page_grants_are_records_of_their_rows(app: Flask, world: Any, queued: dict[str, int]) -> None:
    """The page's cases are values (QueuedCase: columns, documents, permit number), a grant case's
    with its grant's record and its tranches' records: what the tranche rules and grant_json read
    (grant_request.grant_of), equal to what the ORM loads. Nothing is added to the session."""
    from workflow import rows
    from workflow.models import Tranche
    from workflow.states import grant_request

    with app.test_request_context():
        session = db.new_session()
        user = accounts.load_user(session, world.users["expert"])
        items, _cursor, held = queues.api_page(session, user, limit=50)
        assert items and all(isinstance(case, queues.QueuedCase) for case in items)
        assert not any(isinstance(obj, Case) for obj in session.identity_map.values())
        review = next(c for c in items if c.id == queued["review"])
        assert review.permit is not None and review.permit.number == "PERMIT-TEST-1"
        assert all(c.permit is None for c in items if c.id != queued["review"])
        user = accounts.load_user(session, world.users["finance"])
        items, _cursor, held = queues.api_page(session, user, limit=50)
        assert held == []
        assert not any(isinstance(obj, (Case, Grant, Tranche)) for obj in session.identity_map.values())
        granted = [c for c in items if c.kind == "grant_request"]
        assert granted and all(c.grant is not None for c in granted)
        with db.new_session() as other:
            for case in granted:
                loaded = other.get(Grant, case.id)
                assert tuple(case.grant[:-1]) == tuple(getattr(loaded, a) for a in rows.attributes(Grant))
                assert [tuple(t) for t in case.grant.tranches] == [
                    tuple(getattr(t, a) for a in rows.attributes(Tranche)) for t in loaded.tranches]
        reported = next(c for c in items if c.id == queued["grant_reported"])
        assert grant_request.grant_of(session, reported) is reported.grant
        assert [t.state for t in reported.grant.tranches] == ["reported", "pending"]
        session.close()


def test_warm_up_compiles_what_the_queue_pages_execute(app: Flask, api: Api, world: Any,
                                                       queued: dict[str, int]) -> None:
    """After warm_up (wsgi.py, in each web worker), the first queue page of staff of each role,
    in a province and a county office, compiles no statement of the queue on its first request:
    every shape it executes was compiled beforehand. (Other tabs, later pages and the API's
    pages compile on their first request: warming them all cost 13 MB per worker; see
    queues.warm_statements.)"""
    import re

    from tests.support import Web
    from workflow import warm_up

    engine_ = app.extensions["db_engine"]
    engine_.clear_compiled_cache()
    warm_up(app)
    assert len(engine_._compiled_cache) >= 20
    assert any("queue.html" in str(key) for key in app.jinja_env.cache.keys())
    compiled_before = set(engine_._compiled_cache.keys())
    for who in ("intake", "sirjan_intake", "expert", "director", "finance"):
        web = Web(app.test_client(), world)
        web.login(who)
        assert web.client.get("/queue").status_code == 200
    new = [str(engine_._compiled_cache[k]) for k in set(engine_._compiled_cache.keys()) - compiled_before]
    missed = [sql for sql in new if re.search(r"\b(cases|documents|tranches)\b", sql)]
    assert not missed, "\n\n".join(missed)


def test_statements_are_kept_per_shape_not_per_user_or_address(app: Flask, world: Any,
                                                               queued: dict[str, int]) -> None:
    """Two users of one shape share a kept statement and each gets their own cases; a tab name
    from the address that no list has is answered with nothing and not kept."""
    with app.test_request_context():
        session = db.new_session()
        kerman = accounts.load_user(session, world.users["intake"])
        qazvin = accounts.load_user(session, world.users["q_intake"])
        assert queues.shape(kerman) == queues.shape(qazvin)
        first, _ = queues._bound("rows", kerman, limit=25)
        second, params = queues._bound("rows", qazvin, limit=25)
        assert first is second and params["province_id"] == qazvin.province_id
        kerman_ids = {row.id for row in queues.page_rows(session, kerman)[0]}
        qazvin_ids = {row.id for row in queues.page_rows(session, qazvin)[0]}
        assert queued["submitted"] in kerman_ids and queued["qazvin"] in qazvin_ids
        assert not kerman_ids & qazvin_ids
        kept = queues._statement.cache_info().currsize
        for n in range(20):
            assert queues.page_rows(session, kerman, state=f"no-such-state-{n}") == ([], None)
        assert queues._statement.cache_info().currsize == kept
        session.close()

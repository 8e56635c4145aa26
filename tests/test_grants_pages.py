"""The grant pages: programmes, the request form, the case page's money and tranches panel, and
the toman/rial switch, through forms with CSRF as a browser sends them.

The arrangement (a permit, a programme, a request moved along) goes through the API helpers of
test_grants.py; what is tested here is what the pages show and what their forms do.
"""
from __future__ import annotations

import re
from datetime import date
from io import BytesIO
from typing import Any

import pytest
from sqlalchemy import select

from tests.support import PDF, Web, hidden_fields
from tests.test_grants import PNG, TO_FINANCE, create_programme, funded, open_request, report, to_decision  # noqa: F401
from workflow.models import Case, Grant, Programme, Tranche, User

FORM_ACTIONS = re.compile(r'<form[^>]*action="([^"]+)"')
A2P = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")


def fa(text: str) -> str:
    return text.translate(A2P)


def form_block(html: str, action: str) -> str:
    """The <form> whose action is `action` (a path), or fail with the forms the page has."""
    m = re.search(rf'<form[^>]*action="{re.escape(action)}[^"]*".*?</form>', html, re.S)
    assert m, f"no form for {action}: {FORM_ACTIONS.findall(html)}"
    return m.group(0)


def post_form(web: Web, page_url: str, action: str, **data: Any) -> Any:
    """Send the form found on `page_url` with its hidden fields (CSRF, version) plus `data`."""
    html = web.client.get(page_url).get_data(as_text=True)
    fields = hidden_fields(form_block(html, action))
    return web.client.post(action, data={**fields, **data})


def approved_grant(api: Any, funded: dict[str, Any]) -> int:  # noqa: F811
    """A grant of 90,000,000 tomans (900,000,000 rials) approved in two tranches."""
    cid = open_request(api, funded["programme"]["id"])["id"]
    to_decision(api, cid)
    assert api.act(cid, "approve", "director").status_code == 200
    return cid


def state(session: Any, cid: int) -> tuple[str, list[str]]:
    session.expire_all()
    case = session.get(Case, cid)
    items = session.scalars(select(Tranche).where(Tranche.case_id == cid).order_by(Tranche.n)).all()
    return case.state, [t.state for t in items]


# -- programmes --------------------------------------------------------------------------------

def test_programme_pages_show_figures_in_persian_and_only_where_seen(api: Any, web: Web, funded: dict[str, Any]) -> None:  # noqa: F811
    pid = funded["programme"]["id"]
    web.login("ngo")
    status, html = web.page("/programmes/")
    assert status == 200
    assert f'href="/programmes/{pid}"' in html
    # 20,000,000,000 rials are 2,000,000,000 tomans, with Persian digits and the Arabic separator
    assert "۲٬۰۰۰٬۰۰۰٬۰۰۰ تومان" in html
    assert 'href="/programmes/"' in html  # the header's link
    status, html = web.page(f"/programmes/{pid}")
    assert status == 200
    assert "حمایت از کودکان کار ۱۴۰۵" in html
    assert re.search(r'class="money max-award">۱۰۰٬۰۰۰٬۰۰۰ تومان<', html)
    assert re.search(r'<tr class="remaining">.*?۲٬۰۰۰٬۰۰۰٬۰۰۰ تومان', html, re.S)
    assert re.search(r"[۰-۹]{1,2} (فروردین|اردیبهشت|خرداد|تیر|مرداد|شهریور|مهر|آبان|آذر|دی|بهمن|اسفند) [۰-۹]{4}", html)
    assert "کودکان" in html  # a funded field by its Persian name
    assert f'action="/programmes/{pid}/request"' in html  # the NGO may ask
    web.client.get("/lang/en")
    html = web.page(f"/programmes/{pid}")[1]
    assert "2,000,000,000 tomans" in html and "۲" not in re.sub(r"<bdi>.*?</bdi>", "", html)

    other = Web(web.client.application.test_client(), web.world)
    other.login("q_ngo")  # a Qazvin NGO: not its province
    assert other.page("/programmes/")[1].count(f'href="/programmes/{pid}"') == 0
    assert other.page(f"/programmes/{pid}")[0] == 404
    staff = Web(web.client.application.test_client(), web.world)
    staff.login("q_intake")
    assert staff.page(f"/programmes/{pid}")[0] == 404
    staff = Web(web.client.application.test_client(), web.world)
    staff.login("expert")
    status, html = staff.page(f"/programmes/{pid}")
    assert status == 200 and "/request" not in html  # staff see it but do not ask
    assert staff.page("/programmes/99999")[0] == 404


def _programme_form(web: Web, **overrides: str) -> dict[str, Any]:
    html = web.page("/programmes/new")[1]
    kerman = re.search(r'<option value="(\d+)"[^>]*>کرمان</option>', html)
    assert kerman, html
    data: dict[str, Any] = {
        "csrf_token": web.csrf(html), "name": "توانمندسازی زنان سرپرست خانوار", "province": kerman.group(1),
        "fiscal_year": "۱۴۰۵", "budget": "۲٬۰۰۰٬۰۰۰", "max_award": "۵۰۰،۰۰۰",
        "opens_on": "۱۴۰۵/۰۱/۰۱", "closes_on": "۱۴۰۵-۰۶-۳۱", "fields": ["women", "children"],
    }
    data.update(overrides)
    return data


def test_finance_creates_a_programme_with_jalali_dates_and_persian_amounts(web: Web, session: Any) -> None:
    web.login("finance")
    status, html = web.page("/programmes/")
    assert 'href="/programmes/new"' in html
    status, html = web.page("/programmes/new")
    assert status == 200 and "(تومان)" in html
    assert "قزوین" not in html  # Kerman's finance creates programmes in Kerman only
    assert 'value="۱۴' in html  # this Jalali year, prefilled in Persian digits

    # Bad input: a 13th month, an amount that is not one, no fields. Each said by its field.
    r = web.client.post("/programmes/new", data=_programme_form(web, closes_on="۱۴۰۵/۱۳/۰۱", budget="دو میلیون",
                                                                fields=[]))
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert "تاریخ" in html and "تومان" in html and html.count('class="error"') >= 3
    assert session.scalar(select(Programme.id)) is None

    r = web.client.post("/programmes/new", data=_programme_form(web))
    assert r.status_code == 302, r.get_data(as_text=True)
    p = session.scalar(select(Programme))
    assert (p.budget_rials, p.max_award_rials) == (20_000_000, 5_000_000)  # tomans → rials
    assert (p.opens_on, p.closes_on) == (date(2026, 3, 21), date(2026, 9, 22))
    assert p.fiscal_year == 1405 and sorted(p.fields) == ["children", "women"]
    html = web.client.get(r.location).get_data(as_text=True)
    assert "۱ فروردین ۱۴۰۵" in html and "۳۱ شهریور ۱۴۰۵" in html and "۲٬۰۰۰٬۰۰۰ تومان" in html
    # The same name again that year: the service's message, by the name.
    r = web.client.post("/programmes/new", data=_programme_form(web))
    assert r.status_code == 422 and "این نام" in r.get_data(as_text=True)


def test_only_finance_and_admins_open_the_new_programme_page(web: Web) -> None:
    for who in ("ngo", "expert", "director", "auditor"):
        w = Web(web.client.application.test_client(), web.world)
        w.login(who)
        assert w.page("/programmes/new")[0] == 403, who
        page = w.page("/programmes/")[1]
        assert w.client.post("/programmes/new", data={"csrf_token": w.csrf(page), "name": "x"}).status_code == 403
        assert 'href="/programmes/new"' not in page
    admin = Web(web.client.application.test_client(), web.world)
    admin.login("admin")
    status, html = admin.page("/programmes/new")
    assert status == 200 and "قزوین" in html  # administrators create anywhere


# -- the grant request -------------------------------------------------------------------------

def _request_draft(web: Web, pid: int) -> tuple[int, str]:
    r = post_form(web, f"/programmes/{pid}", f"/programmes/{pid}/request")
    assert r.status_code == 302, r.get_data(as_text=True)
    m = re.search(r"/portal/applications/(\d+)/edit$", r.location)
    assert m, r.location
    return int(m.group(1)), web.client.get(r.location).get_data(as_text=True)


def _grant_form(html: str, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        **hidden_fields(re.search(r'<form[^>]*class="card application grant-request".*?</form>', html, re.S).group(0)),
        "title": "كلاس‌هاي سوادآموزي كودكان كار", "summary": "آموزش خواندن و نوشتن به ۴۰ کودک کار.",
        "requested": "۹۰٬۰۰۰٬۰۰۰",
        "budget_lines-0-item": "حق‌التدریس", "budget_lines-0-amount": "۶۰٬۰۰۰٬۰۰۰",
        "budget_lines-1-item": "لوازم‌التحریر", "budget_lines-1-amount": "30,000,000",
        "budget_lines-2-item": "", "budget_lines-2-amount": "",
    }
    data.update(overrides)
    return data


def test_ngo_requests_a_grant_through_the_form(web: Web, funded: dict[str, Any], session: Any) -> None:  # noqa: F811
    pid = funded["programme"]["id"]
    web.login("ngo")
    cid, html = _request_draft(web, pid)
    assert "(تومان)" in html and "حمایت از کودکان کار ۱۴۰۵" in html
    url = f"/portal/applications/{cid}/edit"

    # An amount that is not one, and a line whose amount is missing: said by those fields.
    r = web.client.post(url, data=_grant_form(html, save="1", **{"budget_lines-1-amount": "سی میلیون",
                                                                  "budget_lines-2-item": "کرایه"}))
    assert r.status_code == 422
    page = r.get_data(as_text=True)
    assert page.count('aria-invalid="true"') == 2 and "تومان" in page
    session.expire_all()
    assert "title" not in session.get(Case, cid).data  # nothing stored

    # Lines that do not add up: the draft saves, submitting says why.
    html = web.client.get(url).get_data(as_text=True)
    r = web.client.post(url, data=_grant_form(html, submit="1", **{"budget_lines-1-amount": "۲۰٬۰۰۰٬۰۰۰"}))
    assert r.status_code == 422
    assert "۹۰۰,۰۰۰,۰۰۰" in r.get_data(as_text=True)  # the service's sum, in Persian digits
    session.expire_all()
    assert session.get(Case, cid).state == "draft"

    html = web.client.get(url).get_data(as_text=True)
    assert 'value="۶۰٬۰۰۰٬۰۰۰"' in html  # read back in tomans
    r = web.client.post(url, data=_grant_form(html, submit="1"))
    assert r.status_code == 302 and r.location.endswith(f"/cases/{cid}")
    session.expire_all()
    case = session.get(Case, cid)
    assert case.state == "submitted"
    assert case.data["requested_rials"] == 900_000_000
    assert case.data["title"] == "کلاس‌های سوادآموزی کودکان کار"
    assert [line["rials"] for line in case.data["budget_lines"]] == [600_000_000, 300_000_000]
    html = web.page(f"/cases/{cid}")[1]
    assert "۹۰٬۰۰۰٬۰۰۰ تومان" in html and "۳۰٬۰۰۰٬۰۰۰ تومان" in html
    dash = web.page("/portal/")[1]
    assert "درخواست اعتبار" in dash and "کلاس‌های سوادآموزی کودکان کار" in dash
    # A second request to the same programme: the programme page links the open one instead.
    html = web.page(f"/programmes/{pid}")[1]
    assert f'href="/cases/{cid}"' in html and f'action="/programmes/{pid}/request"' not in html


def test_submit_lists_every_eligibility_reason(api: Any, web: Web, session: Any) -> None:
    # org3 has no permit; the programme funds only the elderly (and is open).
    p = create_programme(api, fields=["elderly"])
    web.login("s_ngo")
    cid, html = _request_draft(web, p["id"])
    r = web.client.post(f"/portal/applications/{cid}/edit", data=_grant_form(html, submit="1"))
    assert r.status_code == 422
    page = r.get_data(as_text=True)
    box = re.search(r'<div class="flash error eligibility".*?</div>', page, re.S)
    assert box and "پروانه" in box.group(0)
    session.expire_all()
    assert session.get(Case, cid).state == "draft" and session.get(Case, cid).data["requested_rials"] == 900_000_000


def test_request_grant_needs_csrf_and_membership(web: Web, api: Any, funded: dict[str, Any], session: Any) -> None:  # noqa: F811
    pid = funded["programme"]["id"]
    web.login("ngo")
    html = web.page(f"/programmes/{pid}")[1]
    org = hidden_fields(form_block(html, f"/programmes/{pid}/request"))["organization_id"]
    assert web.client.post(f"/programmes/{pid}/request", data={"organization_id": org}).status_code == 400
    r = web.client.post(f"/programmes/{pid}/request",
                        data={"organization_id": str(api.world.orgs["org2"]), "csrf_token": web.csrf(html)})
    assert r.status_code == 302 and r.location.endswith(f"/programmes/{pid}")  # refused with a message
    assert session.scalar(select(Grant.case_id)) is None


# -- the case page: review figures and tranches ------------------------------------------------

def test_review_actions_carry_score_and_amounts_in_the_users_unit(api: Any, web: Web, funded: dict[str, Any],  # noqa: F811
                                                                  session: Any) -> None:
    cid = open_request(api, funded["programme"]["id"])["id"]
    api.advance(cid, *TO_FINANCE)
    web.login("expert")
    html = web.page(f"/cases/{cid}")[1]
    assert 'name="recommend_approval-score"' in html
    r = post_form(web, f"/cases/{cid}", f"/cases/{cid}/transition/recommend_approval",
                  **{"recommend_approval-score": "۱۲۰", "recommend_approval-comment": "خوب"})
    assert r.status_code == 302 and state(session, cid)[0] == "under_review"
    assert "۰ تا ۱۰۰" in web.client.get(r.location).get_data(as_text=True)  # the flash
    post_form(web, f"/cases/{cid}", f"/cases/{cid}/transition/recommend_approval",
              **{"recommend_approval-score": "۸۲", "recommend_approval-comment": "برنامه خوبی است"})
    assert state(session, cid)[0] == "finance_review"

    fin = Web(web.client.application.test_client(), web.world)
    fin.login("finance")
    html = fin.page(f"/cases/{cid}")[1]
    assert 'name="propose_amount-tranches-3"' in html and "(تومان" in html
    assert re.search(r'class="score num">۸۲<', html)
    # tranches that do not add up: refused, with the service's reason
    r = post_form(fin, f"/cases/{cid}", f"/cases/{cid}/transition/propose_amount",
                  **{"propose_amount-amount": "۹۰٬۰۰۰٬۰۰۰", "propose_amount-tranches-0": "۵۰٬۰۰۰٬۰۰۰",
                     "propose_amount-tranches-1": "۳۰٬۰۰۰٬۰۰۰"})
    assert r.status_code == 302 and state(session, cid)[0] == "finance_review"
    assert "flash error" in fin.client.get(r.location).get_data(as_text=True)
    r = post_form(fin, f"/cases/{cid}", f"/cases/{cid}/transition/propose_amount",
                  **{"propose_amount-amount": "نود", "propose_amount-tranches-0": "۹۰٬۰۰۰٬۰۰۰"})
    assert state(session, cid)[0] == "finance_review"
    r = post_form(fin, f"/cases/{cid}", f"/cases/{cid}/transition/propose_amount",
                  **{"propose_amount-amount": "۹۰٬۰۰۰٬۰۰۰", "propose_amount-tranches-0": "۵۰٬۰۰۰٬۰۰۰",
                     "propose_amount-tranches-1": "40,000,000"})
    assert state(session, cid)[0] == "awaiting_decision"
    grant = session.get(Grant, cid)
    assert (grant.proposed_rials, grant.proposed_tranches) == (900_000_000, [500_000_000, 400_000_000])
    html = fin.page(f"/cases/{cid}")[1]
    assert re.search(r'class="money proposed">۹۰٬۰۰۰٬۰۰۰ تومان', html)


def test_tranche_panel_gives_each_role_its_forms(api: Any, web: Web, funded: dict[str, Any], session: Any) -> None:  # noqa: F811
    cid = approved_grant(api, funded)
    url = f"/cases/{cid}"
    fin = Web(web.client.application.test_client(), web.world)
    fin.login("finance")
    html = fin.page(url)[1]
    assert 'id="tranche-1"' in html and 'id="tranche-2"' in html and "۵۰٬۰۰۰٬۰۰۰ تومان" in html
    assert f'action="{url}/tranches/1/release"' in html and f'action="{url}/tranches/2/release"' not in html
    for action in ("release_tranche", "submit_report", "accept_report", "return_report", "close"):
        assert f"/transition/{action}" not in html, action  # never among the generic buttons
    web.login("ngo")
    html = web.page(url)[1]
    assert "/tranches/" not in html  # nothing to do yet

    # CSRF missing: refused, nothing released
    assert fin.client.post(f"{url}/tranches/1/release", data={"release1-version": "99"}).status_code == 400
    assert state(session, cid)[1] == ["pending", "pending"]
    r = post_form(fin, url, f"{url}/tranches/1/release")
    assert r.status_code == 302 and state(session, cid)[1] == ["released", "pending"]
    html = fin.page(url)[1]
    assert "/tranches/2/release" not in html and "/tranches/1/report" not in html

    html = web.page(url)[1]
    block = form_block(html, f"{url}/tranches/1/report")
    assert 'type="file"' in block and 'name="report-lines-0-spent"' in block
    assert re.search(r'class="report-due">[۰-۹]', html)
    fields = hidden_fields(block)
    # no receipt: refused by the field, what was typed comes back
    data = {**fields, "report-lines-0-item": "حق‌التدریس", "report-lines-0-budgeted": "۳۰٬۰۰۰٬۰۰۰",
            "report-lines-0-spent": "۳۰٬۰۰۰٬۰۰۰", "report-lines-1-item": "لوازم‌التحریر",
            "report-lines-1-budgeted": "۲۰٬۰۰۰٬۰۰۰", "report-lines-1-spent": "۱۵٬۰۰۰٬۰۰۰"}
    r = web.client.post(f"{url}/tranches/1/report", data=data, content_type="multipart/form-data")
    assert r.status_code == 422
    page = r.get_data(as_text=True)
    assert "رسید" in page and 'value="۱۵٬۰۰۰٬۰۰۰"' in page
    assert state(session, cid)[1] == ["released", "pending"]
    r = web.client.post(f"{url}/tranches/1/report", content_type="multipart/form-data",
                        data={**data, "report-receipts": [(BytesIO(PNG), "رسید.png"), (BytesIO(PDF), "فاکتور.pdf")]})
    assert r.status_code == 302, r.get_data(as_text=True)
    assert state(session, cid)[1] == ["reported", "pending"]
    t1 = session.scalar(select(Tranche).where(Tranche.case_id == cid, Tranche.n == 1))
    assert t1.spent_rials == 450_000_000

    html = fin.page(url)[1]
    assert f'action="{url}/tranches/1/accept"' in html and f'action="{url}/tranches/1/return"' in html
    assert "۴۵٬۰۰۰٬۰۰۰ تومان" in html  # the report's total
    receipts = re.findall(rf'href="({url}/receipts/\d+)"><bdi>([^<]+)</bdi>', html)
    assert [name for _href, name in receipts] == ["رسید.png", "فاکتور.pdf"]
    r = fin.client.get(receipts[0][0])
    assert r.status_code == 200 and r.mimetype == "image/png" and r.data == PNG
    stranger = Web(web.client.application.test_client(), web.world)
    stranger.login("q_intake")
    assert stranger.client.get(receipts[0][0]).status_code == 404
    assert fin.client.get(f"{url}/receipts/999999").status_code == 404

    # returning needs a comment
    r = post_form(fin, url, f"{url}/tranches/1/return")
    assert state(session, cid)[1] == ["reported", "pending"]
    post_form(fin, url, f"{url}/tranches/1/return", **{"return1-comment": "رسید لوازم ناخواناست"})
    assert state(session, cid)[1] == ["returned", "pending"]
    html = web.page(url)[1]
    assert "رسید لوازم ناخواناست" in html
    block = form_block(html, f"{url}/tranches/1/report")
    assert 'value="۱۵٬۰۰۰٬۰۰۰"' in block  # the returned report comes back filled
    fields = dict(re.findall(r'name="(report-[^"]+)"[^>]*value="([^"]*)"', block))
    r = web.client.post(f"{url}/tranches/1/report", data={**hidden_fields(block), **fields},
                        content_type="multipart/form-data")
    assert r.status_code == 302 and state(session, cid)[1] == ["reported", "pending"]  # receipts still count
    post_form(fin, url, f"{url}/tranches/1/accept")
    assert state(session, cid)[1] == ["accepted", "pending"]
    html = fin.page(url)[1]
    assert f'action="{url}/tranches/2/release"' in html
    assert re.search(r'class="money refunded">۵٬۰۰۰٬۰۰۰ تومان', html)
    assert fin.client.post(f"{url}/tranches/1/bogus", data={}).status_code in (400, 404)

    # The last report accepted: finance may close the grant, with the case's own button.
    assert api.post(f"/api/v1/grants/{cid}/tranches/2/release", "finance").status_code == 200
    lines = [{"item": "حق‌التدریس", "budgeted_rials": 400_000_000, "spent_rials": 400_000_000}]
    assert report(api, cid, 2, lines).status_code == 200
    assert "/transition/close" not in fin.page(url)[1]
    post_form(fin, url, f"{url}/tranches/2/accept")
    assert state(session, cid) == ("approved", ["accepted", "accepted"])
    r = post_form(fin, url, f"{url}/transition/close")
    assert r.status_code == 302 and state(session, cid)[0] == "closed"
    html = fin.page(url)[1]
    assert "/tranches/" not in html.replace(f"{url}/receipts/", "")  # nothing left to do


def test_junk_in_the_grant_forms_is_never_a_500(api: Any, web: Web, funded: dict[str, Any]) -> None:  # noqa: F811
    cid = approved_grant(api, funded)
    url = f"/cases/{cid}"
    fin = Web(web.client.application.test_client(), web.world)
    fin.login("finance")
    token = fin.csrf(fin.page(url)[1])
    for path in ("/programmes/99999999999999999999", "/cases/99999999999999999999",
                 f"{url}/tranches/99999999999999999999/release", f"{url}/receipts/99999999999999999999"):
        r = fin.client.get(path) if "release" not in path else fin.client.post(path, data={"csrf_token": token})
        assert r.status_code == 404, path
    junk = ["", "abc", "-1", "۱۲۳۴۵۶۷۸۹۰۱۲۳۴۵۶۷۸۹۰۱۲۳", "1.5", "9" * 40, "\u202e12"]
    for value in junk:
        for path, data in (
            (f"{url}/tranches/1/release", {"release1-version": value, "release1-comment": value}),
            (f"{url}/tranches/1/accept", {"accept1-version": value}),
            (f"{url}/tranches/7/return", {"return7-version": "1", "return7-comment": value}),
            (f"{url}/transition/propose_amount", {"propose_amount-version": value, "propose_amount-amount": value,
                                                  "propose_amount-tranches-0": value}),
            ("/programmes/new", {"name": value, "province": value, "fiscal_year": value, "budget": value,
                                 "max_award": value, "opens_on": value, "closes_on": value, "fields": value}),
        ):
            r = fin.client.post(path, data={"csrf_token": token, **{k: v for k, v in data.items()}})
            assert r.status_code < 500, (path, value, r.status_code)
    web.login("ngo")
    token = web.csrf(web.page(url)[1])
    api.post(f"/api/v1/grants/{cid}/tranches/1/release", "finance")
    for value in junk:
        r = web.client.post(f"{url}/tranches/1/report", content_type="multipart/form-data", data={
            "csrf_token": token, "report-version": value, "report-lines-0-item": value,
            "report-lines-0-budgeted": value, "report-lines-0-spent": value,
            "report-receipts": [(BytesIO(value.encode()), "x.png")]})
        assert r.status_code < 500, (value, r.status_code)
        r = web.client.post(f"/settings/money-unit?next={value}", data={"csrf_token": token, "unit": value})
        assert r.status_code < 500


def test_the_unit_switch_changes_how_amounts_show_and_are_read(web: Web, funded: dict[str, Any],  # noqa: F811
                                                              session: Any) -> None:
    pid = funded["programme"]["id"]
    web.login("ngo")
    html = web.page(f"/programmes/{pid}")[1]
    assert "۱۰۰٬۰۰۰٬۰۰۰ تومان" in html
    switch = form_block(html, "/settings/money-unit")
    assert 'name="unit" value="rial"' in switch
    # without CSRF: refused, unchanged
    assert web.client.post("/settings/money-unit", data={"unit": "rial"}).status_code == 400
    r = web.client.post(f"/settings/money-unit?next=/programmes/{pid}", data=hidden_fields(switch))
    assert r.status_code == 302 and r.location.endswith(f"/programmes/{pid}")
    html = web.page(f"/programmes/{pid}")[1]
    assert "۱٬۰۰۰٬۰۰۰٬۰۰۰ ریال" in html and not re.search(r"تومان</(td|dd)>", html)
    assert "نمایش به تومان" in html  # the switch now offers the other unit
    assert session.get(User, web.world.users["ngo"]).money_unit == "rial"
    # a typed amount is now read in rials
    cid, html = _request_draft(web, pid)
    assert "(ریال)" in html
    r = web.client.post(f"/portal/applications/{cid}/edit", data=_grant_form(
        html, save="1", requested="۹۰۰٬۰۰۰٬۰۰۰", **{"budget_lines-0-amount": "600,000,000",
                                                   "budget_lines-1-amount": "۳۰۰٬۰۰۰٬۰۰۰"}))
    assert r.status_code == 302
    session.expire_all()
    assert session.get(Case, cid).data["requested_rials"] == 900_000_000
    # an unknown unit changes nothing
    html = web.page(f"/programmes/{pid}")[1]
    web.client.post("/settings/money-unit", data={"unit": "dollar", "csrf_token": web.csrf(html)})
    session.expire_all()
    assert session.get(User, web.world.users["ngo"]).money_unit == "rial"


@pytest.mark.parametrize("url", ["/programmes/", "/programmes/1", "/programmes/new"])
def test_programme_pages_need_a_sign_in(client: Any, url: str) -> None:
    r = client.get(url)
    assert r.status_code == 302 and "/login" in r.location

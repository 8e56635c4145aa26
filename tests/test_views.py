"""The pages: the same story as the API, through forms with CSRF, in Persian and English."""
from __future__ import annotations

import io
import re

from sqlalchemy import select

from tests.support import PDF, TO_AWAITING
from workflow.models import Case


def _form_fields(html: str) -> dict[str, str]:
    return dict(re.findall(r'name="(founders-\d+-[a-z_]+|name|address|version|csrf_token)"[^>]*?value="([^"]*)"', html))


def test_login_errors_and_logout(web):
    page = web.client.get("/login").get_data(as_text=True)
    r = web.client.post("/login", data={"email": "ngo@test.ir", "password": "nope", "csrf_token": web.csrf(page)})
    assert r.status_code == 200 and "گذرواژه" in r.get_data(as_text=True)
    # no CSRF token: refused, not signed in
    r = web.client.post("/login", data={"email": "ngo@test.ir", "password": "secret-pass-1"})
    assert r.status_code == 400 and web.client.get("/portal/").status_code == 302
    assert web.login("ngo").status_code == 302
    status, html = web.page("/portal/")
    assert status == 200
    assert web.client.post("/logout").status_code == 400  # CSRF missing
    r = web.client.post("/logout", data={"csrf_token": web.csrf(html)})
    assert r.status_code == 302 and web.client.get("/portal/").status_code == 302


def test_open_redirect_refused(web):
    page = web.client.get("/login?next=https://evil.example/").get_data(as_text=True)
    r = web.client.post("/login?next=https://evil.example/",
                        data={"email": "ngo@test.ir", "password": "secret-pass-1", "csrf_token": web.csrf(page)})
    assert r.location == "/portal/"


def _new_draft(web) -> tuple[int, str]:
    status, html = web.page("/portal/")
    org_id = re.search(r'name="organization_id" value="(\d+)"', html).group(1)
    r = web.client.post("/portal/applications/new", data={"organization_id": org_id, "csrf_token": web.csrf(html)})
    assert r.status_code == 302, r.get_data(as_text=True)
    case_id = int(re.search(r"/applications/(\d+)/edit", r.location).group(1))
    return case_id, web.client.get(r.location).get_data(as_text=True)


def _form(html: str, **overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "csrf_token": re.search(r'id="csrf_token"[^>]*value="([^"]+)"', html).group(1),
        "version": re.search(r'id="version"[^>]*value="(\d+)"', html).group(1),
        "name": "انجمن حمايت از كودكان كار كرمان", "field": "children", "county": "کرمان",
        "address": "کرمان، خیابان شریعتی",
        "founders-0-full_name": "زهرا احمدی", "founders-0-national_id": "۰۴۹۹۳۷۰۸۹۹",
        "founders-1-full_name": "علی رضایی", "founders-1-national_id": "0790419904",
        "founders-2-full_name": "مریم حسینی", "founders-2-national_id": "0084575948",
    }
    data.update(overrides)
    return data


def test_application_form_draft_errors_and_submit(web, session):
    web.login("ngo")
    case_id, html = _new_draft(web)
    url = f"/portal/applications/{case_id}/edit"
    # a wrong national ID: the page says so next to the field and nothing is stored
    r = web.client.post(url, data=_form(html, **{"founders-1-national_id": "1234567890", "save": "1"}))
    assert r.status_code == 422
    assert "کد ملی" in r.get_data(as_text=True)
    assert session.get(Case, case_id).data.get("founders") in (None, [])
    # a good draft, with the statute; then submitting works
    html = web.client.get(url).get_data(as_text=True)
    r = web.client.post(url, data={**_form(html, save="1"), "statute": (io.BytesIO(PDF), "اساسنامه.pdf")},
                        content_type="multipart/form-data")
    assert r.status_code == 302
    session.expire_all()
    case = session.get(Case, case_id)
    assert case.data["name"] == "انجمن حمایت از کودکان کار کرمان"
    assert case.data["founders"][0]["national_id"] == "0499370899"
    assert [d.original_name for d in case.documents] == ["اساسنامه.pdf"]
    html = web.client.get(url).get_data(as_text=True)
    assert "اساسنامه.pdf" in html and "0499370899" in html
    # an executable renamed to .pdf is refused
    r = web.client.post(url, data={**_form(html, save="1"), "statute": (io.BytesIO(b"MZ\x90\x00" * 100), "x.pdf")},
                        content_type="multipart/form-data")
    assert r.status_code == 422
    r = web.client.post(url, data=_form(web.client.get(url).get_data(as_text=True), submit="1"))
    assert r.status_code == 302 and r.location.endswith(f"/cases/{case_id}")
    session.expire_all()
    assert session.get(Case, case_id).state == "submitted"


def test_submit_incomplete_keeps_draft_and_explains(web, session):
    web.login("ngo")
    case_id, html = _new_draft(web)
    r = web.client.post(f"/portal/applications/{case_id}/edit", data=_form(html, submit="1"))
    assert r.status_code == 422
    assert "اساسنامه" in r.get_data(as_text=True)  # the statute is missing
    session.expire_all()
    assert session.get(Case, case_id).state == "draft"


def _act(web, case_id: int, action: str, comment: str = "") -> tuple[int, str]:
    html = web.client.get(f"/cases/{case_id}").get_data(as_text=True)
    block = re.search(rf'<form[^>]*action="/cases/{case_id}/transition/{action}".*?</form>', html, re.S)
    assert block, f"no {action} form on the page"
    fields = dict(re.findall(r'name="([^"]+)" type="hidden" value="([^"]*)"', block.group(0)))
    r = web.client.post(f"/cases/{case_id}/transition/{action}", data={**fields, f"{action}-comment": comment})
    return r.status_code, web.client.get(f"/cases/{case_id}").get_data(as_text=True)


def test_staff_story_through_pages(api, web, client, session):
    case_id = api.ready()
    api.advance(case_id, ("submit", "ngo"))
    web.login("intake")
    status, html = web.page("/queue")
    assert status == 200 and f"/cases/{case_id}" in html and "۱" in html  # count in Persian digits
    status, page = _act(web, case_id, "return_for_correction", "")
    assert status == 302 and "توضیح" in page  # the flash says a comment is required
    session.expire_all()
    assert session.get(Case, case_id).state == "submitted"  # comment was required
    status, page = _act(web, case_id, "accept")
    assert status == 302
    session.expire_all()
    assert session.get(Case, case_id).state == "under_review"
    # a forged post without CSRF changes nothing
    r = client.post(f"/cases/{case_id}/transition/send_inquiry", data={"send_inquiry-version": "3",
                                                                        "send_inquiry-comment": "x"})
    assert r.status_code == 400
    session.expire_all()
    assert session.get(Case, case_id).state == "under_review"


def test_case_page_shows_history_jalali_and_permit(api, web):
    case_id = api.ready()
    number = api.advance(case_id, *TO_AWAITING, ("approve", "director")).get_json()["permit_number"]
    web.login("ngo")
    status, html = web.page(f"/cases/{case_id}")
    assert status == 200
    assert html.count('class="timeline"') == 1 and html.count("<li>") >= 4
    persian_number = number.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
    assert persian_number in html
    assert re.search(r"[۰-۹]{1,2} (فروردین|اردیبهشت|خرداد|تیر|مرداد|شهریور|مهر|آبان|آذر|دی|بهمن|اسفند) [۰-۹]{4}", html)
    status, dash = web.page("/portal/")
    assert persian_number in dash


def test_auditor_reads_but_cannot_act(api, web):
    case_id = api.ready()
    api.advance(case_id, *TO_AWAITING)
    web.login("auditor")
    status, html = web.page("/audit")
    assert status == 200 and f"/cases/{case_id}" in html
    row = html.split(f'href="/cases/{case_id}"', 1)[1].split("</tr>", 1)[0]
    assert "انجمن حمایت از کودکان کار کرمان" in row  # the case's organisation, on its row
    status, html = web.page(f"/cases/{case_id}")
    assert status == 200 and "/transition/" not in html
    assert web.client.get("/queue").status_code == 403
    token = web.csrf(html)
    r = web.client.post(f"/cases/{case_id}/transition/approve", data={"csrf_token": token, "approve-version": "4"})
    assert r.status_code == 403  # refused as an auditor, whatever the case
    assert api.get(f"/api/v1/applications/{case_id}", "ngo").get_json()["state"] == "awaiting_decision"


def test_other_province_gets_404(api, web):
    case_id = api.ready()
    api.advance(case_id, ("submit", "ngo"))
    web.login("q_intake")
    assert web.client.get(f"/cases/{case_id}").status_code == 404
    web.client.post("/logout")


def test_public_verification(api, client):
    case_id = api.ready()
    number = api.advance(case_id, *TO_AWAITING, ("approve", "director")).get_json()["permit_number"]
    r = client.get(f"/verify?number={number.translate(str.maketrans('0123456789', '۰۱۲۳۴۵۶۷۸۹'))}")
    assert r.status_code == 302
    html = client.get(r.location).get_data(as_text=True)
    assert "انجمن حمایت از کودکان کار کرمان" in html and "badge active" in html
    assert client.get("/permits/0000-00-000000").status_code == 404


def test_language_switch(client):
    assert 'dir="rtl"' in client.get("/login").get_data(as_text=True)
    client.get("/lang/en")
    html = client.get("/login").get_data(as_text=True)
    assert 'dir="ltr"' in html and "Sign in" in html
    client.get("/lang/fa")
    assert "ورود" in client.get("/login").get_data(as_text=True)


def test_documents_only_for_those_who_see_the_case(api, web, session):
    case_id = api.ready()
    api.advance(case_id, ("submit", "ngo"))
    doc_id = session.scalar(select(Case).where(Case.id == case_id)).documents[0].id
    web.login("intake")
    r = web.client.get(f"/cases/{case_id}/documents/{doc_id}")
    assert r.status_code == 200 and r.data.startswith(b"%PDF-")
    web.client.get("/lang/fa")
    web2 = type(web)(web.client.application.test_client(), web.world)
    web2.login("q_intake")
    assert web2.client.get(f"/cases/{case_id}/documents/{doc_id}").status_code == 404

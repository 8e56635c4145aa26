"""The walking-skeleton story, end to end through the pages, in headless Chromium.

An NGO member applies (with a typing mistake first), the intake clerk returns the application
for correction, the NGO resubmits, intake accepts, the expert runs an inquiry and recommends
approval, the director approves; the NGO sees its permit, a visitor verifies it, an auditor
reads the whole history; finally the page is switched to English (LTR).

Every step leaves a screenshot in tests/artifacts/ (NN-step.png). Elements are found by stable
attributes (form actions, name= and value= attributes, CSS classes), not by translated text,
so the test holds whatever the Persian translations say.

Chromium is the system's (Debian package `chromium`); set CHROMIUM_PATH to use another binary.
Playwright never downloads a browser here.
"""
from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.conftest import CI
from tests.live_app import LiveApp
from tests.support import PASSWORD, PDF, World

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.slow]

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run"]
TIMEOUT_MS = 10_000

# The organisation's name typed with Arabic yeh (U+064A) and kaf (U+0643), as Windows' Arabic
# keyboard does; it must be stored and shown with Persian yeh (U+06CC) and keheh (U+06A9).
NAME_TYPED = "انجمن حمايت از كودكان كار كرمان"
NAME_STORED = "انجمن حمایت از کودکان کار کرمان"
ADDRESS = "کرمان، خیابان شریعتی، پلاک ۱۲"
ADDRESS_FIXED = "کرمان، خیابان شریعتی، کوچه ۵، پلاک ۱۲"
FOUNDERS = [
    ("زهرا احمدی", "۰۴۹۹۳۷۰۸۹۹"),  # Persian digits, stored as 0499370899
    ("علی رضایی", "0790419904"),
    ("مریم حسینی", "0084575948"),
]
BAD_ID = "1234567890"  # ten digits, wrong check digit
CORRECTION = "نشانی کامل نیست؛ لطفاً کوچه را هم بنویسید."
INQUIRY = "استعلام از اداره کل اطلاعات استان کرمان درباره صلاحیت مؤسسان"
INQUIRY_ANSWER = "پاسخ اداره کل اطلاعات استان کرمان: مانعی ندارد."
# submit, return_for_correction, resubmit, accept, send_inquiry, record_inquiry,
# recommend_approval, approve
TRANSITIONS = 8

P2A = str.maketrans("۰۱۲۳۴۵۶۷۸۹", "0123456789")
A2P = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")


@pytest.fixture
def live(app: Any, world: World) -> Iterator[LiveApp]:
    with LiveApp(app) as server:
        yield server


@pytest.fixture
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        message = f"no Chromium at {CHROMIUM}: apt-get install chromium, or set CHROMIUM_PATH"
        if CI:
            pytest.fail(message)
        pytest.skip(message)
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Story:
    """One browser context (a person at a screen) plus the steps' screenshots."""

    def __init__(self, browser: Any, live: LiveApp, world: World, artifacts: Path) -> None:
        self.browser, self.live, self.world, self.artifacts = browser, live, world, artifacts
        self.step = 0
        self.shots: list[str] = []
        self.context = self.new_context()
        self.page = self.context.new_page()

    def new_context(self) -> Any:
        context = self.browser.new_context(viewport={"width": 1280, "height": 860}, locale="fa-IR")
        context.set_default_timeout(TIMEOUT_MS)
        # Only loopback: anything else the page asked for would be a bug (a CDN font, say).
        context.route(re.compile(r"^(?!http://127\.0\.0\.1[:/]).*"), lambda route: route.abort())
        return context

    def url(self, path: str) -> str:
        return self.live.url(path)

    def shot(self, name: str, page: Any = None) -> None:
        self.step += 1
        filename = f"{self.step:02d}-{name}.png"
        (page or self.page).screenshot(path=str(self.artifacts / filename), full_page=True)
        self.shots.append(filename)

    def login(self, who: str) -> None:
        page = self.page
        page.goto(self.url("/login"))
        page.fill("main input[name=email]", self.world.email(who))
        page.fill("main input[name=password]", PASSWORD)
        with page.expect_navigation():
            page.click("main form button[type=submit]")
        assert "/login" not in page.url, page.inner_text("main")
        assert page.inner_text("header .user") == who

    def logout(self) -> None:
        with self.page.expect_navigation():
            self.page.click("header form[action$='/logout'] button[type=submit]")
        assert self.page.url.endswith("/login")
        assert self.page.locator("header .user").count() == 0

    def act(self, case_id: int, action: str, comment: str | None = None) -> None:
        """Fill and send the action form of the case page."""
        page = self.page
        form = page.locator(f"form.action-{action}")
        assert form.count() == 1, f"no form for {action}: {self.available_actions()}"
        assert form.get_attribute("action").endswith(f"/cases/{case_id}/transition/{action}")
        if comment is not None:
            form.locator("textarea").fill(comment)
        with page.expect_navigation():
            form.locator(f"button[value={action}]").click()
        self.expect_flash("success")

    def available_actions(self) -> list[str]:
        return self.page.eval_on_selector_all(
            "form.action", "fs => fs.map(f => f.className.replace(/^action action-/, ''))")

    def expect_flash(self, category: str) -> str:
        flash = self.page.locator(f"main p.flash.{category}").first
        assert flash.is_visible(), self.page.inner_text("main")
        return flash.inner_text()

    def badge(self) -> str:
        """The state of the case shown on a case page: the CSS class of its badge."""
        classes = self.page.get_attribute("main h1 .badge", "class") or ""
        return classes.replace("badge", "").strip()

    def open_case_from_queue(self, case_id: int, state: str) -> None:
        page = self.page
        page.goto(self.url("/queue"))
        row = page.locator("table.queue tbody tr", has=page.locator(f"a[href$='/cases/{case_id}']"))
        assert row.count() == 1, page.inner_text("main")
        assert NAME_STORED in row.inner_text()
        assert row.locator(f".badge.{state}").is_visible()
        self.shot(f"queue-{state}")
        with page.expect_navigation():
            row.locator(f"a[href$='/cases/{case_id}']").first.click()
        assert self.badge() == state


def test_permit_story_in_the_browser(browser: Any, live: LiveApp, world: World, artifacts: Path,
                                     app: Any, session: Any, tmp_path: Path) -> None:
    from workflow.calendar import format_date, jalali_year
    from workflow.models import AuditEntry, Case, Permit

    for old in artifacts.glob("[0-9][0-9]-*.png"):
        old.unlink()
    story = Story(browser, live, world, artifacts)
    page = story.page
    statute = tmp_path / "اساسنامه.pdf"
    statute.write_bytes(PDF)

    # -- 1. The NGO member signs in: a Persian, right-to-left page -----------------------------
    page.goto(story.url("/"))
    assert page.url.endswith("/login")
    assert page.locator("html[dir=rtl][lang=fa]").count() == 1
    assert page.eval_on_selector("main h1", "h => getComputedStyle(h).direction") == "rtl"
    story.shot("login")
    story.login("ngo")
    assert page.url.endswith("/portal/")
    org_card = page.locator("main section.card", has=page.locator("form[action$='/portal/applications/new']"))
    assert NAME_STORED in org_card.locator("h2").inner_text()
    story.shot("dashboard")

    # -- 2. Apply: the form, first with a national ID that has a wrong check digit ------------
    with page.expect_navigation():
        org_card.locator("form[action$='/portal/applications/new'] button[type=submit]").click()
    match = re.search(r"/portal/applications/(\d+)/edit$", page.url)
    assert match, page.url
    case_id = int(match.group(1))
    assert page.locator("main .badge.draft").is_visible()

    page.fill("input[name=name]", NAME_TYPED)
    page.select_option("select[name=field]", "children")
    page.select_option("select[name=county]", "کرمان")
    page.fill("textarea[name=address]", ADDRESS)
    for i, (full_name, nid) in enumerate(FOUNDERS):
        page.fill(f"input[name='founders-{i}-full_name']", full_name)
        page.fill(f"input[name='founders-{i}-national_id']", BAD_ID if i == 1 else nid)
    page.set_input_files("input[name=statute]", str(statute))
    story.shot("draft-form")
    with page.expect_navigation():
        page.click("button[name=save]")
    bad_cell = page.locator("td", has=page.locator("input[name='founders-1-national_id']"))
    error = bad_cell.locator("p.error")
    assert error.count() == 1 and error.is_visible(), page.inner_text("main")
    assert error.inner_text().strip()
    # only that field is wrong; the other rows kept what was typed and show no error
    assert page.locator("main p.error").count() == 1
    assert page.input_value("input[name='founders-1-national_id']") == BAD_ID
    assert page.get_attribute("input[name='founders-1-national_id']", "aria-invalid") == "true"
    assert page.input_value("input[name='founders-2-full_name']") == FOUNDERS[2][0]
    bad_cell.scroll_into_view_if_needed()
    story.shot("national-id-error")

    # -- the corrected draft is saved --------------------------------------------------------
    page.fill("input[name='founders-1-national_id']", FOUNDERS[1][1])
    page.set_input_files("input[name=statute]", str(statute))  # a refused form keeps no file
    with page.expect_navigation():
        page.click("button[name=save]")
    story.expect_flash("success")
    assert page.url.endswith(f"/portal/applications/{case_id}/edit")
    assert page.input_value("input[name=name]") == NAME_STORED  # Arabic ي ك became Persian ی ک
    assert page.input_value("input[name='founders-0-national_id']") == "0499370899"  # ۰۴۹۹… in ASCII
    assert page.locator("main p.error").count() == 0
    assert page.locator(f"a[href*='/cases/{case_id}/documents/']").inner_text() == statute.name
    story.shot("draft-saved")

    # -- away to the dashboard and back with "continue"; then submit --------------------------
    page.click("header a[href$='/portal/']")
    page.wait_for_url("**/portal/")
    row = page.locator("main tbody tr", has=page.locator(f"a[href$='/portal/applications/{case_id}/edit']"))
    assert row.locator(".badge.draft").is_visible()
    assert page.locator("form[action$='/portal/applications/new']").count() == 0  # one open case only
    story.shot("dashboard-draft")
    with page.expect_navigation():
        row.locator(f"a[href$='/portal/applications/{case_id}/edit']").click()
    assert page.input_value("textarea[name=address]") == ADDRESS  # stored in ASCII digits, shown in Persian
    assert page.input_value("select[name=field]") == "children"
    assert page.input_value("select[name=county]") == "کرمان"
    with page.expect_navigation():
        page.click("button[name=submit]")
    story.expect_flash("success")
    assert page.url.endswith(f"/cases/{case_id}")
    assert story.badge() == "submitted"
    founders_text = page.locator("main table").first.inner_text()
    assert "۰۴۹۹۳۷۰۸۹۹" in founders_text and FOUNDERS[2][0] in founders_text
    assert NAME_STORED in page.inner_text("main dl.data")
    assert page.locator("form.action").count() == 0 or story.available_actions() == ["withdraw"]
    story.shot("submitted")
    story.logout()

    # -- 4. Intake finds it in the queue and returns it for correction ------------------------
    story.login("intake")
    assert page.url.endswith("/queue")
    story.open_case_from_queue(case_id, "submitted")
    assert set(story.available_actions()) == {"accept", "return_for_correction"}
    assert page.get_attribute("form.action-return_for_correction textarea", "required") is not None
    story.shot("intake-case")
    story.act(case_id, "return_for_correction", CORRECTION)
    story.shot("returned")
    story.logout()

    # -- the NGO reads the comment, corrects the address and resubmits -------------------------
    story.login("ngo")
    row = page.locator("main tbody tr", has=page.locator(f"a[href$='/cases/{case_id}']"))
    assert row.locator(".badge.needs_correction").is_visible()
    with page.expect_navigation():
        row.locator(f"a[href$='/cases/{case_id}']").click()
    assert story.badge() == "needs_correction"
    assert CORRECTION in page.inner_text("ol.timeline")
    assert CORRECTION in page.inner_text("section.actions .correction")  # where the NGO looks first
    story.shot("ngo-needs-correction")
    with page.expect_navigation():
        page.click(f"main a[href$='/portal/applications/{case_id}/edit']")
    assert page.locator(f"a[href*='/cases/{case_id}/documents/']").count() == 1  # the statute is kept
    page.fill("textarea[name=address]", ADDRESS_FIXED)
    story.shot("correction-form")
    with page.expect_navigation():
        page.click("button[name=submit]")
    story.expect_flash("success")
    assert story.badge() == "submitted"
    assert ADDRESS_FIXED in page.inner_text("main dl.data .address")  # shown in Persian digits again
    story.logout()

    story.login("intake")
    story.open_case_from_queue(case_id, "submitted")
    story.act(case_id, "accept")
    story.logout()

    # -- 5. The expert: inquiry, its answer, a recommendation; the director approves ----------
    story.login("expert")
    story.open_case_from_queue(case_id, "under_review")
    story.act(case_id, "send_inquiry", INQUIRY)
    assert story.badge() == "inquiry"
    assert story.available_actions() == ["record_inquiry"]
    story.shot("inquiry-sent")
    story.act(case_id, "record_inquiry", INQUIRY_ANSWER)
    assert story.badge() == "under_review"
    story.act(case_id, "recommend_approval")
    story.logout()

    story.login("director")
    story.open_case_from_queue(case_id, "awaiting_decision")
    assert "approve" in story.available_actions()
    story.act(case_id, "approve")
    page.goto(story.url(f"/cases/{case_id}"))
    assert story.badge() == "approved"
    link = page.locator("section.permit a[href*='/permits/']")
    number = link.get_attribute("href").rsplit("/", 1)[1]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{6}", number), number
    assert link.inner_text() == number.translate(A2P)  # shown in Persian digits
    assert page.locator("form.action").count() == 0
    story.shot("approved")
    story.logout()

    permit = session.scalar(select(Permit).where(Permit.case_id == case_id))
    assert permit is not None and permit.number == number and permit.state == "active"
    valid_until = format_date(permit.valid_until, "fa")
    assert str(jalali_year(permit.issued_at) + 3).translate(A2P) in valid_until

    # -- 6. The NGO's dashboard shows the permit, its number and validity ---------------------
    story.login("ngo")
    permits = page.locator("main section.card", has=page.locator(f"a[href$='/permits/{number}']"))
    permit_row = permits.locator("tbody tr")
    assert permit_row.count() == 1
    cells = permit_row.locator("td").all_inner_texts()
    assert cells[0] == number.translate(A2P)
    assert cells[1] == NAME_STORED  # the approved name, normalised, is now the organisation's
    assert cells[4] == valid_until and re.fullmatch(r"[۰-۹]{1,2} \S+ [۰-۹]{4}", cells[4]), cells
    assert not re.search(r"[0-9]", cells[3] + cells[4])
    assert page.locator("form[action$='/portal/applications/new']").count() == 0  # a live permit is renewed, not applied for again
    story.shot("ngo-permit")
    story.logout()

    # -- 7. A visitor verifies the permit; the number is typed in Persian digits --------------
    visitor_context = story.new_context()
    visitor = visitor_context.new_page()
    visitor.goto(story.url("/verify"))
    assert visitor.locator("header .user").count() == 0
    visitor.fill("input[name=number]", number.translate(A2P))
    story.shot("verify-form", visitor)
    with visitor.expect_navigation():
        visitor.click("main form[action$='/verify'] button[type=submit]")
    assert visitor.url.endswith(f"/permits/{number}")
    result = visitor.locator("section.verify-result")
    assert number.translate(A2P) in result.locator("h2").inner_text()
    assert result.locator(".badge.active").is_visible()
    assert NAME_STORED in result.inner_text() and valid_until in result.inner_text()
    story.shot("verified", visitor)
    unknown = visitor.goto(story.url("/permits/1400-99-999999"))
    assert unknown is not None and unknown.status == 404
    assert visitor.locator("section.verify-result h2").is_visible()
    assert visitor.locator("section.verify-result .badge").count() == 0
    visitor_context.close()

    # -- 8. The auditor reads everything and can change nothing -------------------------------
    story.login("auditor")
    page.click("header a[href$='/audit']")
    page.wait_for_url("**/audit")
    row = page.locator("main tbody tr", has=page.locator(f"a[href$='/cases/{case_id}']"))
    assert row.locator(".badge.approved").is_visible() and NAME_STORED in row.inner_text()
    story.shot("audit-list")
    with page.expect_navigation():
        row.locator(f"a[href$='/cases/{case_id}']").first.click()
    entries = page.locator("ol.timeline > li")
    recorded = session.scalar(
        select(func.count()).select_from(AuditEntry).where(AuditEntry.case_id == case_id))
    assert entries.count() == TRANSITIONS == recorded
    timeline = page.inner_text("ol.timeline")
    for text in (CORRECTION, INQUIRY, INQUIRY_ANSWER):
        assert text in timeline
    for who in ("ngo", "intake", "expert", "director"):
        assert who in timeline
    assert page.locator("form.action").count() == 0 and page.locator("section.actions").count() == 0
    assert page.locator(f"main a[href$='/portal/applications/{case_id}/edit']").count() == 0
    story.shot("audit-history")

    # -- 9. English, left to right ------------------------------------------------------------
    with page.expect_navigation():
        page.click("header a[href*='/lang/en']")
    assert page.url.endswith(f"/cases/{case_id}")
    assert page.locator("html[dir=ltr][lang=en]").count() == 1
    assert page.eval_on_selector("main h1", "h => getComputedStyle(h).direction") == "ltr"
    assert page.locator("ol.timeline > li").count() == TRANSITIONS
    assert number in page.inner_text("section.permit")  # ASCII digits in English
    assert not re.search("[۰-۹]", page.inner_text("section.permit"))
    story.shot("english-ltr")
    story.context.close()

    case = session.get(Case, case_id)
    assert case.state == "approved"
    assert len(story.shots) >= 20 and all((artifacts / s).stat().st_size > 5_000 for s in story.shots)

"""A grant from request to second payment, in headless Chromium.

An NGO holding an active permit finds an open programme, requests a grant in tomans typed with
Persian digits, intake accepts, the expert recommends with a score, finance proposes the amount
in two tranches, the director approves, finance releases the first tranche, the NGO files its
spending report with a receipt, finance accepts it and releases the second tranche; the NGO then
sees the second tranche paid. The permit and the programme are arranged through the API.

Elements are found by form actions, name= attributes and CSS classes, not by translated text.
Screenshots: tests/artifacts/grants-NN-*.png.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.support import World
from tests.test_browser import Story, browser, live  # noqa: F401  (fixtures)
from tests.test_grants import PNG, create_programme, issue_permit

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.slow]

TITLE = "کلاس‌های سوادآموزی کودکان کار"
SUMMARY = "آموزش خواندن و نوشتن به ۴۰ کودک کار در محله‌های حاشیه کرمان، دو کلاس در هفته."
# Typed in tomans (the default unit), Persian digits and the Arabic thousands separator.
LINES = [("حق‌التدریس", "۶۰٬۰۰۰٬۰۰۰"), ("لوازم‌التحریر", "۳۰٬۰۰۰٬۰۰۰")]
REQUESTED = "۹۰٬۰۰۰٬۰۰۰"
TRANCHES = ["۵۰٬۰۰۰٬۰۰۰", "۴۰٬۰۰۰٬۰۰۰"]


class GrantStory(Story):
    def shot(self, name: str, page: Any = None) -> None:
        self.step += 1
        filename = f"grants-{self.step:02d}-{name}.png"
        (page or self.page).screenshot(path=str(self.artifacts / filename), full_page=True)
        self.shots.append(filename)

    def as_(self, who: str, case_id: int | None = None) -> None:
        """Sign out whoever is signed in, sign in as `who`, and open the case page."""
        if self.page.locator("header .user").count():
            self.logout()
        self.login(who)
        if case_id is not None:
            self.page.goto(self.url(f"/cases/{case_id}"))

    def tranche(self, n: int) -> Any:
        return self.page.locator(f"section.tranches article#tranche-{n}")

    def tranche_form(self, n: int, kind: str) -> Any:
        form = self.tranche(n).locator(f"form.tranche-action.{kind}")
        assert form.count() == 1, f"no {kind} form on tranche {n}: {self.page.inner_text('main')}"
        return form


def test_grant_story_in_the_browser(browser: Any, live: Any, world: World, artifacts: Path,  # noqa: F811
                                    api: Any, session: Any, tmp_path: Path) -> None:
    from workflow.models import Case, Grant, Programme, Tranche

    for old in artifacts.glob("grants-*.png"):
        old.unlink()
    issue_permit(api)  # org1: an active permit in Kerman, field "children"
    programme_id = create_programme(api)["id"]  # open now, funds children; 2 billion tomans
    receipt = tmp_path / "رسید-حق‌التدریس.png"
    receipt.write_bytes(PNG)

    story = GrantStory(browser, live, world, artifacts)
    page = story.page

    # -- 1. The NGO finds the programme and requests a grant -----------------------------------
    story.login("ngo")
    with page.expect_navigation():
        page.click("header nav a[href$='/programmes/']")
    row = page.locator(f"table.programmes tr[data-id='{programme_id}']")
    assert row.locator(".badge.open").count() == 1
    assert "۲٬۰۰۰٬۰۰۰٬۰۰۰ تومان" in row.inner_text()
    story.shot("programmes")
    with page.expect_navigation():
        row.locator("a").first.click()
    assert page.locator("html[dir=rtl]").count() == 1
    story.shot("programme")
    with page.expect_navigation():
        page.click(f"form[action$='/programmes/{programme_id}/request'] button[type=submit]")
    match = re.search(r"/portal/applications/(\d+)/edit$", page.url)
    assert match, page.url
    case_id = int(match.group(1))
    page.fill("input[name=title]", TITLE)
    page.fill("textarea[name=summary]", SUMMARY)
    page.fill("input[name=requested]", REQUESTED)
    for i, (item, amount) in enumerate(LINES):
        page.fill(f"input[name='budget_lines-{i}-item']", item)
        page.fill(f"input[name='budget_lines-{i}-amount']", amount)
    story.shot("request-form")
    with page.expect_navigation():
        page.click("button[name=submit]")
    story.expect_flash("success")
    assert story.badge() == "submitted"
    assert "۹۰٬۰۰۰٬۰۰۰ تومان" in page.inner_text("dl.grant-data")
    story.shot("request-submitted")

    # -- 2. Review: intake, the expert's score, finance's proposal, the director -----------------
    story.as_("intake", case_id)
    story.act(case_id, "accept")
    story.as_("expert", case_id)
    page.fill("form.action-recommend_approval input[name='recommend_approval-score']", "۸۲")
    story.shot("expert-score")
    story.act(case_id, "recommend_approval", "طرح روشن و بودجه واقع‌بینانه است.")
    story.as_("finance", case_id)
    assert story.badge() == "finance_review"
    form = page.locator("form.action-propose_amount")
    form.locator("input[name='propose_amount-amount']").fill(REQUESTED)
    for i, amount in enumerate(TRANCHES):
        form.locator(f"input[name='propose_amount-tranches-{i}']").fill(amount)
    story.shot("finance-proposal")
    story.act(case_id, "propose_amount")
    story.as_("director", case_id)
    assert "۵۰٬۰۰۰٬۰۰۰ تومان" in page.inner_text("dd.proposed")
    story.act(case_id, "approve")
    session.expire_all()
    assert session.get(Case, case_id).state == "approved"
    assert session.get(Grant, case_id).awarded_rials == 900_000_000

    # -- 3. Finance releases the first tranche --------------------------------------------------
    story.as_("finance", case_id)
    assert page.locator("form.action-release_tranche").count() == 0  # not a generic button
    assert story.tranche(2).locator("form.tranche-action.release").count() == 0
    story.shot("finance-tranches")
    with page.expect_navigation():
        story.tranche_form(1, "release").locator("button[type=submit]").click()
    story.expect_flash("success")
    assert story.tranche(1).get_attribute("data-state") == "released"

    # -- 4. The NGO files the spending report with a receipt -----------------------------------
    story.as_("ngo", case_id)
    report = story.tranche_form(1, "report")
    assert story.tranche(1).locator(".report-due").count() == 1
    report.locator("input[name='report-lines-0-item']").fill("حق‌التدریس")
    report.locator("input[name='report-lines-0-budgeted']").fill("۳۰٬۰۰۰٬۰۰۰")
    report.locator("input[name='report-lines-0-spent']").fill("۳۰٬۰۰۰٬۰۰۰")
    report.locator("input[name='report-lines-1-item']").fill("لوازم‌التحریر")
    report.locator("input[name='report-lines-1-budgeted']").fill("۲۰٬۰۰۰٬۰۰۰")
    report.locator("input[name='report-lines-1-spent']").fill("۲۰٬۰۰۰٬۰۰۰")
    report.locator("input[type=file]").set_input_files(str(receipt))
    story.shot("ngo-report", page)
    with page.expect_navigation():
        report.locator("button[type=submit]").click()
    story.expect_flash("success")
    assert story.tranche(1).get_attribute("data-state") == "reported"

    # -- 5. Finance accepts it and releases the second tranche ---------------------------------
    story.as_("finance", case_id)
    first = story.tranche(1)
    assert first.locator("ul.receipts a").count() == 1
    assert "۵۰٬۰۰۰٬۰۰۰ تومان" in first.locator(".spent-total").inner_text()
    story.shot("finance-report")
    with page.expect_navigation():
        story.tranche_form(1, "accept").locator("button[type=submit]").click()
    story.expect_flash("success")
    with page.expect_navigation():
        story.tranche_form(2, "release").locator("button[type=submit]").click()
    story.expect_flash("success")
    story.shot("finance-second-release")

    # -- 6. The NGO sees the second tranche paid ------------------------------------------------
    story.as_("ngo", case_id)
    second = story.tranche(2)
    assert second.get_attribute("data-state") == "released"
    assert second.locator(".badge.tranche-state.released").is_visible()
    assert "۴۰٬۰۰۰٬۰۰۰ تومان" in second.locator("h3").inner_text()
    assert second.locator(".released-at").inner_text().strip()
    assert second.locator("form.tranche-action.report").count() == 1  # its report is next
    story.shot("ngo-second-tranche")

    session.expire_all()
    items = session.scalars(select(Tranche).where(Tranche.case_id == case_id).order_by(Tranche.n)).all()
    assert [(t.state, t.amount_rials) for t in items] == [("accepted", 500_000_000), ("released", 400_000_000)]
    assert session.get(Programme, programme_id).disbursed_rials == 900_000_000
    assert len(story.shots) >= 10

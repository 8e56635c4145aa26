"""An NGO renews an expiring permit after a reminder, in headless Chromium.

The sweep (as if run by the cron) writes the 60- and 30-day reminders; the NGO member sees the
bell's count, reads the reminder, follows it, presses Renew on the dashboard, writes the
activity report and submits; the office approves; the dashboard then shows the same permit
number valid three Jalali years longer. Screenshots: tests/artifacts/renewal-NN-*.png.
"""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.support import TO_AWAITING, World
from tests.test_browser import Story, browser, live  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.slow]

REPORT = ("در سه سال گذشته ۳۶ کارگاه آموزشی برای ۴۲۰ کودک کار در کرمان برگزار شد و "
          "۱۲ خانواده به مراکز مشاوره معرفی شدند.")
A2P = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")


class RenewalStory(Story):
    def shot(self, name: str, page: Any = None) -> None:
        self.step += 1
        filename = f"renewal-{self.step:02d}-{name}.png"
        (page or self.page).screenshot(path=str(self.artifacts / filename), full_page=True)
        self.shots.append(filename)


def test_ngo_renews_after_a_reminder(browser: Any, live: Any, world: World, artifacts: Path,  # noqa: F811
                                     app: Any, api: Any, session: Any) -> None:
    from workflow.calendar import format_date
    from workflow.deadlines import next_after, permit_events
    from workflow.models import Permit, utcnow

    for old in artifacts.glob("renewal-*.png"):
        old.unlink()
    case_id = api.ready()
    number = api.advance(case_id, *TO_AWAITING, ("approve", "director")).get_json()["permit_number"]
    permit = session.scalar(select(Permit).where(Permit.number == number))
    # The permit was issued almost three years ago: 25 days are left.
    permit.valid_until = utcnow() + timedelta(days=25)
    permit.next_event_at = next_after(permit_events(permit), utcnow() - timedelta(days=3 * 365))
    session.commit()
    old_end = permit.valid_until
    r = app.test_cli_runner().invoke(args=["jobs", "sweep"])
    assert r.exit_code == 0 and "notifications" in r.output, r.output

    story = RenewalStory(browser, live, world, artifacts)
    page = story.page
    story.login("ngo")
    bell = page.locator("header a.bell")
    assert bell.get_attribute("data-unread") not in ("", "0", None)
    story.shot("bell")
    with page.expect_navigation():
        bell.click()
    reminders = page.locator("li.notification.unread", has_text=number.translate(A2P))
    assert reminders.count() >= 1, page.inner_text("main")
    story.shot("reminder")
    with page.expect_navigation():
        reminders.first.locator("a.subject").click()
    assert number in page.url or number.translate(A2P) in page.inner_text("main")

    page.goto(story.url("/portal/"))
    row = page.locator("tr", has=page.locator(f"a[href$='/permits/{number}']"))
    assert row.locator("td.days-left.soon").count() == 1
    story.shot("dashboard-renew")
    with page.expect_navigation():
        row.locator("form.renew button[type=submit]").click()
    assert "/edit" in page.url
    page.fill("textarea[name=activity_report]", REPORT)
    story.shot("renewal-form")
    with page.expect_navigation():
        page.click("button[name=submit]")
    story.expect_flash("success")
    assert story.badge() == "submitted"
    story.shot("renewal-submitted")
    renewal_id = int(page.url.rstrip("/").split("/")[-1])

    # The office decides through its own screens elsewhere; here through the API.
    api.advance(renewal_id, ("accept", "intake"), ("recommend_approval", "expert"), ("approve", "director"))

    page.goto(story.url("/portal/"))
    row = page.locator("tr", has=page.locator(f"a[href$='/permits/{number}']"))
    session.expire_all()
    renewed = session.get(Permit, permit.id)
    assert renewed.number == number and renewed.state == "active"
    assert (renewed.valid_until - old_end).days >= 3 * 365 - 1
    assert format_date(renewed.valid_until, "fa") in row.inner_text()
    assert row.locator("td.days-left.soon").count() == 0
    story.shot("renewed")

"""An auditor finds a decision in the console, opens what the director saw and exports the CSV;
then a visitor opens the certificate's QR target. In headless Chromium.

Arranged through the API (the office's own screens are tested elsewhere): an NGO's permit
application is returned for correction, corrected and approved, which issues the approval letter
and the certificate. The certificate's QR code names the live server (PUBLIC_URL is set to it
before the decision), so the visitor opens exactly the URL printed under the code.

Screenshots: tests/artifacts/audit-NN-*.png; the letter and the certificate, first page each, as
tests/artifacts/audit-certificate-1.png and audit-approval-letter-1.png.
"""
from __future__ import annotations

import csv
import hashlib
import io
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from tests.conftest import CI
from tests.support import TO_AWAITING, World, good_data
from tests.test_browser import Story, browser, live  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.slow]

ORG = "انجمن حمایت از کودکان کار کرمان"
ORG_TYPED = "انجمن حمايت از كودكان"  # Arabic yeh and kaf, as Windows' Arabic keyboard types them
OLD_ADDRESS = "کرمان، خیابان شریعتی"
NEW_ADDRESS = "کرمان، خیابان شریعتی، کوچه ۵، پلاک ۱۲"
APPROVAL = "مدارک کامل است و مؤسسان واجد شرایط‌اند."
A2P = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
PDFTOPPM = shutil.which("pdftoppm")


class AuditStory(Story):
    def shot(self, name: str, page: Any = None) -> None:
        self.step += 1
        filename = f"audit-{self.step:02d}-{name}.png"
        (page or self.page).screenshot(path=str(self.artifacts / filename), full_page=True)
        self.shots.append(filename)


def first_page_png(pdf: Path, out: Path, stem: str) -> Path:
    """The PDF's first page at 80 dpi, as pdftoppm names it (stem-1.png)."""
    if PDFTOPPM is None:
        if CI:
            pytest.fail("pdftoppm (poppler-utils) is missing; make test installs it")
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    for old in out.glob(f"{stem}-*.png"):
        old.unlink()
    subprocess.run([PDFTOPPM, "-png", "-r", "80", "-f", "1", "-l", "1", str(pdf), str(out / stem)],
                   check=True,
                   timeout=60)
    png = out / f"{stem}-1.png"
    assert png.exists(), sorted(p.name for p in out.glob(f"{stem}*"))
    return png


def assert_not_blank(png: Path) -> None:
    """Ink on the page: a fair share of dark pixels, not one colour."""
    from PIL import Image

    with Image.open(png) as image:
        grey = image.convert("L")
        low, high = grey.getextrema()
        dark = sum(grey.histogram()[:128])
        assert low < 64 and high > 200, (png, low, high)
        assert dark > 0.002 * grey.width * grey.height, (png, dark)


def test_auditor_finds_a_decision_and_a_visitor_verifies_the_permit(
        browser: Any, live: Any, world: World, artifacts: Path,  # noqa: F811
        app: Any, api: Any, session: Any,
        tmp_path: Path) -> None:
    from workflow.calendar import format_numeric
    from workflow.letters import verification_url
    from workflow.models import AuditEntry, Document, Permit, utcnow

    for old in artifacts.glob("audit-[0-9][0-9]-*.png"):
        old.unlink()
    app.config["PUBLIC_URL"] = live.base  # the QR code on the certificate names this server

    case_id = api.ready(address=OLD_ADDRESS)
    api.advance(case_id, ("submit", "ngo"), ("return_for_correction", "intake", "نشانی کامل نیست."))
    version = api.get(f"/api/v1/applications/{case_id}", "ngo").get_json()["version"]
    assert api.patch(f"/api/v1/applications/{case_id}", "ngo",
                     {"data": good_data(address=NEW_ADDRESS), "version": version}).status_code == 200
    api.advance(case_id, ("resubmit", "ngo"), *TO_AWAITING[1:])
    number = api.advance(case_id, ("approve", "director", APPROVAL)).get_json()["permit_number"]
    approval = session.scalar(select(AuditEntry).where(AuditEntry.case_id == case_id,
                                                        AuditEntry.action == "approve"))
    docs = {d.kind: d for d in session.scalars(select(Document).where(Document.case_id == case_id))}
    today = format_numeric(utcnow(), "fa")  # Persian digits, as an auditor might type them

    # -- 1. The auditor opens the console from the header ----------------------------------------
    story = AuditStory(browser, live, world, artifacts)
    page = story.page
    story.login("auditor")
    with page.expect_navigation():
        page.click("header nav a.audit-console")
    assert page.url.endswith("/audit/decisions")
    assert page.locator("table.decisions tr.entry").count() == 6  # submit … approve
    story.shot("console")

    # -- 2. ...and narrows it to the approval: organisation (Arabic letters), action, today ----
    page.fill("form.audit-filters input[name=org]", ORG_TYPED)
    page.select_option("form.audit-filters select[name=action]", "approve")
    page.fill("form.audit-filters input[name=from]", today)
    page.fill("form.audit-filters input[name=to]", today)
    with page.expect_navigation():
        page.click("form.audit-filters button[type=submit]")
    rows = page.locator("table.decisions tr.entry")
    assert rows.count() == 1, page.inner_text("main")
    row = rows.first
    assert row.get_attribute("data-entry") == str(approval.id)
    assert row.get_attribute("data-action") == "approve"
    assert ORG in row.inner_text() and APPROVAL in row.inner_text()
    assert f"#{str(case_id).translate(A2P)}" in row.inner_text()
    # The form comes back with the text as it was searched for: Persian letters.
    assert page.input_value("input[name=org]") == ORG_TYPED.replace("ي", "ی").replace("ك", "ک")
    assert "۱" in page.inner_text("p.found")
    story.shot("found-approval")
    console_url = page.url

    # -- 3. What the director saw: the corrected address, the founders, the statute's hash ------
    with page.expect_navigation():
        row.locator("a.snapshot-link").click()
    assert page.url.endswith(f"/audit/cases/{case_id}/entries/{approval.seq}")
    snapshot = page.locator("section.snapshot")
    assert NEW_ADDRESS in snapshot.locator("dd.field-address").inner_text()
    assert "زهرا احمدی" in snapshot.inner_text()
    assert docs["statute"].sha256 in snapshot.inner_text()
    assert page.locator("p.integrity.ok").count() == 1
    story.shot("snapshot-approval")
    # The step before (the expert's) is one click away; the correction's own shows the old address.
    page.goto(story.url(f"/audit/cases/{case_id}/entries/2"))
    assert "کوچه" not in page.locator("section.snapshot dd.field-address").inner_text()
    assert page.locator("strong.action").inner_text() != ""
    story.shot("snapshot-correction")

    # -- 4. The case's history: the chain verifies, the letters' hashes link to the letters -----
    page.goto(story.url(f"/audit/cases/{case_id}"))
    assert page.locator("section.chain.ok").count() == 1
    entry = page.locator(f"li#entry-{approval.seq}")
    assert approval.hash in entry.inner_text() and approval.prev_hash in entry.inner_text()
    downloaded: dict[str, Path] = {}
    for kind in ("certificate", "approval_letter"):
        letter = entry.locator(f"li.letter.{kind}")
        assert docs[kind].sha256 in letter.inner_text()
        with page.expect_download() as info:
            letter.locator("a.download").click()
        target = tmp_path / f"{kind}.pdf"
        info.value.save_as(target)
        assert hashlib.sha256(target.read_bytes()).hexdigest() == docs[kind].sha256 == \
            approval.details["documents"][kind]
        downloaded[kind] = target
    entry.scroll_into_view_if_needed()
    story.shot("timeline")

    # -- 5. The CSV of what was found ----------------------------------------------------------
    page.goto(console_url)
    with page.expect_download() as info:
        page.click("a.export")
    csv_path = tmp_path / "decisions.csv"
    info.value.save_as(csv_path)
    name = info.value.suggested_filename
    assert name.startswith("decisions-") and name.endswith(".csv")
    raw = csv_path.read_bytes()
    assert raw[:3] == b"\xef\xbb\xbf"
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert len(table) == 2, table  # the header and the one approval, as on the page
    assert table[1][0] == str(approval.id) and table[1][3] == ORG and table[1][4] == "کرمان"
    assert table[1][9] == "approve" and table[1][12] == APPROVAL and table[1][13] == approval.hash
    story.context.close()

    # -- 6. A visitor scans the certificate's QR code ------------------------------------------
    permit = session.scalar(select(Permit).where(Permit.number == number))
    with app.app_context():
        target = verification_url(permit)
    assert urlsplit(target).path == f"/permits/{number}"
    if not target.startswith(live.base):  # a PUBLIC_URL from elsewhere: the same path here
        target = live.url(urlsplit(target).path)
    visitor = story.new_context()
    vpage = visitor.new_page()
    vpage.goto(target)
    assert vpage.locator("header .user").count() == 0
    result = vpage.locator("section.verify-result")
    assert result.locator(".badge.active").count() == 1, vpage.inner_text("main")
    assert ORG in result.inner_text()
    assert number.translate(A2P) in result.inner_text() or number in result.inner_text()
    story.shot("visitor-verifies", vpage)
    visitor.close()

    # -- 7. The letters as pictures, to be looked at --------------------------------------------
    for kind, stem in (("certificate", "audit-certificate"), ("approval_letter", "audit-approval-letter")):
        png = first_page_png(downloaded[kind], artifacts, stem)
        assert_not_blank(png)
    assert (artifacts / "audit-certificate-1.png").exists()
    assert (artifacts / "audit-approval-letter-1.png").exists()
    assert len(story.shots) == 6, story.shots

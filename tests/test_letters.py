"""Decision letters and permit certificates: made once at the decision, stored, their hash in the
decision's audit entry (so the chain covers them), Persian text, a QR code to the public page.

PDF pages are turned into PNGs with pdftoppm (Debian's poppler-utils, installed by `make test`)
under tests/artifacts/, to be looked at.
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import CI
from tests.support import TO_AWAITING, Api
from workflow.models import AuditEntry, Document, Permit

PDFTOPPM = shutil.which("pdftoppm")


def stored(api: Api, doc: Document) -> Path:
    return Path(api.client.application.config["UPLOAD_DIR"]) / doc.stored_name


def decide(api: Api, action: str, comment: str | None = None) -> int:
    case_id = api.ready()
    api.advance(case_id, *TO_AWAITING)
    r = api.act(case_id, action, "director", comment)
    assert r.status_code == 200, r.get_json()
    return case_id


def documents(session: Any, case_id: int) -> dict[str, Document]:
    session.expire_all()
    return {d.kind: d for d in session.scalars(select(Document).where(Document.case_id == case_id))}


def render(pdf: Path, out: Path, stem: str) -> list[Path]:
    if PDFTOPPM is None:
        if CI:
            pytest.fail("pdftoppm (poppler-utils) is missing; make test installs it")
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    subprocess.run([PDFTOPPM, "-png", "-r", "80", str(pdf), str(out / stem)], check=True, timeout=60)
    return sorted(out.glob(f"{stem}*.png"))


def text_of(pdf: Path) -> str:
    tool = shutil.which("pdftotext")
    if tool is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    return subprocess.run([tool, "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout


def test_approval_issues_a_letter_and_a_certificate_recorded_in_the_audit_entry(
        app: Any, api: Api, session: Any, artifacts: Path) -> None:
    case_id = decide(api, "approve", "مدارک کامل است")
    docs = documents(session, case_id)
    assert {"statute", "approval_letter", "certificate"} <= set(docs)
    entry = session.scalar(select(AuditEntry).where(AuditEntry.case_id == case_id, AuditEntry.action == "approve"))
    recorded = entry.details["documents"]
    assert set(recorded) == {"approval_letter", "certificate"}
    for kind in ("approval_letter", "certificate"):
        content = stored(api, docs[kind]).read_bytes()
        assert content.startswith(b"%PDF-")
        assert hashlib.sha256(content).hexdigest() == recorded[kind] == docs[kind].sha256
    r = app.test_cli_runner().invoke(args=["audit", "verify", "--case", str(case_id)])
    assert r.exit_code == 0, r.output

    permit = session.scalar(select(Permit).where(Permit.case_id == case_id))
    certificate = stored(api, docs["certificate"])
    words = text_of(certificate)
    assert permit.number in words
    assert f"/permits/{permit.number}" in words  # the QR code's target, printed under it
    assert api.client.get(f"/permits/{permit.number}").status_code == 200
    shutil.copy(certificate, artifacts / "certificate.pdf")
    shutil.copy(stored(api, docs["approval_letter"]), artifacts / "approval-letter.pdf")
    pages = render(certificate, artifacts, "certificate") + render(stored(api, docs["approval_letter"]), artifacts,
                                                                   "approval-letter")
    assert pages and all(p.stat().st_size > 5000 for p in pages)


def test_rejection_letter_states_the_reason(api: Api, session: Any, artifacts: Path) -> None:
    reason = "اساسنامه با قانون فعالیت سازمان‌های مردم‌نهاد مطابقت ندارد"
    case_id = decide(api, "reject", reason)
    docs = documents(session, case_id)
    assert "rejection_letter" in docs and "certificate" not in docs and "approval_letter" not in docs
    entry = session.scalar(select(AuditEntry).where(AuditEntry.case_id == case_id, AuditEntry.action == "reject"))
    assert entry.details == {"documents": {"rejection_letter": docs["rejection_letter"].sha256}}
    letter = stored(api, docs["rejection_letter"])
    shutil.copy(letter, artifacts / "rejection-letter.pdf")
    assert render(letter, artifacts, "rejection-letter")


def test_the_same_letter_is_not_made_twice(api: Api, session: Any) -> None:
    """One decision, one letter: reading the case or its history again makes nothing new."""
    case_id = decide(api, "approve")
    before = len(documents(session, case_id))
    api.get(f"/api/v1/applications/{case_id}", "ngo")
    api.get(f"/api/v1/applications/{case_id}/history", "auditor")
    assert len(documents(session, case_id)) == before

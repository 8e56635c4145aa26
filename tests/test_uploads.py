"""Uploads: statutes (PDF) and receipts (PDF, JPEG, PNG) are judged by their content, kept under
generated names without execute permission, and served back by id as attachments of the type they
were accepted as. Programs, scripts, archives (also renamed, or hidden behind a document), image
bombs, damaged files and files over the limit are refused with a clear message, and a refusal
stores nothing: no row, no file.
"""
from __future__ import annotations

import json
import os
import stat
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask_babel import force_locale
from sqlalchemy import func, select, text

from tests import files
from tests.support import PDF, Api, Web
from tests.test_grants import funded, open_request, to_decision  # noqa: F401 (funded: a fixture)
from workflow import uploads
from workflow.errors import Invalid
from workflow.models import Document, Tranche

PROGRAM = "This file is a program or a script, not a document; it was not accepted."
ARCHIVE = "Compressed archives (such as ZIP) are not accepted; send the document itself."
DAMAGED_PDF = "This PDF is damaged or incomplete; save it again and send it once more."
DAMAGED_IMAGE = "This image is damaged or incomplete; save it again and send it once more."
TOO_MANY_PIXELS = "The image is too large: at most 50 megapixels; send a smaller copy."
NOT_PDF = "The statute must be a PDF file."
NOT_RECEIPT = "A receipt must be a PDF, JPEG or PNG file."
EMPTY = "The file is empty."

# (what it is, its content, the name it comes under, the message it gets as a statute)
REFUSED_STATUTES = [
    ("ELF executable", files.ELF, "statute.pdf", PROGRAM),
    ("Windows executable", files.WINDOWS_EXE, "statute.pdf", PROGRAM),
    ("shell script", files.SHELL_SCRIPT, "statute.pdf", PROGRAM),
    ("zip bomb", files.zip_bomb(), "statute.zip", ARCHIVE),
    ("zip bomb renamed", files.zip_bomb(), "statute.pdf", ARCHIVE),
    ("PDF with a ZIP behind it", files.PDF_WITH_ZIP, "statute.pdf", ARCHIVE),
    ("gzip", files.GZIP, "statute.pdf", ARCHIVE),
    ("truncated PDF", files.PDF_TRUNCATED, "statute.pdf", DAMAGED_PDF),
    ("PDF with data after its end", files.PDF_WITH_TAIL, "statute.pdf", DAMAGED_PDF),
    ("an image", files.png(), "statute.pdf", NOT_PDF),
    ("HTML", files.HTML, "statute.pdf", NOT_PDF),
    ("nothing", b"", "statute.pdf", EMPTY),
]
REFUSED_RECEIPTS = [
    ("PNG decompression bomb", files.png(declared=(100_000, 100_000)), "receipt.png", TOO_MANY_PIXELS),
    ("JPEG declaring 60,000 × 60,000", files.jpeg(declared=(60_000, 60_000)), "receipt.jpg", TOO_MANY_PIXELS),
    ("PNG with a broken CRC", files.PNG_BAD_CRC, "receipt.png", DAMAGED_IMAGE),
    ("truncated PNG", files.png()[:-12], "receipt.png", DAMAGED_IMAGE),
    ("zip bomb renamed", files.zip_bomb(), "receipt.png", ARCHIVE),
    ("Windows executable", files.WINDOWS_EXE, "receipt.jpg", PROGRAM),
    ("HTML", files.HTML, "receipt.pdf", NOT_RECEIPT),
]


@pytest.fixture(scope="module")
def checker() -> Flask:
    """An app for the checks alone: they read the configuration and the catalogue, no database."""
    from workflow import create_app
    from workflow.config import TestConfig

    return create_app(TestConfig(DATABASE_URL="sqlite://"))


def stored_files(app: Flask) -> set[str]:
    folder = Path(app.config["UPLOAD_DIR"])
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


def count(session: Any, **where: Any) -> int:
    session.expire_all()
    return session.scalar(select(func.count(Document.id)).filter_by(**where)) or 0


# -- the checks themselves --------------------------------------------------------------------------

def test_accepted_types_are_known_by_content(checker: Flask) -> None:
    with checker.test_request_context():
        assert uploads.check(PDF, uploads.STATUTE, field="statute", wrong_type="x") is uploads.PDF
        for content, kind in ((PDF, uploads.PDF), (files.png(), uploads.PNG), (files.jpeg(), uploads.JPEG),
                              (files.png(5000, 1, declared=(5000, 1)), uploads.PNG)):
            assert uploads.check(content, uploads.RECEIPT, field="receipts", wrong_type="x") is kind


@pytest.mark.parametrize("what, content, name, message", REFUSED_STATUTES + REFUSED_RECEIPTS,
                         ids=[r[0] for r in REFUSED_STATUTES + REFUSED_RECEIPTS])
def test_the_checks_refuse_with_a_clear_message(checker: Flask, what: str, content: bytes, name: str,
                                                message: str) -> None:
    allowed, wrong = (uploads.STATUTE, NOT_PDF) if name.startswith("statute") else (uploads.RECEIPT, NOT_RECEIPT)
    with checker.test_request_context(), force_locale("en"):
        with pytest.raises(Invalid) as refused:
            uploads.check(content, allowed, field="file", wrong_type=wrong)
    assert refused.value.message == message and refused.value.fields == {"file": message}, what


def test_names_are_shown_never_used_as_paths() -> None:
    assert uploads.safe_name("../../etc/passwd.pdf", "d") == "passwd.pdf"
    assert uploads.safe_name("..\\..\\boot.ini", "d") == "boot.ini"
    assert uploads.safe_name("invoice\u202egnp.exe", "d") == "invoicegnp.exe"  # no right-to-left override
    assert uploads.safe_name("اساس\u200cنامه\x00.pdf", "d") == "اساس\u200cنامه.pdf"  # ZWNJ kept, NUL gone
    assert uploads.safe_name("   ", "statute.pdf") == "statute.pdf"
    assert len(uploads.safe_name("a" * 1000 + ".pdf", "d")) == uploads.NAME_LENGTH


# -- statutes through the API and the form ------------------------------------------------------------

def test_api_refuses_bad_statutes_and_stores_nothing(app: Flask, api: Api, session: Any) -> None:
    case = api.create()
    before = stored_files(app)
    for what, content, name, message in REFUSED_STATUTES:
        r = api.client.post(f"/api/v1/applications/{case['id']}/documents", headers={**api.headers("ngo"),
                            "Accept-Language": "en"}, data={"file": (BytesIO(content), name)},
                            content_type="multipart/form-data")
        assert r.status_code == 422, (what, r.get_json())
        assert r.get_json()["error"] == {"code": "invalid", "message": message, "fields": {"statute": message}}, what
        assert count(session, case_id=case["id"]) == 0 and stored_files(app) == before, what


def test_the_form_refuses_an_executable_statute_with_its_message(app: Flask, web: Web, api: Api,
                                                                  session: Any) -> None:
    case = api.create()
    url = f"/portal/applications/{case['id']}/edit"
    web.login("ngo")
    web.client.get("/lang/fa")
    html = web.client.get(url).get_data(as_text=True)
    data = {"csrf_token": web.csrf(html), "version": str(case["version"]), "save": "1",
            "statute": (BytesIO(files.ELF), "اساسنامه.pdf")}
    before = stored_files(app)
    r = web.client.post(url, data=data, content_type="multipart/form-data")
    page = r.get_data(as_text=True)
    assert r.status_code == 422
    with app.test_request_context(), force_locale("fa"):
        from flask_babel import gettext

        persian = gettext(PROGRAM)
    assert persian != PROGRAM and persian in page  # said in Persian, beside the field
    assert count(session, case_id=case["id"]) == 0 and stored_files(app) == before


def test_size_limit_is_the_bytes_read(app: Flask, api: Api, session: Any) -> None:
    case = api.create()
    app.config["MAX_UPLOAD_BYTES"] = len(PDF) - 1  # the request limit stays: the file itself is over
    r = api.client.post(f"/api/v1/applications/{case['id']}/documents",
                        headers={**api.headers("ngo"), "Accept-Language": "en"},
                        data={"file": (BytesIO(PDF), "statute.pdf")}, content_type="multipart/form-data")
    assert r.status_code == 422 and r.get_json()["error"]["fields"]["statute"].startswith("The file is larger than")
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    r = api.client.post(f"/api/v1/applications/{case['id']}/documents", headers=api.headers("ngo"),
                        data={"file": (BytesIO(b"%PDF-1.4\n" + b"0" * 100_000), "statute.pdf")},
                        content_type="multipart/form-data")
    assert r.status_code == 413 and r.get_json()["error"]["code"] == "too_large"
    assert count(session, case_id=case["id"]) == 0 and stored_files(app) == set()


# -- what is kept and how it is served -----------------------------------------------------------------

def test_a_statute_is_kept_under_a_generated_name_and_served_as_an_attachment(app: Flask, api: Api, web: Web,
                                                                              session: Any) -> None:
    case = api.create()
    r = api.upload(case["id"], name="../../etc/\u202efdp.exe")
    assert r.status_code == 201, r.get_json()
    doc = session.get(Document, r.get_json()["id"])
    assert doc.original_name == "fdp.exe" and doc.content_type == "application/pdf"
    assert uploads.STORED_NAME.fullmatch(doc.stored_name) and doc.stored_name.endswith(".pdf")
    path = Path(app.config["UPLOAD_DIR"]) / doc.stored_name
    assert path.read_bytes() == PDF and not stat.S_IMODE(os.stat(path).st_mode) & 0o111  # never executable

    web.login("ngo")
    r = web.client.get(f"/cases/{case['id']}/documents/{doc.id}")
    assert r.status_code == 200 and r.data == PDF
    assert r.mimetype == "application/pdf" and r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Content-Disposition"].startswith("attachment;") and "fdp.exe" in r.headers["Content-Disposition"]
    assert "sandbox" in r.headers["Content-Security-Policy"]


def test_a_row_pointing_elsewhere_is_never_served(app: Flask, api: Api, web: Web, session: Any) -> None:
    """Only names the store made are opened: a row changed to point at another file is a 404."""
    case = api.create()
    doc_id = api.upload(case["id"]).get_json()["id"]
    (Path(app.config["UPLOAD_DIR"]).parent / "secret.pdf").write_bytes(PDF)  # what "../secret.pdf" names
    web.login("ngo")
    for name in ("../secret.pdf", "/etc/passwd", "0" * 32 + ".exe", "0" * 32 + ".pdf"):
        session.execute(text("UPDATE documents SET stored_name = :n WHERE id = :i"), {"n": name, "i": doc_id})
        session.commit()
        assert web.client.get(f"/cases/{case['id']}/documents/{doc_id}").status_code == 404, name


# -- receipts: a refused report keeps nothing, not even the good receipts sent with it ------------------

def _released(api: Api, funded: dict[str, Any]) -> int:  # noqa: F811
    cid = open_request(api, funded["programme"]["id"])["id"]
    to_decision(api, cid)
    assert api.act(cid, "approve", "director").status_code == 200
    assert api.post(f"/api/v1/grants/{cid}/tranches/1/release", "finance").status_code == 200
    return cid


LINES = [{"item": "کتاب", "budgeted_rials": 100_000_000, "spent_rials": 100_000_000}]


def _report(api: Api, cid: int, receipts: list[tuple[bytes, str]], lines: Any = None) -> Any:
    data = {"lines": json.dumps(LINES if lines is None else lines),
            "receipts": [(BytesIO(content), name) for content, name in receipts]}
    return api.client.post(f"/api/v1/grants/{cid}/tranches/1/report", headers={**api.headers("ngo"),
                           "Accept-Language": "en"}, data=data, content_type="multipart/form-data")


def test_receipts_refused_leave_nothing_accepted_are_served_as_their_type(  # noqa: F811
        app: Flask, api: Api, web: Web, funded: dict[str, Any], session: Any) -> None:
    cid = _released(api, funded)
    before = stored_files(app)
    for what, content, name, message in REFUSED_RECEIPTS:
        # A good receipt first: it is written before the bad one is refused, and must go with it.
        r = _report(api, cid, [(PDF, "invoice.pdf"), (content, name)])
        assert r.status_code == 422, (what, r.get_json())
        assert r.get_json()["error"]["fields"] == {"receipts": message}, what
        assert count(session, kind="receipt") == 0 and stored_files(app) == before, what
    # Good receipts with lines the report refuses: the receipts go too.
    r = _report(api, cid, [(files.png(), "r.png"), (files.jpeg(), "r.jpg")], lines=[{"item": "x"}])
    assert r.status_code == 422 and count(session, kind="receipt") == 0 and stored_files(app) == before

    # The report's form: a bomb among the receipts is named beside the field; nothing is kept.
    web.login("ngo")
    web.client.get("/lang/en")
    html = web.client.get(f"/cases/{cid}").get_data(as_text=True)
    version = api.get(f"/api/v1/applications/{cid}", "ngo").get_json()["version"]
    r = web.client.post(f"/cases/{cid}/tranches/1/report", content_type="multipart/form-data", data={
        "csrf_token": web.csrf(html), "report-version": str(version), "report-lines-0-item": "books",
        "report-lines-0-budgeted": "10,000,000", "report-lines-0-spent": "10,000,000",
        "report-receipts": [(BytesIO(PDF), "invoice.pdf"), (BytesIO(files.png(declared=(90_000, 90_000))), "b.png")]})
    assert r.status_code == 422 and TOO_MANY_PIXELS in r.get_data(as_text=True)
    assert count(session, kind="receipt") == 0 and stored_files(app) == before

    r = _report(api, cid, [(files.png(), "photo.png"), (files.jpeg(), "scan.jpeg"), (PDF, "invoice.pdf")])
    assert r.status_code == 200, r.get_json()
    assert count(session, kind="receipt") == 3 and len(stored_files(app) - before) == 3
    assert session.scalar(select(Tranche.state).where(Tranche.case_id == cid, Tranche.n == 1)) == "reported"
    types = {"photo.png": "image/png", "scan.jpeg": "image/jpeg", "invoice.pdf": "application/pdf"}
    for doc in session.scalars(select(Document).where(Document.kind == "receipt")):
        r = web.client.get(f"/cases/{cid}/receipts/{doc.id}")
        assert r.status_code == 200 and r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.mimetype == doc.content_type == types[doc.original_name]
        assert r.headers["Content-Disposition"].startswith("attachment;")
        assert doc.stored_name.endswith({"image/png": ".png", "image/jpeg": ".jpg", "application/pdf": ".pdf"}[r.mimetype])


def test_good_statute_then_failed_commit_removes_the_file(app: Flask, api: Api, session: Any) -> None:
    """The store's promise on its own: a file written in a transaction that rolls back is deleted."""
    from workflow import db
    from workflow.models import Case

    case_id = api.create()["id"]
    with app.test_request_context():
        s = db.new_session()
        case = s.get(Case, case_id)
        kept = uploads.write(s, PDF, ".pdf")
        s.commit()
        dropped = uploads.write(s, PDF, ".pdf")
        assert (Path(app.config["UPLOAD_DIR"]) / dropped).exists()
        s.rollback()
        s.close()
        assert case is not None
    assert stored_files(app) == {kept}


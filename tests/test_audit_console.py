"""The auditor console: filters, jurisdiction, the CSV export, the case timeline and its snapshots.

The world: in Kerman, case A (org1) is returned for a fuller address, corrected, and approved
(letter and certificate issued); case B (org3, Sirjan) is rejected; case D (a fourth organisation,
in Rafsanjan) was submitted
and accepted on two sides of a Tehran midnight in 1403. In Qazvin, case C is accepted. A national
auditor (no province) is added to the world's provincial staff.
"""
from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pytest
from sqlalchemy import select, text

from tests.support import PASSWORD, TO_AWAITING, Api, Web, World, good_data
from workflow import db
from workflow.audit_chain import moment
from workflow.calendar import format_datetime
from workflow.models import AuditEntry, Document, User
from workflow.services import accounts, audit_search

OLD_ADDRESS = "کرمان، خیابان شریعتی"
NEW_ADDRESS = "کرمان، خیابان شریعتی، کوچه ۵، پلاک ۱۲"
CORRECTION = "نشانی کامل نیست؛ کوچه و پلاک را بنویسید."
APPROVAL = "مدارک کامل و مؤسسان واجد شرایط‌اند."
REJECTION = "اساسنامه با قانون مطابقت ندارد."
RAFSANJAN = "انجمن فرهنگی جوانان رفسنجان"
# 1403/05/10 23:30 and 1403/05/11 00:30 in Tehran (UTC+3:30): one Jalali day apart in the office,
# the same UTC day (a filter on UTC dates would put both on the 10th).
LATE_EVENING = datetime(2024, 7, 31, 20, 0, tzinfo=timezone.utc)
AFTER_MIDNIGHT = datetime(2024, 7, 31, 21, 0, tzinfo=timezone.utc)
P2A = str.maketrans("۰۱۲۳۴۵۶۷۸۹٬", "0123456789,")


@dataclass
class Cases:
    a: int
    b: int
    c: int
    d: int


@pytest.fixture
def cases(app: Any, api: Api, world: World) -> Cases:
    with app.test_request_context():
        with db.new_session() as s:
            kerman = accounts.find_province(s, "kerman")
            org4 = accounts.create_organization(s, name=RAFSANJAN, province=kerman,
                                                county=accounts.find_county(s, kerman, "Rafsanjan"))
            r_ngo = accounts.create_user(s, email=world.email("r_ngo"), password=PASSWORD, name="r_ngo",
                                         roles=["applicant"], organizations=[org4])
            national = accounts.create_user(s, email=world.email("national"), password=PASSWORD,
                                            name="national",
                                            roles=["auditor"])
            s.commit()
            world.orgs["org4"], world.users["r_ngo"], world.users["national"] = org4.id, r_ngo.id, national.id
    a = api.ready(address=OLD_ADDRESS)
    api.advance(a, ("submit", "ngo"), ("return_for_correction", "intake", CORRECTION))
    version = api.get(f"/api/v1/applications/{a}", "ngo").get_json()["version"]
    body = {"data": good_data(address=NEW_ADDRESS), "version": version}
    r = api.patch(f"/api/v1/applications/{a}", "ngo", body)
    assert r.status_code == 200, r.get_json()
    api.advance(a, ("resubmit", "ngo"), ("accept", "intake"), ("recommend_approval", "expert"),
                ("approve", "director", APPROVAL))
    b = api.ready("s_ngo", "org3", name="جمعیت زنان کارآفرین سیرجان", county="Sirjan")
    api.advance(b, *[(action, "s_ngo" if who == "ngo" else who) for action, who in TO_AWAITING],
                ("reject", "director", REJECTION))
    c = api.ready("q_ngo", "org2", name="مجمع خیرین اشتغال قزوین", county="Qazvin")
    api.advance(c, ("submit", "q_ngo"), ("accept", "q_intake"))
    d = api.ready("r_ngo", "org4", name=RAFSANJAN, county="Rafsanjan")
    with app.test_request_context():
        from workflow import engine

        with db.new_session() as s:
            applicant, intake = s.get(User, world.users["r_ngo"]), s.get(User, world.users["intake"])
            case = engine.get_case(s, applicant, d)
            engine.fire(s, case, "submit", applicant, version=case.version, now=LATE_EVENING)
            s.commit()
            engine.fire(s, case, "accept", intake, version=case.version, now=AFTER_MIDNIGHT)
            s.commit()
    return Cases(a, b, c, d)


def rows(html: str) -> list[dict[str, str]]:
    """The console's result rows: entry id, case and action of each."""
    return [{"entry": m[0], "case": m[1], "action": m[2]}
            for m in re.findall(r'<tr class="entry" data-entry="(\d+)" data-case="(\d+)" '
                                r'data-action="([a-z_]+)"', html)]


def search(web: Web, **args: str) -> list[dict[str, str]]:
    r = web.client.get("/audit/decisions", query_string=args)
    assert r.status_code == 200, (args, r.status_code)
    return rows(r.get_data(as_text=True))


def found(html: str) -> int:
    """The number the page says it found (Persian digits)."""
    m = re.search(r'<p class="found">\s*(\S+)', html)
    assert m, html
    return int(m.group(1).translate(P2A).replace(",", ""))


def entries_of(session: Any, *case_ids: int) -> set[str]:
    return {str(e.id) for e in session.scalars(select(AuditEntry).where(AuditEntry.case_id.in_(case_ids)))}


# -- filters -----------------------------------------------------------------------------------

def test_every_filter_narrows_the_results(web: Web, cases: Cases, session: Any) -> None:
    web.login("auditor")
    everything = search(web)
    assert {r["entry"] for r in everything} == entries_of(session, cases.a, cases.b, cases.d)
    ids = [int(r["entry"]) for r in everything]
    assert ids == sorted(ids, reverse=True)

    # Organisation: Arabic kaf and yeh, other spacing, a fragment: the same organisation.
    for typed in ("كودكان كار", "کودکان‌کار", "حمايت  از", "  انجمن حمایت از کودکان کار کرمان "):
        assert {r["case"] for r in search(web, org=typed)} == {str(cases.a)}, typed
    assert {r["case"] for r in search(web, org="انجمن")} == {str(cases.a), str(cases.d)}
    assert {r["case"] for r in search(web, org="سيرجان")} == {str(cases.b)}
    assert search(web, org="قزوین") == []  # Qazvin's organisation is outside Kerman's jurisdiction

    # Reviewer: by name, by email; LIKE's wildcards are plain characters.
    by_director = search(web, reviewer="director")
    assert {(r["case"], r["action"]) for r in by_director} == \
        {(str(cases.a), "approve"), (str(cases.b), "reject")}
    assert {r["action"] for r in search(web, reviewer="EXPERT@test.ir")} == {"recommend_approval"}
    # "_" only in the names that have one (s_ngo, r_ngo), not any character as LIKE would have it.
    assert {(r["case"], r["action"]) for r in search(web, reviewer="_")} == \
        {(str(cases.b), "submit"), (str(cases.d), "submit")}
    assert search(web, reviewer="%") == []

    # Action, state (where the step led, or where the case is now), kind.
    assert [(r["case"], r["action"]) for r in search(web, action="approve")] == [(str(cases.a), "approve")]
    assert [r["action"] for r in search(web, state="needs_correction")] == ["return_for_correction"]
    now_approved = search(web, state="approved", state_of="case")
    assert {r["entry"] for r in now_approved} == entries_of(session, cases.a) and len(now_approved) == 6
    now_rejected = search(web, state="rejected", state_of="case")
    assert {r["entry"] for r in now_rejected} == entries_of(session, cases.b)
    assert len(search(web, kind="permit_issuance")) == len(everything)
    assert search(web, kind="grant_request") == []
    assert {r["case"] for r in search(web, case=f"#{cases.b}")} == {str(cases.b)}
    persian = str(cases.b).translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
    assert {r["case"] for r in search(web, case=persian)} \
        == {str(cases.b)}

    # Filters combine.
    assert [r["action"] for r in search(web, org="انجمن", reviewer="intake", state="under_review")] == \
        ["accept", "accept"]


def test_jalali_range_follows_the_tehran_day(web: Web, cases: Cases) -> None:
    web.login("auditor")
    on_10th = search(web, **{"from": "1403/05/10", "to": "1403/05/10"})
    assert [(r["case"], r["action"]) for r in on_10th] == [(str(cases.d), "submit")]
    on_11th = search(web, **{"from": "۱۴۰۳/۰۵/۱۱", "to": "1403-5-11"})  # Persian digits; dashes, no zeros
    assert [(r["case"], r["action"]) for r in on_11th] == [(str(cases.d), "accept")]
    month = search(web, **{"from": "1403/05/01", "to": "۱۴۰۳/۰۵/۳۱"})
    assert {r["action"] for r in month} == {"submit", "accept"} and len(month) == 2
    only_start = search(web, **{"from": "1403/05/11"})
    assert (str(cases.d), "submit") not in {(r["case"], r["action"]) for r in only_start}
    assert len(only_start) == len(search(web)) - 1
    assert [r["action"] for r in search(web, to="1403/05/10")] == ["submit"]


def test_the_page_shows_jalali_times_and_the_count(web: Web, cases: Cases, session: Any) -> None:
    web.login("auditor")
    status, html = web.page("/audit/decisions?action=approve")
    assert status == 200
    entry = session.scalar(select(AuditEntry).where(AuditEntry.case_id == cases.a,
                                                     AuditEntry.action == "approve"))
    assert format_datetime(entry.at, "fa") in html
    assert found(html) == 1
    assert "انجمن حمایت از کودکان کار کرمان" in html and APPROVAL in html
    assert f'href="/audit/cases/{cases.a}#entry-{entry.seq}"' in html
    assert f'href="/audit/cases/{cases.a}/entries/{entry.seq}"' in html
    # The nav leads here.
    assert 'class="audit-console" href="/audit/decisions"' in html


def test_pages_count_and_cap(web: Web, cases: Cases, monkeypatch: pytest.MonkeyPatch) -> None:
    web.login("auditor")
    expected = [r["entry"] for r in search(web, org="انجمن")]  # cases A and D: 8 entries
    assert len(expected) == 8
    monkeypatch.setattr(audit_search, "PAGE", 3)
    seen: list[str] = []
    url = "/audit/decisions?org=%D8%A7%D9%86%D8%AC%D9%85%D9%86"  # the same filter, page by page
    while url:
        status, html = web.page(url)
        assert status == 200
        page = rows(html)
        assert 0 < len(page) <= 3
        seen += [r["entry"] for r in page]
        older = re.search(r'<a class="older" href="([^"]+)"', html)
        url = older.group(1).replace("&amp;", "&") if older else ""
        assert not older or "org=" in url  # the filters travel with the keyset
    assert seen == expected  # every entry once, newest first, across three pages
    assert found(web.page(url or "/audit/decisions?org=انجمن")[1]) == 8
    monkeypatch.setattr(audit_search, "COUNT_CAP", 5)
    html = web.page("/audit/decisions")[1]
    assert "۵" in re.search(r'<p class="found">(.*?)</p>', html, re.S).group(1)
    assert len(rows(html)) == 3


def test_the_count_agrees_with_the_rows_under_every_kind_filter(web: Web, cases: Cases, api: Api,
                                                                 session: Any) -> None:
    """A kind filter is counted from the cases (services/audit_search.count), the other filters
    from the entries: both must say what the page lists, drafts left out."""
    withdrawn = api.ready("s_ngo", "org3", name="جمعیت زنان کارآفرین سیرجان", county="Sirjan")
    api.advance(withdrawn, ("withdraw", "s_ngo"))  # never submitted: no staff's to read
    assert entries_of(session, withdrawn)
    for who in ("auditor", "national", "director"):
        web.login(who)
        for args in ({}, {"kind": "permit_issuance"}, {"kind": "grant_request"},
                     {"kind": "permit_issuance", "action": "approve"},
                     {"kind": "permit_issuance", "state": "under_review"},
                     {"kind": "permit_issuance", "state": "rejected", "state_of": "case"},
                     {"kind": "permit_issuance", "org": "انجمن", "reviewer": "intake"},
                     {"kind": "permit_issuance", "case": str(cases.b)},
                     {"action": "accept"}, {"state": "needs_correction"}):
            r = web.client.get("/audit/decisions", query_string=args)
            listed = rows(r.get_data(as_text=True))
            assert found(r.get_data(as_text=True)) == len(listed), (who, args)
            assert str(withdrawn) not in {row["case"] for row in listed}
        assert found(web.page("/audit/decisions?kind=permit_issuance")[1]) == len(search(web)) > 0


# -- jurisdiction and who may read --------------------------------------------------------------

def test_jurisdiction(web: Web, cases: Cases, session: Any) -> None:
    web.login("national")
    assert {r["case"] for r in search(web)} == {str(cases.a), str(cases.b), str(cases.c), str(cases.d)}
    assert web.page(f"/audit/cases/{cases.c}")[0] == 200

    web.login("q_director")
    assert {r["case"] for r in search(web)} == {str(cases.c)}
    assert search(web, org="كودكان") == []
    for url in (f"/audit/cases/{cases.a}", f"/audit/cases/{cases.a}/entries/1"):
        assert web.page(url)[0] == 404
    csv_rows = list(csv.reader(io.StringIO(web.client.get("/audit/decisions.csv").get_data(as_text=True))))
    assert {row[1] for row in csv_rows[1:]} == {str(cases.c)}

    web.login("auditor")
    assert web.page(f"/audit/cases/{cases.c}")[0] == 404
    assert web.page(f"/audit/cases/{cases.c}/entries/1")[0] == 404
    web.login("director")
    assert {r["case"] for r in search(web)} == {str(cases.a), str(cases.b), str(cases.d)}


def test_others_are_refused(web: Web, cases: Cases) -> None:
    for who in ("ngo", "intake", "expert", "finance"):
        web.login(who)
        for url in ("/audit/decisions", "/audit/decisions.csv", f"/audit/cases/{cases.a}",
                    f"/audit/cases/{cases.a}/entries/1"):
            r = web.client.get(url)
            assert r.status_code == 403, (who, url, r.status_code)
            assert "کودکان" not in r.get_data(as_text=True)
        assert 'class="audit-console"' not in web.page("/notifications/")[1]


def test_visitors_are_sent_to_sign_in(client: Any, cases: Cases) -> None:
    for url in ("/audit/decisions", "/audit/decisions.csv", f"/audit/cases/{cases.a}"):
        r = client.get(url)
        assert r.status_code == 302 and "/login" in r.headers["Location"]


# -- the CSV export ----------------------------------------------------------------------------

def test_csv_export(web: Web, cases: Cases, session: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    web.login("auditor")
    args = {"org": "كودكان"}
    html = web.client.get("/audit/decisions", query_string=args).get_data(as_text=True)
    export = re.search(r'<a class="button export" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert export.startswith("/audit/decisions.csv?") and "org=" in export
    r = web.client.get(export)
    assert r.status_code == 200
    assert r.mimetype == "text/csv" and "attachment" in r.headers["Content-Disposition"]
    raw = r.get_data()
    assert raw.startswith("\ufeff".encode())  # EF BB BF: spreadsheets then read UTF-8
    parsed = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    header, body = parsed[0], parsed[1:]
    assert len(header) == 14 and all(len(row) == 14 for row in body)
    assert len(body) == found(html) == len(rows(html))
    assert [row[0] for row in body] == [row["entry"] for row in rows(html)]

    approve = next(row for row in body if row[9] == "approve")
    entry = session.scalar(select(AuditEntry).where(AuditEntry.case_id == cases.a,
                                                     AuditEntry.action == "approve"))
    assert approve[:5] == [str(entry.id), str(cases.a), "permit_issuance", "انجمن حمایت از کودکان کار کرمان",
                           "کرمان"]
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2} \d{2}:\d{2}", approve[5])
    assert approve[6] == moment(entry.at)
    assert approve[7:] == ["director", "director", "approve", "awaiting_decision", "approved", APPROVAL,
                           entry.hash]
    correction = next(row for row in body if row[9] == "return_for_correction")
    assert correction[12] == CORRECTION

    # The day range's rows carry the Tehran date.
    day = web.client.get("/audit/decisions.csv", query_string={"from": "1403/05/10", "to": "1403/05/10"})
    body = list(csv.reader(io.StringIO(day.get_data(as_text=True).lstrip("\ufeff"))))[1:]
    assert [(row[5], row[9]) for row in body] == [("1403/05/10 23:30", "submit")]

    # Past the cap the file says it stopped.
    monkeypatch.setattr(audit_search, "EXPORT_CAP", 2)
    body = list(csv.reader(io.StringIO(web.client.get("/audit/decisions.csv").get_data(as_text=True))))[1:]
    assert len(body) == 3 and body[2][0] == "" and "۲" in body[2][12]

    # Filters it cannot read: no file of something else, the page with the message.
    r = web.client.get("/audit/decisions.csv", query_string={"from": "1403/13/01"})
    assert r.status_code == 422 and r.mimetype == "text/html"


# -- timeline and snapshots --------------------------------------------------------------------

def test_timeline_shows_hashes_details_and_the_chain(web: Web, cases: Cases, session: Any, app: Any) -> None:
    web.login("auditor")
    status, html = web.page(f"/audit/cases/{cases.a}")
    assert status == 200
    assert 'class="card chain ok"' in html
    history = session.scalars(select(AuditEntry).where(AuditEntry.case_id == cases.a)
                              .order_by(AuditEntry.seq)).all()
    assert len(history) == 6
    for e in history:
        assert f'id="entry-{e.seq}"' in html and e.hash in html
        assert f'href="/audit/cases/{cases.a}/entries/{e.seq}"' in html
    assert html.count(history[0].hash) == 2  # its own, and the next one's previous hash
    approve = history[-1]
    docs = {d.kind: d for d in session.scalars(select(Document).where(Document.case_id == cases.a))}
    for kind in ("approval_letter", "certificate"):
        assert approve.details["documents"][kind] == docs[kind].sha256
        link = f'href="/cases/{cases.a}/documents/{docs[kind].id}"'
        assert link in html and docs[kind].sha256 in html
        r = web.client.get(f"/cases/{cases.a}/documents/{docs[kind].id}")
        assert r.status_code == 200 and hashlib.sha256(r.get_data()).hexdigest() == docs[kind].sha256

    # A head that no longer names the last entry: the page says the history does not verify.
    with app.app_context():
        with db.engine().begin() as conn:
            conn.execute(text("UPDATE cases SET head_hash = :h WHERE id = :id"),
                         {"h": "0" * 64, "id": cases.a})
    status, html = web.page(f"/audit/cases/{cases.a}")
    assert status == 200 and 'class="card chain broken"' in html


def test_grant_figures_in_the_history(web: Web, api: Api) -> None:
    """An entry's recorded figures (score, amount, tranches) are shown with the entry."""
    from tests.test_grants import create_programme, issue_permit, open_request, to_decision

    issue_permit(api)
    case_id = open_request(api, create_programme(api)["id"])["id"]
    to_decision(api, case_id, amount=900_000_000, tranches=[500_000_000, 400_000_000])
    web.login("auditor")
    html = web.page(f"/audit/cases/{case_id}")[1]
    proposal = html.split('data-action="propose_amount"')[1]
    assert "۹۰٬۰۰۰٬۰۰۰ تومان" in proposal and 'class="tranche-amounts"' in proposal
    assert "۵۰٬۰۰۰٬۰۰۰ تومان" in proposal and "۴۰٬۰۰۰٬۰۰۰ تومان" in proposal
    score = html.split('data-action="recommend_approval"')[1].split('data-action="propose_amount"')[0]
    assert "۸۲" in score
    assert [r["action"] for r in search(web, kind="grant_request")] == \
        ["propose_amount", "recommend_approval", "accept", "submit"]


def test_snapshot_shows_what_was_seen_then(web: Web, cases: Cases, session: Any) -> None:
    web.login("auditor")
    history = {e.action: e for e in session.scalars(select(AuditEntry).where(AuditEntry.case_id == cases.a))}

    # The clerk who returned it saw the short address...
    status, html = web.page(f"/audit/cases/{cases.a}/entries/{history['return_for_correction'].seq}")
    assert status == 200
    address = re.search(r'<dd class="[^"]*field-address">(.*?)</dd>', html, re.S).group(1)
    assert OLD_ADDRESS in address and "کوچه" not in address
    assert 'class="integrity ok"' in html and history["return_for_correction"].snapshot_hash in html

    # ...the NGO resubmitted the corrected one, marked as changed since the entry before.
    html = web.page(f"/audit/cases/{cases.a}/entries/{history['resubmit'].seq}")[1]
    address = re.search(r'<dd class="([^"]*)field-address">(.*?)</dd>', html, re.S)
    assert "کوچه ۵، پلاک ۱۲" in address.group(2) and "changed" in address.group(1)
    assert re.search(r'<dd class="[^"]*field-name">', html) and 'changed field-name' not in html

    # The director saw the statute (with its hash); the letters came with the decision itself.
    html = web.page(f"/audit/cases/{cases.a}/entries/{history['approve'].seq}")[1]
    statute = session.scalar(select(Document).where(Document.case_id == cases.a, Document.kind == "statute"))
    assert statute.sha256 in html and f'/cases/{cases.a}/documents/{statute.id}' in html
    assert "زهرا احمدی" in html and "۰۴۹۹۳۷۰۸۹۹" in html  # founders, digits in Persian
    snapshot_part = html.split('class="card snapshot"')[1]
    assert "approval_letter" not in snapshot_part
    letters = html.split('class="card snapshot"')[0]
    cert = session.scalar(select(Document).where(Document.case_id == cases.a, Document.kind == "certificate"))
    assert cert.sha256 in letters and f'/cases/{cases.a}/documents/{cert.id}' in letters
    # The stored text is there, byte for byte, and hashes to the name the entry records.
    body = session.execute(text("SELECT body FROM snapshots WHERE hash = :h"),
                           {"h": history["approve"].snapshot_hash}).scalar()
    assert hashlib.sha256(body.encode()).hexdigest() == history["approve"].snapshot_hash
    assert "awaiting_decision" in body


# -- bad input ---------------------------------------------------------------------------------

JUNK = [
    {"from": "1403/13/01"}, {"from": "1403/12/31"}, {"to": "abc"}, {"from": "99999/01/01"},
    {"from": "0000/01/01"},
    {"from": "9377/12/29", "to": "9378/01/01"}, {"from": "1403/05/11", "to": "1403/05/10"},
    {"from": "۱۴۰۳/۱۲/۳۰"},
    {"before": "99999999999999999999999"}, {"before": "-1"}, {"before": "abc"}, {"before": "0"},
    {"org": "ك" * 5000}, {"reviewer": "%_\\'\""}, {"action": "<script>"}, {"state": "nope"}, {"kind": "x"},
    {"state_of": "zzz", "state": "approved"}, {"case": "99999999999"}, {"case": "-3"}, {"case": "۱۲a"},
    {"org": "\u200c\u200c"}, {"from": "1403/05/10\n"}, {"action": ["approve", "reject"]},
]


def test_junk_is_never_a_500(web: Web, cases: Cases) -> None:
    web.login("auditor")
    for args in JUNK:
        for url in ("/audit/decisions", "/audit/decisions.csv"):
            # Read to the end: a streamed export holds its request (and transaction) until then.
            with web.client.get(url, query_string=args) as r:
                assert r.status_code in (200, 422), (url, args, r.status_code)
                r.get_data()
    for path in ("/audit/cases/99999999999", "/audit/cases/0", "/audit/cases/{a}/entries/0",
                 "/audit/cases/{a}/entries/999", "/audit/cases/{a}/entries/99999999999", "/audit/cases/abc",
                 "/audit/cases/{a}/entries/-1"):
        assert web.client.get(path.format(a=cases.a)).status_code == 404, path
    # NUL never reaches the database (PostgreSQL refuses it in text): refused like elsewhere.
    for args in ({"org": "\x00"}, {"reviewer": "a\x00b"}, {"from": "1403\x00"}):
        assert web.client.get("/audit/decisions", query_string=args).status_code == 400
        assert web.client.get("/audit/decisions.csv", query_string=args).status_code == 400


def test_bad_filters_are_named_and_left_out(web: Web, cases: Cases) -> None:
    web.login("auditor")
    r = web.client.get("/audit/decisions", query_string={"from": "1403/13/01", "action": "approve"})
    html = r.get_data(as_text=True)
    assert r.status_code == 422 and 'name="from" value="1403/13/01"' in html and 'aria-invalid="true"' in html
    assert [x["action"] for x in rows(html)] == ["approve"]  # what could be read still applies
    r = web.client.get("/audit/decisions", query_string={"from": "1403/05/11", "to": "1403/05/10"})
    assert r.status_code == 422 and len(rows(r.get_data(as_text=True))) == len(search(web))
    assert web.client.get("/audit/decisions", query_string={"before": "9" * 30}).status_code == 200

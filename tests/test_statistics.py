"""The statistics page: Qazvin's year-over-year figures of 002_… replayed through the engine.

The seeds report for Qazvin in 1401: 12 permits against 5 in 1400, 32 approvals of renewal and
establishment against 8, and no suspension letters. Here those events happen, at moments of
1397–1401, through the same engine and services the pages use; then the numbers are read off
the page and its CSV, not off the service.
"""
from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from datetime import datetime, time, timedelta, timezone
from typing import Any

import jdatetime
import pytest
from sqlalchemy import delete, func, select

from tests.support import PASSWORD, PDF, good_data, national_id
from workflow import db, engine
from workflow import holidays as holiday_cache
from workflow.calendar import TEHRAN, working_days_between
from workflow.models import Case, Grant, Holiday, Organization, Permit, PermitEvent, Programme, Province, Tranche, User
from workflow.services import accounts, applications, permits
from workflow.services import statistics as stats

SVG = "{http://www.w3.org/2000/svg}"


def at(year: int, month: int, day: int, hour: int = 10) -> datetime:
    """A Tehran wall-clock moment of a Jalali day, as the UTC instant the database stores."""
    local = datetime.combine(jdatetime.date(year, month, day).togregorian(), time(hour), tzinfo=TEHRAN)
    return local.astimezone(timezone.utc)


class Clock:
    """Stands in for `utcnow` in the modules that read the real clock during a transition."""

    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    # The renewal window (open_renewal, clean_data at submit) and the creation stamps of cases.
    for target in ("workflow.states.permit_renewal.utcnow", "workflow.services.applications.utcnow"):
        monkeypatch.setattr(target, c)
    return c


@pytest.fixture
def plain_letters(monkeypatch: pytest.MonkeyPatch) -> None:
    """Decision letters and certificates as a fixed one-page PDF instead of typeset ones.

    Typesetting with HarfBuzz costs a second or more per decision on this machine, and the
    replay makes 64 of them; the letters are still stored and hashed into the decision's audit
    entry, only their pages are not drawn (tests/test_letters.py checks those).
    """
    monkeypatch.setattr("workflow.letters._letter", lambda *args, **kwargs: PDF)
    monkeypatch.setattr("workflow.letters._certificate", lambda *args, **kwargs: PDF)


def fire_path(session: Any, clock: Clock, case: Case, steps: list[tuple[str, User, str, datetime]]) -> None:
    for action, actor, comment, moment in steps:
        clock.now = moment
        engine.fire(session, case, action, actor, comment=comment, now=moment)


def establish(session: Any, clock: Clock, member: User, org: Any, county: str, staff: dict[str, User],
              start: datetime, rng_seed: int) -> Permit:
    """An activity permit applied for and approved over four days from `start`."""
    import random

    rng = random.Random(rng_seed)
    clock.now = start
    data = good_data(name=org.name, county=county, founders=[
        {"full_name": n, "national_id": national_id(rng)} for n in ("زهرا احمدی", "علی رضایی", "مریم حسینی")])
    case, _ = applications.create(session, member, kind="permit_issuance", organization_id=org.id, data=data)
    applications.attach_document(session, member, case, content=PDF, filename="statute.pdf")
    fire_path(session, clock, case, [
        ("submit", member, "", start),
        ("accept", staff["intake"], "", start + timedelta(days=1)),
        ("recommend_approval", staff["expert"], "مدارک کامل است.", start + timedelta(days=2)),
        ("approve", staff["director"], "", start + timedelta(days=3)),
    ])
    permit = session.scalar(select(Permit).where(Permit.case_id == case.id))
    assert permit is not None
    return permit


def renew(session: Any, clock: Clock, member: User, permit: Permit, staff: dict[str, User], start: datetime) -> None:
    clock.now = start
    case, _ = applications.create(session, member, kind="permit_renewal", organization_id=permit.organization_id,
                                  data={"permit_number": permit.number,
                                        "activity_report": "گزارش فعالیت‌های سه سال گذشته سازمان در استان"})
    fire_path(session, clock, case, [
        ("submit", member, "", start),
        ("accept", staff["intake"], "", start + timedelta(days=1)),
        ("recommend_approval", staff["expert"], "گزارش کامل است.", start + timedelta(days=2)),
        ("approve", staff["director"], "", start + timedelta(days=3)),
    ])


def replay_qazvin(app: Any, world: Any, clock: Clock) -> None:
    """Qazvin's 1400 and 1401 as 002_… tells them, plus one Kerman permit suspended in 1401.

    Renewals need permits in their window: 23 NGOs got theirs in 1397–1398 (three years'
    validity ends in 1400–1401); 3 renew in 1400, 20 in 1401. 17 others are established:
    5 in 1400, 12 in 1401.
    """
    with app.test_request_context():
        session = db.new_session()
        qazvin = accounts.find_province(session, "qazvin")
        county = accounts.find_county(session, qazvin, "Qazvin")
        staff = {role: session.get(User, world.users[f"q_{role}"]) for role in ("intake", "expert", "director")}
        orgs = [accounts.create_organization(session, name=f"انجمن مردم‌نهاد شماره {i + 1} قزوین", province=qazvin,
                                             county=county) for i in range(40)]
        member = accounts.create_user(session, email="replay@test.ir", password=PASSWORD, name="نماینده سمن‌ها",
                                      roles=["applicant"], organizations=orgs)
        # 1397: 3 permits whose validity ends in Mordad 1400; 1398: 20 ending across 1401.
        old = [establish(session, clock, member, orgs[i], "Qazvin", staff, at(1397, 5, 1 + 3 * i), i)
               for i in range(3)]
        old += [establish(session, clock, member, orgs[3 + i], "Qazvin", staff,
                          at(1398, 2 + i % 7, 1 + 4 * (i // 7) + i % 3), 3 + i) for i in range(20)]
        for i, permit in enumerate(old):
            # Inside the window (from 90 days before the end), in the Jalali year the permit ends.
            renew(session, clock, member, permit, staff, permit.valid_until - timedelta(days=20 + i % 5))
        for i in range(5):
            establish(session, clock, member, orgs[23 + i], "Qazvin", staff, at(1400, 3, 1) + timedelta(days=7 * i),
                      100 + i)
        for i in range(12):
            establish(session, clock, member, orgs[28 + i], "Qazvin", staff, at(1401, 2, 1) + timedelta(days=9 * i),
                      200 + i)
        # Kerman: a permit issued and suspended in 1401 counts in Kerman and the country, never in Qazvin.
        kerman_staff = {role: session.get(User, world.users[role]) for role in ("intake", "expert", "director")}
        kerman_permit = establish(session, clock, session.get(User, world.users["ngo"]),
                                  session.get(Organization, world.orgs["org1"]), "Kerman", kerman_staff,
                                  at(1401, 6, 1), 999)
        permits.fire(session, kerman_permit, "suspend", kerman_staff["director"], reason="گزارش مالی ارائه نشده است.",
                     now=at(1401, 7, 1))
        session.commit()
        session.close()


def cells(html: str, row_id: str) -> list[str]:
    """The text of a table row's cells (header cell first)."""
    match = re.search(rf'<tr id="{re.escape(row_id)}"[^>]*>(.*?)</tr>', html, re.S)
    assert match, f"no row {row_id}"
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", match.group(1), re.S)]


def chart(html: str, chart_id: str) -> ET.Element:
    match = re.search(rf'<figure class="chart" id="{chart_id}">\s*(<svg.*?</svg>)', html, re.S)
    assert match, f"no chart {chart_id}"
    return ET.fromstring(match.group(1))  # raises on anything not well-formed


def csv_rows(response: Any) -> list[list[str]]:
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    text = response.get_data().decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def test_qazvin_year_over_year_from_replayed_events(app, world, web, clock, plain_letters, session):
    replay_qazvin(app, world, clock)
    # What was replayed, counted straight from the tables (the page must agree).
    assert session.scalar(select(func.count()).select_from(PermitEvent).where(PermitEvent.action == "renew")) == 23

    web.login("q_director")
    status, html = web.page("/statistics?year=1401")
    assert status == 200
    assert "قزوین" in html
    # Persian digits and the Persian decimal separator; the ratio of 12 to 5 is 2.4.
    assert cells(html, "figure-permits_issued")[1:] == ["۱۲", "۵", "۲٫۴"]
    assert cells(html, "figure-establishments_approved")[1:] == ["۱۲", "۵", "۲٫۴"]
    assert cells(html, "figure-renewals_approved")[1:] == ["۲۰", "۳", "۶٫۶۷"]
    assert cells(html, "figure-approvals")[1:] == ["۳۲", "۸", "۴"]
    assert cells(html, "figure-suspensions")[1:] == ["۰", "۰", "—"]
    assert cells(html, "figure-revocations")[1:] == ["۰", "۰", "—"]
    # Every step took a day (or the weekend): nothing past its deadline.
    assert cells(html, "figure-sla_breaches")[1:] == ["۰", "۰", "—"]

    # The same page typed the other way: Persian digits for the year, the province by its
    # Persian name written with Arabic yeh (as 002_… does), in English.
    web.client.get("/lang/en")
    status, html = web.page("/statistics?year=۱۴۰۱&province=قزوين")
    assert status == 200
    assert cells(html, "figure-permits_issued") == ["Permits issued", "12", "5", "2.4"]
    assert cells(html, "figure-approvals") == ["Approvals of renewal and establishment", "32", "8", "4"]
    assert cells(html, "figure-suspensions") == ["Suspensions", "0", "0", "—"]
    figures = chart(html, "chart-figures")
    assert figures.tag == f"{SVG}svg" and figures.get("role") == "img" and figures.get("direction") == "ltr"
    assert figures.find(f"{SVG}title").text == "Figures of 1401 against 1400"
    rows = {g.find(f"{SVG}text").text: g for g in figures.iter(f"{SVG}g") if g.get("class") == "row"}
    bars = [float(r.get("width")) for r in rows["Permits issued"].findall(f"{SVG}rect")]
    assert bars[0] == pytest.approx(bars[1] * 12 / 5, rel=0.02)  # bars drawn to scale
    assert [float(r.get("width")) for r in rows["Suspensions"].findall(f"{SVG}rect")] == [0, 0]
    assert "Permits issued: 12 in 1401, 5 in 1400" in figures.find(f"{SVG}desc").text

    rows = csv_rows(web.client.get("/statistics.csv?year=1401&province=qazvin"))
    assert rows[0] == ["Figure", "1401", "1400", "Ratio"]
    table = {row[0]: row[1:] for row in rows[1:]}
    assert table["Permits issued"] == ["12", "5", "2.4"]
    assert table["Approvals of renewal and establishment"] == ["32", "8", "4"]
    assert table["Suspensions"] == ["0", "0", "—"]
    assert table["Amount of grants awarded (rials)"] == ["0", "0", "—"]
    assert any(name.startswith("Median working days: ") for name in table)

    # 1398 against 1397: the permits later renewed were issued then (20 against 3).
    rows = csv_rows(web.client.get("/statistics.csv?year=1398&province=Qazvin"))
    table = {row[0]: row[1:] for row in rows[1:]}
    assert table["Permits issued"] == ["20", "3", "6.67"]
    assert table["Renewals approved"] == ["0", "0", "—"]

    # Kerman's suspended permit stays out of Qazvin and shows in Kerman and the country.
    web.client.post("/logout", data={"csrf_token": web.csrf(html)})
    web.login("admin")
    web.client.get("/lang/en")
    _, html = web.page("/statistics?year=1401&province=kerman")
    assert cells(html, "figure-permits_issued")[1:] == ["1", "0", "—"]
    assert cells(html, "figure-suspensions")[1:] == ["1", "0", "—"]
    _, html = web.page("/statistics?year=1401&province=all")
    assert cells(html, "figure-permits_issued")[1:] == ["13", "5", "2.6"]
    assert cells(html, "figure-approvals")[1:] == ["33", "8", "4.13"]
    assert cells(html, "figure-suspensions")[1:] == ["1", "0", "—"]


# -- who sees what ----------------------------------------------------------------------------

def test_directors_see_their_province_others_are_refused(app, world, web, session):
    web.login("director")  # Kerman's
    status, html = web.page("/statistics")
    assert status == 200 and "کرمان" in html
    assert 'value="kerman" selected' in html and 'value="qazvin"' not in html and 'value="all"' not in html
    assert web.page("/statistics?province=kerman&year=1401")[0] == 200
    assert web.page("/statistics?province=کرمان")[0] == 200
    for url in ("/statistics?province=qazvin", "/statistics?province=قزوین&year=1401", "/statistics?province=all",
                "/statistics.csv?province=qazvin", "/statistics.csv?province=all"):
        assert web.page(url)[0] == 403, url
    assert web.client.get("/statistics.csv?year=1401").status_code == 200  # their own, by default
    assert 'href="/statistics"' in html  # the header's link

    web.client.post("/logout", data={"csrf_token": web.csrf(html)})
    web.login("ngo")  # an applicant
    status, html = web.page("/statistics")
    assert status == 403
    assert web.client.get("/statistics.csv").status_code == 403
    assert 'href="/statistics"' not in html
    for who in ("intake", "expert", "finance"):
        web.client.post("/logout", data={"csrf_token": web.csrf(web.page("/verify")[1])})
        web.login(who)
        assert web.page("/statistics")[0] == 403, who

    web.client.post("/logout", data={"csrf_token": web.csrf(web.page("/verify")[1])})
    assert web.client.get("/statistics").status_code == 302  # sign in first


def test_auditors_national_and_provincial(app, world, web, session):
    with app.test_request_context():
        with db.new_session() as s:
            accounts.create_user(s, email="national@test.ir", password=PASSWORD, name="بازرس کشوری", roles=["auditor"])
            s.commit()
    web.login("auditor")  # Kerman's
    assert web.page("/statistics?province=kerman")[0] == 200
    assert web.page("/statistics?province=qazvin")[0] == 403
    web.client.post("/logout", data={"csrf_token": web.csrf(web.page("/verify")[1])})
    page = web.client.get("/login").get_data(as_text=True)
    web.client.post("/login", data={"email": "national@test.ir", "password": PASSWORD, "csrf_token": web.csrf(page)})
    status, html = web.page("/statistics")
    assert status == 200 and 'value="all" selected' in html  # the whole country by default
    assert web.page("/statistics?province=qazvin")[0] == 200
    assert web.page("/statistics?province=Kerman")[0] == 200


@pytest.mark.parametrize("query", [
    "year=abc", "year=99999", "year=1200", "year=-1401", "year=۱۴۰۱.۵", "year=" + "1" * 5000, "year=١٤٠١x",
    "year=²⁰²⁴", "province=Atlantis", "province=" + "ق" * 5000, "province=99999999999999", "province=0",
    "year=1401&province=%00", "province=%F0%9F%98%80",
])
def test_bad_input_is_a_form_message_never_a_500(app, world, web, query):
    web.login("admin")
    status, html = web.page(f"/statistics?{query}")
    assert status == 400, (query, status)
    if "%00" not in query:
        assert 'class="error-text"' in html and 'aria-invalid="true"' in html
    assert web.client.get(f"/statistics.csv?{query}").status_code == 400


def test_years_in_any_digits(app, world, web):
    web.login("admin")
    web.client.get("/lang/en")
    for year in ("1401", "۱۴۰۱", "١٤٠١", " 1401 "):
        status, html = web.page(f"/statistics?year={year}&province=qazvin")
        assert status == 200, year
        assert "Qazvin: 1401 against 1400" in html
    assert csv_rows(web.client.get("/statistics.csv?year=۱۴۰۱"))[0] == ["Figure", "1401", "1400", "Ratio"]


# -- time per step, deadlines -----------------------------------------------------------------

@pytest.fixture
def khordad_holidays(app):
    """14 and 15 Khordad 1401 (Saturday and Sunday 4–5 June 2022), official holidays."""
    days = [jdatetime.date(1401, 3, 14).togregorian(), jdatetime.date(1401, 3, 15).togregorian()]
    with app.app_context():
        with db.new_session() as s:
            s.add_all([Holiday(day=days[0], name="رحلت امام خمینی"), Holiday(day=days[1], name="قیام ۱۵ خرداد")])
            s.commit()
    holiday_cache.forget()
    yield days
    with app.app_context():  # holidays are reference data the other tests share
        with db.new_session() as s:
            s.execute(delete(Holiday).where(Holiday.day.in_(days)))
            s.commit()
    holiday_cache.forget()


def test_median_working_days_and_deadlines_on_a_known_history(app, world, web, clock, plain_letters,
                                                              khordad_holidays, session):
    """Three issuance cases in Kerman with steps of known length.

    A: submitted on Wednesday 11 Khordad 1401, accepted on Tuesday 17 Khordad: Thursday and
       Friday off, 14 and 15 Khordad holidays, so 2 working days (within its 3).
    B: submitted on Wednesday 1 Tir 1401, accepted Wednesday 8 Tir: 5 working days, past its 3;
       returned for correction the next day, resubmitted 33 days later, past the 30 calendar days.
    C: submitted on Thursday 1 Mehr 1400, accepted Monday 5 Mehr: 3 working days, last year.
    """
    assert jdatetime.date(1401, 3, 11).togregorian().weekday() == 2  # a Wednesday
    assert working_days_between(at(1401, 3, 11), at(1401, 3, 17)) == 4  # without the holidays
    with app.test_request_context():
        s = db.new_session()
        kerman = accounts.find_province(s, "kerman")
        bam = accounts.create_organization(s, name="کانون سالمندان بم", province=kerman,
                                           county=accounts.find_county(s, kerman, "Bam"))
        bam_member = accounts.create_user(s, email="bam@test.ir", password=PASSWORD, name="نماینده بم",
                                          roles=["applicant"], organizations=[bam])
        u = {who: s.get(User, world.users[who]) for who in ("ngo", "s_ngo", "intake", "expert", "director")}

        def opened(member: User, org_id: int, **data: Any) -> Case:
            case, _ = applications.create(s, member, kind="permit_issuance", organization_id=org_id,
                                          data=good_data(**data))
            applications.attach_document(s, member, case, content=PDF, filename="statute.pdf")
            return case

        a = opened(u["ngo"], world.orgs["org1"])
        fire_path(s, clock, a, [
            ("submit", u["ngo"], "", at(1401, 3, 11)),
            ("accept", u["intake"], "", at(1401, 3, 17)),
            ("recommend_approval", u["expert"], "کامل", at(1401, 3, 18)),  # Wednesday → 1
            ("approve", u["director"], "", at(1401, 3, 21)),  # Wednesday → Saturday: 1
        ])
        b = opened(u["s_ngo"], world.orgs["org3"], name="جمعیت زنان کارآفرین سیرجان", county="Sirjan")
        fire_path(s, clock, b, [
            ("submit", u["s_ngo"], "", at(1401, 4, 1)),
            ("accept", u["intake"], "", at(1401, 4, 8)),
            ("return_for_correction", u["expert"], "امضای مؤسسان", at(1401, 4, 9)),  # a Thursday: 0
            ("resubmit", u["s_ngo"], "", at(1401, 5, 11)),  # 33 days: past the 30
        ])
        c = opened(bam_member, bam.id, name="کانون سالمندان بم", county="Bam")
        fire_path(s, clock, c, [
            ("submit", bam_member, "", at(1400, 7, 1)),
            ("accept", u["intake"], "", at(1400, 7, 5)),
        ])
        s.commit()
        s.close()
        kerman_id = kerman.id

    with app.test_request_context():
        report = stats.compute(session, 1401, kerman_id)
    steps = {(st.from_state, st.action): st for st in report.steps}
    assert set(steps) == {("submitted", "accept"), ("under_review", "recommend_approval"),
                          ("awaiting_decision", "approve"), ("under_review", "return_for_correction"),
                          ("needs_correction", "resubmit")}  # never the drafting before "submit"
    accept = steps[("submitted", "accept")]
    assert dict(accept.this_year.days) == {2: 1, 5: 1} and accept.this_year.median == 3.5
    assert (accept.this_year.breaches, accept.last_year.breaches) == (1, 0)
    assert dict(accept.last_year.days) == {3: 1} and accept.last_year.median == 3
    assert steps[("under_review", "recommend_approval")].this_year.median == 1
    assert steps[("awaiting_decision", "approve")].this_year.median == 1
    assert steps[("under_review", "return_for_correction")].this_year.median == 0
    resubmit = steps[("needs_correction", "resubmit")]
    assert resubmit.this_year.breaches == 1 and resubmit.deadline.calendar_days == 30
    breaches = report.figure("sla_breaches")
    assert (breaches.this_year, breaches.last_year, breaches.ratio) == (2, 0, None)
    assert report.figure("permits_issued").this_year == 1

    web.login("director")
    status, html = web.page("/statistics?year=1401")
    assert status == 200
    assert cells(html, "step-submitted-accept")[1:] == ["۳ روز کاری", "۳٫۵", "۳", "۲", "۱", "۰"]
    assert cells(html, "figure-sla_breaches")[1:] == ["۲", "۰", "—"]
    steps_chart = chart(html, "chart-steps")
    assert steps_chart.get("direction") == "rtl"
    assert steps_chart.find(f"{SVG}title").text == "میانه روزهای کاری هر مرحله"
    marks = [line for line in steps_chart.iter(f"{SVG}line") if line.get("class") == "deadline"]
    assert len(marks) == 4  # the working-day deadlines; the correction's 30 calendar days are not on this scale
    web.client.get("/lang/en")
    rows = csv_rows(web.client.get("/statistics.csv?year=1401"))
    table = {row[0]: row[1:] for row in rows[1:]}
    assert table["Median working days: Submitted → Accept for review"] == ["3.5", "3", "1.17"]
    assert table["Steps past their deadline"] == ["2", "0", "—"]


# -- grants -----------------------------------------------------------------------------------

def test_grants_awarded_and_disbursed_by_year(app, world, web, session):
    """Awards counted by the day of the award, payments by the day the tranche was released."""
    kerman = session.scalar(select(Province).where(Province.code == "kerman"))
    qazvin = session.scalar(select(Province).where(Province.code == "qazvin"))
    finance = world.users["finance"]
    rows = []
    for n, (province, org, awarded, rials, released) in enumerate([
        (kerman, "org1", at(1401, 2, 1), 500_000_000, [(at(1401, 3, 1), 200_000_000), (at(1402, 1, 5), 300_000_000)]),
        (kerman, "org3", at(1400, 12, 29, 23), 80_000_000, [(at(1401, 1, 1, 1), 80_000_000)]),  # across Nowruz
        (qazvin, "org2", at(1401, 5, 1), 999_000_000, [(at(1401, 6, 1), 999_000_000)]),
    ]):
        programme = Programme(name=f"برنامه {n}", name_key=f"p{n}", province_id=province.id, fiscal_year=1401,
                              budget_rials=10**10, max_award_rials=10**9, awarded_rials=rials,
                              opens_on=jdatetime.date(1400, 1, 1).togregorian(),
                              closes_on=jdatetime.date(1402, 1, 1).togregorian(), fields=[], created_by_id=finance)
        case = Case(kind="grant_request", state="approved", version=1, organization_id=world.orgs[org],
                    province_id=province.id, data={}, created_by_id=finance, submitted_at=awarded)
        session.add_all([programme, case])
        session.flush()
        session.add(Grant(case_id=case.id, programme_id=programme.id, organization_id=world.orgs[org],
                          awarded_rials=rials, awarded_at=awarded))
        session.flush()
        for k, (when, amount) in enumerate(released, start=1):
            rows.append(Tranche(case_id=case.id, n=k, amount_rials=amount, state="released", released_at=when))
    session.add_all(rows)
    session.commit()

    with app.test_request_context():
        report = stats.compute(session, 1401, kerman.id)
        country = stats.compute(session, 1401, None)
    assert [(f.this_year, f.last_year) for f in (report.figure("grants_awarded"), report.figure("grants_awarded_rials"),
                                                 report.figure("disbursed_rials"))] == \
        [(1, 1), (500_000_000, 80_000_000), (280_000_000, 0)]
    assert country.figure("grants_awarded_rials").this_year == 1_499_000_000
    assert country.figure("disbursed_rials").this_year == 1_279_000_000

    web.login("director")
    status, html = web.page("/statistics?year=1401")
    assert status == 200
    # Tomans by default: 500,000,000 rials are ۵۰٬۰۰۰٬۰۰۰ tomans.
    assert cells(html, "figure-grants_awarded_rials")[1:] == ["۵۰٬۰۰۰٬۰۰۰ تومان", "۸٬۰۰۰٬۰۰۰ تومان", "۶٫۲۵"]
    assert cells(html, "figure-disbursed_rials")[1:] == ["۲۸٬۰۰۰٬۰۰۰ تومان", "۰ تومان", "—"]
    money_chart = chart(html, "chart-money")
    assert len([r for r in money_chart.iter(f"{SVG}rect") if r.get("class", "").startswith("series-")]) == 2 + 4
    web.client.get("/lang/en")
    table = {row[0]: row[1:] for row in csv_rows(web.client.get("/statistics.csv?year=1401"))[1:]}
    assert table["Amount of grants awarded (rials)"] == ["500000000", "80000000", "6.25"]
    assert table["Amount disbursed (rials)"] == ["280000000", "0", "—"]

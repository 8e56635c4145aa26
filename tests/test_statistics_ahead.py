"""The statistics pages computed ahead by a job (jobs/statistics.py) read exactly as the pages
computed when asked for, the country's included; the page uses a kept report only while it is
fresh (or final: its year has ended), and says how old it is."""
from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, select

from jobs.cron import schedule
from jobs.statistics import refresh as refresh_job
from tests.test_statistics import at, cells, clock, plain_letters, replay_qazvin  # noqa: F401 (fixtures)
from workflow import db
from workflow.calendar import jalali_year, to_tehran
from workflow.models import Province, StatisticsReport, utcnow
from workflow.services import accounts
from workflow.services import statistics as stats


def test_kept_reports_are_the_computed_ones(app, world, clock, plain_letters):  # noqa: F811
    replay_qazvin(app, world, clock)
    with app.app_context(), db.new_session() as session:
        ids = list(session.scalars(select(Province.id).order_by(Province.id)))
        provinces = [stats.compute(session, 1401, pid) for pid in ids]
        country = stats.compute(session, 1401, None)
        assert stats.years_with_data(country.figures) and country.steps
        # The country is its provinces added up, medians included (not a median of medians).
        assert stats.merged(1401, provinces) == country
        for report in (*provinces, country):
            assert stats.report_from_json(json.loads(json.dumps(stats.report_json(report)))) == report

        assert stats.refresh(session, 1401) == len(ids) + 1
        assert stats.refresh(session, 1401) == len(ids) + 1  # again: replaced, not added
        assert session.scalar(select(func.count()).select_from(StatisticsReport)) == len(ids) + 1
        qazvin = accounts.find_province(session, "qazvin").id
        for pid, live in ((qazvin, provinces[ids.index(qazvin)]), (None, country)):
            kept, as_of = stats.for_page(session, 1401, pid)
            assert kept == live and as_of is not None


def test_the_page_reads_a_fresh_report_and_says_when_it_was_made(app, world, web, session):
    this_year = jalali_year(to_tehran(utcnow()))
    qazvin = accounts.find_province(session, "qazvin")
    with app.app_context():
        report = stats.compute(session, this_year, qazvin.id)
    assert report.figure("permits_issued").this_year == 0
    # A kept report that says 77: the page shows it, so the page read it rather than counting.
    report.figures[0] = stats.Figure("permits_issued", 77, 5)
    stats.store(session, report, utcnow() - timedelta(minutes=10))
    session.commit()

    web.login("q_director")
    web.client.get("/lang/en")
    status, html = web.page("/statistics")
    assert status == 200
    assert cells(html, "figure-permits_issued")[1:] == ["77", "5", "15.4"]
    assert 'class="muted as-of"' in html and "they are worked out again every hour" in html
    csv_text = web.client.get("/statistics.csv").get_data(as_text=True)
    assert "Permits issued,77,5,15.4" in csv_text

    # Older than STATISTICS_MAX_AGE_SECONDS (the job stopped): counted again, no "as of".
    stats.store(session, report, utcnow() - timedelta(seconds=app.config["STATISTICS_MAX_AGE_SECONDS"] + 60))
    session.commit()
    status, html = web.page("/statistics")
    assert cells(html, "figure-permits_issued")[1:] == ["0", "0", "—"]
    assert "as-of" not in html


def test_a_year_that_has_ended_is_kept_for_good(app, world, session):
    qazvin = accounts.find_province(session, "qazvin").id
    with app.app_context():
        report = stats.compute(session, 1401, qazvin)
    report.figures[0] = stats.Figure("permits_issued", 9, 0)
    after_the_year = at(1402, 1, 2)
    stats.store(session, report, after_the_year)
    session.commit()
    with app.app_context():
        kept, as_of = stats.for_page(session, 1401, qazvin, now=after_the_year + timedelta(days=400))
    assert kept.figure("permits_issued").this_year == 9 and as_of == after_the_year
    # Made before the year ended, the same report is only as good as its age.
    stats.store(session, report, at(1401, 12, 1))
    session.commit()
    with app.app_context():
        kept, as_of = stats.for_page(session, 1401, qazvin, now=at(1401, 12, 1) + timedelta(days=1))
    assert kept.figure("permits_issued").this_year == 0 and as_of is None


def test_the_hourly_job_and_its_command(app, world, session):
    assert any(job is refresh_job and every == 3600 for job, every, _timeout in schedule(3600))
    provinces = session.scalar(select(func.count()).select_from(Province))
    with app.app_context():
        text = refresh_job()
    this_year = jalali_year(to_tehran(utcnow()))
    # This year's reports, and last year's: none of them was final yet.
    assert f"statistics of {this_year}, {this_year - 1}: {2 * (provinces + 1)} reports" in text
    years = dict(session.execute(select(StatisticsReport.year, func.count()).group_by(StatisticsReport.year)).all())
    assert years == {this_year: provinces + 1, this_year - 1: provinces + 1}
    session.commit()
    with app.app_context(), db.new_session() as s:
        # Last year's are final once made after its end (these were made now): only this year's again.
        assert stats.years_to_refresh(s) == [this_year]
    result = app.test_cli_runner().invoke(args=["jobs", "statistics"])
    assert result.exit_code == 0, result.output
    assert f"statistics of {this_year}: {provinces + 1} reports" in result.output

"""Administrators' pages: official holidays (which move deadlines) and failed deliveries."""
from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from rq import Queue
from sqlalchemy import delete, select

from jobs.queue import connection
from tests.support import TO_AWAITING
from workflow import holidays as holiday_cache
from workflow.calendar import add_working_days, is_working_day, to_jalali, to_tehran
from workflow.models import Case, Holiday, Notification, utcnow
from workflow.text import persian_digits


@pytest.fixture
def keep_holidays(app, session) -> Iterator[None]:
    """Holidays are reference data, kept between tests: put the table back as it was."""
    before = {h.day: h.name for h in session.scalars(select(Holiday))}
    yield
    session.rollback()
    now = {h.day for h in session.scalars(select(Holiday))}
    session.execute(delete(Holiday).where(Holiday.day.in_(now - before.keys())))
    session.add_all(Holiday(day=d, name=n) for d, n in before.items() if d not in now)
    session.commit()
    holiday_cache.forget()
    # Leave the cache warm, as it was: workflow/engine.py fire() reads a cold cache after it has
    # touched the case, and the autoflush then moves the case's version by two (reported).
    holiday_cache.holidays(session)


def _jalali(day: date, persian: bool = True) -> str:
    j = to_jalali(day)
    text = f"{j.year:04d}/{j.month:02d}/{j.day:02d}"
    return persian_digits(text) if persian else text


def _add(web, day_text: str, name: str, html: str | None = None):  # type: ignore[no-untyped-def]
    html = html or web.page("/admin/holidays")[1]
    return web.client.post("/admin/holidays", data={"day": day_text, "name": name, "csrf_token": web.csrf(html)})


def test_only_admins_reach_the_admin_pages(web):
    for url in ("/admin/holidays", "/admin/deliveries"):
        assert web.client.get(url).status_code == 302  # sign in first
    web.login("director")
    html = web.page("/queue")[1]
    assert "/admin/holidays" not in html and "/admin/deliveries" not in html
    for url in ("/admin/holidays", "/admin/deliveries"):
        assert web.client.get(url).status_code == 403
    form = {"csrf_token": web.csrf(html), "day": "1405/01/20", "name": "x"}
    for url in ("/admin/holidays", "/admin/holidays/1/delete", "/admin/deliveries/retry",
                "/admin/deliveries/1/retry"):
        assert web.client.post(url, data=form).status_code == 403
    web.client.post("/logout", data={"csrf_token": web.csrf(html)})
    web.login("admin")
    status, html = web.page("/admin/holidays")
    assert status == 200
    assert 'href="/admin/holidays"' in html and 'href="/admin/deliveries"' in html  # in the header
    assert web.page("/admin/deliveries")[0] == 200


def test_holidays_listed_by_jalali_year(web, session, keep_holidays):
    web.login("admin")
    status, html = web.page("/admin/holidays")
    assert status == 200
    some = session.scalars(select(Holiday).order_by(Holiday.day)).first()
    assert some is not None, "the data file's holidays are loaded"
    assert _jalali(some.day) in html and some.name in html
    years = [int(y.translate(str.maketrans("۰۱۲۳۴۵۶۷۸۹", "0123456789")))
             for y in re.findall(r"<h2>سال ([۰-۹]+)", html)]
    assert years and years == sorted(years, reverse=True)


def test_add_and_delete_a_holiday(web, session, keep_holidays):
    web.login("admin")
    existing = set(session.scalars(select(Holiday.day)))
    day = date(2031, 1, 1)
    while day in existing:
        day += timedelta(days=1)
    # Persian digits, as typed on a Persian keyboard
    r = _add(web, _jalali(day), "روز آزمایشی")
    assert r.status_code == 302, r.get_data(as_text=True)
    row = session.scalar(select(Holiday).where(Holiday.day == day))
    assert row is not None and row.name == "روز آزمایشی"
    status, html = web.page("/admin/holidays")
    assert "روز آزمایشی" in html and _jalali(day) in html
    # the same day again: a form error, nothing added
    r = _add(web, _jalali(day, persian=False), "دوباره", html)
    assert r.status_code == 422 and "already" not in r.get_data(as_text=True)
    assert "در این تاریخ" in r.get_data(as_text=True)
    # ASCII digits and dashes are accepted too
    other = day + timedelta(days=1)
    while other in existing:
        other += timedelta(days=1)
    assert _add(web, _jalali(other, persian=False).replace("/", "-"), "Second").status_code == 302
    assert session.scalar(select(Holiday.name).where(Holiday.day == other)) == "Second"
    # delete
    html = web.page("/admin/holidays")[1]
    row_id = row.id
    assert f'action="/admin/holidays/{row_id}/delete"' in html
    r = web.client.post(f"/admin/holidays/{row_id}/delete", data={"csrf_token": web.csrf(html)})
    assert r.status_code == 302
    session.expire_all()
    assert session.get(Holiday, row_id) is None
    assert "روز آزمایشی" not in web.page("/admin/holidays")[1].split("</header>")[1].split("</form>", 1)[1]
    r = web.client.post(f"/admin/holidays/{row_id}/delete", data={"csrf_token": web.csrf(html)})
    assert r.status_code == 404
    # CSRF is required
    assert web.client.post("/admin/holidays", data={"day": _jalali(day), "name": "x"}).status_code == 400
    oth = session.scalar(select(Holiday.id).where(Holiday.day == other))
    assert web.client.post(f"/admin/holidays/{oth}/delete").status_code == 400


@pytest.mark.parametrize("text", ["", "1405/13/01", "۱۴۰۵/۰۷/۳۱", "1404/12/30", "14050115", "tomorrow",
                                  "0005/01/01", "1405/1/1/1"])
def test_a_bad_holiday_date_is_a_form_error(web, session, keep_holidays, text):
    web.login("admin")
    count = len(session.scalars(select(Holiday.id)).all())
    r = _add(web, text, "روز آزمایشی")
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert 'class="error"' in html and 'aria-invalid="true"' in html
    assert len(session.scalars(select(Holiday.id)).all()) == count
    # and a name is required
    r = _add(web, "1405/01/20", "  ")
    assert r.status_code == 422 and "نام تعطیلی را وارد کنید." in r.get_data(as_text=True)


def test_adding_a_holiday_moves_a_new_cases_due_date(api, web, session, app, keep_holidays):
    first = api.ready()
    api.advance(first, ("submit", "ngo"))
    case = session.get(Case, first)
    start, due = case.state_entered_at, case.due_at
    days_off = set(session.scalars(select(Holiday.day)))
    thursday_off = app.config["THURSDAY_OFF"]
    assert due == add_working_days(start, 3, thursday_off=thursday_off, holidays=days_off)
    # the first working day of the case's SLA becomes a holiday
    day = to_tehran(start).date() + timedelta(days=1)
    while not is_working_day(day, thursday_off=thursday_off, holidays=days_off):
        day += timedelta(days=1)
    web.login("admin")
    assert _add(web, _jalali(day), "تعطیل آزمایشی").status_code == 302
    # a case submitted now gets one more day; the one already running keeps its deadline
    second = api.ready("s_ngo", "org3", name="جمعیت زنان کارآفرین سیرجان", county="Sirjan")
    api.advance(second, ("submit", "s_ngo"))
    session.expire_all()
    later = session.get(Case, second)
    expected = add_working_days(later.state_entered_at, 3, thursday_off=thursday_off, holidays=days_off | {day})
    assert later.due_at == expected
    assert to_tehran(later.due_at).date() > to_tehran(due).date()
    assert session.get(Case, first).due_at == due
    # deleting it restores the shorter deadline for the next transition
    holiday_id = session.scalar(select(Holiday.id).where(Holiday.day == day))
    html = web.page("/admin/holidays")[1]
    r = web.client.post(f"/admin/holidays/{holiday_id}/delete", data={"csrf_token": web.csrf(html)})
    assert r.status_code == 302
    api.advance(second, ("accept", "intake"))
    session.expire_all()
    moved = session.get(Case, second)
    assert moved.due_at == add_working_days(moved.state_entered_at, 10, thursday_off=thursday_off, holidays=days_off)


def _failed(session, world, who: str = "ngo", kind: str = "case.accept", case_id: int | None = None) -> int:
    row = Notification(user_id=world.users[who], case_id=case_id, kind=kind, payload={"action": "accept"},
                       created_at=utcnow(), enqueued_at=utcnow() - timedelta(hours=3), attempts=5,
                       failed_at=utcnow() - timedelta(hours=1), last_error="SMTPServerDisconnected: gone away")
    session.add(row)
    session.commit()
    return row.id


def _queued(app) -> list[tuple[str, tuple]]:
    with app.app_context():
        queue = Queue(app.config["RQ_QUEUE"], connection=connection())
        return [(job.func_name, job.args) for job in queue.get_jobs()]


@pytest.mark.redis
def test_failed_deliveries_listed_and_retried(api, web, session, world, app):
    case_id = api.ready()
    api.advance(case_id, ("submit", "ngo"), ("accept", "intake"))  # three pending rows for org1's applicants
    with app.app_context():
        Queue(app.config["RQ_QUEUE"], connection=connection()).empty()
    one = _failed(session, world, case_id=case_id)
    two = _failed(session, world, who="ngo_b", kind="permit_7d")
    web.login("admin")
    status, html = web.page("/admin/deliveries")
    assert status == 200
    assert re.search(r'class="count num pending">۳<', html)
    assert re.search(r'class="count num failed">۲<', html)
    assert "SMTPServerDisconnected: gone away" in html and "ngo_b@test.ir" in html
    assert f"درخواست {persian_digits(case_id)}" in html  # the subject, with the case number
    assert f'action="/admin/deliveries/{one}/retry"' in html and f'action="/admin/deliveries/{two}/retry"' in html
    # retry one: reset, and its delivery enqueued once the reset is committed
    before = utcnow()
    r = web.client.post(f"/admin/deliveries/{one}/retry", data={"csrf_token": web.csrf(html)})
    assert r.status_code == 302
    session.expire_all()
    row = session.get(Notification, one)
    assert row.failed_at is None and row.attempts == 0 and row.enqueued_at >= before and row.delivered_at is None
    assert session.get(Notification, two).failed_at is not None
    assert _queued(app) == [("jobs.notify.deliver", (one,))]
    status, html = web.page("/admin/deliveries")
    assert re.search(r'class="count num pending">۴<', html) and re.search(r'class="count num failed">۱<', html)
    # retrying a row that is no longer failed does nothing; an unknown one is 404
    assert web.client.post(f"/admin/deliveries/{one}/retry", data={"csrf_token": web.csrf(html)}).status_code == 302
    assert len(_queued(app)) == 1
    assert web.client.post("/admin/deliveries/999999/retry", data={"csrf_token": web.csrf(html)}).status_code == 404
    # CSRF is required
    assert web.client.post(f"/admin/deliveries/{two}/retry").status_code == 400
    assert web.client.post("/admin/deliveries/retry").status_code == 400
    # retry all
    three = _failed(session, world, who="ngo", kind="permit_30d")
    r = web.client.post("/admin/deliveries/retry", data={"csrf_token": web.csrf(html)})
    assert r.status_code == 302
    session.expire_all()
    for notification_id in (two, three):
        row = session.get(Notification, notification_id)
        assert row.failed_at is None and row.attempts == 0
    assert sorted(args for _f, args in _queued(app)) == [(one,), (two,), (three,)]
    status, html = web.page("/admin/deliveries")
    assert re.search(r'class="count num failed">۰<', html) and "/retry" not in html.split("<main>")[1]


@pytest.mark.redis
def test_a_retried_delivery_is_delivered_by_the_worker(api, session, world, app, web):
    from rq import SimpleWorker

    notification_id = _failed(session, world)
    web.login("admin")
    html = web.page("/admin/deliveries")[1]
    assert web.client.post(f"/admin/deliveries/{notification_id}/retry",
                           data={"csrf_token": web.csrf(html)}).status_code == 302
    with app.app_context():
        conn = connection()
        queue = Queue(app.config["RQ_QUEUE"], connection=conn)
        assert SimpleWorker([queue], connection=conn).work(burst=True)
    session.expire_all()
    row = session.get(Notification, notification_id)
    assert row.delivered_at is not None and row.attempts == 1 and row.failed_at is None


def test_deliveries_page_with_nothing_failed(web):
    web.login("admin")
    status, html = web.page("/admin/deliveries")
    assert status == 200 and "/retry" not in html.split("<main>")[1]

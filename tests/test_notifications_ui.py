"""The bell and the notifications page: counts, reading, and nobody else's rows."""
from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, select

from tests.support import TO_AWAITING, user
from workflow.models import Case, Notification, utcnow
from workflow.calendar import format_date
from workflow.text import persian_digits


def _bell(html: str) -> str:
    """The bell's unread count as the page states it ("" when nothing is unread)."""
    m = re.search(r'class="bell[^"]*"[^>]*data-unread="([^"]*)"', html)
    assert m, "no bell in the header"
    return m.group(1)


def _unread(session, world, who: str) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(Notification).where(
        Notification.user_id == world.users[who], Notification.read_at.is_(None)))


def _decided_case(api) -> int:
    case_id = api.ready()
    api.advance(case_id, *TO_AWAITING, ("approve", "director"))
    return case_id


def test_bell_counts_the_applicants_new_notifications(api, web, session, world):
    web.login("ngo")
    status, html = web.page("/portal/")
    assert status == 200 and _bell(html) == "0" and "bell-count" not in html
    case_id = _decided_case(api)  # accept and approve each notify org1's applicants
    status, html = web.page("/portal/")
    assert _bell(html) == "2"
    assert re.search(r'class="bell-count num">۲<', html), "the count is shown in Persian digits"
    status, html = web.page("/notifications")
    assert status == 200
    # newest first, each linked to its case, rendered in Persian
    subjects = re.findall(r'<a href="/cases/(\d+)" class="subject">([^<]+)</a>', html)
    assert [int(cid) for cid, _ in subjects] == [case_id, case_id]
    assert subjects[0][1] == f"درخواست {persian_digits(case_id)}: تأیید"
    # English when the user switches
    web.client.get("/lang/en")
    status, html = web.page("/notifications")
    assert f"Application {case_id}: Approve" in html
    # staff who took the decisions got nothing
    web.client.post("/logout", data={"csrf_token": web.csrf(html)})
    web.login("intake")
    assert _bell(web.page("/queue")[1]) == "0"


def test_mark_read_and_mark_all_read(api, web, session, world):
    _decided_case(api)
    web.login("ngo")
    status, html = web.page("/notifications")
    ids = [int(i) for i in re.findall(r'action="/notifications/(\d+)/read"', html)]
    assert len(ids) == 2 and ids == sorted(ids, reverse=True)
    r = web.client.post(f"/notifications/{ids[0]}/read", data={"csrf_token": web.csrf(html)})
    assert r.status_code == 302 and r.location.endswith("/notifications")
    assert _unread(session, world, "ngo") == 1
    assert session.get(Notification, ids[0]).read_at is not None
    status, html = web.page("/notifications")
    assert _bell(html) == "1" and f'action="/notifications/{ids[0]}/read"' not in html
    # marking a read one again changes nothing
    assert web.client.post(f"/notifications/{ids[0]}/read", data={"csrf_token": web.csrf(html)}).status_code == 302
    r = web.client.post("/notifications/read-all", data={"csrf_token": web.csrf(html)})
    assert r.status_code == 302
    assert _unread(session, world, "ngo") == 0
    # the other members' rows are untouched
    assert _unread(session, world, "ngo_b") == 2
    status, html = web.page("/notifications")
    assert _bell(html) == "0" and "/read-all" not in html


def test_another_users_notification_is_not_found(api, web, session, world):
    _decided_case(api)
    other = session.scalar(select(Notification.id).where(Notification.user_id == world.users["ngo_b"]))
    web.login("ngo")
    html = web.page("/notifications")[1]
    assert f"/notifications/{other}/read" not in html
    r = web.client.post(f"/notifications/{other}/read", data={"csrf_token": web.csrf(html)})
    assert r.status_code == 404
    assert web.client.post("/notifications/999999/read", data={"csrf_token": web.csrf(html)}).status_code == 404
    session.expire_all()
    assert session.get(Notification, other).read_at is None
    # a staff member with no notifications sees an empty list, not someone else's
    web.client.post("/logout", data={"csrf_token": web.csrf(html)})
    web.login("director")
    status, html = web.page("/notifications")
    assert status == 200 and "/read" not in html.split("<main>")[1]


def test_marking_read_needs_csrf_and_a_signed_in_user(api, web, session, world):
    _decided_case(api)
    mine = session.scalar(select(Notification.id).where(Notification.user_id == world.users["ngo"]))
    assert web.client.get("/notifications").status_code == 302  # sign in first
    assert web.client.post(f"/notifications/{mine}/read").status_code in (302, 400)
    web.login("ngo")
    assert web.client.post(f"/notifications/{mine}/read").status_code == 400
    assert web.client.post("/notifications/read-all").status_code == 400
    assert web.client.post(f"/notifications/{mine}/read", data={"csrf_token": "forged"}).status_code == 400
    assert _unread(session, world, "ngo") == 2


def test_permit_and_deadline_notifications_link_and_render(web, session, world):
    """Rows written by the sweep (no case decision) render their own subject and link."""
    ngo = user(session, world, "ngo")
    session.add_all([
        Notification(user_id=ngo.id, kind="permit_30d", payload={"permit_number": "1405-0007",
                     "valid_until": utcnow().isoformat()}, created_at=utcnow()),
        Notification(user_id=ngo.id, kind="sla_due", payload={"case_id": 77, "due_at": utcnow().isoformat()},
                     created_at=utcnow()),
    ])
    session.commit()
    web.login("ngo")
    status, html = web.page("/notifications")
    assert status == 200 and _bell(html) == "2"
    assert 'href="/permits/1405-0007"' in html
    assert "۳۰" in html  # "ends in 30 days", in Persian


def test_overdue_marker_in_the_queue(api, web, session, world):
    first = api.ready()
    second = api.ready("s_ngo", "org3", name="جمعیت زنان کارآفرین سیرجان", county="Sirjan")
    api.advance(first, ("submit", "ngo"))
    api.advance(second, ("submit", "s_ngo"))
    web.login("intake")
    status, html = web.page("/queue")
    assert status == 200 and "overdue" not in html and "past-due" not in html

    def rows(html: str) -> dict[int, str]:
        return {int(m.group(2)): m.group(1) for m in re.finditer(
            r'<tr class="([^"]*)">\s*<td><a class="num" href="/cases/(\d+)"', html)}

    assert rows(html) == {first: "", second: ""}
    # due dates are shown, in Jalali
    for case_id in (first, second):
        assert format_date(session.get(Case, case_id).due_at, "fa") in html
    # escalated by the sweep: overdue; past its due moment but not escalated yet: past due
    session.get(Case, first).overdue = True
    session.get(Case, second).due_at = utcnow() - timedelta(hours=1)
    session.commit()
    status, html = web.page("/queue")
    assert rows(html) == {first: "overdue", second: "past-due"}
    assert html.count("badge overdue-flag") == 1 and html.count("badge due-flag") == 1
    assert "دیرکرد" in html and "موعد گذشته" in html
    web.client.get("/lang/en")
    html = web.page("/queue")[1]
    assert "Overdue" in html and "Past due" in html


def test_the_bell_is_counted_with_the_signed_in_user(api, app, web, session, world):
    """One statement loads the page's user and counts their unread notifications."""
    from sqlalchemy import event

    _decided_case(api)
    web.login("ngo")
    seen: list[str] = []
    engine = app.extensions["db_engine"]

    def note(_conn, _cursor, statement, *_rest):  # type: ignore[no-untyped-def]
        seen.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", note)
    try:
        status, html = web.page("/portal/")
    finally:
        event.remove(engine, "before_cursor_execute", note)
    assert status == 200 and _bell(html) == "2"
    counting = [s for s in seen if "FROM notifications" in s]
    assert len(counting) == 1 and "FROM users" in counting[0], counting

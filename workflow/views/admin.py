"""Administrators' pages: official holidays and notification deliveries that failed.

Only the `admin` role may use them (others get 403). Holidays feed every working-day
deadline, so each change clears the cached holiday set; a failed delivery can be sent again,
which puts it back in the outbox and enqueues it once the reset is committed.
"""
from __future__ import annotations

from itertools import groupby

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from forms.admin import HolidayForm
from jobs.messages import render
from jobs.queue import enqueue_after_commit

from .. import calendar, db
from .. import holidays as holiday_cache
from ..i18n import digits, lang
from ..models import Holiday, Notification, User, utcnow
from .notifications import renderable

bp = Blueprint("admin", __name__, url_prefix="/admin")
FAILED_PAGE = 200
DELIVER = "jobs.notify.deliver"


@bp.before_request
@login_required
def _admins_only() -> None:
    if not current_user.has_role("admin"):
        abort(403)
    return None


# -- holidays ----------------------------------------------------------------------------------

def _holiday_years() -> list[tuple[int, list[dict[str, object]]]]:
    """Holidays grouped by Jalali year, the latest year first, days in order within a year."""
    rows = db.session().scalars(select(Holiday).order_by(Holiday.day.desc())).all()
    code = lang()
    years = []
    for year, group in groupby(rows, key=lambda h: calendar.jalali_year(h.day)):
        days = [
            {"id": h.id, "day": h.day, "numeric": calendar.format_numeric(h.day, code), "name": h.name}
            for h in reversed(list(group))
        ]
        years.append((year, days))
    return years


def _holidays_page(form: HolidayForm, status: int = 200):  # type: ignore[no-untyped-def]
    return render_template("admin/holidays.html", form=form, years=_holiday_years()), status


@bp.get("/holidays")
def holidays():  # type: ignore[no-untyped-def]
    return _holidays_page(HolidayForm())


@bp.post("/holidays")
def add_holiday():  # type: ignore[no-untyped-def]
    form = HolidayForm()
    if not form.validate_on_submit() or form.parsed is None:
        return _holidays_page(form, 422)
    session = db.session()
    if session.scalar(select(Holiday.id).where(Holiday.day == form.parsed)) is not None:
        form.day.errors = [*form.day.errors, _("There is already a holiday on this date.")]
        return _holidays_page(form, 422)
    session.add(Holiday(day=form.parsed, name=form.name.data))
    try:
        session.commit()
    except IntegrityError:  # added at the same moment by another admin
        session.rollback()
        form.day.errors = [*form.day.errors, _("There is already a holiday on this date.")]
        return _holidays_page(form, 422)
    holiday_cache.forget()
    flash(_("Holiday added: %(date)s, %(name)s.", date=calendar.format_date(form.parsed, lang()),
            name=form.name.data), "success")
    return redirect(url_for("admin.holidays"))


@bp.post("/holidays/<int:holiday_id>/delete")
def delete_holiday(holiday_id: int):  # type: ignore[no-untyped-def]
    session = db.session()
    row = session.get(Holiday, holiday_id)
    if row is None:
        abort(404)
    day, name = row.day, row.name
    session.delete(row)
    session.commit()
    holiday_cache.forget()
    flash(_("Holiday removed: %(date)s, %(name)s.", date=calendar.format_date(day, lang()), name=name),
          "success")
    return redirect(url_for("admin.holidays"))


# -- deliveries --------------------------------------------------------------------------------

@bp.get("/deliveries")
def deliveries():  # type: ignore[no-untyped-def]
    session = db.session()
    failed_total = session.scalar(
        select(func.count()).select_from(Notification).where(Notification.failed_at.is_not(None))
    ) or 0
    pending = session.scalar(
        select(func.count()).select_from(Notification)
        .where(Notification.delivered_at.is_(None), Notification.failed_at.is_(None))
    ) or 0
    rows = session.execute(
        select(Notification, User)
        .join(User, User.id == Notification.user_id)
        .where(Notification.failed_at.is_not(None))
        .order_by(Notification.failed_at.desc(), Notification.id.desc())
        .limit(FAILED_PAGE)
    ).all()
    items = []
    for row, user in rows:
        subject, _body = render(renderable(row))  # type: ignore[arg-type]
        items.append({"row": row, "user": user, "subject": subject})
    return render_template("admin/deliveries.html", items=items, failed_total=failed_total, pending=pending)


def _reset(session, ids: list[int]) -> None:  # type: ignore[no-untyped-def]
    """Back into the outbox: not failed, no attempts yet, leased now; enqueued after commit."""
    if not ids:
        return
    session.execute(
        update(Notification).where(Notification.id.in_(ids))
        .values(failed_at=None, attempts=0, enqueued_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    for notification_id in ids:
        enqueue_after_commit(session, DELIVER, notification_id)


@bp.post("/deliveries/<int:notification_id>/retry")
def retry(notification_id: int):  # type: ignore[no-untyped-def]
    session = db.session()
    row = session.scalar(select(Notification).where(Notification.id == notification_id).with_for_update())
    if row is None:
        abort(404)
    if row.failed_at is None:
        flash(_("This notification has not failed; nothing to retry."), "info")
        return redirect(url_for("admin.deliveries"))
    _reset(session, [row.id])
    session.commit()
    flash(_("Notification %(n)s will be sent again.", n=digits(row.id)), "success")
    return redirect(url_for("admin.deliveries"))


@bp.post("/deliveries/retry")
def retry_all():  # type: ignore[no-untyped-def]
    session = db.session()
    ids = list(session.scalars(
        select(Notification.id).where(Notification.failed_at.is_not(None)).order_by(Notification.id)
        .with_for_update()
    ))
    _reset(session, ids)
    session.commit()
    if ids:
        flash(_("%(n)s notifications will be sent again.", n=digits(len(ids))), "success")
    else:
        flash(_("No failed notifications to retry."), "info")
    return redirect(url_for("admin.deliveries"))

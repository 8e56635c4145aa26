"""The signed-in user's notifications: the header's bell and the /notifications page.

Rows are the outbox's (one per recipient); unread means `read_at IS NULL`. A user only ever
sees, counts or marks their own rows: another user's id is a 404, never a 403 that would
confirm it exists.
"""
from __future__ import annotations

import logging
from datetime import datetime
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlparse

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError

from jobs.messages import render

from .. import db
from ..i18n import lang
from ..db import is_row_id
from ..models import Notification, Permit, utcnow
from ..text import whole_number

bp = Blueprint("notifications", __name__, url_prefix="/notifications")
log = logging.getLogger(__name__)
PAGE = 50


@bp.before_request
@login_required
def _signed_in() -> None:
    return None


def unread_count() -> int | None:
    """How many of the current user's notifications are unread; None for a visitor.

    Counted with the user when Flask-Login loads them from the session (accounts.
    load_signed_in_user), else one `count(*)` on ix_notifications_user_unread (user_id,
    read_at), once per request. A database failure must not turn every page (error pages
    included) into a 500: the bell simply shows no number.
    """
    if not current_user.is_authenticated:
        return None
    if "unread_notifications" not in g:
        session = db.session()
        try:
            g.unread_notifications = session.scalar(
                select(func.count()).select_from(Notification)
                .where(Notification.user_id == current_user.id, Notification.read_at.is_(None))
            ) or 0
        except SQLAlchemyError:
            log.exception("could not count unread notifications")
            session.rollback()
            g.unread_notifications = None
    return g.unread_notifications


@bp.app_context_processor
def _bell() -> dict[str, Any]:
    # A function, not a number: pages that never reach the header (redirects, JSON) never count.
    return {"unread_notifications": unread_count, "utcnow": utcnow}


def renderable(row: Notification) -> SimpleNamespace:
    """What jobs.messages.render needs, in the language of this page.

    The page speaks the language the user chose for this session (which may differ from the
    one stored on their row, used for e-mail); and case decisions' payloads do not carry the
    case number, which the row's own case_id supplies.
    """
    payload = dict(row.payload or {})
    if row.case_id is not None:
        payload.setdefault("case_id", row.case_id)
    return SimpleNamespace(user=SimpleNamespace(locale=lang()), kind=row.kind, payload=payload)


def _link(row: Notification, permit_number: str | None) -> str | None:
    if row.case_id is not None:
        return url_for("cases.show", case_id=row.case_id)
    number = permit_number or (row.payload or {}).get("permit_number")
    if number:
        return url_for("public.permit", number=number)
    return None


@bp.get("")
def index():  # type: ignore[no-untyped-def]
    session = db.session()
    query = (
        select(Notification, Permit.number)
        .outerjoin(Permit, Permit.id == Notification.permit_id)
        .where(Notification.user_id == current_user.id)
    )
    before = whole_number(request.args.get("before", ""))
    if is_row_id(before):
        query = query.where(Notification.id < before)
    rows = session.execute(query.order_by(Notification.id.desc()).limit(PAGE + 1)).all()
    more = len(rows) > PAGE
    items = []
    for row, permit_number in rows[:PAGE]:
        subject, body = render(renderable(row))  # type: ignore[arg-type]
        lines = body.split("\n")
        items.append({
            "id": row.id, "subject": subject,
            "details": lines[1:] if lines and lines[0] == subject else lines,
            "created_at": row.created_at, "read": row.read_at is not None, "link": _link(row, permit_number),
        })
    return render_template("notifications/index.html", items=items, more=more,
                           last_id=items[-1]["id"] if items else None)


def _back() -> str:
    target = request.form.get("next") or ""
    parts = urlparse(target)
    if target.startswith("/") and not target.startswith("//") and not parts.scheme and not parts.netloc:
        return target
    return url_for("notifications.index")


@bp.post("/<int:notification_id>/read")
def mark_read(notification_id: int):  # type: ignore[no-untyped-def]
    session = db.session()
    row = session.scalar(
        select(Notification)
        .where(Notification.id == notification_id, Notification.user_id == current_user.id)
    )
    if row is None:
        abort(404)
    if row.read_at is None:
        row.read_at = utcnow()
        session.commit()
    return redirect(_back())


@bp.post("/read-all")
def mark_all_read():  # type: ignore[no-untyped-def]
    session = db.session()
    now: datetime = utcnow()
    result = session.execute(
        update(Notification)
        .where(Notification.user_id == current_user.id, Notification.read_at.is_(None))
        .values(read_at=now)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    if result.rowcount:
        flash(_("All notifications are marked as read."), "success")
    return redirect(_back())

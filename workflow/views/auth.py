"""Sign-in, sign-out, the language switch and the unit amounts are shown in."""
from __future__ import annotations

from urllib.parse import urlparse

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user

from forms.auth import LoginForm, MoneyUnitForm

from .. import db, security, throttle
from ..money import UNITS
from ..services import accounts

bp = Blueprint("auth", __name__)


def home_for(user) -> str:  # type: ignore[no-untyped-def]
    """Each audience lands where its work is."""
    if "applicant" in user.roles and not user.is_staff:
        return url_for("portal.dashboard")
    if user.roles & {"intake", "expert", "director", "finance"}:
        return url_for("queues.queue")
    if user.roles & {"auditor", "admin"}:
        return url_for("queues.audit")
    return url_for("portal.dashboard")


def _safe_next(target: str | None) -> str | None:
    if not target:
        return None
    parts = urlparse(target)
    return target if not parts.scheme and not parts.netloc and target.startswith("/") else None


@bp.route("/")
def index():  # type: ignore[no-untyped-def]
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    return redirect(url_for("auth.login"))


@bp.route("/login", methods=["GET", "POST"])
def login():  # type: ignore[no-untyped-def]
    form = LoginForm()
    if form.validate_on_submit():
        user = accounts.authenticate(db.session(), form.email.data, form.password.data)
        if user is None:
            throttle.record_failure()
            form.password.errors = [_("Wrong e-mail or password.")]
        else:
            db.session().commit()  # a password hash upgraded to argon2 on the way in
            security.start_session()
            login_user(user)
            return redirect(_safe_next(request.args.get("next")) or home_for(user))
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
@login_required
def logout():  # type: ignore[no-untyped-def]
    security.end_session()
    flash(_("You have signed out."), "info")
    return redirect(url_for("auth.login"))


@bp.get("/lang/<code>")
def set_language(code: str):  # type: ignore[no-untyped-def]
    if code in ("fa", "en"):
        session["lang"] = code
    return redirect(_safe_next(request.args.get("next")) or url_for("auth.index"))


@bp.post("/settings/money-unit")
@login_required
def set_money_unit():  # type: ignore[no-untyped-def]
    """Show amounts in tomans or rials from now on; kept in the user's row, so on every device."""
    form = MoneyUnitForm()
    if not form.validate_on_submit() or form.unit.data not in UNITS:
        flash(_("The form has expired; please try again."), "error")
    else:
        session_ = db.session()
        current_user.money_unit = form.unit.data
        session_.commit()
    return redirect(_safe_next(request.args.get("next")) or url_for("auth.index"))

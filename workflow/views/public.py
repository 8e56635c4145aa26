"""The permit page: public verification for anyone; history and actions for those entitled."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from forms.transitions import TransitionForm

from .. import db, labels
from ..errors import WorkflowError
from ..models import Permit
from ..services import permits
from ..text import ascii_digits, whole_number

bp = Blueprint("public", __name__)


@bp.get("/verify")
def verify():  # type: ignore[no-untyped-def]
    number = ascii_digits(request.args.get("number", "")).strip()
    if number:
        return redirect(url_for("public.permit", number=number))
    return render_template("public/verify.html", permit=None, number="", labels=labels)


@bp.get("/permits/<number>")
def permit(number: str):  # type: ignore[no-untyped-def]
    number = ascii_digits(number).strip()
    session = db.session()
    found = session.scalar(select(Permit).where(Permit.number == number))
    history, forms = [], []
    if found is not None and current_user.is_authenticated and permits.may_see_history(current_user, found):
        history = permits.history(session, found)
        for action in permits.allowed_actions(found, current_user):
            form = TransitionForm(prefix=action)
            form.action.data = action
            form.version.data = str(found.version)
            forms.append(form)
    return render_template("public/verify.html", permit=found, number=number, labels=labels,
                           history=history, forms=forms), 200 if found else 404


@bp.post("/permits/<number>/transition/<action>")
@login_required
def permit_transition(number: str, action: str):  # type: ignore[no-untyped-def]
    session = db.session()
    form = TransitionForm(prefix=action)
    target = url_for("public.permit", number=number)
    if not form.validate_on_submit():
        flash(_("The form has expired; please try again."), "error")
        return redirect(target)
    try:
        found = permits.get_by_number(session, number)
        version = whole_number(form.version.data or "") or -1
        permits.fire(session, found, action, current_user, reason=form.comment.data, version=version)
        session.commit()
    except WorkflowError as exc:
        session.rollback()
        flash(exc.message if not exc.fields else " ".join(exc.fields.values()), "error")
        return redirect(target)
    except ValueError:
        flash(_("The form has expired; please try again."), "error")
        return redirect(target)
    flash(_("Done: %(action)s.", action=labels.label(labels.ACTIONS, action)), "success")
    return redirect(target)

"""The case page (data, documents, allowed actions, history) and the action forms behind it."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from forms.transitions import TransitionForm

from .. import db, engine, labels
from ..errors import NotFound, WorkflowError
from ..models import AuditEntry, Document
from ..services import applications

bp = Blueprint("cases", __name__, url_prefix="/cases")


@bp.before_request
@login_required
def _signed_in() -> None:
    return None


@bp.get("/<int:case_id>")
def show(case_id: int):  # type: ignore[no-untyped-def]
    session = db.session()
    case = engine.get_case(session, current_user, case_id)
    history = session.scalars(
        select(AuditEntry).where(AuditEntry.case_id == case.id).order_by(AuditEntry.seq)
    ).all()
    forms = []
    for action in engine.allowed_actions(session, case, current_user):
        form = TransitionForm(prefix=action)
        form.action.data = action
        form.version.data = str(case.version)
        forms.append(form)
    editable = applications.editable(case) and case.organization_id in current_user.organization_ids
    return render_template("cases/case.html", case=case, history=history, forms=forms, editable=editable,
                           labels=labels)


@bp.post("/<int:case_id>/transition/<action>")
def transition(case_id: int, action: str):  # type: ignore[no-untyped-def]
    session = db.session()
    case = engine.get_case(session, current_user, case_id)
    form = TransitionForm(prefix=action)
    if not form.validate_on_submit():
        flash(_("The form has expired; please try again."), "error")
        return redirect(url_for("cases.show", case_id=case.id))
    try:
        version = int(form.version.data or -1)
        engine.fire(session, case, action, current_user, version=version, comment=form.comment.data)
        session.commit()
    except WorkflowError as exc:
        session.rollback()
        flash(exc.message if not exc.fields else " ".join(exc.fields.values()), "error")
        return redirect(url_for("cases.show", case_id=case_id))
    except ValueError:
        flash(_("The form has expired; please try again."), "error")
        return redirect(url_for("cases.show", case_id=case_id))
    flash(_("Done: %(action)s.", action=labels.label(labels.ACTIONS, action)), "success")
    if engine.can_see(current_user, case) and engine.allowed_actions(session, case, current_user):
        return redirect(url_for("cases.show", case_id=case.id))
    return redirect(url_for("auth.index") if current_user.is_staff else url_for("cases.show", case_id=case.id))


@bp.get("/<int:case_id>/documents/<int:doc_id>")
def document(case_id: int, doc_id: int):  # type: ignore[no-untyped-def]
    session = db.session()
    case = engine.get_case(session, current_user, case_id)
    doc = session.get(Document, doc_id)
    if doc is None or doc.case_id != case.id:
        raise NotFound(_("No such document."))
    return send_file(applications.document_path(doc), mimetype="application/pdf", as_attachment=True,
                     download_name=doc.original_name)

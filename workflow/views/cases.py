"""The case page (data, documents, allowed actions, history) and the action forms behind it.

A grant request's page adds the money: the grant's figures and a panel of its tranches, where
the tranche actions (release, the spending report, accepting or returning it) live beside the
tranche they act on instead of among the case's buttons.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from forms.grants import MAX_TRANCHES, ReportForm, TrancheActionForm
from forms.transitions import TransitionForm

from .. import db, engine, labels, uploads
from ..errors import Invalid, NotFound, WorkflowError
from ..i18n import amount_text, money_unit, unit_name
from ..models import AuditEntry, Case, Document, Grant, Tranche
from ..money import parse_amount
from ..services import applications
from ..services import grants as grant_service
from ..states import grant_request
from ..text import whole_number
from .row_urls import row_url

bp = Blueprint("cases", __name__, url_prefix="/cases")

# Actions on one tranche: shown in the tranche panel, never as the case's generic buttons.
TRANCHE_ACTIONS = frozenset({"release_tranche", "submit_report", "accept_report", "return_report"})
# The URL's verb → the process's action.
TRANCHE_VERBS = {"release": "release_tranche", "accept": "accept_report", "return": "return_report"}


@bp.before_request
@login_required
def _signed_in() -> None:
    return None


@bp.app_template_global()
def case_url(case_id: int) -> str:
    """url_for('cases.show', case_id=…) for a list's rows (row_urls)."""
    return row_url("cases.show", case_id=case_id)


bp.add_app_template_global(row_url)


def _report_form(case: Case, item: Tranche, formdata: Any = None) -> ReportForm:
    """The spending report's form; a returned report comes back filled with what was filed."""
    form = ReportForm(formdata=formdata, prefix="report")
    if formdata is None:
        form.version.data = str(case.version)
        filed = item.report_lines or []
        while len(form.lines.entries) < max(3, len(filed) + 1):
            form.lines.append_entry()
        for entry, line in zip(form.lines.entries, filed):
            entry.form.item.data = line.get("item", "")
            entry.form.budgeted.data = amount_text(line.get("budgeted_rials"))
            entry.form.spent.data = amount_text(line.get("spent_rials"))
    return form


def _grant_context(session: Any, case: Case, allowed: list[str], report_form: ReportForm | None = None,
                   report_errors: dict[str, str] | None = None) -> dict[str, Any]:
    """What the grant part of the page shows, and which tranche forms this user gets."""
    grant = session.get(Grant, case.id)
    if grant is None:
        return {}
    items = grant_service.tranches(session, case)
    releasable = grant_request.releasable(session, case) if case.state == "approved" else None
    panel = []
    for item in items:
        forms: dict[str, Any] = {}
        if "release_tranche" in allowed and releasable is item:
            forms["release"] = TrancheActionForm(formdata=None, prefix=f"release{item.n}", version=str(case.version))
        if "submit_report" in allowed and item.state in grant_request.OPEN_TRANCHE:
            forms["report"] = report_form or _report_form(case, item)
        if item.state == "reported":
            if "accept_report" in allowed:
                forms["accept"] = TrancheActionForm(formdata=None, prefix=f"accept{item.n}", version=str(case.version))
            if "return_report" in allowed:
                forms["return"] = TrancheActionForm(formdata=None, prefix=f"return{item.n}", version=str(case.version))
        panel.append({"tranche": item, "forms": forms})
    return {"grant": grant, "programme": grant.programme, "panel": panel,
            "receipts": grant_service.receipts(session, case), "report_errors": report_errors or {}}


def _render(case: Case, *, report_form: ReportForm | None = None, report_errors: dict[str, str] | None = None,
            status: int = 200):  # type: ignore[no-untyped-def]
    session = db.session()
    history = session.scalars(
        select(AuditEntry).where(AuditEntry.case_id == case.id).order_by(AuditEntry.seq)
    ).all()
    allowed = engine.allowed_actions(session, case, current_user)
    forms = []
    for action in allowed:
        if action in TRANCHE_ACTIONS:
            continue
        form = TransitionForm(formdata=None, prefix=action)
        form.action.data = action
        form.version.data = str(case.version)
        forms.append(form)
    editable = applications.editable(case) and case.organization_id in current_user.organization_ids
    grant = _grant_context(session, case, allowed, report_form, report_errors) \
        if case.kind == grant_request.KIND else {}
    return render_template("cases/case.html", case=case, history=history, forms=forms, editable=editable,
                           labels=labels, grant=grant, tranche_slots=MAX_TRANCHES, unit=unit_name()), status


@bp.get("/<int:case_id>")
def show(case_id: int):  # type: ignore[no-untyped-def]
    return _render(engine.get_case(db.session(), current_user, case_id))


def _action_values(case: Case, action: str, form: TransitionForm) -> dict[str, Any] | None:
    """The figures the grant's reviewers send with their action, amounts read in their unit.

    Raises Invalid, with this page's words, for an amount it cannot read.
    """
    if case.kind != grant_request.KIND:
        return None
    if action == "recommend_approval":
        return {"score": (form.score.data or "").strip()}
    if action != "propose_amount":
        return None
    unit, errors = money_unit(), {}
    message = _("Enter an amount greater than zero in %(unit)s, such as 12,500.", unit=unit_name())
    amount = parse_amount(form.amount.data or "", unit)
    if not amount:
        errors["amount_rials"] = f"{labels.label(labels.FIELD_LABELS, 'amount_rials')}: {message}"
    tranches = []
    for text in (entry.data for entry in form.tranches.entries):
        if text and text.strip():
            rials = parse_amount(text, unit)
            if not rials:
                errors["tranches"] = f"{labels.label(labels.FIELD_LABELS, 'tranches')}: {message}"
            tranches.append(rials or 0)
    if errors:
        raise Invalid(_("Some fields need attention."), errors)
    return {"amount_rials": amount, "tranches": tranches}


@bp.post("/<int:case_id>/transition/<action>")
def transition(case_id: int, action: str):  # type: ignore[no-untyped-def]
    session = db.session()
    case = engine.get_case(session, current_user, case_id)
    form = TransitionForm(prefix=action)
    if not form.validate_on_submit():
        flash(_("The form has expired; please try again."), "error")
        return redirect(url_for("cases.show", case_id=case.id))
    try:
        version = whole_number(form.version.data or "") or -1
        engine.fire(session, case, action, current_user, version=version, comment=form.comment.data,
                    values=_action_values(case, action, form))
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


def _grant_case(case_id: int) -> Case:
    return grant_service.grant_case(db.session(), current_user, case_id)


@bp.post("/<int:case_id>/tranches/<int:n>/<verb>")
def tranche_action(case_id: int, n: int, verb: str):  # type: ignore[no-untyped-def]
    """Finance releases tranche n, or accepts or returns its spending report."""
    action = TRANCHE_VERBS.get(verb)
    if action is None:
        abort(404)
    session = db.session()
    case = _grant_case(case_id)
    grant_service.get_tranche(session, case, n)
    form = TrancheActionForm(prefix=f"{verb}{n}")
    if not form.validate_on_submit():
        flash(_("The form has expired; please try again."), "error")
        return redirect(url_for("cases.show", case_id=case.id))
    try:
        version = whole_number(form.version.data or "") or -1
        engine.fire(session, case, action, current_user, version=version, comment=form.comment.data,
                    values={"tranche": n})
        session.commit()
    except WorkflowError as exc:
        session.rollback()
        flash(exc.message if not exc.fields else " ".join(exc.fields.values()), "error")
        return redirect(url_for("cases.show", case_id=case.id))
    except ValueError:
        flash(_("The form has expired; please try again."), "error")
        return redirect(url_for("cases.show", case_id=case.id))
    flash(_("Done: %(action)s.", action=labels.label(labels.ACTIONS, action)), "success")
    return redirect(url_for("cases.show", case_id=case.id, _anchor=f"tranche-{n}"))


def _report_lines(form: ReportForm) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The report's lines in rials, from amounts typed in the user's unit; an unreadable amount
    goes on as "x" (the service refuses it) with this page's message under it."""
    unit, local = money_unit(), {}
    message = _("Enter an amount greater than zero in %(unit)s, such as 12,500.", unit=unit_name())
    lines = []
    for i, entry in enumerate(form.lines.entries):
        line: dict[str, Any] = {"item": entry.form.item.data or ""}
        for field, key in ((entry.form.budgeted, "budgeted_rials"), (entry.form.spent, "spent_rials")):
            text = (field.data or "").strip()
            rials = parse_amount(text, unit) if text else None
            if text and rials is None:
                local[f"lines.{i}.{key}"] = message
            line[key] = "" if not text else ("x" if rials is None else rials)
        lines.append(line)
    return lines, local


@bp.post("/<int:case_id>/tranches/<int:n>/report")
def report(case_id: int, n: int):  # type: ignore[no-untyped-def]
    """The NGO files the spending report of tranche n: lines and receipts, in one transaction."""
    session = db.session()
    case = _grant_case(case_id)
    grant_service.get_tranche(session, case, n)
    form = ReportForm(prefix="report")
    if not form.validate_on_submit():
        flash(_("The form has expired; please try again."), "error")
        return redirect(url_for("cases.show", case_id=case.id))
    lines, local = _report_lines(form)
    files = [(uploads.read(upload), upload.filename or "receipt")
             for upload in request.files.getlist(form.receipts.name) if upload and upload.filename]
    try:
        version = whole_number(form.version.data or "") or -1
        grant_service.file_report(session, current_user, case, n, lines=lines, files=files, version=version,
                                  comment=form.comment.data)
        if local:  # not reached in practice: the service refuses an "x"
            raise Invalid(_("Some fields need attention."), {})
        session.commit()
    except Invalid as exc:
        session.rollback()
        session.refresh(case)
        errors = {**exc.fields, **local} or {"lines": exc.message}
        flash(_("The report was not filed; see the messages below."), "error")
        form.version.data = str(case.version)  # what was typed comes back; files cannot
        return _render(case, report_form=form, report_errors=errors, status=422)
    except WorkflowError as exc:
        session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("cases.show", case_id=case.id))
    except ValueError:
        flash(_("The form has expired; please try again."), "error")
        return redirect(url_for("cases.show", case_id=case.id))
    flash(_("Done: %(action)s.", action=labels.label(labels.ACTIONS, "submit_report")), "success")
    return redirect(url_for("cases.show", case_id=case.id, _anchor=f"tranche-{n}"))


@bp.get("/<int:case_id>/documents/<int:doc_id>")
def document(case_id: int, doc_id: int):  # type: ignore[no-untyped-def]
    session = db.session()
    case = engine.get_case(session, current_user, case_id)
    doc = session.get(Document, doc_id)
    if doc is None or doc.case_id != case.id:
        raise NotFound(_("No such document."))
    return uploads.send(doc.stored_name, doc.content_type, doc.original_name)


@bp.get("/<int:case_id>/receipts/<int:doc_id>")
def receipt(case_id: int, doc_id: int):  # type: ignore[no-untyped-def]
    """A spending report's receipt, to whoever may see the grant, as the type it was stored as."""
    session = db.session()
    case = _grant_case(case_id)
    doc = session.get(Document, doc_id)
    if doc is None or doc.case_id != case.id or doc.kind != "receipt":
        raise NotFound(_("No such document."))
    return uploads.send(doc.stored_name, doc.content_type, doc.original_name)

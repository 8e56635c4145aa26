"""The NGO's side: dashboard, the application form with its statute upload."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from forms.applications import ApplicationForm, NewApplicationForm, NewRenewalForm, RenewalForm
from forms.grants import GrantRequestForm

from .. import db, engine, labels, uploads
from ..errors import Invalid, WorkflowError
from ..i18n import lang
from ..i18n import amount_text, money_unit, unit_name
from ..models import Case, Organization, Permit, Programme, utcnow
from ..money import parse_amount
from ..states import grant_request, permit_renewal
from ..reference_data import FIELDS
from ..text import persian_digits, whole_number
from ..services import applications

bp = Blueprint("portal", __name__, url_prefix="/portal")
PERMIT_KINDS = ("permit_issuance", permit_renewal.KIND)


@bp.before_request
@login_required
def _signed_in() -> None:
    return None


@bp.get("/")
def dashboard():  # type: ignore[no-untyped-def]
    session = db.session()
    org_ids = list(current_user.organization_ids)
    orgs = session.scalars(select(Organization).where(Organization.id.in_(org_ids))).all()
    cases = session.scalars(
        select(Case).where(Case.organization_id.in_(org_ids)).order_by(Case.updated_at.desc())
    ).all()
    permits = session.scalars(select(Permit).where(Permit.organization_id.in_(org_ids))).all()
    # Where an application is open or a permit is live, the next step is not a new application.
    # Grant requests say nothing about whether an organisation needs a permit: only permit cases count.
    open_by_org = {c.organization_id for c in cases if c.kind in PERMIT_KINDS
                   and c.state not in ("approved", "rejected", "withdrawn")}
    open_by_org |= {p.organization_id for p in permits if p.state in ("active", "suspended")}
    now = utcnow()
    renewal = {
        p.id: {
            "days_left": (p.valid_until - now).days,
            "can_renew": p.open_renewal_case_id is None and permit_renewal.why_not_renewable(p, now) is None,
            "open_case": p.open_renewal_case_id,
        }
        for p in permits
    }
    return render_template("portal/dashboard.html", orgs=orgs, cases=cases, permits=permits,
                           open_by_org=open_by_org, new_form=NewApplicationForm(),
                           renewal=renewal, renew_form=NewRenewalForm())


@bp.post("/renewals/new")
def new_renewal():  # type: ignore[no-untyped-def]
    """Open a renewal prefilled from the permit, then continue on its form."""
    form = NewRenewalForm()
    if not form.validate_on_submit():
        abort(400)
    session = db.session()
    permit = session.get(Permit, form.permit_id.data) if form.permit_id.data else None
    if permit is None or permit.organization_id not in current_user.organization_ids:
        abort(404)
    try:
        case, _created = applications.create(
            session, current_user, kind=permit_renewal.KIND, organization_id=permit.organization_id,
            data={"permit_number": permit.number},
        )
        session.commit()
    except WorkflowError as exc:
        session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("portal.dashboard"))
    return redirect(url_for("portal.edit_application", case_id=case.id))


def _edit_renewal(case: Case):  # type: ignore[no-untyped-def]
    session = db.session()
    form = RenewalForm()
    extra: list[str] = []
    if request.method == "GET":
        form.version.data = str(case.version)
        shown = persian_digits if lang() == "fa" else str
        form.activity_report.data = shown((case.data or {}).get("activity_report", ""))
    elif form.validate_on_submit():
        data = {"permit_number": (case.data or {}).get("permit_number"), "activity_report": form.activity_report.data or ""}
        try:
            applications.update_data(session, current_user, case, data, whole_number(form.version.data or "") or -1)
            session.commit()
            if "submit" in request.form:
                action = "submit" if case.state == "draft" else "resubmit"
                engine.fire(session, case, action, current_user, version=case.version)
                session.commit()
                flash(_("Your application has been submitted."), "success")
                return redirect(url_for("cases.show", case_id=case.id))
        except WorkflowError as exc:
            session.rollback()
            extra = list(exc.fields.values()) or [exc.message]
            form.version.data = str(case.version)
            return render_template("portal/renewal_form.html", form=form, case=case, extra=extra), exc.status
        flash(_("Draft saved."), "success")
        return redirect(url_for("portal.edit_application", case_id=case.id))
    else:
        flash(_("The form has expired; please try again."), "error")
    return render_template("portal/renewal_form.html", form=form, case=case, extra=extra,
                           permit=permit_renewal.permit_of(session, case))


# Where the grant form shows a service's message: its own fields by key; anything else (the
# eligibility reasons: permit, programme_id, field, reports) is listed above the form.
GRANT_FIELDS = {"title", "summary", "requested_rials", "budget_lines"}


def _grant_form_data(form: GrantRequestForm, case: Case) -> tuple[dict[str, object], dict[str, str]]:
    """The request's data with amounts read in the user's unit, and the amounts it could not read.

    An amount that is not one is sent to the service as "x" so the draft is refused as a whole;
    the message under it is this page's, which names the unit the user typed in.
    """
    unit, local = money_unit(), {}

    def amount(text: str | None, key: str) -> object:
        if not text:
            return ""
        rials = parse_amount(text, unit)
        if not rials:
            local[key] = _("Enter an amount greater than zero in %(unit)s, such as 12,500.", unit=unit_name())
            return "x"
        return rials

    data = {
        "programme_id": (case.data or {}).get("programme_id"),
        "title": form.title.data or "",
        "summary": form.summary.data or "",
        "requested_rials": amount(form.requested.data, "requested_rials"),
        "budget_lines": [
            {"item": entry.form.item.data or "", "rials": amount(entry.form.amount.data, f"budget_lines.{i}.rials")}
            for i, entry in enumerate(form.budget_lines.entries)
        ],
    }
    for i, entry in enumerate(form.budget_lines.entries):
        if entry.form.item.data and not entry.form.amount.data:
            local[f"budget_lines.{i}.rials"] = _("Enter the amount in %(unit)s.", unit=unit_name())
    return data, local


def _grant_errors(fields: dict[str, str], message: str) -> tuple[dict[str, str], list[str]]:
    """(messages by form key, messages listed above the form with their subject's name)."""
    by_key: dict[str, str] = {}
    extra: list[str] = []
    for key, text in fields.items():
        if key.split(".")[0] in GRANT_FIELDS:
            by_key[key] = text
        else:
            extra.append(f"{labels.label(labels.FIELD_LABELS, key)}: {text}")
    if not fields:
        extra.append(message)
    return by_key, extra


def _edit_grant(case: Case):  # type: ignore[no-untyped-def]
    """The grant request's form: title, summary, amount and budget lines, in the user's unit."""
    session = db.session()
    form = GrantRequestForm()
    programme = session.get(Programme, (case.data or {}).get("programme_id") or 0)
    errors: dict[str, str] = {}
    extra: list[str] = []
    status = 200

    def page():  # type: ignore[no-untyped-def]
        form.version.data = str(case.version)
        unit = unit_name()
        form.requested.label.text = _("Amount requested (%(unit)s)", unit=unit)
        return render_template("portal/grant_form.html", form=form, case=case, programme=programme,
                               errors=errors, extra=extra, unit=unit), status

    if request.method == "GET":
        data = case.data or {}
        shown = persian_digits if lang() == "fa" else str
        form.title.data = shown(data.get("title", ""))
        form.summary.data = shown(data.get("summary", ""))
        form.requested.data = amount_text(data.get("requested_rials")) if data.get("requested_rials") else ""
        lines = data.get("budget_lines", [])
        while len(form.budget_lines.entries) < max(3, len(lines) + 1):
            form.budget_lines.append_entry()
        for entry, line in zip(form.budget_lines.entries, lines):
            entry.form.item.data = shown(line.get("item", ""))
            entry.form.amount.data = amount_text(line.get("rials")) if line.get("rials") else ""
        return page()
    if not form.validate_on_submit():
        flash(_("The form has expired; please try again."), "error")
        return page()
    data, local = _grant_form_data(form, case)
    try:
        applications.update_data(session, current_user, case, data, whole_number(form.version.data or "") or -1)
        session.commit()
    except WorkflowError as exc:
        session.rollback()
        errors, extra = _grant_errors({**exc.fields, **local} if isinstance(exc, Invalid) else {}, exc.message)
        status = 422 if isinstance(exc, Invalid) else exc.status
        return page()
    except ValueError:
        flash(_("The form has expired; please try again."), "error")
        return page()
    if "submit" not in request.form:
        flash(_("Draft saved."), "success")
        return redirect(url_for("portal.edit_application", case_id=case.id))
    try:
        engine.fire(session, case, "submit" if case.state == "draft" else "resubmit", current_user,
                    version=case.version)
        session.commit()
    except WorkflowError as exc:
        session.rollback()
        flash(_("Your changes are saved, but the request cannot be submitted yet."), "error")
        errors, extra = _grant_errors(exc.fields, exc.message)
        status = 422 if isinstance(exc, Invalid) else exc.status
        return page()
    flash(_("Your request has been submitted."), "success")
    return redirect(url_for("cases.show", case_id=case.id))


@bp.post("/applications/new")
def new_application():  # type: ignore[no-untyped-def]
    form = NewApplicationForm()
    if not form.validate_on_submit():
        abort(400)
    session = db.session()
    org_id = form.organization_id.data
    org = session.get(Organization, org_id) if org_id else None
    data = {"name": org.name if org else ""}
    try:
        case, _created = applications.create(session, current_user, kind="permit_issuance",
                                              organization_id=org_id, data=data)
        session.commit()
    except WorkflowError as exc:
        session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("portal.dashboard"))
    return redirect(url_for("portal.edit_application", case_id=case.id))


def _choices(case: Case) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    code = lang()
    fields = [("", _("Choose…"))] + [(f["code"], f["name_fa"] if code == "fa" else f["name_en"]) for f in FIELDS]
    counties = [("", _("Choose…"))] + [
        (c.name_fa, c.name(code)) for c in case.organization.province.counties
    ]
    return fields, counties


@bp.route("/applications/<int:case_id>/edit", methods=["GET", "POST"])
def edit_application(case_id: int):  # type: ignore[no-untyped-def]
    session = db.session()
    case = engine.get_case(session, current_user, case_id)
    if not applications.editable(case) or case.organization_id not in current_user.organization_ids:
        return redirect(url_for("cases.show", case_id=case.id))
    if case.kind == permit_renewal.KIND:
        return _edit_renewal(case)
    if case.kind == grant_request.KIND:
        return _edit_grant(case)
    form = ApplicationForm()
    form.field.choices, form.county.choices = _choices(case)
    extra: list[str] = []
    if request.method == "GET":
        data = case.data or {}
        form.version.data = str(case.version)
        shown = persian_digits if lang() == "fa" else str
        form.name.data = shown(data.get("name", ""))
        form.field.data = data.get("field", "")
        form.county.data = data.get("county", "")
        form.address.data = shown(data.get("address", ""))
        founders = data.get("founders", [])
        while len(form.founders.entries) < max(3, len(founders) + 1):
            form.founders.append_entry()
        for entry, founder in zip(form.founders.entries, founders):
            entry.form.full_name.data = founder.get("full_name", "")
            entry.form.national_id.data = founder.get("national_id", "")
    elif form.validate_on_submit():
        wants_submit = "submit" in request.form
        upload = form.statute.data
        if upload is not None and getattr(upload, "filename", ""):
            # The statute is kept even if the fields below need fixing: the applicant should
            # not have to pick the file again because of a typo in a national ID.
            try:
                content = uploads.read(upload)
                applications.attach_document(session, current_user, case, content=content,
                                             filename=upload.filename)
                session.commit()
            except WorkflowError as exc:
                session.rollback()
                extra = form.show_errors(exc.fields) if exc.fields else [exc.message]
                form.version.data = str(case.version)
                return render_template("portal/application_form.html", form=form, case=case,
                                       extra=extra), exc.status
        try:
            version = whole_number(form.version.data or "") or -1
            applications.update_data(session, current_user, case, form.data_for_service(), version)
            session.commit()
        except WorkflowError as exc:
            session.rollback()
            extra = form.show_errors(exc.fields) if exc.fields else [exc.message]
            form.version.data = str(case.version)
            status = 422 if isinstance(exc, Invalid) else exc.status
            return render_template("portal/application_form.html", form=form, case=case, extra=extra), status
        if not wants_submit:
            flash(_("Draft saved."), "success")
            return redirect(url_for("portal.edit_application", case_id=case.id))
        action = "submit" if case.state == "draft" else "resubmit"
        try:
            engine.fire(session, case, action, current_user, version=case.version)
            session.commit()
        except WorkflowError as exc:
            session.rollback()
            extra = form.show_errors(exc.fields)
            flash(_("Your changes are saved, but the application cannot be submitted yet."), "error")
            form.version.data = str(case.version)
            return render_template("portal/application_form.html", form=form, case=case, extra=extra), 422
        flash(_("Your application has been submitted."), "success")
        return redirect(url_for("cases.show", case_id=case.id))
    else:
        flash(_("The form has expired; please try again."), "error")
    return render_template("portal/application_form.html", form=form, case=case, extra=extra)

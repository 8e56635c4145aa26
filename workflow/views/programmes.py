"""Grant programmes on the pages: the list, a programme with its figures, creating one, and the
NGO's "Request a grant" button that opens a grant request for it.

Who sees what: administrators and national staff every programme; provincial staff their
province's; an NGO member the programmes of the provinces their organisations work in. A
programme out of sight is a 404, like a case.
"""
from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from forms.grants import ProgrammeForm, RequestGrantForm

from .. import db
from ..calendar import jalali_year, parse_jalali_date, to_tehran
from ..errors import Invalid, WorkflowError
from ..i18n import lang, money_unit, unit_name
from ..models import Case, Grant, Organization, Programme, Province, User, utcnow
from ..money import parse_amount
from ..reference_data import FIELDS
from ..services import applications
from ..services import grants as grant_service
from ..states import grant_request
from ..text import whole_number

bp = Blueprint("grants", __name__, url_prefix="/programmes")

# Fiscal years a programme may be for: the service's range.
YEARS = (1390, 1499)


@bp.before_request
@login_required
def _signed_in() -> None:
    return None


def may_create(user: User) -> bool:
    return bool(user.roles & grant_service.PROGRAMME_ROLES)


def _visible(session: Any, programme_id: int) -> Programme:
    return grant_service.get_programme(session, current_user, programme_id)


@bp.get("/")
def programmes():  # type: ignore[no-untyped-def]
    session = db.session()
    items = grant_service.list_programmes(session, current_user)
    rows = [{"programme": p, "figures": grant_service.figures(session, p), "open": grant_service.is_open(p)}
            for p in items]
    return render_template("grants/programmes.html", rows=rows, may_create=may_create(current_user))


def _field_choices() -> list[tuple[str, str]]:
    return [(f["code"], f["name_fa"] if lang() == "fa" else f["name_en"]) for f in FIELDS]


def _province_choices(session: Any) -> list[tuple[str, str]]:
    """Finance of a province creates programmes there; admins and national finance anywhere."""
    query = select(Province).order_by(Province.name_fa if lang() == "fa" else Province.name_en)
    if "admin" not in current_user.roles and current_user.province_id is not None:
        query = query.where(Province.id == current_user.province_id)
    choices = [(str(p.id), p.name(lang())) for p in session.scalars(query)]
    return choices if len(choices) == 1 else [("", _("Choose…"))] + choices


def _label_amounts(form: ProgrammeForm) -> None:
    unit = unit_name()
    form.budget.label.text = _("Budget (%(unit)s)", unit=unit)
    form.max_award.label.text = _("Largest award (%(unit)s)", unit=unit)


def read_amount(text: str | None, errors: dict[str, str], key: str) -> int | None:
    """An amount typed in the user's unit, as whole rials; a message under `key` if it is not one.

    The services speak rials; the message here speaks the unit the user typed in.
    """
    if not text:
        return None
    rials = parse_amount(text, money_unit())
    if not rials:
        errors[key] = _("Enter an amount greater than zero in %(unit)s, such as 12,500.", unit=unit_name())
        return None
    return rials


def _jalali(text: str | None, errors: dict[str, str], key: str) -> date | None:
    if not text:
        return None
    try:
        return parse_jalali_date(text)
    except (ValueError, OverflowError):
        errors[key] = _("Enter a real Jalali date as year/month/day, e.g. 1405/01/15.")
        return None


@bp.route("/new", methods=["GET", "POST"])
def new():  # type: ignore[no-untyped-def]
    if not may_create(current_user):
        abort(403)
    session = db.session()
    form = ProgrammeForm()
    form.province.choices = _province_choices(session)
    form.fields.choices = _field_choices()
    _label_amounts(form)
    errors: dict[str, str] = {}
    status = 200
    if form.is_submitted() and not form.validate():
        flash(_("The form has expired; please try again."), "error")
    elif form.is_submitted():
        local: dict[str, str] = {}
        raw = {
            "name": form.name.data or "",
            # Only a province offered on the form; anything else is "choose a province".
            "province": int(form.province.data) if form.province.data in dict(form.province.choices) and
            form.province.data else None,
            "fiscal_year": form.fiscal_year.data or "",
            "budget_rials": read_amount(form.budget.data, local, "budget_rials"),
            "max_award_rials": read_amount(form.max_award.data, local, "max_award_rials"),
            "opens_on": _jalali(form.opens_on.data, local, "opens_on"),
            "closes_on": _jalali(form.closes_on.data, local, "closes_on"),
            "fields": list(form.fields.data or []),
        }
        try:
            programme = grant_service.create_programme(session, current_user, raw)
            if local:  # not reached in practice: an amount or date it could not read is missing
                raise Invalid(_("Some fields need attention."), {})
            session.commit()
        except Invalid as exc:
            session.rollback()
            # The unit-aware messages of this page win over the service's "missing" ones.
            errors = {**exc.fields, **local} or {"name": exc.message}
            status = 422
        except WorkflowError as exc:
            session.rollback()
            errors, status = {"province": exc.message}, exc.status
        else:
            flash(_("The programme has been created."), "success")
            return redirect(url_for("grants.show", programme_id=programme.id))
    elif not form.fiscal_year.data:
        form.fiscal_year.data = str(jalali_year(to_tehran(utcnow())))
    return render_template("grants/programme_form.html", form=form, errors=errors), status


@bp.get("/<int:programme_id>")
def show(programme_id: int):  # type: ignore[no-untyped-def]
    session = db.session()
    programme = _visible(session, programme_id)
    figures = grant_service.figures(session, programme)
    # The user's organisations that could ask this programme, and the requests they already have.
    orgs: list[Organization] = []
    requests: dict[int, Case] = {}
    if "applicant" in current_user.roles and current_user.organization_ids:
        orgs = list(session.scalars(select(Organization).where(
            Organization.id.in_(current_user.organization_ids), Organization.province_id == programme.province_id,
        ).order_by(Organization.name)))
        for case in session.scalars(
            select(Case).join(Grant, Grant.case_id == Case.id).where(
                Grant.programme_id == programme.id, Grant.organization_id.in_([o.id for o in orgs]),
                Case.state.not_in(grant_request.TERMINAL),
            )
        ):
            requests[case.organization_id] = case
    return render_template("grants/programme.html", programme=programme, figures=figures,
                           is_open=grant_service.is_open(programme), orgs=orgs, requests=requests,
                           request_form=RequestGrantForm(), field_choices=dict(_field_choices()))


@bp.post("/<int:programme_id>/request")
def request_grant(programme_id: int):  # type: ignore[no-untyped-def]
    """Open a grant request (a draft) for this programme, then continue on its form."""
    session = db.session()
    programme = _visible(session, programme_id)
    form = RequestGrantForm()
    if not form.validate_on_submit():
        abort(400)
    org_text = (form.organization_id.data or "").strip()
    try:
        case, _created = applications.create(
            session, current_user, kind=grant_request.KIND,
            organization_id=whole_number(org_text),
            data={"programme_id": programme.id},
        )
        session.commit()
    except WorkflowError as exc:
        session.rollback()
        flash(" ".join(exc.fields.values()) if exc.fields else exc.message, "error")
        return redirect(url_for("grants.show", programme_id=programme.id))
    return redirect(url_for("portal.edit_application", case_id=case.id))

"""Forms of the grant pages: programmes, the grant request, the tranche actions and reports.

Amounts are plain text fields: people type them in their own unit (tomans or rials), with
Persian or Arabic digits and any grouping, and the views read them with
`workflow.money.parse_amount(text, unit)`; a number field would refuse "۱۲٬۵۰۰".
"""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from wtforms import Form, FieldList, FormField, HiddenField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.widgets import CheckboxInput, ListWidget

from workflow.text import ascii_digits, normalize, normalize_line

MAX_TRANCHES = 4


def _line(value: object) -> object:
    return normalize_line(value) if isinstance(value, str) else value


def _text(value: object) -> object:
    return normalize(value) if isinstance(value, str) else value


def _stripped(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


def _date_text(value: object) -> object:
    return ascii_digits(value).strip().replace("-", "/") if isinstance(value, str) else value


class CheckboxesField(SelectMultipleField):
    """Several choices as a list of checkboxes (the fields of activity a programme funds)."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class ProgrammeForm(FlaskForm):
    name = StringField(_l("Programme name"), filters=[_line])
    province = SelectField(_l("Province"), choices=[], validate_choice=False)
    fiscal_year = StringField(_l("Fiscal year (Jalali)"), filters=[_stripped])
    # The amount labels name the user's unit; the view sets them.
    budget = StringField(filters=[_stripped])
    max_award = StringField(filters=[_stripped])
    opens_on = StringField(_l("Opens on (Jalali, e.g. 1405/01/15)"), filters=[_date_text])
    closes_on = StringField(_l("Closes on (Jalali, e.g. 1405/06/31)"), filters=[_date_text])
    fields = CheckboxesField(_l("Fields of activity it funds"), choices=[], validate_choice=False)


class RequestGrantForm(FlaskForm):
    """The programme page's button: open a grant request for one of the user's organisations."""

    organization_id = HiddenField()


class BudgetLineForm(Form):
    item = StringField(_l("Item"), filters=[_line])
    amount = StringField(_l("Amount"), filters=[_stripped])


class GrantRequestForm(FlaskForm):
    version = HiddenField()
    title = StringField(_l("Title of the project"), filters=[_line])
    summary = TextAreaField(_l("What is the money for?"), filters=[_text])
    requested = StringField(filters=[_stripped])
    budget_lines = FieldList(FormField(BudgetLineForm), min_entries=3, max_entries=50)


class TrancheActionForm(FlaskForm):
    """Release a tranche, accept or return its report: the version seen, and finance's comment."""

    version = HiddenField()
    comment = TextAreaField(_l("Comment"), filters=[_text])


class ReportLineForm(Form):
    item = StringField(_l("Item"), filters=[_line])
    budgeted = StringField(_l("Budgeted"), filters=[_stripped])
    spent = StringField(_l("Spent"), filters=[_stripped])


class ReportForm(FlaskForm):
    version = HiddenField()
    lines = FieldList(FormField(ReportLineForm), min_entries=3, max_entries=50)
    receipts = MultipleFileField(_l("Receipts (PDF, JPEG or PNG)"))
    comment = TextAreaField(_l("Comment (optional)"), filters=[_text])

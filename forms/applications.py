from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import Form, FormField, FieldList, HiddenField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import Optional

from workflow.text import ascii_digits, normalize, normalize_line


def _line(value: object) -> object:
    return normalize_line(value) if isinstance(value, str) else value


def _text(value: object) -> object:
    return normalize(value) if isinstance(value, str) else value


def _digits(value: object) -> object:
    return ascii_digits(value).strip() if isinstance(value, str) else value


class FounderForm(Form):
    full_name = StringField(_l("Full name"), filters=[_line])
    national_id = StringField(_l("National ID"), filters=[_digits])


class NewApplicationForm(FlaskForm):
    organization_id = IntegerField(validators=[Optional()])


class ApplicationForm(FlaskForm):
    version = HiddenField()
    name = StringField(_l("Organisation name"), filters=[_line])
    field = SelectField(_l("Field of activity"), choices=[], validate_choice=False)
    county = SelectField(_l("County"), choices=[], validate_choice=False)
    address = TextAreaField(_l("Address"), filters=[_text])
    founders = FieldList(FormField(FounderForm), min_entries=3, max_entries=50)
    statute = FileField(_l("Statute (PDF, at most 10 MB)"))

    def data_for_service(self) -> dict[str, object]:
        return {
            "name": self.name.data or "",
            "field": self.field.data or "",
            "county": self.county.data or "",
            "address": self.address.data or "",
            "founders": [
                {"full_name": f.full_name.data or "", "national_id": f.national_id.data or ""}
                for f in self.founders
            ],
        }

    def show_errors(self, fields: dict[str, str]) -> list[str]:
        """Put the service's field errors on the form's fields; returns those that fit nowhere."""
        leftover: list[str] = []
        for key, message in fields.items():
            parts = key.split(".")
            target = None
            if parts[0] == "founders" and len(parts) == 3 and parts[1].isdigit():
                index = int(parts[1])
                if index < len(self.founders.entries):
                    target = getattr(self.founders.entries[index].form, parts[2], None)
            elif parts[0] == "founders":
                target = self.founders
            else:
                target = getattr(self, parts[0], None)
            if target is not None and hasattr(target, "errors"):
                if isinstance(target.errors, dict):
                    leftover.append(message)
                else:
                    target.errors = list(target.errors) + [message]
            else:
                leftover.append(message)
        return leftover


class RenewalForm(FlaskForm):
    version = HiddenField()
    activity_report = TextAreaField(_l("Report of activities since the permit was issued"), filters=[_text])


class NewRenewalForm(FlaskForm):
    permit_id = IntegerField(validators=[Optional()])

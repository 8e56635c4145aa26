"""The administrators' forms: official holidays."""
from __future__ import annotations

from datetime import date

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length, ValidationError

from workflow.calendar import parse_jalali_date
from workflow.text import ascii_digits, normalize_line

# Holidays are entered for the years around now; anything else is a typo (1045 for 1405).
YEARS = (1300, 1499)


def _line(value: object) -> object:
    return normalize_line(value) if isinstance(value, str) else value


def _date_text(value: object) -> object:
    return ascii_digits(value).strip().replace("-", "/") if isinstance(value, str) else value


class HolidayForm(FlaskForm):
    day = StringField(_l("Date (Jalali, e.g. 1405/01/15)"), validators=[DataRequired(_l("Enter the date."))],
                      filters=[_date_text])
    name = StringField(_l("Name of the holiday"),
                       validators=[DataRequired(_l("Enter the name.")), Length(max=200)], filters=[_line])

    parsed: date | None = None

    def validate_day(self, field: StringField) -> None:
        try:
            parsed = parse_jalali_date(field.data or "")
        except (ValueError, OverflowError) as exc:
            raise ValidationError(_l("Enter a real Jalali date as year/month/day, e.g. 1405/01/15.")) from exc
        year = int((field.data or "0").split("/")[0])
        if not YEARS[0] <= year <= YEARS[1]:
            raise ValidationError(_l("The year must be between 1300 and 1499."))
        self.parsed = parsed

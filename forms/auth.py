from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField
from wtforms.validators import DataRequired, Length


class LoginForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=254)],
                       filters=[lambda v: v.strip().lower() if isinstance(v, str) else v])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])


class MoneyUnitForm(FlaskForm):
    """The header's switch between tomans and rials (a POST, so it carries CSRF)."""

    unit = HiddenField()

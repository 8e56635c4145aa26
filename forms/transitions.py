from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, TextAreaField


class TransitionForm(FlaskForm):
    action = HiddenField()
    version = HiddenField()
    comment = TextAreaField(_l("Comment"))


class VerifyForm(FlaskForm):
    class Meta:
        csrf = False  # a public read-only lookup

    number = HiddenField()

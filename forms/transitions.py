from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import FieldList, HiddenField, StringField, TextAreaField

# A grant is paid in one to four tranches (states/grant_request.MAX_TRANCHES).
TRANCHE_SLOTS = 4


class TransitionForm(FlaskForm):
    action = HiddenField()
    version = HiddenField()
    comment = TextAreaField(_l("Comment"))
    # What some grant actions carry: the expert's score, finance's proposed amount and its
    # tranches (typed in the user's unit). The other actions leave them empty.
    score = StringField(_l("Score (0 to 100)"))
    amount = StringField()
    tranches = FieldList(StringField(), min_entries=TRANCHE_SLOTS, max_entries=TRANCHE_SLOTS)


class VerifyForm(FlaskForm):
    class Meta:
        csrf = False  # a public read-only lookup

    number = HiddenField()

"""Templates translate through a catalogue looked up once per render (workflow/i18n.py): the
texts, escaping and placeholders must be what Flask-Babel's own `_()` gives, in any locale."""
from __future__ import annotations

from flask import render_template_string
from flask_babel import force_locale, gettext


def test_a_render_translates_as_flask_babel_does(app):
    source = ('{{ _("Sign out") }}|{{ _("Sign out") }}|{{ gettext("Notifications") }}|'
              '{{ _("Notifications: %(n)s unread", n=unread) }}|{{ _("Work queue") }}')
    with app.test_request_context("/"):
        for code in ("fa", "en"):
            with force_locale(code):
                shown = render_template_string(source, unread="<b>3</b>")
                expected = "|".join([
                    gettext("Sign out"), gettext("Sign out"), gettext("Notifications"),
                    gettext("Notifications: %(n)s unread", n="&lt;b&gt;3&lt;/b&gt;"), gettext("Work queue"),
                ])
                assert shown == expected
        with force_locale("fa"):
            assert render_template_string('{{ _("Sign out") }}') != "Sign out"  # translated at all
        with force_locale("en"):
            assert render_template_string('{{ _("Sign out") }}') == "Sign out"


def test_a_macro_imported_without_context_still_translates(app):
    macro = '{% macro m() %}{{ _("Sign out") }}{% endmacro %}'
    loader_source = '{% import "m.html" as mm %}{{ mm.m() }}'
    from jinja2 import ChoiceLoader, DictLoader

    app.jinja_env.loader = ChoiceLoader([DictLoader({"m.html": macro}), app.jinja_env.loader])
    with app.test_request_context("/"), force_locale("fa"):
        assert render_template_string(loader_source) == gettext("Sign out") != "Sign out"


def test_labels_follow_each_render_locale(app):
    """The label helpers remember translations per locale for the process: a page in English
    between two Persian ones gets English, and a key outside the table is shown as it is."""
    from workflow import labels

    source = '{{ labels_state("approved") }}|{{ labels_action("approve") }}|{{ labels_state("no-such-state") }}'
    with app.test_request_context("/"):
        for code in ("fa", "en", "fa", "en"):
            with force_locale(code):
                expected = f"{labels.STATES['approved']}|{labels.ACTIONS['approve']}|no-such-state"
                assert render_template_string(source) == expected
        with force_locale("en"):
            assert render_template_string('{{ labels_state("approved") }}') == "Approved"

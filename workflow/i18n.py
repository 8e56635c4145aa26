"""Locale choice and the template helpers that make screens Persian-first.

Persian is the default; a visitor's choice is kept in the session, a user's in their row.
"""
from __future__ import annotations

import functools
from datetime import date, datetime
from typing import Any

from flask import Flask, current_app, has_request_context, request, session
from flask_babel import get_locale, get_translations
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from jinja2 import pass_context
from markupsafe import Markup

from . import calendar
from .money import UNITS, shown_amount
from .text import format_number, persian_digits

# The unit's name after an amount: "۱۲٬۵۰۰ تومان", "12,500 tomans".
UNIT_NAMES = {"toman": _l("tomans"), "rial": _l("rials")}


def select_locale() -> str:
    if not has_request_context():  # CLI and jobs: the office's language
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    choice = session.get("lang")
    if choice in current_app.config["LANGUAGES"]:
        return choice
    user_locale = getattr(current_user, "locale", None) if current_user else None
    if user_locale in current_app.config["LANGUAGES"]:
        return user_locale
    if request and request.path.startswith("/api/"):
        best = request.accept_languages.best_match(current_app.config["LANGUAGES"])
        return best or "fa"
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def lang() -> str:
    return str(get_locale() or "fa")


# `code`: the locale when the caller already knows it (a template's render, see `_in_render`).
def jdate(value: date | datetime | None, code: str | None = None) -> str:
    return calendar.format_date(value, code or lang()) if value else ""


def jdatetime(value: datetime | None, code: str | None = None) -> str:
    return calendar.format_datetime(value, code or lang()) if value else ""


def digits(value: Any, code: str | None = None) -> str:
    return persian_digits(value) if (code or lang()) == "fa" else str(value)


def number(value: int, code: str | None = None) -> str:
    return format_number(int(value), persian=(code or lang()) == "fa")


def money_unit() -> str:
    """The signed-in user's unit for amounts; tomans for everyone else (what people speak)."""
    unit = getattr(current_user, "money_unit", None) if has_request_context() and current_user else None
    return unit if unit in UNITS else "toman"


def unit_name(unit: str | None = None) -> str:
    return str(UNIT_NAMES[unit or money_unit()])


def amount_text(rials: int | None, unit: str | None = None) -> str:
    """An amount as the user types it in their unit, without the unit's name (form inputs)."""
    return shown_amount(rials, unit or money_unit(), persian=lang() == "fa")


def money(rials: int | None, unit: str | None = None) -> str:
    """Whole rials shown in the user's unit with the unit's name; nothing for no amount.

    The books are in rials; a reader in Iran thinks in tomans, so that is the default, and a
    user who works from rial statements can switch (users.money_unit).
    """
    if rials is None:
        return ""
    unit = unit or money_unit()
    return f"{amount_text(rials, unit)} {unit_name(unit)}"


def _in_render(helper: Any) -> Any:
    """`helper` as a template filter that reads the locale the render already has (`lang`, set by
    `_locale_context`). A list page applies these filters a few times per row, and asking
    Flask-Babel for the locale each time was a good part of its rendering; a template rendered
    without `lang` (a macro imported without context) still asks."""
    @pass_context
    def in_render(context: Any, value: Any) -> str:
        code = context.get("lang")
        return helper(value, code if isinstance(code, str) else None)  # type: ignore[no-any-return]

    return in_render


def init_app(app: Flask) -> None:
    from . import labels

    app.jinja_env.filters.update(jdate=_in_render(jdate), jdatetime=_in_render(jdatetime),
                                 digits=_in_render(digits), number=_in_render(number), money=money,
                                 amount=amount_text)
    app.jinja_env.globals.update(
        # What a macro imported without the render's context sees; a render's own (memoised)
        # ones come from `_locale_context`.
        **{name: functools.partial(labels.label, table) for name, table in _label_tables(labels).items()},
        comment_required=_comment_required,
        field_name=_field_name,
        money_unit=money_unit,
        unit_name=unit_name,
    )

    @app.context_processor
    def _locale_context() -> dict[str, Any]:
        code = lang()
        gettext = _render_gettext()
        return {"lang": code, "dir": "rtl" if code == "fa" else "ltr", "gettext": gettext, "_": gettext,
                **_label_functions(labels, code)}


def _render_gettext() -> Any:
    """`_()` and `gettext()` for one render, from the catalogue looked up once. Flask-Babel's own
    finds the request's locale and catalogue again on every call, and a page says "Past due" or
    "Overdue" on many rows. Same results as the i18n extension's new-style gettext (installed by
    Flask-Babel): Markup under autoescape, always `%`-formatted."""
    catalogue = get_translations()

    @pass_context
    def gettext(context: Any, string: str, **variables: Any) -> str:
        text = catalogue.ugettext(string)
        if context.eval_ctx.autoescape:
            text = Markup(text)
        return text % variables

    return gettext


def _label_tables(labels: Any) -> dict[str, dict[str, object]]:
    """The templates' label helpers and the table each one reads."""
    return {"labels_state": labels.STATES, "labels_action": labels.ACTIONS, "labels_role": labels.ROLES,
            "labels_kind": labels.KINDS, "labels_field": labels.FIELD_LABELS,
            "comment_prompt": labels.COMMENT_PROMPTS}


# (locale, table, key) → the label's text: the catalogues do not change while the app runs.
_LABELS: dict[tuple[str, int, str | None], str] = {}


def _label_functions(labels: Any, code: str) -> dict[str, Any]:
    """The label helpers of a render in locale `code`. A list names the same few states, actions
    and kinds on every row, the auditor console's filters every action and state there is, and
    each translation is a Flask-Babel lookup (the request's locale, its catalogue, then the
    text): remembered per locale for the life of the process."""
    def of(table: dict[str, object]) -> Any:
        table_id = id(table)

        def translated(key: str | None) -> str:
            try:
                return _LABELS[(code, table_id, key)]
            except KeyError:
                text = labels.label(table, key)
                if key in table:  # the table's own keys only: the memo stays as small as the tables
                    _LABELS[(code, table_id, key)] = text
                return text
        return translated

    return {name: of(table) for name, table in _label_tables(labels).items()}


def _comment_required(kind: str, action: str) -> bool:
    from . import registry
    from .states import permit

    process = permit.PROCESS if kind == permit.KIND else registry.get(kind)
    return any(r.comment_required for r in process.rules if r.action == action)


def _field_name(code: str | None) -> str:
    from .reference_data import FIELDS

    for field in FIELDS:
        if field["code"] == code:
            return field["name_fa"] if lang() == "fa" else field["name_en"]
    return code or ""

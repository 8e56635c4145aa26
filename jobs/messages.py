"""What a notification says, in the recipient's language (Persian unless they chose English)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask_babel import force_locale, get_translations
from flask_babel import gettext as _

from workflow import calendar, labels
from workflow.models import Notification
from workflow.text import persian_digits


def render(row: Notification) -> tuple[str, str]:
    """(subject, body) of a notification."""
    return render_parts(row.kind, row.payload, row.user.locale)


def render_parts(kind: str, payload: dict[str, Any] | None, locale: str | None) -> tuple[str, str]:
    """(subject, body) from the row's columns, for delivery, which reads them without the ORM."""
    locale = locale or "fa"
    with force_locale(locale):
        # The catalogue looked up once, not by flask_babel.gettext for each of the ~20 strings
        # (each lookup goes through the app context's proxies); the same lookup otherwise.
        translations = get_translations()

        def gettext(string: str, **variables: Any) -> str:
            text = translations.ugettext(string)
            return text % variables if variables else text

        return _subject(kind, payload or {}, locale, gettext), _body(kind, payload or {}, locale, gettext)


def _digits(value: Any, locale: str) -> str:
    return persian_digits(value) if locale == "fa" else str(value)


def _date(value: str | None, locale: str) -> str:
    from datetime import datetime

    return calendar.format_date(datetime.fromisoformat(value), locale) if value else ""


def _subject(kind: str, p: dict[str, Any], locale: str, _: Callable[..., str] = _) -> str:
    case = _digits(p.get("case_id", ""), locale)
    permit = _digits(p.get("permit_number", ""), locale)
    tranche = _digits(p.get("tranche", ""), locale)
    subjects = {
        "sla_half": _("Case %(n)s: half of its time has passed", n=case),
        "sla_due": _("Case %(n)s is due today", n=case),
        "sla_escalate": _("Case %(n)s is overdue", n=case),
        "correction_7d": _("Application %(n)s: 7 days left to correct it", n=case),
        "correction_1d": _("Application %(n)s: 1 day left to correct it", n=case),
        "permit_60d": _("Permit %(n)s ends in 60 days", n=permit),
        "permit_30d": _("Permit %(n)s ends in 30 days", n=permit),
        "permit_7d": _("Permit %(n)s ends in 7 days", n=permit),
        "expire": _("Permit %(n)s has expired", n=permit),
        "grace_end": _("Renewal of permit %(n)s has closed", n=permit),
        "report_7d": _("Grant %(n)s: the spending report of tranche %(t)s is due in 7 days", n=case, t=tranche),
        "report_due": _("Grant %(n)s: the spending report of tranche %(t)s is due today", n=case, t=tranche),
        "report_overdue": _("Grant %(n)s: the spending report of tranche %(t)s is overdue", n=case, t=tranche),
    }
    if kind in subjects:
        return subjects[kind]
    action = kind.removeprefix("case.")
    return _("Application %(n)s: %(action)s", n=case, action=labels.label(labels.ACTIONS, action))


def _body(kind: str, p: dict[str, Any], locale: str, _: Callable[..., str] = _) -> str:
    lines = [_subject(kind, p, locale, _)]
    if p.get("due_at"):
        lines.append(_("Due: %(date)s", date=_date(p["due_at"], locale)))
    if p.get("valid_until"):
        lines.append(_("Valid until: %(date)s", date=_date(p["valid_until"], locale)))
    if kind.startswith("permit_") or kind == "expire":
        lines.append(_("You can apply for renewal from your organisation's page."))
    if p.get("comment"):
        lines.append(p["comment"])
    return "\n".join(lines)

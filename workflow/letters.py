"""Decision letters and the permit certificate, as PDF, Persian shaped and laid out right to left.

Each PDF is made once, inside the decision's transaction, stored beside the uploads under a
generated name (a `documents` row of kind approval_letter, rejection_letter or certificate),
and its SHA-256 goes into the decision's audit entry — which the hash chain then covers — so
a letter shown later can be proved to be the one issued.

Text is shaped by HarfBuzz (fpdf2's shaping engine) with the Noto fonts shipped in
workflow/fonts/. Tokens read left to right (permit and letter numbers, the verification
address) are wrapped in a left-to-right isolate: fpdf2's bidi pass otherwise lays the groups of
"1405-13-000001" out in reverse order inside a right-to-left line.
"""
from __future__ import annotations

import hashlib
import io
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _

from . import uploads
from .calendar import format_date
from .models import Case, Document, Permit
from .money import shown_amount
from .text import persian_digits

KINDS = ("approval_letter", "rejection_letter", "certificate")


def ltr(text: str) -> str:
    """A token kept left to right inside a Persian line (Unicode LRI … PDI)."""
    return f"\u2066{text}\u2069"


def _office(case: Case) -> str:
    return _("Office of Social and Cultural Affairs, Governorate of %(province)s",
             province=case.organization.province.name_fa)


def _heading(case: Case, title: str, number: str, now: datetime) -> dict[str, str]:
    return {"office": _office(case), "date": _("Date: %(date)s", date=format_date(now, "fa")),
            "number": _("Number: %(number)s", number=ltr(number)), "title": title}


def _draw(sheet: dict[str, Any]) -> bytes:
    """The sheet drawn as PDF (workflow/letter_pdf.py: in a renderer process, or here in tests)."""
    from . import letter_pdf

    return letter_pdf.draw(sheet, inline=bool(current_app.config.get("LETTERS_INLINE")))


def _decision_text(case: Case, action: str, comment: str | None, permit: Permit | None, grant: Any) -> list[str]:
    """The letter's paragraphs for this kind of application and decision."""
    from .labels import KINDS as KIND_NAMES

    kind = str(KIND_NAMES.get(case.kind, case.kind))
    org = case.organization.name
    lines = [_("To: %(organization)s", organization=org),
             _("Subject: your application no. %(n)s (%(kind)s)", n=persian_digits(case.id), kind=kind)]
    if action == "approve":
        lines.append(_("We are pleased to inform you that your application has been approved."))
        if permit is not None:
            lines.append(_("Activity permit number %(number)s is valid from %(start)s until %(end)s; its "
                           "certificate is attached.", number=ltr(permit.number or ""), start=format_date(permit.issued_at, "fa"),
                           end=format_date(permit.valid_until, "fa")))
        if grant is not None and grant.awarded_rials:
            amount = grant.awarded_rials
            if amount:
                lines.append(_("A grant of %(amount)s tomans is awarded, paid in %(n)s tranches; each tranche after "
                               "the first follows the acceptance of the previous spending report.",
                               amount=shown_amount(amount, "toman", True),
                               n=persian_digits(len(grant.proposed_tranches or [1]))))
    else:
        lines.append(_("We regret to inform you that your application has been rejected."))
    if comment:
        lines.append((_("Reason: %(reason)s", reason=comment) if action == "reject"
                      else _("Note: %(note)s", note=comment)))
    return lines


def _certificate(case: Case, permit: Permit, now: datetime) -> bytes:
    import segno

    from .reference_data import FIELDS

    field = next((f["name_fa"] for f in FIELDS if f["code"] == (permit.case.data or {}).get("field")), "")
    place = case.organization.province.name_fa
    rows = [
        (_("Organisation"), case.organization.name),
        (_("Permit number"), ltr(permit.number or "")),
        (_("Field of activity"), field),
        (_("Province"), place),
        (_("Valid from"), format_date(permit.issued_at, "fa")),
        (_("Valid until"), format_date(permit.valid_until, "fa")),
    ]
    url = verification_url(permit)
    qr = segno.make(url, error="m")
    buf = io.BytesIO()
    qr.save(buf, kind="png", scale=8, border=2)
    return _draw({
        "heading": _heading(case, _("Activity permit of a non-governmental organisation"), permit.number or "", now),
        "rows": [f"{label}: {value}" for label, value in rows],
        "qr": {"png": buf.getvalue(),
               "caption": _("Scan the code, or open %(url)s, to see whether this permit is valid today.",
                            url=ltr(url))},
    })


def verification_url(permit: Permit) -> str:
    base = (current_app.config.get("PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/")
    return f"{base}/permits/{permit.number}"


def _letter(case: Case, action: str, comment: str | None, permit: Permit | None, grant: Any, actor: Any,
            now: datetime, number: str) -> bytes:
    title = _("Approval letter") if action == "approve" else _("Rejection letter")
    return _draw({
        "heading": _heading(case, title, number, now),
        "paragraphs": _decision_text(case, action, comment, permit, grant),
        "signature": {"name": actor.name if actor else _("System"),
                      "office": _("Director General, %(office)s", office=_office(case))},
    })


def _store(session: Any, case: Case, kind: str, content: bytes, actor: Any, now: datetime) -> str:
    stored = uploads.write(session, content, ".pdf")
    digest = hashlib.sha256(content).hexdigest()
    doc = Document(case_id=case.id, kind=kind, original_name=f"{kind}-{case.id}.pdf", stored_name=stored,
                   content_type="application/pdf", size=len(content), sha256=digest,
                   uploaded_by_id=actor.id if actor else case.created_by_id, uploaded_at=now)
    session.add(doc)
    return digest


def issue(event: Any) -> None:
    """Effect of `approve` and `reject`: the letter (and, with a permit, its certificate), stored,
    their hashes recorded in the decision's audit entry. Runs after the effects that issue the
    permit or award the grant, so the letter can state them."""
    case: Case = event.model
    session = event.kwargs["session"]
    now: datetime = event.kwargs["now"]
    actor = event.kwargs.get("actor")
    action = event.event.name
    values: dict[str, Any] = event.kwargs["values"]
    permit = case.permit if case.kind == "permit_issuance" else None
    if case.kind == "permit_renewal":
        from .states.permit_renewal import permit_of

        permit = permit_of(session, case)
    grant = None
    if case.kind == "grant_request":
        from .models import Grant

        grant = session.get(Grant, case.id)
    number = f"{case.id}-{case.last_seq}"
    kind = "approval_letter" if action == "approve" else "rejection_letter"
    issued: dict[str, str] = {}
    with force_locale("fa"):
        letter = _letter(case, action, event.kwargs.get("comment"), permit if action == "approve" else None, grant,
                         actor, now, number)
        issued[kind] = _store(session, case, kind, letter, actor, now)
        if action == "approve" and permit is not None:
            issued["certificate"] = _store(session, case, "certificate", _certificate(case, permit, now), actor, now)
    values["documents"] = issued

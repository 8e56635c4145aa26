"""The auditor console: find decisions across cases, read one case's chained history, open what
each actor saw, and export what was found as CSV.

Auditors and admins read every case in their jurisdiction (national ones: all); directors read
their province's. Everything here is a GET: auditors never write (read_only.py), and nothing
here would need to. Filters come from the query string so a search can be bookmarked, shared
or exported as it stands. Everything is read through replica.py: the read replica when one is
configured (the reader's identity still comes from the primary).
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import closing
from typing import Any

from flask import Blueprint, Response, abort, render_template, request, stream_with_context
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from .. import audit_chain, calendar, engine, labels, replica
from ..i18n import lang, number
from ..models import Case, utcnow
from ..services import audit_search
from ..text import whole_number

bp = Blueprint("audit", __name__, url_prefix="/audit")
READERS = ("auditor", "admin", "director")
# The order a form shows its fields in; a snapshot's canonical text has its keys sorted instead.
FIELD_ORDER = ("name", "title", "programme_id", "permit_number", "field", "county", "address", "summary",
               "activity_report", "requested_rials", "budget_lines", "founders")
# audit_chain's reasons for a break (fixed English text), in the reader's language.
BREAK_REASONS = {
    "entry of an unknown case": _l("an entry of an unknown case"),
    "missing entry": _l("an entry is missing"),
    "entry out of order": _l("an entry is out of order"),
    "does not follow the entry before it": _l("it does not follow the entry before it"),
    "altered: its hash does not match its content": _l("altered: its hash does not match its content"),
    "entry added after the recorded head": _l("an entry was added after the recorded head"),
    "history where none was recorded": _l("there is history where none was recorded"),
    "entries missing at the end": _l("entries are missing at the end"),
    "the sequence does not match the entries": _l("the case's sequence does not match its entries"),
}


@bp.before_request
@login_required
def _readers_only() -> None:
    if not current_user.has_role(*READERS):
        abort(403)
    # The filters go into queries, and PostgreSQL refuses NUL in text deep inside one: stop it here
    # (the app-wide check reads the path and forms, not the decoded query string).
    if any("\x00" in value for values in request.args.listvalues() for value in values):
        abort(400)


def _before() -> int | None:
    """The keyset of the next page: entries older than this id. Junk or an id past any row
    starts from the newest (a link typed wrong should still show something)."""
    number = whole_number(request.args.get("before", ""))
    return number if number is not None and 0 < number <= audit_search.MAX_ID else None


@bp.get("/decisions")
def decisions():  # type: ignore[no-untyped-def]
    session = replica.session()
    filters = audit_search.read_filters(request.args)
    before = _before()
    rows, more = audit_search.page(session, current_user, filters, before=before, limit=audit_search.PAGE)
    found, over = audit_search.count(session, current_user, filters, cap=audit_search.COUNT_CAP)
    return render_template(
        "audit/decisions.html", rows=rows, more=more, found=found, over=over, filters=filters,
        before=before, actions=audit_search.actions(), states=audit_search.states(),
        kinds=audit_search.kinds(),
        cap=audit_search.COUNT_CAP, export_cap=audit_search.EXPORT_CAP, labels=labels,
    ), 422 if filters.errors else 200


def _csv_line(values: list[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(values)
    return buffer.getvalue()


def _jalali_moment(value: Any) -> str:
    """"1404/07/12 10:35", Tehran time, ASCII digits: a spreadsheet sorts it as text correctly."""
    return f"{calendar.format_numeric(value, 'en')} {calendar.to_tehran(value).strftime('%H:%M')}"


@bp.get("/decisions.csv")
def export():  # type: ignore[no-untyped-def]
    """The filtered decisions as CSV, streamed; UTF-8 with a BOM, without which spreadsheet
    programs read the file as their local code page and Persian comes out as mojibake."""
    filters = audit_search.read_filters(request.args)
    if filters.errors:
        # An export of something other than what was asked for would mislead: say what is wrong.
        return decisions()
    code = lang()
    header = [_("Entry"), _("Case"), _("Kind"), _("Organisation"), _("Province"), _("Jalali date"),
              _("Time (UTC, ISO 8601)"), _("Actor"), _("Role"), _("Action"), _("From state"), _("To state"),
              _("Comment"), _("Hash")]
    system = _("System")
    cap = audit_search.EXPORT_CAP
    stopped = _("The export stops at %(n)s rows; narrow the filters to see the rest.", n=number(cap))
    user = current_user._get_current_object()

    def generate() -> Iterator[str]:
        yield "\ufeff" + _csv_line(header)
        chunk: list[str] = []
        # The request's session is closed when the view returns, before the body is sent: the rows
        # are read through a session of their own, closed when they end, stop or the client leaves.
        with closing(replica.new_session()) as session, \
                closing(audit_search.stream(session, user, filters, cap=cap)) as found:
            for n, row in enumerate(found, start=1):
                if n > cap:
                    chunk.append(_csv_line(["", "", "", "", "", "", "", "", "", "", "", "", stopped, ""]))
                    break
                province = row.province_fa if code == "fa" else row.province_en
                chunk.append(_csv_line([
                    row.id, row.case_id, row.kind, row.organization, province, _jalali_moment(row.at),
                    audit_chain.moment(row.at), row.actor_name or system, row.role, row.action,
                    row.from_state or "", row.to_state, row.comment or "", row.hash or "",
                ]))
                if len(chunk) >= 500:
                    yield "".join(chunk)
                    chunk = []
        if chunk:
            yield "".join(chunk)

    today = calendar.format_numeric(calendar.to_tehran(utcnow()), "en").replace("/", "-")
    return Response(stream_with_context(generate()), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="decisions-{today}.csv"',
                             "Cache-Control": "no-store"})


def _case(case_id: int) -> Case:
    """The case, if this reader may see it as staff of its jurisdiction; 404 otherwise."""
    session = replica.session()
    case = engine.get_case(session, current_user, case_id)
    if not audit_search.in_scope(current_user, case):
        abort(404)
    return case


@bp.get("/cases/<int:case_id>")
def timeline(case_id: int):  # type: ignore[no-untyped-def]
    """The case's chained history: each entry with its hash, the one before, what the actor saw
    and what the action recorded; and whether the chain still verifies."""
    session = replica.session()
    case = _case(case_id)
    history = audit_search.entries(session, case)
    report = audit_chain.verify(session.connection(), case_id=case.id)
    return render_template("audit/timeline.html", case=case, history=history, report=report,
                           issued=audit_search.issued_documents(session, case), labels=labels,
                           break_reason=lambda reason: str(BREAK_REASONS.get(reason, reason)))


def _fields(seen: audit_search.SnapshotView | None) -> list[tuple[str, Any]]:
    """The snapshot's application fields, in the form's order, the unknown ones after."""
    data = seen.content.get("data") if seen is not None else None
    if not isinstance(data, dict):
        return []
    rank = {key: i for i, key in enumerate(FIELD_ORDER)}
    return sorted(data.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0]))


def _documents(seen: audit_search.SnapshotView | None) -> list[dict[str, Any]]:
    docs = seen.content.get("documents") if seen is not None else None
    return [d for d in docs if isinstance(d, dict)] if isinstance(docs, list) else []


@bp.get("/cases/<int:case_id>/entries/<int:seq>")
def snapshot(case_id: int, seq: int):  # type: ignore[no-untyped-def]
    """What the actor of entry `seq` saw when they acted: the case's data and documents then."""
    session = replica.session()
    case = _case(case_id)
    entry = audit_search.entry(session, case, seq)
    seen = audit_search.snapshot(session, entry.snapshot_hash)
    previous = audit_search.entry(session, case, seq - 1) if seq > 1 else None
    changed = audit_search.changed_keys(audit_search.snapshot(session, previous.snapshot_hash), seen) \
        if previous is not None else set()
    return render_template("audit/snapshot.html", case=case, entry=entry, seen=seen, changed=changed,
                           fields=_fields(seen), documents=_documents(seen), previous=previous,
                           last_seq=case.last_seq,
                           issued=audit_search.issued_documents(session, case), labels=labels)

"""Staff work queues, and the auditor's read-only list of every case in their jurisdiction."""
from __future__ import annotations

from flask import Blueprint, abort, render_template, request
from flask_login import current_user, login_required

from .. import db, labels, registry, replica
from ..errors import WorkflowError
from ..services import queues
from ..db import is_row_id
from ..text import name_key, whole_number

bp = Blueprint("queues", __name__)
PAGE = 25


@bp.before_request
@login_required
def _signed_in() -> None:
    return None


@bp.get("/queue")
def queue():  # type: ignore[no-untyped-def]
    if not current_user.has_role("intake", "expert", "director", "finance"):
        abort(403)
    session = db.session()
    state = request.args.get("state") or None
    try:
        items, next_cursor = queues.page_rows(session, current_user, state=state, limit=PAGE,
                                              cursor=request.args.get("cursor") or None)
    except WorkflowError:
        items, next_cursor = [], None
    counts = queues.counts(session, current_user)
    by_state: dict[str, int] = {}
    for (_kind, st), n in counts.items():
        by_state[st] = by_state.get(st, 0) + n
    return render_template("queues/queue.html", items=items, next_cursor=next_cursor, by_state=by_state,
                           total=sum(by_state.values()), state=state, labels=labels)


@bp.get("/audit")
def audit():  # type: ignore[no-untyped-def]
    """Every submitted case an auditor or admin may read, filtered by state and organisation."""
    if not current_user.roles & {"auditor", "admin", "director"}:
        abort(403)
    session = replica.session()  # the read replica when there is one
    state = request.args.get("state") or None
    org_text = (request.args.get("org") or "").strip()
    before = whole_number(request.args.get("before", ""))
    query = queues.case_list_query(current_user, state=state, org_key=name_key(org_text) if org_text else "",
                                   before=before if is_row_id(before) else None, limit=PAGE)
    items = session.execute(query).all()
    more = len(items) > PAGE
    items = items[:PAGE]
    states = sorted({s for p in registry.PROCESSES.values() for s in p.states} - {"draft"})
    return render_template("queues/audit.html", items=items, more=more, state=state, org=org_text,
                           states=states, labels=labels)

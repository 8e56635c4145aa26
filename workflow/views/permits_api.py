"""API routes for a permit's life (suspend, reinstate, revoke) and its history.

They join the API blueprint, so the same bearer-token check and JSON errors apply.
"""
from __future__ import annotations

from flask import g, jsonify
from flask_babel import gettext as _

from .. import db
from ..errors import Invalid, NotFound
from ..services import permits
from .api import body, bp, commit
from .serialize import iso, permit_json


def _event_json(event) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return {
        "seq": event.seq, "at": iso(event.at), "action": event.action, "role": event.role,
        "actor": {"id": event.actor.id, "name": event.actor.name} if event.actor else {"id": None, "name": "system"},
        "from_state": event.from_state, "to_state": event.to_state, "reason": event.reason,
        "valid_until": iso(event.valid_until), "case_id": event.case_id,
    }


@bp.post("/permits/<number>/transitions")
def permit_transition(number: str):  # type: ignore[no-untyped-def]
    data = body()
    permit = permits.get_by_number(db.session(), number)
    action, reason, version = data.get("action"), data.get("reason"), data.get("version")
    fields = {}
    if not isinstance(action, str) or not action:
        fields["action"] = _("Name the action.")
    if reason is not None and not isinstance(reason, str):
        fields["reason"] = _("The reason must be text.")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        fields["version"] = _("Send the version of the permit you saw.")
    if fields:
        raise Invalid(_("Some fields need attention."), fields)
    permits.fire(db.session(), permit, action, g.api_user, reason=reason, version=version)
    commit()
    return jsonify({**permit_json(permit), "version": permit.version,
                    "actions": permits.allowed_actions(permit, g.api_user)})


@bp.get("/permits/<number>/history")
def permit_history(number: str):  # type: ignore[no-untyped-def]
    permit = permits.get_by_number(db.session(), number)
    if not permits.may_see_history(g.api_user, permit):
        raise NotFound(_("No permit with this number."))
    return jsonify(entries=[_event_json(e) for e in permits.history(db.session(), permit)])

"""JSON shapes of the API, in one place so every endpoint answers the same way."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from .. import rows
from ..engine import Actor, allowed_actions
from ..models import AuditEntry, Case, Permit, User


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def case_json(session: Session, case: Case, user: User | Actor) -> dict[str, Any]:
    c = rows.plain(case)  # every column is read: plain attributes, not the ORM's descriptors
    return {
        "id": c.id,
        "kind": c.kind,
        "state": c.state,
        "version": c.version,
        "organization_id": c.organization_id,
        "data": c.data or {},
        "documents": [
            {"id": d.id, "kind": d.kind, "name": d.original_name, "size": d.size, "sha256": d.sha256,
             "uploaded_at": iso(d.uploaded_at)}
            for d in map(rows.plain, case.documents) if not d.superseded
        ],
        "actions": allowed_actions(session, case, user),
        "created_at": iso(c.created_at),
        "updated_at": iso(c.updated_at),
        "due_at": iso(c.due_at),
        "permit_number": case.permit.number if case.permit else None,
        **({"grant": _grant_json(session, case)} if c.kind == "grant_request" else {}),
    }


def _grant_json(session: Session, case: Case) -> dict[str, Any]:
    from ..services.grants import grant_json

    return grant_json(session, case)


def entry_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "at": iso(entry.at),
        "actor": {"id": entry.actor.id, "name": entry.actor.name} if entry.actor else {"id": None, "name": "system"},
        "role": entry.role,
        "action": entry.action,
        "from_state": entry.from_state,
        "to_state": entry.to_state,
        "comment": entry.comment,
    }


def permit_json(permit: Permit) -> dict[str, Any]:
    return {
        "number": permit.number,
        "organization": permit.organization.name,
        "state": permit.state,
        "issued_at": iso(permit.issued_at),
        "valid_until": iso(permit.valid_until),
    }

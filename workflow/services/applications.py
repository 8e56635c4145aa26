"""Starting an application, editing its data and attaching its documents."""
from __future__ import annotations

import hashlib
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import engine, registry, uploads
from ..errors import Conflict, Forbidden, Invalid, NotFound
from ..read_only import refuse_auditors
from ..models import Case, Document, IdempotencyKey, Organization, User, utcnow


def _check_applicant(user: User, organization_id: int) -> None:
    refuse_auditors(user)
    if "applicant" not in user.roles or organization_id not in user.organization_ids:
        raise Forbidden(_("You can apply only for an organisation you are a member of."))


def create(
    session: Session, user: User, *, kind: str, organization_id: Any, data: Any,
    idempotency_key: str | None = None,
) -> tuple[Case, bool]:
    """Create a draft; returns (case, created). A repeated idempotency key returns the first case."""
    if not isinstance(kind, str) or kind not in registry.PROCESSES:
        raise Invalid(_("Unknown kind of application."), {"kind": _("Unknown kind of application.")})
    if not isinstance(organization_id, int) or isinstance(organization_id, bool):
        raise Invalid(_("Choose an organisation."), {"organization_id": _("Choose an organisation.")})
    if idempotency_key:
        earlier = session.scalar(
            select(IdempotencyKey).where(
                IdempotencyKey.user_id == user.id, IdempotencyKey.key == idempotency_key
            )
        )
        if earlier is not None:
            # The first answer again, but only while the user may still see the case: a member
            # who has left the organisation does not read its case back through an old key.
            case = engine.get_case(session, user, earlier.case_id)
            return case, False
    _check_applicant(user, organization_id)
    org = session.get(Organization, organization_id)
    if org is None:
        raise NotFound(_("No such organisation."))
    process = registry.get(kind)
    open_case = process.one_open_per_organization and session.scalar(
        select(Case.id).where(
            Case.organization_id == org.id, Case.kind == kind, Case.state.not_in(process.terminal)
        )
    )
    if open_case:
        raise Conflict(_("This organisation already has an open application of this kind."))
    now = utcnow()
    case = Case(
        kind=kind, state=process.initial, organization_id=org.id, province_id=org.province_id,
        county_id=org.county_id, data={}, created_by_id=user.id, created_at=now, updated_at=now,
        state_entered_at=now,
    )
    case.organization = org
    case.documents = []
    _apply_data(session, process, case, data)
    session.add(case)
    session.flush()
    if process.on_open is not None:
        process.on_open(session, case)
    if idempotency_key:
        try:
            with session.begin_nested():
                session.add(IdempotencyKey(user_id=user.id, key=idempotency_key, case_id=case.id))
        except IntegrityError as exc:
            # A concurrent retry with the same key won; the caller rolls back and asks again.
            raise Conflict(_("A request with this Idempotency-Key is in progress.")) from exc
    return case, True


def _apply_data(session: Session, process: Any, case: Case, data: Any) -> None:
    cleaned, errors = process.clean_data(session, case, data, complete=False)
    if errors:
        raise Invalid(_("Some fields need attention."), errors)
    case.data = cleaned


def editable(case: Case) -> bool:
    return case.state in ("draft", "needs_correction")


def update_data(session: Session, user: User, case: Case, data: Any, version: Any) -> Case:
    _check_applicant(user, case.organization_id)
    if not isinstance(version, int) or isinstance(version, bool):
        raise Invalid(_("The version is required."), {"version": _("The version is required.")})
    if version != case.version:
        raise Conflict(_("This case was changed by someone else; reload it and try again."))
    if not editable(case):
        raise Conflict(_("The application can be changed only as a draft or when returned for correction."))
    _apply_data(session, registry.get(case.kind), case, data)
    case.updated_at = utcnow()
    session.flush()
    return case


def attach_document(
    session: Session, user: User, case: Case, *, content: bytes, filename: str, kind: str = "statute"
) -> Document:
    """Store an upload outside the web root under a generated name, after checking its content."""
    _check_applicant(user, case.organization_id)
    if not editable(case):
        raise Conflict(_("Documents can be changed only as a draft or when returned for correction."))
    # Judged by content, not by the name or the browser's claim: a renamed file is refused.
    file_type = uploads.check(content, uploads.STATUTE, field=kind, wrong_type=_("The statute must be a PDF file."))
    stored = uploads.write(session, content, file_type.extension)
    for doc in case.documents:
        if doc.kind == kind and not doc.superseded:
            doc.superseded = True
    doc = Document(
        case_id=case.id, kind=kind, original_name=uploads.safe_name(filename, "statute.pdf"), stored_name=stored,
        content_type=file_type.content_type, size=len(content),
        sha256=hashlib.sha256(content).hexdigest(), uploaded_by_id=user.id, uploaded_at=utcnow(),
    )
    case.documents.append(doc)
    session.add(doc)
    session.flush()
    return doc

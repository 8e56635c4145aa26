"""All models, imported here so Alembic and the app see one complete metadata."""
from .audit import AuditEntry, Snapshot
from .cases import Case, Document, IdempotencyKey
from .grants import Grant, Programme, Tranche
from .holidays import Holiday
from .notifications import Notification
from .organizations import Organization
from .permits import Permit, PermitEvent
from .places import County, Province
from .statistics import StatisticsReport
from .types import utcnow
from .users import ROLES, STAFF_ROLES, ApiToken, Membership, User, UserRole

__all__ = [
    "ApiToken", "AuditEntry", "Case", "County", "Document", "Grant", "Programme", "Tranche", "Holiday", "IdempotencyKey", "Membership",
    "Notification", "Organization", "Permit", "PermitEvent", "Province", "ROLES", "STAFF_ROLES", "Snapshot", "StatisticsReport", "User",
    "UserRole", "utcnow",
]

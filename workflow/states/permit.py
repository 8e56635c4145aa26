"""The life of an issued permit: active, suspended, expired, revoked.

Directors of the permit's province suspend (توقیف), reinstate and revoke; the system expires
a permit at the end of its validity and renews it when a renewal is approved.
"""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

from ..process import Process, Rule

KIND = "permit"
STATES = ("active", "suspended", "expired", "revoked")
SYSTEM = "system"

RULES = (
    Rule("suspend", "active", "suspended", "director", comment_required=True),
    Rule("reinstate", "suspended", "active", "director"),
    Rule("revoke", "active", "revoked", "director", comment_required=True),
    Rule("revoke", "suspended", "revoked", "director", comment_required=True),
    # Only the system: a deadline sweep, and the approval of a renewal.
    Rule("expire", "active", "expired", SYSTEM),
    Rule("expire", "suspended", "expired", SYSTEM),
    Rule("renew", "active", "active", SYSTEM),
    Rule("renew", "expired", "active", SYSTEM),
    # A suspension is a sanction: renewing the validity does not lift it.
    Rule("renew", "suspended", "suspended", SYSTEM),
)

PROCESS = Process(
    kind=KIND,
    states=STATES,
    initial="active",
    rules=RULES,
    terminal=frozenset({"revoked"}),
    title=_l("Permit"),
)

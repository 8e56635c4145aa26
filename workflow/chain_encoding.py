"""The canonical encoding and SHA-256 links of the audit chain, with nothing but the standard
library: the engine (through workflow.audit_chain) and bench/bare_app.py hash the same way.
See workflow/audit_chain.py for the contract these functions implement.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any

ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
# What ENCODER uses for a string (ensure_ascii=False): the C implementation where there is one.
_escape = json.encoder.encode_basestring  # type: ignore[attr-defined]

# The order of the fields in the encoding (part of the contract above).
ENTRY_FIELDS = ("case_id", "seq", "at", "actor_id", "role", "action", "from_state", "to_state", "comment",
                "details", "snapshot_hash")
EVENT_FIELDS = ("permit_id", "seq", "at", "actor_id", "role", "action", "from_state", "to_state", "reason",
                "valid_until", "case_id")


def moment(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds")


def canonical(values: list[Any]) -> str:
    """`ENCODER.encode(values)`, built field by field: the same text (JSON's own C string
    escaper for strings, int's repr for numbers), without the encoder's per-call set-up, which
    was most of what verify spent per entry."""
    parts = []
    for value in values:
        kind = type(value)
        if value is None:
            parts.append("null")
        elif kind is str:
            parts.append(_escape(value))
        elif kind is int:
            parts.append(int.__repr__(value))
        else:
            parts.append(ENCODER.encode(value))
    return "[" + ",".join(parts) + "]"


def chain_hash(prev: str | None, values: list[Any]) -> str:
    """The hash of one link: the previous hash, then the canonical encoding of its fields."""
    return hashlib.sha256(((prev or "") + "\n" + canonical(values)).encode()).hexdigest()


def entry_hash(prev: str | None, *, case_id: int, seq: int, at: datetime, actor_id: int | None, role: str,
               action: str, from_state: str | None, to_state: str, comment: str | None,
               details: dict[str, Any] | None, snapshot_hash: str | None) -> str:
    return chain_hash(prev, [case_id, seq, moment(at), actor_id, role, action, from_state, to_state, comment,
                             details or None, snapshot_hash])



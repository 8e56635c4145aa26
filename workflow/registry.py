"""kind → process. Everything that handles cases of several kinds looks the process up here."""
from __future__ import annotations

from .process import Process
from .states import permit_issuance

PROCESSES: dict[str, Process] = {p.kind: p for p in (permit_issuance.PROCESS,)}


def get(kind: str) -> Process:
    return PROCESSES[kind]

"""kind → process. Everything that handles cases of several kinds looks the process up here."""
from __future__ import annotations

from .process import Process
from .states import grant_request, permit_issuance, permit_renewal

PROCESSES: dict[str, Process] = {
    p.kind: p for p in (permit_issuance.PROCESS, permit_renewal.PROCESS, grant_request.PROCESS)
}


def get(kind: str) -> Process:
    return PROCESSES[kind]

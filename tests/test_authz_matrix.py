"""Authorisation, route by route: every route of the URL map × every kind of actor × a target the
actor must not reach.

The routes come from `app.url_map`, so a route added later is in the matrix without editing this
file; and it cannot slip through quietly: a URL parameter missing from FILL, a writing method
missing from BODIES, or an object-naming route without an OWNER fails the first test below.
Expectations come from POLICY, an explicit table of what is allowed to whom and why; everything
not in it is refused to every actor.

The world (tests/authz_world.py) puts one of everything in Qazvin, owned by people the actors are
not. Each actor is a stranger in one way: Kerman staff (another province), a Kerman NGO member
(another organisation and province), a Qazvin NGO member of another organisation, a Qazvin
director of another county, or nobody signed in. A refusal is a 4xx (the API's: 401/403/404 with
its JSON error), a redirect to the sign-in page for a visitor, or a form sent back with a message;
a 2xx or a 5xx is a failure, and so is any change to the database (a fingerprint of every table)
or any private text of the targets in any response.

What is allowed is tried too, inside a transaction rolled back afterwards (a SAVEPOINT per commit
of the request), so every actor meets the same world. The owners' controls (third test) send the
very same requests as the people entitled to them and must succeed and change the database: the
URLs, bodies and states are plausible, so the refusals above are the authorisation's doing.
The matrix needs PostgreSQL (the sandbox's savepoints, the fingerprint's xmin); the regressions it
found are tested one by one at the end of this file, on either database.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from io import BytesIO
from typing import Any
from urllib.parse import quote, unquote

import pytest
from flask import Flask
from sqlalchemy import text
from sqlalchemy.orm import sessionmaker

from tests.authz_world import (
    LINES, ORGS, TODAY, AuthzWorld, Target, build, grant_data, programme_body, qazvin_data,
)
from tests.conftest import REFERENCE_TABLES, _truncate, build_app
from tests.support import PASSWORD, PDF, VALID_IDS
from workflow import db
from workflow.calendar import format_numeric
from workflow.states.grant_request import OPEN_TRANCHE
from workflow.states.permit import PROCESS as PERMIT_PROCESS, SYSTEM

SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
IGNORED_METHODS = frozenset({"HEAD", "OPTIONS"})  # HEAD is GET without a body; OPTIONS is Werkzeug's own

# -- who knocks ----------------------------------------------------------------------------------

ACTORS = {
    "anonymous": "nobody signed in",
    "ngo": "NGO member of a Kerman organisation: another organisation, another province",
    "ngo_q2": "NGO member of another Qazvin organisation: another organisation, same province",
    "intake": "Kerman intake: another province",
    "expert": "Kerman expert: another province",
    "director": "Kerman director: another province",
    "finance": "Kerman finance: another province",
    "auditor": "Kerman auditor: another province",
    "admin": "Kerman administrator: another province",
    "county_director": "Qazvin director of Takestan county: another county",
}
EVERYONE = frozenset(ACTORS)
SIGNED_IN = EVERYONE - {"anonymous"}
READERS = frozenset({"auditor", "admin", "director", "county_director"})
WORKERS = frozenset({"intake", "expert", "director", "finance", "county_director"})
PROGRAMME_SEERS = frozenset({"ngo_q2", "county_director", "admin"})


@dataclass(frozen=True)
class Allow:
    """Who may use a route (on the targets of this world), why, and what of the targets they may read."""

    who: frozenset[str]
    reason: str
    sees: frozenset[str] = frozenset()  # marker categories of authz_world.AuthzWorld.markers


# Keys: "endpoint", "endpoint METHOD", or "endpoint?variant" (QUERY_VARIANTS). The first Allow
# naming the actor applies; no Allow for an actor means refused.
POLICY: dict[str, list[Allow]] = {
    "static": [Allow(EVERYONE, "the stylesheet")],
    "api_docs.openapi": [Allow(EVERYONE, "the API's OpenAPI document: public, no data")],
    "health.healthz": [Allow(EVERYONE, "liveness probe: says only that the process answers")],
    "health.readyz": [Allow(EVERYONE, "readiness probe: names a failed dependency by its class, never a host")],
    "observability.metrics_view": [Allow(EVERYONE, "open from loopback only (the test client's address is "
                                                   "127.0.0.1); elsewhere it takes METRICS_TOKEN (tests/test_ops.py)")],
    "auth.index": [Allow(EVERYONE, "sends each visitor to their own start page")],
    "auth.login": [Allow(EVERYONE, "the sign-in form (a visitor's wrong password gets the form back)")],
    "auth.logout": [Allow(SIGNED_IN, "ends one's own session")],
    "auth.set_language": [Allow(EVERYONE, "the visitor's own language")],
    "auth.set_money_unit": [Allow(SIGNED_IN, "one's own display preference")],
    "public.verify": [Allow(EVERYONE, "anyone verifies a permit by its number", frozenset({"public"}))],
    "public.verify?number": [Allow(EVERYONE, "anyone verifies a permit by its number", frozenset({"public"}))],
    "public.permit": [Allow(EVERYONE, "the public verification page: holder and number, never the history",
                            frozenset({"public"}))],
    "api.permit": [Allow(EVERYONE, "public verification through the API", frozenset({"public"}))],
    "api.token": [Allow(SIGNED_IN, "each actor trades their own password for a token (a visitor's wrong one: 401)")],
    "api.me": [Allow(SIGNED_IN, "the caller's own account")],
    "api.reference": [Allow(SIGNED_IN, "provinces, counties and fields: reference data")],
    "notifications.index": [Allow(SIGNED_IN, "one's own notifications")],
    "notifications.mark_all_read": [Allow(SIGNED_IN, "marks one's own notifications")],
    "portal.dashboard": [Allow(SIGNED_IN, "the caller's own organisations, cases and permits")],
    "grants.programmes": [
        Allow(PROGRAMME_SEERS, "Qazvin's programmes are published to Qazvin's NGOs and staff; admins see all",
              frozenset({"programme"})),
        Allow(SIGNED_IN, "the programmes the caller may see"),
    ],
    "api.queue": [Allow(SIGNED_IN, "the caller's own work queue, by role and jurisdiction")],
    "api.queue?kind": [Allow(SIGNED_IN, "the caller's own work queue, by role and jurisdiction")],
    "queues.queue": [Allow(WORKERS, "staff work queues, by jurisdiction")],
    "queues.audit": [Allow(READERS, "the readers' list of cases, by jurisdiction")],
    "queues.audit?org": [Allow(READERS, "the readers' list, by jurisdiction: another province's names find nothing")],
    "audit.decisions": [Allow(READERS, "the auditor console, by jurisdiction")],
    "audit.decisions?case": [Allow(READERS, "filters inside the reader's jurisdiction: nothing found")],
    "audit.decisions?org": [Allow(READERS, "filters inside the reader's jurisdiction: nothing found")],
    "audit.export": [Allow(READERS, "the auditor console's CSV, by jurisdiction")],
    "audit.export?case": [Allow(READERS, "filters inside the reader's jurisdiction: nothing found")],
    "audit.export?org": [Allow(READERS, "filters inside the reader's jurisdiction: nothing found")],
    "statistics.index": [Allow(READERS, "one's own province's figures (admins: any)")],
    "statistics.export": [Allow(READERS, "one's own province's figures (admins: any)")],
    "statistics.index?province": [Allow(frozenset({"admin", "county_director"}),
                                        "admins read every province; county staff their province's figures")],
    "statistics.export?province": [Allow(frozenset({"admin", "county_director"}),
                                         "admins read every province; county staff their province's figures")],
    "api.audit_verify": [Allow(frozenset({"auditor", "admin"}), "auditors and admins verify their chains")],
    "admin.holidays": [Allow(frozenset({"admin"}), "holidays are national; administrators keep them")],
    "admin.add_holiday": [Allow(frozenset({"admin"}), "holidays are national; administrators keep them")],
    "admin.delete_holiday": [Allow(frozenset({"admin"}), "holidays are national; administrators keep them")],
    "admin.deliveries": [Allow(frozenset({"admin"}), "administrators run e-mail delivery for the whole system",
                               frozenset({"private"}))],
    "admin.retry": [Allow(frozenset({"admin"}), "administrators run e-mail delivery for the whole system")],
    "admin.retry_all": [Allow(frozenset({"admin"}), "administrators run e-mail delivery for the whole system")],
    "grants.new GET": [Allow(frozenset({"finance", "admin"}), "the new-programme form")],
    "grants.new POST": [Allow(frozenset({"admin"}), "admins create programmes in any province (finance: its own)")],
    "api.create_programme": [Allow(frozenset({"admin"}), "admins create programmes in any province (finance: its own)")],
    "grants.show": [Allow(PROGRAMME_SEERS, "a programme is published to its province's NGOs and staff; admins see all",
                          frozenset({"programme"}))],
    "api.get_programme": [Allow(PROGRAMME_SEERS, "a programme is published to its province's NGOs and staff; "
                                                 "admins see all", frozenset({"programme"}))],
    "api.list_programmes": [
        Allow(PROGRAMME_SEERS, "Qazvin's programmes are published to Qazvin's NGOs and staff; admins see all",
              frozenset({"programme"})),
        Allow(SIGNED_IN, "the programmes the caller may see"),
    ],
    "api.list_programmes?province": [
        Allow(PROGRAMME_SEERS, "Qazvin's programmes are published to Qazvin's NGOs and staff; admins see all",
              frozenset({"programme"})),
        Allow(SIGNED_IN, "the programmes the caller may see: none in another province"),
    ],
}

# -- how each URL parameter is filled --------------------------------------------------------------

# Endpoints whose case is a grant, and the tranche state each acts on.
GRANT_ENDPOINTS = {
    "cases.tranche_action": None, "cases.report": OPEN_TRANCHE, "cases.receipt": None, "api.tranches": None,
    "api.release_tranche": ("pending",), "api.accept_report": ("reported",), "api.return_report": ("reported",),
    "api.tranche_report": OPEN_TRANCHE,
}
EDITING = {"portal.edit_application", "api.patch_application"}
UPLOADING = {"api.upload_document"}
TRANSITIONS = {"cases.transition", "api.transition"}
# Reading a case: whether anyone but its members may see it turns on whether it was ever submitted
# and on its kind, so one case of each of those kinds stands for the rest (the writing routes try
# every case, whose actions differ state by state).
READING = {"cases.show", "cases.document", "api.get_application", "api.history", "audit.timeline", "audit.snapshot"}
READ_CASES = ("draft", "renewal", "grant_draft", "correction", "issued", "grant_reported")
TRANCHE_ACTIONS = {"release_tranche", "submit_report", "accept_report", "return_report"}
TRANCHE_VERBS = {"release": "release_tranche", "accept": "accept_report", "return": "return_report"}

Choice = tuple[Any, dict[str, Any]]  # (the value in the URL, what it stands for)


def _cases(endpoint: str, aw: AuthzWorld, ctx: dict[str, Any]) -> list[Choice]:
    cases = list(aw.cases.values())
    if endpoint in GRANT_ENDPOINTS:
        cases = [c for c in cases if c.tranches]
    elif endpoint in EDITING:
        cases = [c for c in cases if c.state in ("draft", "needs_correction")]
    elif endpoint in UPLOADING:
        cases = [c for c in cases if c.state in ("draft", "needs_correction") and c.kind == "permit_issuance"]
    elif endpoint in TRANSITIONS:
        cases = [c for c in cases if c.actions]
    elif endpoint in READING:
        cases = [aw.cases[name] for name in READ_CASES]
    return [(c.id, {"case": c}) for c in cases]


def _tranche_numbers(endpoint: str, aw: AuthzWorld, ctx: dict[str, Any]) -> list[Choice]:
    case: Target = ctx["case"]
    states = GRANT_ENDPOINTS[endpoint]
    found = []
    for n, state in sorted(case.tranches.items()):
        if endpoint == "api.release_tranche" and ("release_tranche", "finance") not in case.actions:
            continue
        if endpoint == "api.release_tranche" and n != min(k for k, s in case.tranches.items() if s == "pending"):
            continue
        if states is None or state in states:
            found.append((n, {"n": n}))
    return found


def _documents(endpoint: str, aw: AuthzWorld, ctx: dict[str, Any]) -> list[Choice]:
    case: Target = ctx["case"]
    ids = case.receipts if endpoint == "cases.receipt" else case.documents + case.receipts
    return [(i, {"doc": i}) for i in ids]


def _seqs(endpoint: str, aw: AuthzWorld, ctx: dict[str, Any]) -> list[Choice]:
    return [(1, {"seq": 1})]  # every submitted case has its first entry; a draft none (404 for all)


def _actions(endpoint: str, aw: AuthzWorld, ctx: dict[str, Any]) -> list[Choice]:
    if "permit" in ctx:
        permit = ctx["permit"]
        return [(r.action, {"action": r.action, "role": r.role}) for r in PERMIT_PROCESS.rules
                if r.source == permit["state"] and r.role != SYSTEM]
    case: Target = ctx["case"]
    return [(a, {"action": a, "role": role}) for a, role in case.actions if a not in TRANCHE_ACTIONS]


def _verbs(endpoint: str, aw: AuthzWorld, ctx: dict[str, Any]) -> list[Choice]:
    case: Target = ctx["case"]
    state = case.tranches[ctx["n"]]
    found = []
    for verb, action in TRANCHE_VERBS.items():
        if action == "release_tranche":
            ok = state == "pending" and ("release_tranche", "finance") in case.actions \
                and ctx["n"] == min(k for k, s in case.tranches.items() if s == "pending")
        else:
            ok = state == "reported"
        if ok:
            found.append((verb, {"verb": verb, "action": action, "role": "finance"}))
    return found


def _permits(endpoint: str, aw: AuthzWorld, ctx: dict[str, Any]) -> list[Choice]:
    return [(p["number"], {"permit": p}) for p in aw.permits.values()]


def _programme(endpoint: str, aw: AuthzWorld, ctx: dict[str, Any]) -> list[Choice]:
    return [(aw.programmes["P1"], {"programme": aw.programmes["P1"]})]


def _notification(endpoint: str, aw: AuthzWorld, ctx: dict[str, Any]) -> list[Choice]:
    nid = aw.failed_notification if endpoint == "admin.retry" else aw.notification
    return [(nid, {"notification": nid})]


# parameter → how to fill it; "endpoint.parameter" keys win. Filled in this order, so a
# parameter can depend on those before it (a tranche on its case).
FILL: dict[str, Callable[[str, AuthzWorld, dict[str, Any]], list[Choice]]] = {
    "case_id": _cases,
    "number": _permits,
    "programme_id": _programme,
    "notification_id": _notification,
    "holiday_id": lambda ep, aw, ctx: [(aw.holiday, {"holiday": aw.holiday})],
    "n": _tranche_numbers,
    "doc_id": _documents,
    "seq": _seqs,
    "action": _actions,
    "verb": _verbs,
    "code": lambda ep, aw, ctx: [("fa", {})],
    "filename": lambda ep, aw, ctx: [("style.css", {})],
}
ORDER = list(FILL)

# What a route's body names rather than its URL: each choice is a probe of its own.
BODY_CHOICES: dict[str, Callable[[str, AuthzWorld, dict[str, Any]], list[Choice]]] = {
    "api.transition": lambda ep, aw, ctx: [(a, {"action": a, "role": role}) for a, role in ctx["case"].actions],
    "api.permit_transition": _actions,
}


def _some_cases(aw: AuthzWorld, *names: str) -> list[tuple[str, dict[str, Any]]]:
    return [(f"case={aw.cases[n].id}", {"case": aw.cases[n]}) for n in names]


# Query strings that name a target on routes without a parameter for it: variant → values.
QUERY_VARIANTS: dict[str, list[tuple[str, Callable[[AuthzWorld], list[tuple[str, dict[str, Any]]]]]]] = {
    "api.audit_verify": [("case", lambda aw: _some_cases(aw, "draft", "issued", "grant_reported"))],
    "audit.decisions": [("case", lambda aw: _some_cases(aw, "draft", "issued")),
                        ("org", lambda aw: [(f"org={quote(ORGS['orgQ'][2])}", {})])],
    "audit.export": [("case", lambda aw: _some_cases(aw, "issued")),
                     ("org", lambda aw: [(f"org={quote(ORGS['orgQ'][2])}", {})])],
    "queues.audit": [("org", lambda aw: [(f"org={quote(ORGS['orgQ'][2])}", {})])],
    "statistics.index": [("province", lambda aw: [("province=qazvin", {})])],
    "statistics.export": [("province", lambda aw: [("province=qazvin", {})])],
    "api.list_programmes": [("province", lambda aw: [("province=Qazvin", {})])],
    "api.queue": [("kind", lambda aw: [("kind=grant_request", {}), ("kind=permit_issuance", {})])],
    "public.verify": [("number", lambda aw: [(f"number={p['number']}", {}) for p in aw.permits.values()])],
}

# -- what each writing request carries -----------------------------------------------------------

PROBE = "probe from another jurisdiction"


def _jalali(days: int) -> str:
    return format_numeric(TODAY + timedelta(days=days), "en")


def _credentials(actor: str, aw: AuthzWorld) -> dict[str, str]:
    if actor == "anonymous":
        return {"email": "nobody@test.ir", "password": "not-a-password"}
    return {"email": aw.world.email(actor), "password": PASSWORD}


def _edit_form(aw: AuthzWorld, ctx: dict[str, Any]) -> dict[str, Any]:
    case: Target = ctx["case"]
    if case.kind == "permit_renewal":
        return {"version": str(case.version), "activity_report": PROBE * 3}
    if case.kind == "grant_request":
        return {"version": str(case.version), "title": PROBE, "summary": PROBE, "requested": "90,000,000",
                "budget_lines-0-item": "a", "budget_lines-0-amount": "60,000,000",
                "budget_lines-1-item": "b", "budget_lines-1-amount": "30,000,000",
                "budget_lines-2-item": "", "budget_lines-2-amount": ""}
    form = {"version": str(case.version), "name": ORGS[case.organization][2], "field": "children",
            "county": "قزوین", "address": PROBE}
    for i, nid in enumerate(VALID_IDS[:3]):
        form[f"founders-{i}-full_name"] = f"founder {i}"
        form[f"founders-{i}-national_id"] = nid
    return form


def _case_data(aw: AuthzWorld, case: Target) -> dict[str, Any]:
    if case.kind == "permit_renewal":
        return {"activity_report": PROBE * 3}
    if case.kind == "grant_request":
        return {k: v for k, v in grant_data(aw.programmes["P4"], PROBE).items() if k != "programme_id"}
    return qazvin_data(case.organization, address=PROBE)


def _transition_form(aw: AuthzWorld, ctx: dict[str, Any]) -> dict[str, Any]:
    action, case = ctx["action"], ctx["case"]
    form = {f"{action}-action": action, f"{action}-version": str(case.version), f"{action}-comment": PROBE}
    if case.kind == "grant_request" and action == "recommend_approval":
        form[f"{action}-score"] = "80"
    if action == "propose_amount":
        form.update({f"{action}-amount": "90,000,000", f"{action}-tranches-0": "90,000,000"})
    return form


def _action_values(aw: AuthzWorld, case: Target, action: str) -> dict[str, Any]:
    """What an API transition carries besides action, version and comment."""
    if case.kind == "grant_request" and action == "recommend_approval":
        return {"score": 80}
    if action == "propose_amount":
        return {"amount_rials": 900_000_000, "tranches": [900_000_000]}
    if action == "release_tranche":
        return {"tranche": min(n for n, s in case.tranches.items() if s == "pending")}
    if action == "submit_report":
        return {"tranche": min(n for n, s in case.tranches.items() if s in OPEN_TRANCHE), "lines": LINES}
    if action in ("accept_report", "return_report"):
        return {"tranche": min(n for n, s in case.tranches.items() if s == "reported")}
    return {}


def _report_form(aw: AuthzWorld, ctx: dict[str, Any]) -> dict[str, Any]:
    return {"data": {"report-version": str(ctx["case"].version), "report-lines-0-item": "a",
                     "report-lines-0-budgeted": "30,000,000", "report-lines-0-spent": "25,000,000",
                     "report-receipts": [(BytesIO(PDF), "r.pdf")]},
            "content_type": "multipart/form-data"}


Body = Callable[[AuthzWorld, dict[str, Any], str], dict[str, Any]]  # → keyword arguments of client.open

BODIES: dict[str, Body] = {
    "auth.login": lambda aw, ctx, actor: {"data": _credentials(actor, aw)},
    "auth.logout": lambda aw, ctx, actor: {},
    "auth.set_money_unit": lambda aw, ctx, actor: {"data": {"unit": "rial"}},
    "notifications.mark_read": lambda aw, ctx, actor: {},
    "notifications.mark_all_read": lambda aw, ctx, actor: {},
    "admin.retry": lambda aw, ctx, actor: {},
    "admin.retry_all": lambda aw, ctx, actor: {},
    "admin.delete_holiday": lambda aw, ctx, actor: {},
    "admin.add_holiday": lambda aw, ctx, actor: {"data": {"day": "1405/05/05", "name": PROBE}},
    "cases.transition": lambda aw, ctx, actor: {"data": _transition_form(aw, ctx)},
    "cases.tranche_action": lambda aw, ctx, actor: {"data": {
        f"{ctx['verb']}{ctx['n']}-version": str(ctx["case"].version), f"{ctx['verb']}{ctx['n']}-comment": PROBE}},
    "cases.report": lambda aw, ctx, actor: _report_form(aw, ctx),
    "public.permit_transition": lambda aw, ctx, actor: {"data": {
        f"{ctx['action']}-action": ctx["action"], f"{ctx['action']}-version": str(ctx["permit"]["version"]),
        f"{ctx['action']}-comment": PROBE}},
    "portal.edit_application": lambda aw, ctx, actor: {"data": _edit_form(aw, ctx)},
    "portal.new_application": lambda aw, ctx, actor: {"data": {"organization_id": str(aw.org("orgQf"))}},
    "portal.new_renewal": lambda aw, ctx, actor: {"data": {"permit_id": str(aw.permits["active"]["id"])}},
    "grants.new": lambda aw, ctx, actor: {"data": {
        "name": PROBE, "province": str(aw.province_ids["qazvin"]), "fiscal_year": "1405",
        "budget": "2,000,000,000", "max_award": "100,000,000", "opens_on": _jalali(-10), "closes_on": _jalali(30),
        "fields": ["children"]}},
    "grants.request_grant": lambda aw, ctx, actor: {"data": {"organization_id": str(aw.org("orgQs"))}},
    "api.token": lambda aw, ctx, actor: {"json": _credentials(actor, aw)},
    "api.create_application": lambda aw, ctx, actor: {"json": {
        "kind": "permit_issuance", "organization_id": aw.org("orgQf"), "data": qazvin_data("orgQf")}},
    "api.patch_application": lambda aw, ctx, actor: {"json": {
        "data": _case_data(aw, ctx["case"]), "version": ctx["case"].version}},
    "api.upload_document": lambda aw, ctx, actor: {
        "data": {"file": (BytesIO(PDF), "statute.pdf")}, "content_type": "multipart/form-data"},
    "api.transition": lambda aw, ctx, actor: {"json": {
        "action": ctx["action"], "version": ctx["case"].version, "comment": PROBE,
        **_action_values(aw, ctx["case"], ctx["action"])}},
    "api.release_tranche": lambda aw, ctx, actor: {"json": {"version": ctx["case"].version, "comment": PROBE}},
    "api.accept_report": lambda aw, ctx, actor: {"json": {"version": ctx["case"].version, "comment": PROBE}},
    "api.return_report": lambda aw, ctx, actor: {"json": {"version": ctx["case"].version, "comment": PROBE}},
    "api.tranche_report": lambda aw, ctx, actor: {
        "data": {"lines": json.dumps(LINES), "version": str(ctx["case"].version),
                 "receipts": [(BytesIO(PDF), "r.pdf")]}, "content_type": "multipart/form-data"},
    "api.permit_transition": lambda aw, ctx, actor: {"json": {
        "action": ctx["action"], "reason": PROBE, "version": ctx["permit"]["version"]}},
    "api.create_programme": lambda aw, ctx, actor: {"json": programme_body(PROBE)},
}

# -- who may do it, for the controls ---------------------------------------------------------------

OWNER_OF_ROLE = {"applicant": "q_ngo", "intake": "q_intake", "expert": "q_expert", "director": "q_director",
                 "finance": "q_finance"}


def _by_role(ctx: dict[str, Any]) -> str:
    return OWNER_OF_ROLE[ctx["role"]]


def _reader(ctx: dict[str, Any]) -> str | None:
    return "q_auditor" if ctx.get("case") is None or ctx["case"].submitted else None


# endpoint (or "endpoint?variant") → the world's user for whom the same request succeeds; None: nobody.
OWNER: dict[str, Callable[[dict[str, Any]], str | None]] = {
    **{ep: (lambda ctx: "q_ngo") for ep in (
        "cases.show", "cases.document", "cases.receipt", "cases.report", "api.get_application",
        "api.patch_application", "api.upload_document", "api.history", "api.tranches", "api.tranche_report",
        "api.permit_history", "portal.edit_application", "portal.new_application", "portal.new_renewal",
        "grants.show", "grants.request_grant", "api.get_programme", "api.create_application",
        "notifications.mark_read")},
    "cases.transition": _by_role, "api.transition": _by_role, "cases.tranche_action": _by_role,
    **{ep: (lambda ctx: "q_finance") for ep in (
        "api.release_tranche", "api.accept_report", "api.return_report", "api.create_programme", "grants.new")},
    **{ep: (lambda ctx: "q_director") for ep in ("public.permit_transition", "api.permit_transition",
                                                  "statistics.index?province", "statistics.export?province")},
    **{ep: _reader for ep in ("audit.timeline", "audit.snapshot", "api.audit_verify?case", "audit.decisions?case",
                              "audit.export?case", "audit.decisions?org", "audit.export?org", "queues.audit?org")},
    **{ep: (lambda ctx: "admin") for ep in ("admin.retry", "admin.delete_holiday")},
    "public.permit": lambda ctx: "q_director", "api.permit": lambda ctx: "q_ngo",
    "public.verify?number": lambda ctx: "q_ngo",
    "api.list_programmes?province": lambda ctx: "q_ngo", "api.queue?kind": lambda ctx: "q_intake",
}
# Parameters that are not objects (a language code, a static file's name): no owner needed.
NOT_OBJECTS = {"code", "filename"}


# -- probes -------------------------------------------------------------------------------------------

@dataclass
class Probe:
    endpoint: str
    method: str
    url: str
    ctx: dict[str, Any]
    variant: str = ""
    only: frozenset[str] | None = None  # actors it is sent as (a URL with an actor's own case in it)

    @property
    def api(self) -> bool:
        return self.url.startswith("/api/")

    @property
    def writes(self) -> bool:
        return self.method not in SAFE

    @property
    def key(self) -> str:
        return f"{self.endpoint}?{self.variant}" if self.variant else self.endpoint

    def policy(self) -> list[Allow]:
        return POLICY.get(f"{self.key} {self.method}") or POLICY.get(self.key) or []

    def allowed(self, actor: str) -> Allow | None:
        return next((a for a in self.policy() if actor in a.who), None)

    def owner(self) -> str | None:
        find = OWNER.get(self.key)
        return find(self.ctx) if find else None

    def body(self, aw: AuthzWorld, actor: str) -> dict[str, Any]:
        return BODIES[self.endpoint](aw, self.ctx, actor) if self.writes else {}

    def __str__(self) -> str:
        return f"{self.method} {self.url}"


class Unfillable(Exception):
    pass


def _fillings(rule: Any, aw: AuthzWorld) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Every way to fill the rule's parameters: [(url values, context)]."""
    unknown = [a for a in rule.arguments if f"{rule.endpoint}.{a}" not in FILL and a not in FILL]
    if unknown:
        raise Unfillable(f"{rule.endpoint} ({rule.rule}): no way to fill {unknown}; add them to FILL")
    partial: list[tuple[dict[str, Any], dict[str, Any]]] = [({}, {})]
    for name in sorted(rule.arguments, key=lambda a: ORDER.index(a) if a in ORDER else -1):
        fill = FILL.get(f"{rule.endpoint}.{name}") or FILL[name]
        partial = [({**values, name: value}, {**ctx, **more})
                   for values, ctx in partial for value, more in fill(rule.endpoint, aw, ctx)]
    if rule.endpoint in BODY_CHOICES:
        partial = [(values, {**ctx, **more}) for values, ctx in partial
                   for _value, more in BODY_CHOICES[rule.endpoint](rule.endpoint, aw, ctx)]
    return partial


def probes(app: Flask, aw: AuthzWorld) -> list[Probe]:
    found = []
    adapter = app.url_map.bind("localhost")
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        for method in sorted((rule.methods or set()) - IGNORED_METHODS):
            for values, ctx in _fillings(rule, aw):
                url = adapter.build(rule.endpoint, values, method=method)
                found.append(Probe(rule.endpoint, method, url, ctx))
                for variant, queries in QUERY_VARIANTS.get(rule.endpoint, []):
                    for query, more in queries(aw):
                        found.append(Probe(rule.endpoint, method, f"{url}?{query}", {**ctx, **more}, variant))
            # An actor's own case with a target's document in the URL: a draft's statute, an
            # approval's letter and certificate, a receipt.
            if rule.endpoint == "cases.document" and method == "GET":
                docs = aw.cases["draft"].documents + aw.cases["issued"].documents[-2:] \
                    + aw.cases["grant_reported"].receipts
                for actor, home in aw.home_cases.items():
                    for doc in docs:
                        found.append(Probe(rule.endpoint, method, f"/cases/{home}/documents/{doc}", {"doc": doc},
                                           "own case", frozenset({actor})))
    return found


# -- the database's fingerprint and the rolled-back sandbox -----------------------------------------

def _tables() -> list[str]:
    return [t.name for t in db.Base.metadata.sorted_tables if t.name not in REFERENCE_TABLES - {"holidays"}]


def fingerprint(conn: Any) -> dict[str, tuple[int, int]]:
    """Per table (reference data aside): its rows and the newest row version's transaction id.
    An INSERT or UPDATE writes a row version under a newer transaction id, a DELETE lowers the
    count; a rolled-back write leaves neither. Equal means nothing was changed."""
    sql = " UNION ALL ".join(f"SELECT '{t}', count(*), coalesce(max(xmin::text::bigint), 0) FROM \"{t}\""
                             for t in _tables())
    return {name: (rows, newest) for name, rows, newest in conn.execute(text(sql)).all()}


@contextmanager
def sandbox(app: Flask) -> Iterator[Any]:
    """The app's sessions join one outer transaction (each commit a SAVEPOINT), rolled back at the end."""
    conn = app.extensions["db_engine"].connect()
    outer = conn.begin()
    original = app.extensions["db_sessionmaker"]
    app.extensions["db_sessionmaker"] = sessionmaker(bind=conn, expire_on_commit=False,
                                                     join_transaction_mode="create_savepoint")
    try:
        yield conn
    finally:
        app.extensions["db_sessionmaker"] = original
        outer.rollback()
        conn.close()


# -- the actors' clients -------------------------------------------------------------------------------

class Clients:
    """A cookie jar (signed in) and a bearer token per person."""

    def __init__(self, app: Flask, aw: AuthzWorld) -> None:
        self.app, self.aw = app, aw
        self.web: dict[str, Any] = {}
        self.tokens: dict[str, str] = {}

    def sign_in(self, who: str) -> None:
        client = self.web.setdefault(who, self.app.test_client())
        if who == "anonymous":
            return
        r = client.post("/login", data=_credentials(who, self.aw))
        assert r.status_code == 302, (who, r.status_code)
        if who not in self.tokens:
            r = client.post("/api/v1/token", json=_credentials(who, self.aw))
            self.tokens[who] = r.get_json()["token"]

    def send(self, who: str, probe: Probe) -> Any:
        kwargs = probe.body(self.aw, who)
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if probe.api and who in self.tokens else {}
        r = self.web[who].open(probe.url, method=probe.method, headers=headers, **kwargs)
        r.get_data()  # read a streamed body (a CSV) to its end, then let it go
        r.close()
        if probe.endpoint == "auth.logout" and who != "anonymous":
            self.sign_in(who)  # signed out: back in for the rest of the matrix
        return r


def _text(r: Any) -> str:
    if r.is_json:
        return json.dumps(r.get_json(silent=True), ensure_ascii=False)
    return r.get_data().decode("utf-8", "replace")  # a document served by mistake is bytes


def refusal_problem(r: Any, probe: Probe, actor: str) -> str | None:
    """Why this answer is not a clean refusal (None when it is one)."""
    status = r.status_code
    if status >= 500:
        return f"server error {status}"
    if 200 <= status < 300:
        return f"unauthorised {status}"
    if probe.api:
        if status not in (401, 403, 404):
            return f"refused with {status}: not as unauthorised (authorisation checked after validation?)"
        code = (r.get_json() or {}).get("error", {}).get("code")
        if code not in ("unauthorized", "forbidden", "not_found"):
            return f"{status} without the API's error shape: {code!r}"
        return None
    if 300 <= status < 400:
        location = r.headers.get("Location", "")
        if actor == "anonymous":
            return None if location.startswith("/login") else f"a visitor redirected to {location}"
        if not probe.writes:
            return f"a refused page redirects to {location}"
    return None


def leaks(r: Any, aw: AuthzWorld, allowed: frozenset[str], probe: Probe) -> list[str]:
    """The targets' markers in the answer, but for those the request itself carried (a search
    typed into a filter comes back in its field; a refused form redirects to its own URL)."""
    body = _text(r) + " " + r.headers.get("Location", "")
    asked = unquote(probe.url)
    return sorted(m for category, strings in aw.markers.items() if category not in allowed
                  for m in strings if m in body and m not in asked)


# -- the fixtures and the tests ---------------------------------------------------------------------

@dataclass
class Matrix:
    app: Flask
    aw: AuthzWorld
    clients: Clients
    probes: list[Probe] = field(default_factory=list)


@pytest.fixture(scope="module")
def matrix(backend: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    if backend.name != "postgresql":
        pytest.skip("the rolled-back sandbox and the fingerprint need PostgreSQL")
    # CSRF is tested in its own module; here a refusal must be the authorisation's, never the token's.
    app = build_app(backend.url, tmp_path_factory.mktemp("authz"), None, WTF_CSRF_ENABLED=False)
    _truncate(app)
    started = time.perf_counter()
    aw = build(app, app.test_client())
    clients = Clients(app, aw)
    for who in [*ACTORS, *{o for o in ("q_ngo", "q_intake", "q_expert", "q_director", "q_finance", "q_auditor")}]:
        clients.sign_in(who)
    m = Matrix(app, aw, clients, probes(app, aw))
    print(f"world built in {time.perf_counter() - started:.1f}s; {len(m.probes)} probes")
    yield m
    app.extensions["db_engine"].dispose()


@pytest.mark.postgres
def test_every_route_is_in_the_tables(matrix: Matrix) -> None:
    """A new route cannot escape: its parameters, its body and its owner must be declared."""
    app = matrix.app
    endpoints = {r.endpoint for r in app.url_map.iter_rules()}
    problems = []
    for key in [*POLICY, *OWNER, *QUERY_VARIANTS, *BODIES]:
        endpoint = key.split("?")[0].split(" ")[0]
        if endpoint not in endpoints:
            problems.append(f"{key}: no such endpoint (a stale entry)")
    for rule in app.url_map.iter_rules():
        try:
            _fillings(rule, matrix.aw)
        except Unfillable as exc:
            problems.append(str(exc))
        for method in (rule.methods or set()) - SAFE:
            if rule.endpoint not in BODIES:
                problems.append(f"{method} {rule.rule}: no body in BODIES")
    arguments = {r.endpoint: r.arguments for r in app.url_map.iter_rules()}
    for probe in matrix.probes:
        names_object = probe.variant or any(a not in NOT_OBJECTS for a in arguments[probe.endpoint])
        if names_object and probe.only is None and probe.key not in OWNER:
            problems.append(f"{probe.key}: names a target but OWNER does not say who may use it")
    for key, allows in POLICY.items():
        for allow in allows:
            assert allow.who <= EVERYONE and allow.reason, key
    counted = {p.endpoint for p in matrix.probes}
    problems += [f"{e}: no probe was made (no target to fill it with?)" for e in endpoints - counted]
    assert not problems, "\n".join(problems)


def _run(matrix: Matrix, probe: Probe, actor: str, failures: list[str]) -> None:
    app, aw, clients = matrix.app, matrix.aw, matrix.clients
    allow = probe.allowed(actor)
    if allow is not None and probe.writes:
        with sandbox(app):
            r = clients.send(actor, probe)
    else:
        r = clients.send(actor, probe)
    if allow is not None:
        if r.status_code >= 400:
            failures.append(f"{actor}: {probe} → {r.status_code}, but POLICY allows it ({allow.reason})")
    else:
        problem = refusal_problem(r, probe, actor)
        if problem:
            failures.append(f"{actor}: {probe} → {problem}: {_text(r)[:160]!r}")
    leaked = leaks(r, aw, allow.sees if allow else frozenset(), probe)
    if leaked:
        failures.append(f"{actor}: {probe} → {r.status_code} shows the targets' {leaked[:4]}")


@pytest.mark.postgres
def test_no_actor_reaches_what_is_not_theirs(matrix: Matrix) -> None:
    app = matrix.app
    watch = app.extensions["db_engine"].connect().execution_options(isolation_level="AUTOCOMMIT")
    before = fingerprint(watch)
    failures: list[str] = []
    sent = 0
    started = time.perf_counter()
    for probe in matrix.probes:
        actors = [a for a in ACTORS if probe.only is None or a in probe.only]
        for actor in actors:
            _run(matrix, probe, actor, failures)
            sent += 1
            if probe.writes:
                after = fingerprint(watch)
                if after != before:
                    changed = sorted(t for t in after if after[t] != before.get(t))
                    failures.append(f"{actor}: {probe} changed {changed}")
                    before = after
        if not probe.writes:
            after = fingerprint(watch)
            if after != before:
                failures.append(f"{probe} (a GET) changed {sorted(t for t in after if after[t] != before.get(t))}")
                before = after
    watch.close()
    elapsed = time.perf_counter() - started
    print(f"{sent} requests from {len(ACTORS)} actors on {len(matrix.probes)} probes in {elapsed:.1f}s")
    assert not failures, f"{len(failures)} problems:\n" + "\n".join(failures[:80])


@pytest.mark.postgres
def test_owners_reach_every_target(matrix: Matrix) -> None:
    """The controls: the same requests, sent by the people entitled to them, succeed, and the
    writing ones change the database. Without this the refusals above could be accidents of a
    wrong state, id or body."""
    app, clients = matrix.app, matrix.clients
    failures: list[str] = []
    checked = 0
    for probe in matrix.probes:
        owner = probe.owner() if probe.only is None else None
        if owner is None:
            continue
        checked += 1
        with sandbox(app) as conn:
            before = fingerprint(conn) if probe.writes else None
            r = clients.send(owner, probe)
            changed = probe.writes and fingerprint(conn) != before
        if r.status_code >= 400:
            failures.append(f"{owner}: {probe} → {r.status_code}: {_text(r)[:200]!r}")
        elif probe.writes and not changed:
            failures.append(f"{owner}: {probe} → {r.status_code} but nothing changed")
    print(f"{checked} owner controls")
    assert checked > 100
    assert not failures, f"{len(failures)} controls failed:\n" + "\n".join(failures)


# -- regressions the matrix found, each on its own ---------------------------------------------------

def test_the_api_shows_a_programme_only_to_those_the_pages_show_it_to(api: Any) -> None:
    """/api/v1/programmes listed, and /api/v1/programmes/<id> showed, every province's programmes to
    anyone signed in, where the pages (and now the service behind both) keep to the reader's."""
    from tests.test_grants import programme_body as kerman_programme

    r = api.post("/api/v1/programmes", "admin", kerman_programme(province="Qazvin"))
    assert r.status_code == 201, r.get_json()
    pid = r.get_json()["id"]
    for who in ("ngo", "finance", "expert", "director", "auditor"):  # Kerman's
        assert api.get(f"/api/v1/programmes/{pid}", who).status_code == 404, who
        for url in ("/api/v1/programmes", "/api/v1/programmes?province=Qazvin"):
            assert api.get(url, who).get_json()["items"] == [], (who, url)
    for who in ("q_ngo", "q_director", "admin"):  # Qazvin's NGO and staff; admins everywhere
        assert api.get(f"/api/v1/programmes/{pid}", who).status_code == 200, who
        assert [p["id"] for p in api.get("/api/v1/programmes", who).get_json()["items"]] == [pid], who


def test_verify_keeps_to_the_readers_jurisdiction(app: Flask, api: Any, session: Any) -> None:
    """A Kerman auditor verified, and was told of breaks in, every chain in the country, and any
    case by number; now a case out of their jurisdiction is a 404 and the whole run is theirs."""
    from tests.test_audit_chain import tamper
    from tests.support import good_data
    from workflow.services import accounts

    kerman = api.ready()
    api.advance(kerman, ("submit", "ngo"), ("accept", "intake"))
    qazvin = api.ready("q_ngo", "org2", **good_data(name="مجمع خیرین اشتغال قزوین", county="Qazvin"))
    api.advance(qazvin, ("submit", "q_ngo"), ("accept", "q_intake"))
    with app.test_request_context():
        accounts.create_user(session, email="national_auditor@test.ir", password=PASSWORD, name="national",
                             roles=["auditor"])
        session.commit()
    tamper(session, "UPDATE audit_entries SET comment = 'rewritten' WHERE case_id = :c AND seq = 2", c=qazvin)

    assert api.get(f"/api/v1/audit/verify?case={qazvin}", "auditor").status_code == 404
    assert api.get(f"/api/v1/audit/verify?case={kerman}", "auditor").get_json()["checked"] == 2
    mine = api.get("/api/v1/audit/verify", "auditor").get_json()
    assert (mine["ok"], mine["chains"], mine["checked"]) == (True, 1, 2)
    everything = api.get("/api/v1/audit/verify", "national_auditor").get_json()
    assert everything["ok"] is False and everything["broken"]["id"] == qazvin
    assert api.get(f"/api/v1/audit/verify?case={qazvin}", "national_auditor").get_json()["ok"] is False


def test_holidays_are_read_through_a_session_bound_to_a_connection(app: Flask) -> None:
    """The holiday cache keyed itself on `session.get_bind().url`, which a Connection lacks: every
    transition with a deadline was a 500 in a session joined to an outer transaction (how the
    matrix's sandbox, and any test or job sharing a connection, runs)."""
    from workflow.holidays import forget, holidays

    forget()
    with app.app_context(), app.extensions["db_engine"].connect() as conn:
        session = sessionmaker(bind=conn)()
        assert len(holidays(session)) > 10  # the official holidays loaded by the migration
        session.close()


def test_a_replayed_idempotency_key_shows_the_case_only_to_who_may_still_see_it(app: Flask, api: Any,
                                                                                  session: Any) -> None:
    """The key's first answer came back to its user whatever had changed since; a member who has
    left the organisation read its case through it."""
    from tests.support import good_data

    body = {"kind": "permit_issuance", "organization_id": api.world.orgs["org1"], "data": good_data()}
    first = api.post("/api/v1/applications", "ngo_b", body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 201
    assert api.post("/api/v1/applications", "ngo_b", body, headers={"Idempotency-Key": "k-1"}).get_json()["id"] \
        == first.get_json()["id"]
    session.execute(text("DELETE FROM memberships WHERE user_id = :u"), {"u": api.world.users["ngo_b"]})
    session.commit()
    again = api.post("/api/v1/applications", "ngo_b", body, headers={"Idempotency-Key": "k-1"})
    assert again.status_code == 404 and "founders" not in again.get_data(as_text=True)

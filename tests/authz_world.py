"""The world of the authorisation matrix (tests/test_authz_matrix.py): two provinces, several
organisations, and in Qazvin one of everything a URL can name, owned by people the actors are not.

Every target belongs to Qazvin organisations whose only applicant is `q_ngo` and is handled by
Qazvin staff (`q_*`). The actors of the matrix are strangers to all of it in one way each: Kerman
staff (another province), a Kerman NGO (another organisation and province), a Qazvin NGO of
another organisation (same province), and a Qazvin director of another county. Everything is
made through the real processes (the JSON API), so the states are ones the engine produced.

Private text the targets carry (staff names, comments, titles, reasons) is made of unique
markers, so a page that leaks any of it to an actor is caught by a substring search.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from io import BytesIO
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text

from tests.support import PASSWORD, PDF, VALID_IDS, Api, World, good_data
from workflow import db, engine, registry
from workflow.models import Case, Document, Notification, Permit, Programme, Tranche, utcnow
from workflow.services import accounts
from workflow.services.accounts import load_user

TODAY = date.today()

# name → (roles, province, county, organisations, display name). The display names of the owners
# are markers: no actor may ever read them.
ACTOR_USERS = {
    "ngo": (["applicant"], None, None, ["orgK"], "Kerman NGO member"),
    "ngo_q2": (["applicant"], None, None, ["orgQ2"], "Qazvin NGO member of another organisation"),
    "intake": (["intake"], "kerman", None, [], "Kerman intake"),
    "expert": (["expert"], "kerman", None, [], "Kerman expert"),
    "director": (["director"], "kerman", None, [], "Kerman director"),
    "finance": (["finance"], "kerman", None, [], "Kerman finance"),
    "auditor": (["auditor"], "kerman", None, [], "Kerman auditor"),
    "admin": (["admin"], "kerman", None, [], "Kerman admin"),
    "county_director": (["director"], "qazvin", "Takestan", [], "Takestan director"),
}
OWNER_USERS = {
    "q_ngo": (["applicant"], None, None, ["orgQ", "orgQp", "orgQd", "orgQs", "orgQr", "orgQa", "orgQn", "orgQf"],
              "QZMARK-member-Rostami"),
    "q_intake": (["intake"], "qazvin", None, [], "QZMARK-intake-Karimi"),
    "q_expert": (["expert"], "qazvin", None, [], "QZMARK-expert-Bahrami"),
    "q_director": (["director"], "qazvin", None, [], "QZMARK-director-Sadeghi"),
    "q_finance": (["finance"], "qazvin", None, [], "QZMARK-finance-Moradi"),
    "q_auditor": (["auditor"], "qazvin", None, [], "QZMARK-auditor-Jafari"),
}
# organisation → (province, county, name)
ORGS = {
    "orgK": ("kerman", "Kerman", "انجمن نگهبانان محیط زیست کرمان"),
    "orgQ2": ("qazvin", "Qazvin", "کانون همسایگان قزوین"),
    "orgQ": ("qazvin", "Qazvin", "مجمع خیرین اشتغال قزوین"),
    "orgQp": ("qazvin", "Qazvin", "جمعیت یاوران سالمندان قزوین"),
    "orgQd": ("qazvin", "Qazvin", "انجمن کتابخوانان قزوین"),
    "orgQs": ("qazvin", "Qazvin", "خانه هنرمندان جوان قزوین"),
    "orgQr": ("qazvin", "Qazvin", "کانون ورزش بانوان قزوین"),
    "orgQa": ("qazvin", "Qazvin", "انجمن حامیان بیماران خاص قزوین"),
    "orgQn": ("qazvin", "Qazvin", "جمعیت دوستداران میراث قزوین"),
    "orgQf": ("qazvin", "Qazvin", "موسسه نیکوکاری باران قزوین"),
}
COMMENT = "QZMARK-comment"
REASON = "QZMARK-suspension-reason"
LINES = [{"item": "QZMARK-line", "budgeted_rials": 300_000_000, "spent_rials": 250_000_000}]
ROLE_OWNER = {"applicant": "q_ngo", "intake": "q_intake", "expert": "q_expert", "director": "q_director",
              "finance": "q_finance"}


@dataclass
class Target:
    """A case the actors must not reach, and what is known about it once the world is built."""

    name: str
    id: int
    kind: str
    state: str
    version: int
    organization: str
    submitted: bool
    last_seq: int
    documents: list[int] = field(default_factory=list)
    receipts: list[int] = field(default_factory=list)
    # tranche n → its state, for grant cases
    tranches: dict[int, str] = field(default_factory=dict)
    # (action, role) pairs the owners may take now (engine.allowed_actions of each owner)
    actions: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class AuthzWorld:
    world: World
    cases: dict[str, Target] = field(default_factory=dict)
    permits: dict[str, dict[str, Any]] = field(default_factory=dict)
    programmes: dict[str, int] = field(default_factory=dict)
    notification: int = 0  # an unread notification of q_ngo
    failed_notification: int = 0  # one whose delivery failed, for the admins' retry
    holiday: int = 0
    home_cases: dict[str, int] = field(default_factory=dict)  # actor → a case of their own
    province_ids: dict[str, int] = field(default_factory=dict)
    markers: dict[str, set[str]] = field(default_factory=dict)  # category → strings

    def user(self, name: str) -> int:
        return self.world.users[name]

    def org(self, name: str) -> int:
        return self.world.orgs[name]


def qazvin_data(org: str, **overrides: Any) -> dict[str, Any]:
    """A complete permit application of a Qazvin organisation."""
    data = {
        "name": ORGS[org][2], "field": "children", "county": "Qazvin",
        "address": "QZMARK-address, قزوین، خیابان طالقانی",
        "founders": [{"full_name": "QZMARK-founder " + str(i), "national_id": nid} for i, nid in enumerate(VALID_IDS[:3])],
    }
    data.update(overrides)
    return data


def programme_body(name: str, **overrides: Any) -> dict[str, Any]:
    body = {
        "name": name, "province": "Qazvin", "fiscal_year": 1405, "budget_rials": 20_000_000_000,
        "opens_on": (TODAY - timedelta(days=10)).isoformat(), "closes_on": (TODAY + timedelta(days=30)).isoformat(),
        "fields": ["children"], "max_award_rials": 1_000_000_000,
    }
    body.update(overrides)
    return body


def grant_data(programme_id: int, title: str) -> dict[str, Any]:
    return {
        "programme_id": programme_id, "title": title, "summary": "QZMARK-summary of the project",
        "requested_rials": 900_000_000,
        "budget_lines": [{"item": "QZMARK-teaching", "rials": 600_000_000}, {"item": "QZMARK-books", "rials": 300_000_000}],
    }


def _ok(r: Any, *expected: int) -> Any:
    assert r.status_code in (expected or (200,)), (r.status_code, r.get_data(as_text=True)[:500])
    return r.get_json()


def _create_people(app: Flask, w: World) -> dict[str, int]:
    provinces: dict[str, int] = {}
    with app.test_request_context(), db.new_session() as s:
        orgs = {}
        for key, (prov, county, name) in ORGS.items():
            p = accounts.find_province(s, prov)
            provinces[prov] = p.id
            orgs[key] = accounts.create_organization(s, name=name, province=p, county=accounts.find_county(s, p, county))
            w.orgs[key] = orgs[key].id
        for name, (roles, prov, county, member_of, display) in {**ACTOR_USERS, **OWNER_USERS}.items():
            p = accounts.find_province(s, prov) if prov else None
            c = accounts.find_county(s, p, county) if county else None
            u = accounts.create_user(s, email=w.email(name), password=PASSWORD, name=display, roles=roles,
                                     province=p, county=c, organizations=[orgs[o] for o in member_of])
            w.users[name] = u.id
        s.commit()
    return provinces


def _issue(api: Api, org: str) -> tuple[int, str]:
    """An approved permit application of `org`; returns (case id, permit number)."""
    case = api.create("q_ngo", org, qazvin_data(org))
    _ok(api.upload(case["id"], "q_ngo"), 201)
    api.advance(case["id"], ("submit", "q_ngo"), ("accept", "q_intake", COMMENT),
                ("recommend_approval", "q_expert", COMMENT))
    body = api.advance(case["id"], ("approve", "q_director", COMMENT)).get_json()
    return case["id"], body["permit_number"]


def _grant(api: Api, programme_id: int, title: str, org: str = "orgQ") -> int:
    r = api.post("/api/v1/applications", "q_ngo", {"kind": "grant_request", "organization_id": api.world.orgs[org],
                                                   "data": grant_data(programme_id, title)})
    return _ok(r, 201)["id"]


def _approve_grant(api: Api, case_id: int) -> None:
    api.advance(case_id, ("submit", "q_ngo"), ("accept", "q_intake", COMMENT))
    _ok(api.act(case_id, "recommend_approval", "q_expert", COMMENT, score=80))
    _ok(api.act(case_id, "propose_amount", "q_finance", COMMENT, amount_rials=900_000_000,
                tranches=[500_000_000, 400_000_000]))
    _ok(api.act(case_id, "approve", "q_director", COMMENT))


def file_report(api: Api, case_id: int, n: int, who: str = "q_ngo") -> Any:
    data = {"lines": json.dumps(LINES), "receipts": [(BytesIO(PDF), "QZMARK-receipt.pdf")]}
    return api.client.post(f"/api/v1/grants/{case_id}/tranches/{n}/report", headers=api.headers(who), data=data,
                           content_type="multipart/form-data")


def build(app: Flask, client: FlaskClient) -> AuthzWorld:
    w = World()
    provinces = _create_people(app, w)
    api = Api(client, w)
    aw = AuthzWorld(world=w, province_ids=provinces)
    names: dict[str, int] = {}

    # Permits: orgQ's stays active (grants rest on it); orgQp's gets a renewal draft, then is suspended.
    names["issued"], permit_q = _issue(api, "orgQ")
    names["issued_p"], permit_p = _issue(api, "orgQp")
    with app.test_request_context(), db.new_session() as s:
        # Inside the renewal window (90 days before the end), so a renewal may be opened.
        s.execute(text("UPDATE permits SET valid_until = :t"), {"t": utcnow() + timedelta(days=30)})
        s.commit()
    r = api.post("/api/v1/applications", "q_ngo", {
        "kind": "permit_renewal", "organization_id": w.orgs["orgQp"],
        "data": {"permit_number": permit_p, "activity_report": "QZMARK-activity report " * 5}})
    names["renewal"] = _ok(r, 201)["id"]
    _ok(api.post(f"/api/v1/permits/{permit_p}/transitions", "q_director", {"action": "suspend", "reason": REASON}))

    # Permit applications in the states of the review path.
    names["draft"] = api.ready("q_ngo", "orgQd", **qazvin_data("orgQd"))
    names["submitted"] = api.ready("q_ngo", "orgQs", **qazvin_data("orgQs"))
    api.advance(names["submitted"], ("submit", "q_ngo"))
    names["under_review"] = api.ready("q_ngo", "orgQr", **qazvin_data("orgQr"))
    api.advance(names["under_review"], ("submit", "q_ngo"), ("accept", "q_intake", COMMENT))
    names["awaiting"] = api.ready("q_ngo", "orgQa", **qazvin_data("orgQa"))
    api.advance(names["awaiting"], ("submit", "q_ngo"), ("accept", "q_intake", COMMENT),
                ("recommend_approval", "q_expert", COMMENT))
    names["correction"] = api.ready("q_ngo", "orgQn", **qazvin_data("orgQn"))
    api.advance(names["correction"], ("submit", "q_ngo"), ("return_for_correction", "q_intake", COMMENT))

    # Programmes and grants: one tranche reported (for accept/return), one returned (a report to
    # file again), one awaiting release, and a draft request.
    for key in ("P1", "P2", "P3", "P4"):
        aw.programmes[key] = _ok(api.post("/api/v1/programmes", "q_finance",
                                          programme_body(f"QZMARK-programme {key}")), 201)["id"]
    names["grant_reported"] = _grant(api, aw.programmes["P1"], "QZMARK-grant reported")
    names["grant_returned"] = _grant(api, aw.programmes["P2"], "QZMARK-grant returned")
    names["grant_releasable"] = _grant(api, aw.programmes["P3"], "QZMARK-grant releasable")
    names["grant_draft"] = _grant(api, aw.programmes["P4"], "QZMARK-grant draft")
    for key in ("grant_reported", "grant_returned", "grant_releasable"):
        _approve_grant(api, names[key])
    for key in ("grant_reported", "grant_returned"):
        _ok(api.post(f"/api/v1/grants/{names[key]}/tranches/1/release", "q_finance"))
        _ok(file_report(api, names[key], 1))
    _ok(api.post(f"/api/v1/grants/{names['grant_returned']}/tranches/1/report/return", "q_finance",
                 {"comment": COMMENT}))

    # The actors' own cases, for URLs that mix an id of theirs with one of the targets'.
    aw.home_cases["ngo"] = _ok(api.post("/api/v1/applications", "ngo", {
        "kind": "permit_issuance", "organization_id": w.orgs["orgK"],
        "data": good_data(name=ORGS["orgK"][2])}), 201)["id"]
    _ok(api.upload(aw.home_cases["ngo"], "ngo"), 201)
    api.advance(aw.home_cases["ngo"], ("submit", "ngo"))
    aw.home_cases["ngo_q2"] = _ok(api.post("/api/v1/applications", "ngo_q2", {
        "kind": "permit_issuance", "organization_id": w.orgs["orgQ2"],
        "data": good_data(name=ORGS["orgQ2"][2], county="Qazvin", address="قزوین، خیابان فردوسی")}), 201)["id"]
    _ok(api.upload(aw.home_cases["ngo_q2"], "ngo_q2"), 201)
    for actor in ("intake", "expert", "director", "finance", "auditor", "admin"):
        aw.home_cases[actor] = aw.home_cases["ngo"]  # a submitted Kerman case: theirs to read

    with app.test_request_context(), db.new_session() as s:
        owners = {role: load_user(s, w.users[name]) for role, name in ROLE_OWNER.items()}
        for key, case_id in names.items():
            case = s.get(Case, case_id)
            docs = s.scalars(select(Document).where(Document.case_id == case_id).order_by(Document.id)).all()
            tranches = {t.n: t.state for t in s.scalars(select(Tranche).where(Tranche.case_id == case_id))}
            actions = [(a, role) for role, owner in owners.items()
                       for a in engine.allowed_actions(s, case, owner)]
            aw.cases[key] = Target(
                name=key, id=case.id, kind=case.kind, state=case.state, version=case.version,
                organization=next(k for k, v in w.orgs.items() if v == case.organization_id),
                submitted=case.submitted_at is not None, last_seq=case.last_seq,
                documents=[d.id for d in docs if d.kind != "receipt"], receipts=[d.id for d in docs if d.kind == "receipt"],
                tranches=tranches, actions=actions)
        for key, number in (("active", permit_q), ("suspended", permit_p)):
            permit = s.scalar(select(Permit).where(Permit.number == number))
            aw.permits[key] = {"id": permit.id, "number": number, "state": permit.state, "version": permit.version}
        notes = s.scalars(select(Notification).where(Notification.user_id == w.users["q_ngo"]).order_by(Notification.id)).all()
        assert len(notes) >= 2, "the transitions notified the applicant"
        aw.notification = notes[0].id
        aw.failed_notification = notes[1].id
        s.execute(text("UPDATE notifications SET failed_at = :t, last_error = 'QZMARK-smtp' WHERE id = :i"),
                  {"t": utcnow(), "i": aw.failed_notification})
        aw.holiday = s.scalar(text("SELECT min(id) FROM holidays"))
        s.commit()
        programmes = {p.name for p in s.scalars(select(Programme))}
        org_names = {s.scalar(text("SELECT name FROM organizations WHERE id = :i"), {"i": w.orgs[k]})
                     for k in ORGS if k not in ("orgK", "orgQ2")}
    assert set(registry.PROCESSES) >= {c.kind for c in aw.cases.values()}
    aw.markers = {
        # On the public permit page by design: the holder's name and the permit's number.
        "public": org_names | {permit_q, permit_p},
        "programme": programmes,
        # Never shown to anyone but the owners: people, comments, titles, amounts' lines, reasons.
        "private": {"QZMARK-member", "QZMARK-intake", "QZMARK-expert", "QZMARK-director", "QZMARK-finance",
                    "QZMARK-auditor", COMMENT, REASON, "QZMARK-grant", "QZMARK-address", "QZMARK-founder",
                    "QZMARK-line", "QZMARK-teaching", "QZMARK-receipt", "QZMARK-activity", "QZMARK-smtp"},
    }
    return aw

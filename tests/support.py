"""Test helpers: a small world of offices and NGOs, and clients that speak API or HTML."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from workflow import db
from workflow.demo import minimal_pdf, national_id
from workflow.models import User
from workflow.services import accounts

PASSWORD = "secret-pass-1"
PDF = minimal_pdf("Statute")
VALID_IDS = ["0499370899", "0790419904", "0084575948", "1234567891", "0013542419"]

STAFF = {
    # name: (roles, province, county)
    "intake": (["intake"], "kerman", None),
    "expert": (["expert"], "kerman", None),
    "expert2": (["expert"], "kerman", None),
    "director": (["director"], "kerman", None),
    "finance": (["finance"], "kerman", None),
    "auditor": (["auditor"], "kerman", None),
    "admin": (["admin"], "kerman", None),
    "expert_director": (["expert", "director"], "kerman", None),
    "sirjan_intake": (["intake"], "kerman", "Sirjan"),
    "q_intake": (["intake"], "qazvin", None),
    "q_expert": (["expert"], "qazvin", None),
    "q_director": (["director"], "qazvin", None),
}


@dataclass
class World:
    users: dict[str, int] = field(default_factory=dict)
    orgs: dict[str, int] = field(default_factory=dict)

    def email(self, who: str) -> str:
        return f"{who}@test.ir"


def good_data(**overrides: Any) -> dict[str, Any]:
    data = {
        "name": "انجمن حمایت از کودکان کار کرمان",
        "field": "children",
        "county": "Kerman",
        "address": "کرمان، خیابان شریعتی، پلاک ۱۲",
        "founders": [
            {"full_name": "زهرا احمدی", "national_id": "0499370899"},
            {"full_name": "علی رضایی", "national_id": "0790419904"},
            {"full_name": "مریم حسینی", "national_id": "0084575948"},
        ],
    }
    data.update(overrides)
    return data


@pytest.fixture
def world(app: Flask) -> World:
    w = World()
    with app.test_request_context():
        with db.new_session() as s:
            kerman = accounts.find_province(s, "kerman")
            qazvin = accounts.find_province(s, "qazvin")
            org1 = accounts.create_organization(s, name="انجمن حمایت از کودکان کار کرمان", province=kerman,
                                                county=accounts.find_county(s, kerman, "Kerman"))
            org2 = accounts.create_organization(s, name="مجمع خیرین اشتغال قزوین", province=qazvin,
                                                county=accounts.find_county(s, qazvin, "Qazvin"))
            org3 = accounts.create_organization(s, name="جمعیت زنان کارآفرین سیرجان", province=kerman,
                                                county=accounts.find_county(s, kerman, "Sirjan"))
            w.orgs = {"org1": org1.id, "org2": org2.id, "org3": org3.id}
            people: list[tuple[str, list[str], Any, Any, list[Any]]] = [
                ("ngo", ["applicant"], None, None, [org1]),
                ("ngo_b", ["applicant"], None, None, [org1]),
                ("q_ngo", ["applicant"], None, None, [org2]),
                ("s_ngo", ["applicant"], None, None, [org3]),
                ("stranger", ["applicant"], None, None, []),
                # staff who are also members of org1: may not act as staff on its cases
                ("member_intake", ["intake", "applicant"], kerman, None, [org1]),
            ]
            for name, (roles, prov, county) in STAFF.items():
                p = accounts.find_province(s, prov)
                c = accounts.find_county(s, p, county) if county else None
                people.append((name, roles, p, c, []))
            for name, roles, prov, county, orgs in people:
                u = accounts.create_user(s, email=w.email(name), password=PASSWORD, name=name, roles=roles,
                                         province=prov, county=county, organizations=orgs)
                w.users[name] = u.id
            s.commit()
    return w


class Api:
    """A JSON client that signs in as a world user by name."""

    def __init__(self, client: FlaskClient, world: World) -> None:
        self.client = client
        self.world = world
        self.tokens: dict[str, str] = {}

    def token(self, who: str) -> str:
        if who not in self.tokens:
            r = self.client.post("/api/v1/token", json={"email": self.world.email(who), "password": PASSWORD})
            assert r.status_code == 200, r.get_json()
            self.tokens[who] = r.get_json()["token"]
        return self.tokens[who]

    def headers(self, who: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(who)}"} if who else {}

    def get(self, url: str, who: str | None = None, **kw: Any) -> Any:
        return self.client.get(url, headers=self.headers(who), **kw)

    def post(self, url: str, who: str | None = None, json: Any = None, **kw: Any) -> Any:
        headers = {**self.headers(who), **kw.pop("headers", {})}
        return self.client.post(url, headers=headers, json=json, **kw)

    def patch(self, url: str, who: str | None = None, json: Any = None) -> Any:
        return self.client.patch(url, headers=self.headers(who), json=json)

    # -- the story in steps --------------------------------------------------------------
    def create(self, who: str = "ngo", org: str = "org1", data: dict[str, Any] | None = None) -> dict[str, Any]:
        r = self.post("/api/v1/applications", who, {"kind": "permit_issuance",
                                                    "organization_id": self.world.orgs[org],
                                                    "data": data if data is not None else good_data()})
        assert r.status_code == 201, r.get_json()
        return r.get_json()

    def upload(self, case_id: int, who: str = "ngo", content: bytes = PDF, name: str = "statute.pdf") -> Any:
        from io import BytesIO

        return self.client.post(f"/api/v1/applications/{case_id}/documents", headers=self.headers(who),
                                data={"file": (BytesIO(content), name)}, content_type="multipart/form-data")

    def act(self, case_id: int, action: str, who: str, comment: str | None = None,
            version: int | None = None, **values: Any) -> Any:
        if version is None:
            version = self.get(f"/api/v1/applications/{case_id}", who).get_json().get("version")
            if version is None:  # the caller cannot see it; take the true version to test the refusal
                version = self.get(f"/api/v1/applications/{case_id}", "ngo").get_json().get("version", 1)
        body = {"action": action, "version": version, **values}
        if comment is not None:
            body["comment"] = comment
        return self.post(f"/api/v1/applications/{case_id}/transitions", who, body)

    def ready(self, who: str = "ngo", org: str = "org1", **data: Any) -> int:
        """A complete draft with its statute, ready to submit."""
        case = self.create(who, org, good_data(**data) if data else None)
        assert self.upload(case["id"], who).status_code == 201
        return case["id"]

    def advance(self, case_id: int, *steps: tuple[str, str] | tuple[str, str, str]) -> Any:
        r = None
        for step in steps:
            action, who = step[0], step[1]
            comment = step[2] if len(step) > 2 else "ok"
            r = self.act(case_id, action, who, comment)
            assert r.status_code == 200, (action, who, r.get_json())
        return r


TO_AWAITING = (("submit", "ngo"), ("accept", "intake"), ("recommend_approval", "expert"))


@pytest.fixture
def api(client: FlaskClient, world: World) -> Api:
    return Api(client, world)


class Web:
    """A browser-less client for the HTML pages, carrying CSRF tokens like a browser would."""

    def __init__(self, client: FlaskClient, world: World) -> None:
        self.client = client
        self.world = world

    @staticmethod
    def csrf(html: str) -> str:
        m = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
            r'id="csrf_token"[^>]*value="([^"]+)"', html)
        assert m, "no CSRF token on the page"
        return m.group(1)

    def login(self, who: str) -> Any:
        page = self.client.get("/login").get_data(as_text=True)
        return self.client.post("/login", data={"email": self.world.email(who), "password": PASSWORD,
                                                "csrf_token": self.csrf(page)})

    def page(self, url: str) -> tuple[int, str]:
        r = self.client.get(url)
        return r.status_code, r.get_data(as_text=True)


def hidden_fields(html: str) -> dict[str, str]:
    """The hidden inputs of a piece of HTML, whatever the attribute order."""
    fields = {}
    for tag in re.findall(r"<input[^>]*>", html):
        if 'type="hidden"' in tag:
            name = re.search(r'name="([^"]+)"', tag)
            value = re.search(r'value="([^"]*)"', tag)
            if name:
                fields[name.group(1)] = value.group(1) if value else ""
    return fields


@pytest.fixture
def web(client: FlaskClient, world: World) -> Web:
    return Web(client, world)


def user(session: Any, world: World, who: str) -> User:
    return session.get(User, world.users[who])


__all__ = ["hidden_fields", "Api", "PASSWORD", "PDF", "TO_AWAITING", "VALID_IDS", "Web", "World", "api", "good_data",
           "minimal_pdf", "national_id", "user", "web", "world"]

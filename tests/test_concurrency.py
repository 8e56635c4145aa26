"""Many directors decide the same case at the same instant, against a real gunicorn on PostgreSQL.

The version check in `engine.fire` is only the first guard: every request of a race reads the
same version, so all of them pass it. What must hold is that the database lets exactly one
decision through (UPDATE ... WHERE id AND version) and every other request gets a clean 409,
with one audit entry and at most one permit. The in-process test client cannot show this: it
serialises requests. So this module arranges data in its own database, starts
`gunicorn -w 4 --threads 8 wsgi:app` once for the module, and fires the requests from threads
released together by a barrier.
"""
from __future__ import annotations

import http.client
import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.live_server import (
    Gunicorn, cheap_password_hashing, create_database, drop_database, libpq_dsn, migrate,
)
from tests.support import PASSWORD, PDF, good_data

DIRECTORS = 50
MIXED = 20
WORKERS, THREADS = 4, 8


def _group(name: str) -> list[Any]:
    """Ask `--dist loadgroup` to keep the module on one xdist worker (one gunicorn).

    Moot when xdist is disabled. With pytest 9.2 + pytest-xdist 3.8 the grouping is silently
    ignored (xdist renames `item._nodeid`, which pytest 9 no longer reads); each worker then
    builds its own database and gunicorn, which is slower but still correct.
    """
    try:
        return [pytest.mark.xdist_group(name)]
    except pytest.fail.Exception:  # -p no:xdist with --strict-markers: the mark is unregistered
        return []


pytestmark = [pytest.mark.postgres, *_group("live_gunicorn")]


@dataclass
class Arranged:
    url: str
    cases: dict[str, int] = field(default_factory=dict)  # name → case id, all awaiting_decision
    versions: dict[str, int] = field(default_factory=dict)
    director_tokens: list[str] = field(default_factory=list)  # one per distinct director


def arrange(url: str, upload_dir: Path) -> Arranged:
    """Two permit cases in awaiting_decision, moved there by the real engine, and 50 directors."""
    from workflow import create_app, db, engine
    from workflow.config import TestConfig
    from workflow.services import accounts, applications

    out = Arranged(url)
    app = create_app(TestConfig(DATABASE_URL=url, REDIS_URL="", UPLOAD_DIR=upload_dir))
    try:
        with app.test_request_context(), cheap_password_hashing(), db.new_session() as s:
            kerman = accounts.find_province(s, "kerman")
            assert kerman is not None
            county = accounts.find_county(s, kerman, "Kerman")
            names = {"race": "انجمن حمایت از کودکان کار کرمان", "mixed": "کانون سالمندان کرمان"}
            orgs = {key: accounts.create_organization(s, name=name, province=kerman, county=county)
                    for key, name in names.items()}

            def person(email: str, roles: list[str], **kw: Any) -> Any:
                return accounts.create_user(s, email=email, password=PASSWORD, name=email.split("@")[0],
                                            roles=roles, **kw)

            ngo = person("ngo@test.ir", ["applicant"], organizations=list(orgs.values()))
            intake = person("intake@test.ir", ["intake"], province=kerman)
            expert = person("expert@test.ir", ["expert"], province=kerman)
            for key, org in orgs.items():
                case, created = applications.create(s, ngo, kind="permit_issuance", organization_id=org.id,
                                                    data=good_data(name=names[key]))
                assert created
                applications.attach_document(s, ngo, case, content=PDF, filename="statute.pdf")
                for action, actor in (("submit", ngo), ("accept", intake), ("recommend_approval", expert)):
                    engine.fire(s, case, action, actor, version=case.version)
                assert case.state == "awaiting_decision"
                out.cases[key], out.versions[key] = case.id, case.version
            for i in range(DIRECTORS):
                director = person(f"director{i:02d}@test.ir", ["director"], province=kerman)
                out.director_tokens.append(accounts.issue_token(s, director)[0])
            s.commit()
    finally:
        app.extensions["db_engine"].dispose()
    return out


def live_server(prefix: str, arrange_data: Callable[[str, Path], Any], tmp_path_factory: pytest.TempPathFactory,
                workers: int = WORKERS, threads: int = THREADS) -> Iterator[tuple[Any, Gunicorn]]:
    """Own database (the per-test TRUNCATE of the `app` fixture never touches it), data arranged
    in it, and one gunicorn on it; both gone at the end. For a module-scoped fixture to yield from."""
    name, url = create_database(prefix)
    server: Gunicorn | None = None
    try:
        migrate(url)
        upload_dir = tmp_path_factory.mktemp("uploads")
        arranged = arrange_data(url, upload_dir)
        server = Gunicorn("wsgi:app", {"DATABASE_URL": url, "REDIS_URL": "", "SECRET_KEY": "x",
                                       "UPLOAD_DIR": str(upload_dir)},
                          workers=workers, threads=threads)
        server.start()
        yield arranged, server
    finally:
        if server is not None:
            server.close()
        drop_database(name)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Arranged, Gunicorn]]:
    yield from live_server("wf_concurrency", arrange, tmp_path_factory)


def race(port: int, case_id: int, bodies: list[tuple[str, dict[str, Any]]]) -> list[tuple[int, Any]]:
    """POST each (token, body) to the case's transitions from its own thread, all at once."""
    path = f"/api/v1/applications/{case_id}/transitions"
    return race_requests(port, [(path, token, body) for token, body in bodies])


def race_requests(port: int, requests: list[tuple[str, str, dict[str, Any]]]) -> list[tuple[int, Any]]:
    """POST each (path, token, body) from its own thread, all released at once; (status, json) each."""
    results: list[tuple[int, Any] | None] = [None] * len(requests)
    barrier = threading.Barrier(len(requests))

    def run(i: int, path: str, token: str, body: dict[str, Any]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        payload = json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        try:
            conn.connect()  # connected before the barrier, so only the requests race
            barrier.wait(timeout=30)
            conn.request("POST", path, body=payload, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
            try:
                results[i] = (resp.status, json.loads(raw))
            except ValueError:
                results[i] = (resp.status, raw[:300])
        except Exception as exc:  # noqa: BLE001 - recorded as a non-HTTP outcome and asserted on
            results[i] = (-1, repr(exc))
        finally:
            conn.close()

    threads = [threading.Thread(target=run, args=(i, *request)) for i, request in enumerate(requests)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return [r if r is not None else (-2, "thread did not finish") for r in results]


def db_facts(url: str, case_id: int) -> dict[str, Any]:
    with psycopg.connect(libpq_dsn(url)) as conn:
        state, version = conn.execute("SELECT state, version FROM cases WHERE id = %s", (case_id,)).fetchone()
        actions = [r[0] for r in conn.execute(
            "SELECT action FROM audit_entries WHERE case_id = %s ORDER BY seq", (case_id,))]
        permits = conn.execute("SELECT count(*) FROM permits WHERE case_id = %s", (case_id,)).fetchone()[0]
    return {"state": state, "version": version, "actions": actions, "permits": permits}


def summary(results: list[tuple[int, Any]]) -> Counter[int]:
    counts = Counter(status for status, _body in results)
    print(f"statuses: {dict(sorted(counts.items()))}")
    return counts


def odd(results: list[tuple[int, Any]], server: Gunicorn) -> str:
    """Why some requests were neither 200 nor 409: their bodies and the server's exceptions."""
    bodies = [f"{status}: {str(body)[:160]}" for status, body in results if status not in (200, 409)]
    causes = Counter(re.findall(r"^(psycopg\.errors\.\w+|sqlalchemy\.\w+\.\w+Error)", server.log(), re.M))
    return f"unexpected responses {bodies[:3]}; exceptions in the server log: {dict(causes)}"


def test_fifty_directors_approve_once(live: tuple[Arranged, Gunicorn]) -> None:
    arranged, server = live
    case_id, version = arranged.cases["race"], arranged.versions["race"]
    bodies = [(token, {"action": "approve", "version": version}) for token in arranged.director_tokens]
    assert len({t for t, _b in bodies}) == DIRECTORS

    results = race(server.port, case_id, bodies)
    counts = summary(results)

    assert counts[200] == 1, (counts, odd(results, server))
    assert counts[409] == DIRECTORS - 1, (counts, odd(results, server))
    assert sum(counts.values()) == DIRECTORS
    winner = next(body for status, body in results if status == 200)
    assert winner["state"] == "approved" and winner["permit_number"], winner
    assert all(body["error"]["code"] == "conflict" for status, body in results if status == 409)

    facts = db_facts(arranged.url, case_id)
    print(f"database: {facts}")
    assert facts["state"] == "approved"
    assert facts["actions"].count("approve") == 1
    assert facts["actions"][-1] == "approve"
    assert facts["permits"] == 1


def test_mixed_approve_and_reject_decide_once(live: tuple[Arranged, Gunicorn]) -> None:
    arranged, server = live
    case_id, version = arranged.cases["mixed"], arranged.versions["mixed"]
    bodies: list[tuple[str, dict[str, Any]]] = []
    for i, token in enumerate(arranged.director_tokens[:MIXED]):
        if i % 2:
            bodies.append((token, {"action": "reject", "version": version, "comment": f"نه ({i})"}))
        else:
            bodies.append((token, {"action": "approve", "version": version}))

    results = race(server.port, case_id, bodies)
    counts = summary(results)

    assert counts[200] == 1, (counts, odd(results, server))
    assert counts[409] == MIXED - 1, (counts, odd(results, server))
    winner = next(body for status, body in results if status == 200)
    facts = db_facts(arranged.url, case_id)
    print(f"winner: {winner['state']}; database: {facts}")
    decisions = [a for a in facts["actions"] if a in ("approve", "reject", "send_back")]
    assert len(decisions) == 1, facts
    assert facts["state"] == winner["state"] == {"approve": "approved", "reject": "rejected"}[decisions[0]]
    assert facts["permits"] == (1 if decisions[0] == "approve" else 0), facts

"""Every transition of permit issuance, tried by every kind of actor.

The expected status is derived from who the actor is, not from the engine's own table, so a
rule that lets the wrong role through (or shuts the right one out) fails here.
"""
from __future__ import annotations

import pytest
from sqlalchemy import update

from workflow.models import Permit

from workflow.states.permit_issuance import PROCESS

# How to bring a fresh case into each state, as (action, actor) steps through the API.
PATHS = {
    "draft": [],
    "submitted": [("submit", "ngo")],
    "needs_correction": [("submit", "ngo"), ("return_for_correction", "intake")],
    "under_review": [("submit", "ngo"), ("accept", "intake")],
    "inquiry": [("submit", "ngo"), ("accept", "intake"), ("send_inquiry", "expert")],
    "awaiting_decision": [("submit", "ngo"), ("accept", "intake"), ("recommend_approval", "expert")],
    "approved": [("submit", "ngo"), ("accept", "intake"), ("recommend_approval", "expert"), ("approve", "director")],
    "rejected": [("submit", "ngo"), ("accept", "intake"), ("recommend_rejection", "expert"), ("reject", "director")],
    "withdrawn": [("submit", "ngo"), ("withdraw", "ngo")],
}

# actor → (roles it acts with on an org1 case, can it see a submitted org1 case, can it see a draft)
ACTORS = {
    "ngo": ({"applicant"}, True, True),
    "stranger": ({"applicant"}, False, False),           # applicant of no organisation
    "q_ngo": ({"applicant"}, False, False),              # applicant of another organisation
    "intake": ({"intake"}, True, False),
    "expert": ({"expert"}, True, False),
    "director": ({"director"}, True, False),
    "finance": ({"finance"}, True, False),
    "auditor": ({"auditor"}, True, False),
    "admin": ({"admin"}, True, False),
    "q_intake": ({"intake"}, False, False),              # other province
    "q_director": ({"director"}, False, False),
    "sirjan_intake": ({"intake"}, False, False),         # same province, other county
    "member_intake": ({"applicant"}, True, True),        # its intake role is void on its own org's case
}

PAIRS = sorted({(r.action, r.source) for r in PROCESS.rules})


def expected(actor: str, action: str, state: str) -> int:
    if actor == "auditor":
        return 403  # auditors never write: refused before any case is looked up (no id leaks)
    roles, sees_submitted, sees_draft = ACTORS[actor]
    visible = sees_draft if state == "draft" else sees_submitted
    if not visible:
        return 404
    all_roles = {"member_intake": {"intake", "applicant"}}.get(actor, roles)
    if not all_roles & PROCESS.roles_for_action(action):
        return 403
    if any(r.role in roles for r in PROCESS.rules_for(action, state)):
        return 200
    return 403 if PROCESS.rules_for(action, state) else 409


@pytest.mark.parametrize("action,state", PAIRS, ids=[f"{a}-from-{s}" for a, s in PAIRS])
def test_each_actor(api, session, action, state):
    results = {}
    for actor in ACTORS:
        case_id = api.ready()
        api.advance(case_id, *[(a, w, "comment") for a, w in PATHS[state]])
        before = api.get(f"/api/v1/applications/{case_id}", "ngo").get_json()
        r = api.act(case_id, action, actor, comment="a reason", version=before["version"])
        results[actor] = r.status_code
        after = api.get(f"/api/v1/applications/{case_id}", "ngo").get_json()
        if r.status_code == 200:
            assert after["state"] == PROCESS.rules_for(action, state)[0].dest
            assert after["version"] == before["version"] + 1
            # a live permit bars a new application; revoke it so the next actor gets a fresh case
            session.execute(update(Permit).values(state="revoked"))
            session.commit()
        else:
            assert r.get_json()["error"]["code"] in ("forbidden", "not_found", "conflict")
            assert (after["state"], after["version"]) == (before["state"], before["version"])
        # withdraw the case so the organisation may open the next one
        if after["state"] not in PROCESS.terminal:
            api.act(case_id, "withdraw", "ngo") if "withdraw" in after["actions"] else _close(api, case_id, after)
    assert results == {a: expected(a, action, state) for a in ACTORS}


def _close(api, case_id, case):
    """Bring a case the applicant cannot withdraw to a terminal state."""
    state = case["state"]
    steps = {
        "under_review": [("recommend_rejection", "expert"), ("reject", "director")],
        "inquiry": [("record_inquiry", "expert"), ("recommend_rejection", "expert"), ("reject", "director")],
        "awaiting_decision": [("reject", "director")],
    }[state]
    api.advance(case_id, *[(a, w, "closing") for a, w in steps])


@pytest.mark.parametrize("state", [s for s in PATHS if s not in ("draft",)])
def test_actions_from_wrong_state_conflict(api, state):
    """An actor holding the right role but asking in the wrong state gets 409 and nothing changes."""
    case_id = api.ready()
    api.advance(case_id, *[(a, w, "comment") for a, w in PATHS[state]])
    by_role = {"applicant": "ngo", "intake": "intake", "expert": "expert", "director": "director"}
    for action in sorted(PROCESS.actions):
        if PROCESS.rules_for(action, state):
            continue
        for role in sorted(PROCESS.roles_for_action(action) - {"system"}):
            r = api.act(case_id, action, by_role[role], comment="x")
            assert r.status_code == 409, (action, role, state, r.get_json())

"""Operator commands, as an operator types them."""
from __future__ import annotations

from sqlalchemy import func, select

from workflow.models import AuditEntry, Case, Organization, Permit, Programme, Province, Tranche, User


def test_init_db_is_repeatable(app, session):
    runner = app.test_cli_runner()
    r = runner.invoke(args=["init-db"])
    assert r.exit_code == 0 and "0 reference rows added; 0 holidays added" in r.output
    assert session.scalar(select(func.count(Province.id))) == 31


def test_orgs_and_users(app, session):
    runner = app.test_cli_runner()
    r = runner.invoke(args=["orgs", "create", "--name", "كانون فرهنگي جوانان آبيك", "--province", "قزوین",
                            "--county", "Abyek"])
    assert r.exit_code == 0, r.output
    org_id = int(r.output.strip())
    org = session.get(Organization, org_id)
    assert org.name == "کانون فرهنگی جوانان آبیک" and org.county.name_en == "Abyek"
    dup = runner.invoke(args=["orgs", "create", "--name", "کانون فرهنگی جوانان\u200cآبیک", "--province", "Qazvin"])
    assert dup.exit_code != 0 and "سازمان دیگری با همین نام" in dup.output
    assert runner.invoke(args=["orgs", "create", "--name", "x y z", "--province", "Atlantis"]).exit_code != 0
    r = runner.invoke(args=["users", "create", "--email", "Clerk@Example.ir", "--password", "p4ss-word", "--name", "منشی",
                            "--role", "intake", "--role", "expert", "--province", "Qazvin", "--county", "تاکستان"])
    assert r.exit_code == 0, r.output
    user = session.scalar(select(User).where(User.email == "clerk@example.ir"))
    assert user.roles == {"intake", "expert"} and user.county.name_en == "Takestan"
    r = runner.invoke(args=["users", "create", "--email", "n@example.ir", "--password", "p", "--name", "n",
                            "--role", "applicant", "--organization", "کانون فرهنگی جوانان آبیک"])
    assert r.exit_code == 0, r.output
    assert runner.invoke(args=["users", "create", "--email", "n@example.ir", "--password", "p", "--name", "n",
                               "--role", "applicant"]).exit_code != 0
    assert runner.invoke(args=["users", "create", "--email", "z@example.ir", "--password", "p", "--name", "n",
                               "--role", "wizard"]).exit_code != 0


def test_demo_seed(app, session):
    runner = app.test_cli_runner()
    r = runner.invoke(args=["demo", "seed"])
    assert r.exit_code == 0, r.output
    states = dict(session.execute(select(Case.state, func.count()).where(Case.kind == "permit_issuance")
                                  .group_by(Case.state)).all())
    assert {"draft", "submitted", "needs_correction", "under_review", "awaiting_decision", "approved"} <= set(states)
    assert session.scalar(select(func.count(Permit.id))) == states["approved"]
    grants = dict(session.execute(select(Case.state, func.count()).where(Case.kind == "grant_request")
                                  .group_by(Case.state)).all())
    assert grants == {"approved": 1, "finance_review": 1}
    assert session.scalar(select(func.count(Programme.id))) == 2
    assert session.execute(select(Tranche.n, Tranche.state).order_by(Tranche.n)).all() == [(1, "released"), (2, "pending")]
    states["grants"] = sum(grants.values())
    hashes = session.scalars(select(User.password_hash)).all()
    assert hashes and all(h.startswith("$argon2id$") for h in hashes)  # demo logins hash with argon2
    assert session.scalar(select(func.count(AuditEntry.id))) > 10
    again = runner.invoke(args=["demo", "seed"])
    assert again.exit_code == 0
    assert session.scalar(select(func.count(Case.id))) == sum(states.values())


def test_sweep_accepts_iso_and_jalali_moments(app):
    from datetime import datetime, timezone

    from workflow.cli import parse_moment

    assert parse_moment("2026-03-21T05:30:00+00:00") == datetime(2026, 3, 21, 5, 30, tzinfo=timezone.utc)
    assert parse_moment("2026-03-21T05:30") == datetime(2026, 3, 21, 5, 30, tzinfo=timezone.utc)
    # 1405-01-01 09:00 in Tehran (UTC+3:30) is 2026-03-21 05:30 UTC
    assert parse_moment("۱۴۰۵-۰۱-۰۱T09:00") == datetime(2026, 3, 21, 5, 30, tzinfo=timezone.utc)
    runner = app.test_cli_runner()
    r = runner.invoke(args=["jobs", "sweep", "--now", "1405-01-15T09:00"])
    assert r.exit_code == 0 and "cases 0" in r.output
    bad = runner.invoke(args=["jobs", "sweep", "--now", "1405-13-40T09:00"])
    assert bad.exit_code != 0 and "--now" in bad.output

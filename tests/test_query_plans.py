"""The queue and list queries reach their rows through an index, never by reading the cases table
whole: checked on PostgreSQL's own plans (EXPLAIN) over a database with national proportions.

The database is this module's own: 60,000 cases across the 31 provinces (most of them decided
long ago, as in life), staff of every role, audit entries; then VACUUM ANALYZE, so the planner
chooses as it would in production, where a sequential scan of a table this size is what it
picks when no index fits (checked by `test_the_check_sees_a_missing_index`, which drops the
indexes and expects the check to fail). Every statement the services build is explained: each
staff role's queue page, with and without a state filter, with a cursor and without, its tab
counts, the auditors' list of cases and the auditor console's decisions.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import psycopg
import pytest
from sqlalchemy import create_engine

from tests.conftest import PG_PROBLEM
from tests.live_server import create_database, drop_database, libpq_dsn, migrate
from workflow import registry
from workflow.models import AuditEntry, User
from workflow.services import audit_search, queues

pytestmark = pytest.mark.postgres

CASES = 60_000
ORGS = 6_000
CURSOR = (datetime(2025, 6, 1, tzinfo=timezone.utc), 30_000)


@pytest.fixture(scope="module")
def plans_db() -> Iterator[str]:
    if PG_PROBLEM:
        pytest.skip(f"needs PostgreSQL: {PG_PROBLEM}")
    name, url = create_database("wf_plans")
    try:
        migrate(url)
        with psycopg.connect(libpq_dsn(url), autocommit=True) as conn:
            _fill(conn)
        yield url
    finally:
        drop_database(name)


def _fill(conn: psycopg.Connection) -> None:
    """Organisations weighted towards the large provinces; cases of every kind, 85 % in a final
    state; two audit entries per case; one member of staff per role and province."""
    conn.execute("""
        INSERT INTO users (id, email, name, password_hash, province_id, is_active, money_unit, created_at)
        SELECT 1, 'system@plans', 'x', 'x', NULL, true, 'toman', now()""")
    # Every fifth organisation in Tehran, the rest round the provinces; a county where the
    # province has them.
    conn.execute("""
        INSERT INTO organizations (id, name, name_key, province_id, county_id, created_at)
        SELECT g, 'org ' || g, 'org' || g, p.id,
               (SELECT c.id FROM counties c WHERE c.province_id = p.id ORDER BY c.id LIMIT 1 OFFSET g %% 5), now()
        FROM generate_series(1, %(orgs)s) g
        CROSS JOIN LATERAL (
            SELECT id FROM provinces WHERE g %% 5 <> 0 OR code = 'tehran' ORDER BY id
            OFFSET CASE WHEN g %% 5 = 0 THEN 0 ELSE g %% 31 END LIMIT 1) p""", {"orgs": ORGS})
    conn.execute("""
        INSERT INTO cases (id, kind, state, version, organization_id, province_id, county_id, data, created_by_id,
                           created_at, updated_at, state_entered_at, submitted_at, last_seq, overdue)
        SELECT g, k.kind, s.state, 3, o.id, o.province_id, o.county_id, '{}', 1,
               now() - interval '1 day' * (g %% 3000), now(), now() - interval '1 hour' * (g %% 70000),
               CASE WHEN s.state = 'draft' THEN NULL ELSE now() END, 2, false
        FROM generate_series(1, %(cases)s) g
        JOIN organizations o ON o.id = 1 + g %% %(orgs)s
        CROSS JOIN LATERAL (SELECT (ARRAY['permit_issuance', 'permit_renewal', 'grant_request'])[1 + g %% 3] AS kind) k
        CROSS JOIN LATERAL (SELECT CASE
            WHEN g %% 100 < 40 THEN CASE k.kind WHEN 'grant_request' THEN 'closed' ELSE 'approved' END
            WHEN g %% 100 < 60 THEN 'rejected' WHEN g %% 100 < 75 THEN 'withdrawn'
            WHEN g %% 100 < 78 THEN 'approved'
            ELSE (ARRAY['draft', 'submitted', 'needs_correction', 'under_review', 'awaiting_decision',
                        CASE k.kind WHEN 'permit_issuance' THEN 'inquiry' WHEN 'grant_request' THEN 'finance_review'
                                    ELSE 'under_review' END])[1 + g %% 6] END AS state) s""",
                 {"cases": CASES, "orgs": ORGS})
    roles = ("intake", "expert", "director", "finance", "auditor")
    conn.execute("""
        INSERT INTO users (id, email, name, password_hash, province_id, is_active, money_unit, created_at)
        SELECT 100 + p.id * 10 + r.n, r.role || p.id || '@plans', r.role, 'x', p.id, true, 'toman', now()
        FROM provinces p CROSS JOIN unnest(%s::text[]) WITH ORDINALITY AS r(role, n)""", (list(roles),))
    conn.execute("INSERT INTO user_roles (user_id, role) SELECT id, name FROM users WHERE id >= 100")
    conn.execute("""
        INSERT INTO audit_entries (case_id, seq, at, actor_id, role, action, from_state, to_state, province_id)
        SELECT c.id, n, c.created_at + interval '1 day' * n, 100 + c.province_id * 10 + 2, 'expert',
               (ARRAY['submit', 'accept', 'recommend_approval', 'approve', 'reject'])[1 + (c.id + n) % 5],
               'submitted', (ARRAY['submitted', 'under_review', 'awaiting_decision', 'approved', 'rejected'])
                            [1 + (c.id + n) % 5], c.province_id
        FROM cases c CROSS JOIN generate_series(1, 3) n WHERE c.state <> 'draft'""")
    conn.execute("SELECT setval(pg_get_serial_sequence('users', 'id'), 1000)")
    conn.execute("VACUUM ANALYZE")


def staff(conn: Any) -> list[tuple[str, User]]:
    """Who works the queues: each role in the largest province, a county office, national staff,
    and an office where one person is both expert and director."""
    tehran, kerman = (conn.exec_driver_sql(f"SELECT id FROM provinces WHERE code = '{code}'").scalar()
                      for code in ("tehran", "kerman"))
    county = conn.exec_driver_sql(f"SELECT min(id) FROM counties WHERE province_id = {kerman}").scalar()
    people = []
    for role in ("intake", "expert", "director", "finance", "auditor", "admin"):
        people.append((f"{role} of Tehran", _user(100 + tehran * 10 + 3, role, tehran)))
        people.append((f"national {role}", _user(1, role, None)))
    people.append(("intake of a Kerman county", _user(100 + kerman * 10 + 1, "intake", kerman, county)))
    people.append(("expert and director of Tehran", _user(100 + tehran * 10 + 2, "expert,director", tehran)))
    people.append(("finance who is an NGO's member", _user(100 + tehran * 10 + 4, "finance", tehran, orgs="5,10")))
    return people


def _user(user_id: int, roles: str, province: int | None, county: int | None = None, orgs: str = "") -> User:
    user = User(id=user_id, email=f"{user_id}@plans", name="x", province_id=province, county_id=county)
    user.prime(roles, orgs)
    return user


def statements(conn: Any) -> Iterator[tuple[str, Any]]:
    """(what, statement) for every query the queue and list services build for these people."""
    for label, user in staff(conn):
        states = sorted({s for p in registry.PROCESSES.values() for r in user.roles for s in p.states_for_role(r)})
        for state in [None, *states]:
            for after in (None, CURSOR):
                query = queues.rows_query(user, state=state, limit=25, after=after)
                if query is not None:
                    yield f"queue page of {label}, state {state}, cursor {after is not None}", query
        for kind in registry.PROCESSES:
            query = queues.page_query(user, kind=kind, limit=50, after=CURSOR)
            if query is not None:
                yield f"API queue page of {label}, kind {kind}", query
        for kind in (None, *registry.PROCESSES):
            for after in (None, CURSOR):
                query = queues.api_page_query(user, kind=kind, limit=50, after=after)
                if query is not None:
                    yield f"API queue page (api_page) of {label}, kind {kind}, cursor {after is not None}", query
        counts = queues.counts_query(user)
        if counts is not None:
            yield f"queue counts of {label}", counts
        if user.roles & {"auditor", "admin", "director"}:
            for state in (None, "approved", "inquiry"):
                for before in (None, 40_000):
                    yield (f"case list of {label}, state {state}, before {before}",
                           queues.case_list_query(user, state=state, before=before))
            for args in ({}, {"action": "approve"}, {"kind": "permit_renewal"}, {"state": "rejected"}):
                query = audit_search.query(user, audit_search.read_filters(args)).limit(51)
                yield f"console of {label}, {args}", query
                yield f"console of {label}, {args}, older", query.where(AuditEntry.id < 50_000)


    # The rest of api_page's reads: a page's documents and its grants' tranches, by case id.
    page_ids = list(range(30_000, 30_050))
    page = {"case_ids": queues.case_ids_param(page_ids, postgres=True)}
    yield "API queue page's documents", queues.documents_query(postgres=True).params(page)
    yield "API queue page's tranches", queues.tranches_query(postgres=True).params(page)


def plan_of(conn: Any, statement: Any) -> dict[str, Any]:
    compiled = statement.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    return conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + str(compiled), compiled.params).scalar()[0]["Plan"]


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from nodes(child)


def whole_table_reads(conn: Any, statement: Any, tables: tuple[str, ...] = ("cases", "audit_entries")) -> list[str]:
    """Sequential scans of `tables` in the statement's plan."""
    return [f"Seq Scan on {n['Relation Name']}" for n in nodes(plan_of(conn, statement))
            if n["Node Type"] == "Seq Scan" and n.get("Relation Name") in tables]


def sorted_ranges(conn: Any, statement: Any, page: int = 51) -> list[str]:
    """Sorts of more rows than a page: a queue page that is not read in queue order from an index
    sorts its whole list, as costly at the first page as a sequential scan would be at a deep one."""
    return [f"Sort of ~{n['Plan Rows']} rows by {', '.join(n.get('Sort Key', []))}"
            for n in nodes(plan_of(conn, statement)) if n["Node Type"] == "Sort" and n["Plan Rows"] > page]


@pytest.fixture(scope="module")
def connection(plans_db: str) -> Iterator[Any]:
    engine = create_engine(plans_db)
    with engine.connect() as conn:
        with conn.begin():
            conn.exec_driver_sql("SET jit = off")
            yield conn
    engine.dispose()


def test_every_queue_and_list_query_uses_an_index(connection: Any) -> None:
    checked, bad = 0, []
    for what, statement in statements(connection):
        checked += 1
        problems = whole_table_reads(connection, statement)
        if "page" in what:
            problems += sorted_ranges(connection, statement)
        if problems:
            bad.append(f"{what}: {', '.join(problems)}")
    assert checked > 150, checked
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("dropped", [
    # The queue indexes: other indexes still find the rows, but not in queue order.
    ("ix_cases_queue", "ix_cases_queue_county", "ix_cases_queue_national"),
    # Every index of the cases table but its primary key: the planner reads the table whole.
    ("ix_cases_queue", "ix_cases_queue_county", "ix_cases_queue_national", "ix_cases_province_id_id",
     "ix_cases_province_state_id", "ix_cases_state_id", "ix_cases_org_state", "ix_cases_next_event_at"),
])
def test_the_check_sees_a_missing_index(connection: Any, dropped: tuple[str, ...]) -> None:
    """Without the indexes the same statements sort whole lists or read the cases table whole, and
    the checks say so (the indexes are dropped in a transaction that is rolled back)."""
    savepoint = connection.begin_nested()
    try:
        for name in dropped:
            connection.exec_driver_sql(f"DROP INDEX {name}")
        pages = [(what, statement) for what, statement in statements(connection) if what.startswith("queue page")]
        sorting = [what for what, statement in pages if sorted_ranges(connection, statement)]
        scanning = [what for what, statement in pages if whole_table_reads(connection, statement)]
    finally:
        savepoint.rollback()
    assert len(sorting) > len(pages) // 3, sorting
    if len(dropped) > 3:
        assert len(scanning) > len(pages) // 3, scanning

"""`flask bench populate`: a national data set for the benches, on the configured PostgreSQL.

The generator itself is workflow/bench_populate.py; this is the operator's handle on it.
"""
from __future__ import annotations

from datetime import datetime

import click
from flask import current_app
from flask.cli import AppGroup

from . import db

bench_cli = AppGroup("bench", help="Data sets for measuring the application at national scale.")


def _dsn() -> str:
    """The libpq connection string of the app's engine (COPY is psycopg's, not SQLAlchemy's)."""
    url = db.engine().url
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@bench_cli.command("populate")
@click.option("--cases", type=click.IntRange(1, 20_000_000), default=1_000_000, show_default=True,
              help="about this many (the simulation's own count comes within a per cent or two)")
@click.option("--seed", type=int, default=1405, show_default=True, help="the same seed makes the same data")
@click.option("--now", "now_text", help="simulate up to this moment (ISO-8601 UTC); default: now")
@click.option("--reset", is_flag=True, help="first delete every user, organisation and case (keeps reference data)")
def populate(cases: int, seed: int, now_text: str | None, reset: bool) -> None:
    """Ten years of every province's work: NGOs, staff, cases of every kind in every state with their
    chained audit history, permits and grants. Staff and NGO logins use the password bench1234."""
    from . import passwords

    from .bench_populate import PASSWORD, TABLES, load
    from .holidays import holidays
    from .models import utcnow

    engine = db.engine()
    if engine.dialect.name != "postgresql":
        raise click.ClickException("bench populate loads with PostgreSQL's COPY: set DATABASE_URL to a PostgreSQL "
                                   "database (run init-db on it first)")
    now = datetime.fromisoformat(now_text) if now_text else utcnow()
    if now.tzinfo is None:
        raise click.ClickException("--now needs a time zone, e.g. 2026-03-01T08:00:00+00:00")
    if reset:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                f"TRUNCATE {', '.join(TABLES)}, notifications, documents, snapshots, api_tokens, idempotency_keys "
                "RESTART IDENTITY CASCADE")
    with db.new_session() as session:
        days_off = holidays(session)
    engine.dispose()
    result = load(_dsn(), cases=cases, now=now, seed=seed, holidays=days_off,
                  thursday_off=current_app.config["THURSDAY_OFF"],
                  password_hash=passwords.hash_password(PASSWORD),
                  report_days=current_app.config["GRANT_REPORT_DAYS"],
                  validity_years=current_app.config["PERMIT_VALIDITY_YEARS"], log=click.echo)
    seconds = result.pop("seconds")
    states = result.pop("states")
    click.echo(", ".join(f"{k}: {v:,}" for k, v in result.items()))
    click.echo("by kind and state: " + ", ".join(f"{k} {v:,}" for k, v in states.items()))
    click.echo("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items()))

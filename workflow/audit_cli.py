"""`flask audit verify` and `flask audit digest`: prove the history was not altered.

`verify` recomputes every hash chain (or one case's) and exits 1 at the first break, naming
the case (or permit) and seq. `digest --out FILE` writes every chain's head and one hash over
all of them, to be kept somewhere the database's administrators cannot write; `verify
--against FILE` later shows that nothing up to those heads changed since.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
from flask.cli import with_appcontext

from . import audit_chain, db
from .models import utcnow


@click.group("audit")
def audit_cli() -> None:
    """Check the tamper-evident history."""


@audit_cli.command("verify")
@click.option("--case", "case_id", type=int, help="Only this case's chain.")
@click.option("--against", "against", type=click.Path(exists=True, dir_okay=False),
              help="A digest written earlier by `audit digest`.")
@with_appcontext
def verify(case_id: int | None, against: str | None) -> None:
    with db.new_session() as session:
        _verify(session.connection(), case_id, against)


def _verify(connection, case_id: int | None, against: str | None) -> None:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    report = audit_chain.verify(connection, case_id=case_id)
    elapsed = time.perf_counter() - started
    rate = report.checked / elapsed if elapsed > 0 else 0
    click.echo(f"checked {report.checked} entries in {report.chains} chains in {elapsed:.2f} s ({rate:,.0f}/s)")
    if report.broken is not None:
        click.echo(f"BROKEN: first break at {report.broken}", err=True)
        sys.exit(1)
    if against:
        try:
            digest = json.loads(Path(against).read_text(encoding="utf-8"))
            heads = {key: (int(seq), value) for key, (seq, value) in digest["heads"].items()}
        except (ValueError, KeyError, TypeError) as exc:
            click.echo(f"BROKEN: the digest file cannot be read: {exc}", err=True)
            sys.exit(1)
        if audit_chain.digest_of(heads) != digest.get("digest"):
            click.echo("BROKEN: the digest file was altered (its heads do not give its hash)", err=True)
            sys.exit(1)
        broken = audit_chain.check_against(connection, heads)
        if broken is not None:
            click.echo(f"BROKEN: first break at {broken}", err=True)
            sys.exit(1)
        click.echo(f"matches the digest of {digest.get('at')}: {len(heads)} heads unchanged")
    click.echo("OK")


@audit_cli.command("digest")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, writable=True))
@with_appcontext
def digest(out: str) -> None:
    with db.new_session() as session:
        report = audit_chain.verify(session.connection(), collect_heads=True)
    if report.broken is not None:
        click.echo(f"BROKEN: first break at {report.broken}; no digest written", err=True)
        sys.exit(1)
    value = audit_chain.digest_of(report.heads)
    body = {"at": utcnow().isoformat(), "digest": value,
            "heads": {key: [seq, head] for key, (seq, head) in sorted(report.heads.items())}}
    Path(out).write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
    click.echo(f"{len(report.heads)} heads, digest {value} written to {out}")

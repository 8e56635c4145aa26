"""A national data set for the benches (`flask bench populate`), made by simulating ten years of
the offices' work and loading it with PostgreSQL COPY.

Why a simulation rather than rows drawn independently: a case's state, its audit history, its
deadlines, its permit and its grant must agree with each other (`audit verify` recomputes every
chain; the case page, the queues and the sweep read those columns), and queue sizes come out as
they would in life — how long cases wait at each desk, not a share picked by hand.

The simulation is a discrete-event loop over time (a heap of generator "processes"):
  * organisations are founded over ten years in proportion to each province's population and
    apply for an activity permit, trying again after a rejection;
  * an approved application issues a numbered permit; the permit asks for renewal inside its
    window, expires when not renewed, now and then is suspended (and reinstated) or revoked;
  * while its permit is active an organisation asks the province's programmes for grants, which
    once approved are paid in tranches, each followed by a spending report;
  * every case walks its process's rules (workflow/states/) with waiting times drawn per desk;
    a step that would fall after `now` is not taken, so the case waits there, with `due_at`,
    `next_event_at` and `overdue` set as the engine and the sweep would have set them.
Because events are handled in time order, case ids and audit entry ids grow with time, as they
do in production. Every transition writes its audit entry with the chain hash the engine would
compute (workflow.chain_encoding); snapshots are not stored (`snapshot_hash` is NULL, which the
chain allows) and no letters or statute files are made: a million PDFs is not what is measured.

Rows are streamed to COPY, one connection per table, while secondary indexes and foreign keys
are dropped; they are rebuilt afterwards (two at a time), then VACUUM ANALYZE, so the visibility
map lets counts use index-only scans as they would on a settled database.
"""
from __future__ import annotations

import heapq
from hashlib import sha256
import json
import math
import random
import time
from collections import defaultdict
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

import jdatetime
import psycopg

from . import registry
from .calendar import add_jalali_years, add_working_days, jalali_year, to_tehran
from .chain_encoding import ENCODER, _escape, chain_hash, moment
from .deadlines import next_after, permit_events, state_events
from .reference_data import FIELD_CODES
from .text import name_key

DAY = timedelta(days=1)
YEARS = 10
# Cases per organisation that the simulation yields on average (measured, 10.9): enough
# organisations are founded for the number of cases asked, which then comes out within a per cent
# or two of it. Not cut off at the number: a cut would leave the last weeks without new cases.
CASES_PER_ORG = 10.8
PASSWORD = "bench1234"
# Population in millions (census 1395), for where organisations are founded.
POPULATION = {
    "alborz": 2.7, "ardabil": 1.3, "bushehr": 1.2, "chaharmahal-bakhtiari": 0.9, "azerbaijan-east": 3.9,
    "fars": 4.9, "gilan": 2.5, "golestan": 1.9, "hamadan": 1.7, "hormozgan": 1.8, "ilam": 0.6,
    "isfahan": 5.1, "kerman": 3.2, "kermanshah": 2.0, "khorasan-north": 0.9, "khorasan-razavi": 6.4,
    "khorasan-south": 0.8, "khuzestan": 4.7, "kohgiluyeh-boyer-ahmad": 0.7, "kurdistan": 1.6,
    "lorestan": 1.8, "markazi": 1.4, "mazandaran": 3.3, "qazvin": 1.3, "qom": 1.3, "semnan": 0.7,
    "sistan-baluchestan": 2.8, "tehran": 13.3, "azerbaijan-west": 3.3, "yazd": 1.1, "zanjan": 1.1,
}
# Staff of each province office: role → how many (a larger province has more hands).
OFFICE = {"intake": 2, "expert": 3, "director": 1, "finance": 1, "auditor": 1}
COMMENTS = (
    "مدارک بررسی شد.", "اساسنامه نیاز به اصلاح دارد.", "نظر کارشناس پیوست است.",
    "پاسخ استعلام از نیروی انتظامی دریافت شد.", "لطفاً فهرست مؤسسان را کامل کنید.",
    "با توجه به سوابق فعالیت، پیشنهاد تأیید می‌شود.", "هدف‌های سازمان با حوزه فعالیت هم‌خوان نیست.",
    "به کارشناس برگشت داده شد تا سوابق دوباره بررسی شود.", "گزارش هزینه با رسیدها هم‌خوانی ندارد.",
)
ADJECTIVES = ("مهر", "امید", "همیاری", "روشنا", "نیکوکاری", "سپیده", "پویا", "آوای", "نگاه", "رویش")
FIELDS = sorted(FIELD_CODES)
# (kind, action, source) → (comment required, recommends); kind → terminal states. Looked up per
# transition, millions of times: the rule tables asked once.
RULE_FLAGS = {(kind, r.action, r.source): (r.comment_required, r.recommends)
              for kind, p in registry.PROCESSES.items() for r in p.rules}
TERMINAL = {kind: p.terminal for kind, p in registry.PROCESSES.items()}
TABLES = ("users", "user_roles", "memberships", "organizations", "cases", "audit_entries", "permits",
          "permit_events", "programmes", "grants", "tranches")

# (mean days at the desk) of each step; draws are exponential, so some cases wait long.
WAIT = {"draft": 6, "submitted": 5, "needs_correction": 12, "under_review": 18, "inquiry": 30,
        "finance_review": 9, "awaiting_decision": 7}
FORGOTTEN = 0.04  # share of waits that drag on five times as long: the backlog every office has


def national_id(rng: random.Random) -> str:
    while True:
        digits = [rng.randrange(10) for _ in range(9)]
        if len(set(digits)) > 1:
            break
    s = sum(d * (10 - i) for i, d in enumerate(digits)) % 11
    return "".join(map(str, digits)) + str(s if s < 2 else 11 - s)


NULL = "\\N"
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _text(value: Any) -> str:
    """One field in COPY's text format."""
    if value is None:
        return "\\N"
    kind = type(value)
    if kind is str:
        if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
            return value.translate(_ESCAPES)
        return value
    if kind is bool:
        return "t" if value else "f"
    if kind is datetime or kind is date:
        return value.isoformat()
    return str(value)


class Sink:
    """One table's rows, streamed by COPY on a connection of its own (ended by `finish`).

    The table is emptied in the same transaction (it is empty: `load` checks), which lets COPY
    FREEZE write the rows already frozen and visible to all: no hint-bit rewrite of the whole
    table at its first read, and VACUUM has nothing left to do but the visibility map. Rows are
    formatted here in COPY's text format and sent in chunks, at a third of `write_row`'s cost."""

    def __init__(self, dsn: str, table: str, columns: tuple[str, ...]) -> None:
        self.conn = psycopg.connect(dsn)
        self.conn.execute("SET synchronous_commit = off")
        self.conn.execute(f"TRUNCATE {table}")
        self.table, self.rows = table, 0
        self._cm = self.conn.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FREEZE)")
        self.copy = self._cm.__enter__()
        self.buffer: list[str] = []

    def write(self, row: tuple[Any, ...]) -> None:
        self.line("\t".join(map(_text, row)))

    def line(self, text: str) -> None:
        """A row already in COPY's text format."""
        self.buffer.append(text)
        if len(self.buffer) >= 2000:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.copy.write("\n".join(self.buffer) + "\n")
            self.rows += len(self.buffer)
            self.buffer = []

    def finish(self) -> None:
        self.flush()
        self._cm.__exit__(None, None, None)

    def close(self, commit: bool) -> None:
        if commit:
            self.conn.commit()
        self.conn.close()


@dataclass
class Org:
    id: int
    province: int
    county: int | None
    created: datetime
    applicant: int
    name: str
    field: str
    permit: "Permit | None" = None


@dataclass
class Permit:
    id: int
    case_id: int
    org: Org
    issued_at: datetime
    valid_until: datetime
    state: str = "active"
    number: str = ""
    events: list[tuple[Any, ...]] = field(default_factory=list)
    head: str | None = None
    open_renewal: int | None = None


@dataclass
class Case:
    id: int
    kind: str
    org: Org
    created: datetime
    data: dict[str, Any]
    state: str = "draft"
    t: datetime = None  # type: ignore[assignment]  # when it entered its state
    seq: int = 0
    head: str | None = None
    submitted_at: datetime | None = None
    recommended_by: int | None = None
    recommendation: str = ""
    decided_by: int | None = None
    permit: "Permit | None" = None  # the permit a renewal is for
    inquired: bool = False
    written: bool = False
    county: int | None = None
    # grants
    programme: "Programme | None" = None
    score: int | None = None
    proposed: list[int] | None = None
    awarded_at: datetime | None = None
    tranches: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Programme:
    id: int
    province: int
    year: int
    name: str
    awarded: int = 0
    disbursed: int = 0
    max_award: int = 0


class Loader:
    def __init__(self, dsn: str, *, cases: int, now: datetime, seed: int, holidays: frozenset[date],
                 thursday_off: bool, password_hash: str, report_days: int, validity_years: int,
                 log: Callable[[str], None]) -> None:
        self.dsn, self.target, self.now = dsn, cases, now
        self.rng = random.Random(seed)
        self.holidays, self.thursday_off = holidays, thursday_off
        self.password_hash, self.report_days, self.validity = password_hash, report_days, validity_years
        self.log = log
        self.heap: list[tuple[datetime, int, Iterator[datetime]]] = []
        self.tick = 0
        self.next_case = self.next_entry = self.next_permit = self.next_event = 0
        self.next_programme = self.next_tranche = 0
        self.cases_made = 0
        self.live: dict[int, Case] = {}
        self.permits: list[Permit] = []
        self.programmes: dict[tuple[int, int, int], Programme] = {}
        self.staff: dict[tuple[int, str], list[int]] = defaultdict(list)
        self.county_intake: dict[int, list[int]] = defaultdict(list)
        self.counts: dict[str, int] = defaultdict(int)

    # -- the event loop ---------------------------------------------------------------------------
    def spawn(self, process: Iterator[datetime]) -> None:
        at = next(process, None)
        if at is not None:
            self.tick += 1
            heapq.heappush(self.heap, (at, self.tick, process))

    def run(self) -> None:
        while self.heap:
            at, _tick, process = self.heap[0]
            if at > self.now:
                break
            following = next(process, None)
            if following is None:
                heapq.heappop(self.heap)
            else:
                self.tick += 1
                heapq.heapreplace(self.heap, (following, self.tick, process))

    def days(self, mean: float) -> timedelta:
        scale = 5 if self.rng.random() < FORGOTTEN else 1
        return timedelta(days=self.rng.expovariate(1 / mean) * scale)

    # -- people -----------------------------------------------------------------------------------
    def make_staff(self, provinces: list[tuple[int, str]], counties: dict[int, list[tuple[int, str]]]) -> int:
        uid = 0
        rows, roles = [], []
        created = self.now - YEARS * 366 * DAY

        def add(email: str, name: str, province: int | None, county: int | None, role: str) -> int:
            nonlocal uid
            uid += 1
            rows.append((uid, email, name, self.password_hash, province, county, True,
                         "en" if uid % 5 == 0 else "fa", "toman", created))
            roles.append((uid, role))
            return uid

        for pid, code in provinces:
            scale = 2 if POPULATION.get(code, 1) >= 4 else 1
            for role, n in OFFICE.items():
                for i in range(1, n * (scale if role in ("intake", "expert") else 1) + 1):
                    self.staff[(pid, role)].append(add(f"{role}{i}.{code}@bench.ir", f"{role} {i} {code}",
                                                       pid, None, role))
            for cid, slug in counties.get(pid, []):
                self.county_intake[cid].append(add(f"intake.{code}.{slug}@bench.ir", f"intake {slug}", pid, cid,
                                                   "intake"))
        add("auditor@bench.ir", "national auditor", None, None, "auditor")
        add("admin@bench.ir", "admin", None, None, "admin")
        for row in rows:
            self.users.write(row)
        for row in roles:
            self.roles.write(row)
        return uid

    def org_founder(self, provinces: list[tuple[int, str]], counties: dict[int, list[tuple[int, str]]],
                    n_orgs: int, first_user: int) -> Iterator[datetime]:
        """Founds `n_orgs` organisations over the years, more of them lately (NGOs multiply)."""
        weights = [POPULATION.get(code, 1.0) for _pid, code in provinces]
        span = YEARS * 365.25
        moments = sorted(self.now - timedelta(days=span * (1 - self.rng.random() ** 0.75)) - 20 * DAY
                         for _ in range(n_orgs))
        picks = self.rng.choices(provinces, weights=weights, k=n_orgs)
        for i, (at, (pid, _code)) in enumerate(zip(moments, picks), start=1):
            yield at
            places = counties.get(pid)
            county = self.rng.choice(places)[0] if places else None
            name = f"{self.rng.choice(ADJECTIVES)} {i}"
            org = Org(i, pid, county, at, first_user + i, f"سازمان مردم‌نهاد {name}", self.rng.choice(FIELDS))
            self.orgs.write((i, org.name, name_key(org.name), pid, county, at))
            self.users.write((org.applicant, f"ngo{i}@bench.ir", f"عضو سازمان {i}", self.password_hash, None, None,
                              True, "fa" if i % 4 else "en", "toman", at))
            self.roles.write((org.applicant, "applicant"))
            self.members.write((org.applicant, i))
            self.spawn(self.issuance(org, at + self.days(10), 1))

    # -- cases ------------------------------------------------------------------------------------
    def new_case(self, kind: str, org: Org, at: datetime, data: dict[str, Any]) -> Case | None:
        self.cases_made += 1
        self.next_case += 1
        case = Case(self.next_case, kind, org, at, data, t=at, county=org.county)
        self.live[case.id] = case
        return case

    def issuance_data(self, org: Org) -> dict[str, Any]:
        founders = [{"full_name": f"مؤسس {k} {org.name}", "national_id": national_id(self.rng)} for k in range(3)]
        return {"name": org.name, "field": org.field, "county": "", "address": f"خیابان آزادی، پلاک {org.id}",
                "founders": founders}

    def actor(self, case: Case, role: str) -> int | None:
        if role == "applicant":
            return case.org.applicant
        if role == "system":
            return None
        if role == "intake" and case.county is not None and self.county_intake.get(case.county) \
                and self.rng.random() < 0.5:
            return self.rng.choice(self.county_intake[case.county])
        return self.rng.choice(self.staff[(case.org.province, role)])

    def record(self, case: Case, at: datetime, action: str, dest: str, role: str, *, actor: int | None = -1,
               comment: str | None = None, details: dict[str, Any] | None = None) -> int | None:
        """The transition and its audit entry, hashed as engine.fire does."""
        if actor == -1:
            actor = self.actor(case, role)
        comment_required, recommends = RULE_FLAGS[(case.kind, action, case.state)]
        if comment is None and comment_required:
            comment = self.rng.choice(COMMENTS)
        case.seq += 1
        self.next_entry += 1
        at_text = moment(at)
        details_text = ENCODER.encode(details) if details else None
        # chain_encoding.canonical of the entry's fields, spelled out for their known types (names of
        # roles, actions and states need no escaping); checked against it on the first entries.
        text = (f'[{case.id},{case.seq},"{at_text}",{"null" if actor is None else actor},"{role}","{action}",'
                f'"{case.state}","{dest}",{"null" if comment is None else _escape(comment)},'
                f'{details_text or "null"},null]')
        digest = sha256(f"{case.head or ''}\n{text}".encode()).hexdigest()
        if self.next_entry <= 2000:
            assert digest == chain_hash(case.head, [case.id, case.seq, at_text, actor, role, action, case.state, dest,
                                                    comment, details or None, None])
        self.entries.line(f"{self.next_entry}\t{case.id}\t{case.seq}\t{at_text}\t{NULL if actor is None else actor}\t"
                          f"{role}\t{action}\t{case.state}\t{dest}\t{comment or NULL}\t{details_text or NULL}\t"
                          f"{NULL}\t{case.head or NULL}\t{digest}\t{case.org.province}")
        case.head, case.t = digest, at
        if case.submitted_at is None and dest not in TERMINAL[case.kind]:
            case.submitted_at = at
        if recommends:
            case.recommended_by = actor
        if action == "approve":
            case.decided_by = actor
        case.state = dest
        return actor

    def walk(self, case: Case) -> Generator[datetime, None, None]:
        """The shared review path, up to a decision (or a withdrawal, a lapse)."""
        rng, kind = self.rng, case.kind
        at = case.t + self.days(WAIT["draft"])
        yield at
        if rng.random() < 0.06:
            self.record(case, at, "withdraw", "withdrawn", "applicant")
            return
        self.record(case, at, "submit", "submitted", "applicant")
        while case.state not in ("approved", "rejected", "withdrawn"):
            state = case.state
            if state == "needs_correction":
                wait = self.days(WAIT[state])
                if wait > 30 * DAY:
                    yield case.t + 30 * DAY
                    self.record(case, case.t + 30 * DAY, "lapse", "withdrawn", "system")
                    continue
                yield case.t + wait
                if rng.random() < 0.05:
                    self.record(case, case.t + wait, "withdraw", "withdrawn", "applicant")
                else:
                    self.record(case, case.t + wait, "resubmit", "submitted", "applicant")
                continue
            at = case.t + self.days(WAIT[state])
            yield at
            x = rng.random()
            if state == "submitted":
                if x < 0.04:
                    self.record(case, at, "withdraw", "withdrawn", "applicant")
                elif x < 0.22:
                    self.record(case, at, "return_for_correction", "needs_correction", "intake")
                else:
                    self.record(case, at, "accept", "under_review", "intake")
            elif state == "under_review":
                if kind == "permit_issuance" and not case.inquired and x < 0.15:
                    case.inquired = True
                    self.record(case, at, "send_inquiry", "inquiry", "expert")
                elif x < 0.23:
                    self.record(case, at, "return_for_correction", "needs_correction", "expert")
                elif kind == "grant_request":
                    if x < 0.75:
                        case.score = rng.randint(55, 98)
                        case.recommendation = "approval"
                        self.record(case, at, "recommend_approval", "finance_review", "expert",
                                    details={"score": case.score})
                    else:
                        case.recommendation = "rejection"
                        self.record(case, at, "recommend_rejection", "finance_review", "expert")
                elif x < (0.90 if kind == "permit_renewal" else 0.80):
                    case.recommendation = "approval"
                    self.record(case, at, "recommend_approval", "awaiting_decision", "expert")
                else:
                    case.recommendation = "rejection"
                    self.record(case, at, "recommend_rejection", "awaiting_decision", "expert")
            elif state == "inquiry":
                self.record(case, at, "record_inquiry", "under_review", "expert")
            elif state == "finance_review":
                amount = min(case.data["requested_rials"], case.programme.max_award) // 1_000_000 * 1_000_000
                amount = max(amount, 10_000_000)
                n = rng.randint(1, 3)
                parts = [amount // n // 1_000_000 * 1_000_000] * (n - 1)
                parts.append(amount - sum(parts))
                case.proposed = parts
                self.record(case, at, "propose_amount", "awaiting_decision", "finance",
                            details={"amount_rials": amount, "tranches": parts})
            elif state == "awaiting_decision":
                good = case.recommendation == "approval" and not (case.permit and case.permit.state == "revoked")
                if x < 0.07 and good:
                    self.record(case, at, "send_back", "under_review", "director")
                elif (x < 0.93) == good:
                    self.record(case, at, "approve", "approved", "director")
                else:
                    self.record(case, at, "reject", "rejected", "director")

    def issuance(self, org: Org, at: datetime, attempt: int) -> Iterator[datetime]:
        yield at
        case = self.new_case("permit_issuance", org, at, self.issuance_data(org))
        if case is None:
            return
        yield from self.walk(case)
        self.finish(case)
        if case.state == "approved":
            permit = self.issue_permit(case)
            self.spawn(self.permit_life(permit))
            self.spawn(self.grant_stream(org, permit))
            self.spawn(self.sanctions(permit))
        elif attempt < 3 and case.seq > 1:
            self.spawn(self.issuance(org, case.t + self.days(60), attempt + 1))

    # -- permits ----------------------------------------------------------------------------------
    def permit_event(self, permit: Permit, at: datetime, action: str, dest: str, role: str, actor: int | None,
                     reason: str | None = None, case_id: int | None = None) -> None:
        self.next_event += 1
        seq = len(permit.events) + 1
        link = [permit.id, seq, moment(at), actor, role, action, permit.events[-1][8] if permit.events else None,
                dest, reason, moment(permit.valid_until), case_id]
        digest = chain_hash(permit.head, link)
        permit.events.append((self.next_event, permit.id, seq, at, actor, role, action,
                              link[6], dest, reason, permit.valid_until, case_id, permit.head, digest))
        permit.head, permit.state = digest, dest

    def issue_permit(self, case: Case) -> Permit:
        self.next_permit += 1
        at = case.t
        permit = Permit(self.next_permit, case.id, case.org, at, add_jalali_years(at, self.validity))
        permit.number = f"{jalali_year(at)}-{case.org.province:02d}-{permit.id:06d}"
        self.permit_event(permit, at, "issue", "active", "director", case.decided_by, case_id=case.id)
        case.org.permit = permit
        self.permits.append(permit)
        return permit

    def permit_life(self, permit: Permit) -> Iterator[datetime]:
        """Renewal inside the window (mostly), expiry when none was approved in time, the end of
        the grace period after which the organisation is gone."""
        while True:
            end = permit.valid_until
            opens = end - timedelta(days=self.rng.uniform(5, 85))
            yield opens
            if permit.state == "revoked":
                return
            if self.rng.random() < 0.88 and permit.open_renewal is None:
                self.spawn(self.renewal(permit, opens))
            yield end
            if permit.valid_until > end:
                continue
            if permit.state in ("active", "suspended"):
                self.permit_event(permit, end, "expire", "expired", "system", None)
            at = end
            # The grace period; a renewal still under review may yet bring the permit back.
            while permit.valid_until == end and (permit.open_renewal is not None or at < end + 90 * DAY):
                at += 30 * DAY
                yield at
            if permit.valid_until == end or permit.state == "revoked":
                return

    def renewal(self, permit: Permit, at: datetime) -> Iterator[datetime]:
        yield at
        if permit.state == "revoked" or permit.open_renewal is not None or at > permit.valid_until + 90 * DAY:
            return
        case = self.new_case("permit_renewal", permit.org, at, {
            "permit_number": permit.number,
            "activity_report": "گزارش فعالیت‌های سازمان در سه سال گذشته: برگزاری کارگاه‌ها و کمک به خانواده‌ها"})
        if case is None:
            return
        case.permit = permit
        permit.open_renewal = case.id
        yield from self.walk(case)
        self.finish(case)
        if permit.open_renewal == case.id:
            permit.open_renewal = None
        if case.state == "approved" and permit.state != "revoked":
            until = add_jalali_years(max(permit.valid_until, case.t), self.validity)
            permit.valid_until = until
            self.permit_event(permit, case.t, "renew", "active" if permit.state == "expired" else permit.state,
                              "system", None, case_id=case.id)

    def sanctions(self, permit: Permit) -> Iterator[datetime]:
        x = self.rng.random()
        if x > 0.05:
            return
        at = permit.issued_at + timedelta(days=self.rng.uniform(30, 1500))
        yield at
        if permit.state != "active":
            return
        director = self.rng.choice(self.staff[(permit.org.province, "director")])
        if x < 0.012:
            self.permit_event(permit, at, "revoke", "revoked", "director", director, reason=COMMENTS[6])
            return
        self.permit_event(permit, at, "suspend", "suspended", "director", director, reason=COMMENTS[6])
        at += self.days(40)
        yield at
        if permit.state == "suspended":
            self.permit_event(permit, at, "reinstate", "active", "director", director)

    # -- grants -----------------------------------------------------------------------------------
    def programme(self, province: int, at: datetime) -> Programme:
        year = jalali_year(at)
        k = self.rng.randrange(2)
        key = (province, year, k)
        found = self.programmes.get(key)
        if found is None:
            self.next_programme += 1
            name = ("حمایت از طرح‌های اشتغال‌زایی" if k else "توانمندسازی سازمان‌های مردم‌نهاد") + f" {year}"
            found = self.programmes[key] = Programme(self.next_programme, province, year, name,
                                                     max_award=self.rng.choice((5, 8, 10)) * 1_000_000_000)
        return found

    def grant_stream(self, org: Org, permit: Permit) -> Iterator[datetime]:
        at = permit.issued_at
        while True:
            at += self.days(100)
            yield at
            if permit.state == "revoked" or (permit.state == "expired" and at > permit.valid_until + 90 * DAY):
                return
            if permit.state == "active" and permit.valid_until > at:
                self.spawn(self.grant(org, at))

    def grant(self, org: Org, at: datetime) -> Iterator[datetime]:
        yield at
        programme = self.programme(org.province, at)
        requested = self.rng.randint(20, min(programme.max_award // 10_000_000, 900)) * 10_000_000
        lines = [{"item": "هزینه کارگاه‌های آموزشی", "rials": requested * 3 // 5},
                 {"item": "اقلام و تجهیزات", "rials": requested - requested * 3 // 5}]
        case = self.new_case("grant_request", org, at, {
            "programme_id": programme.id, "title": f"طرح {org.name} برای سال {programme.year}",
            "summary": "برگزاری دوره‌های آموزش مهارت برای زنان سرپرست خانوار", "requested_rials": requested,
            "budget_lines": lines})
        if case is None:
            return
        case.programme = programme
        yield from self.walk(case)
        if case.state == "approved":
            case.awarded_at = case.t
            programme.awarded += sum(case.proposed or [])
            case.tranches = [{"n": n, "amount": a, "state": "pending"} for n, a in enumerate(case.proposed or [], 1)]
            for item in case.tranches:
                at = case.t + self.days(10)
                yield at
                self.record(case, at, "release_tranche", "approved", "finance",
                            details={"tranche": item["n"], "amount_rials": item["amount"]})
                programme.disbursed += item["amount"]
                item.update(state="released", released_at=at, due=at + self.report_days * DAY)
                while True:
                    at = case.t + self.days(45)
                    yield at
                    spent = item["amount"] - self.rng.choice((0, 0, 0, 10_000_000))
                    lines = [{"item": "هزینه کارگاه‌ها", "budgeted_rials": item["amount"], "spent_rials": spent}]
                    self.record(case, at, "submit_report", "approved", "applicant",
                                details={"tranche": item["n"], "amount_rials": item["amount"], "lines": lines,
                                         "spent_rials": spent})
                    item.update(state="reported", reported_at=at, spent=spent, lines=lines)
                    at = case.t + self.days(6)
                    yield at
                    if self.rng.random() < 0.1:
                        self.record(case, at, "return_report", "approved", "finance",
                                    details={"tranche": item["n"], "amount_rials": item["amount"]})
                        item.update(state="returned", due=max(item["due"], at + 14 * DAY),
                                    comment=COMMENTS[8])
                        continue
                    self.record(case, at, "accept_report", "approved", "finance",
                                details={"tranche": item["n"], "amount_rials": item["amount"]})
                    item.update(state="accepted", accepted_at=at, refund=item["amount"] - spent)
                    break
            at = case.t + self.days(7)
            yield at
            self.record(case, at, "close", "closed", "finance")
        self.finish(case)

    # -- writing ----------------------------------------------------------------------------------
    def finish(self, case: Case) -> None:
        """Write the case as it stands (at the end of its walk, or at `now` for a waiting one)."""
        if case.written:
            return
        case.written = True
        self.live.pop(case.id, None)
        self.counts[f"{case.kind}:{case.state}"] += 1
        process = registry.get(case.kind)
        due = nxt = None
        overdue = False
        deadline = process.deadlines.get(case.state)
        if deadline is not None and case.state not in process.terminal and case.state != "draft":
            if deadline.working_days is not None:
                due = add_working_days(case.t, deadline.working_days, thursday_off=self.thursday_off,
                                       holidays=self.holidays)
            else:
                due = case.t + timedelta(days=deadline.calendar_days or 0)
            events = state_events(process, case.state, case.t, due, holidays=self.holidays,
                                  thursday_off=self.thursday_off)
            nxt = next_after(events, self.now)
            overdue = any(e.kind == "sla_escalate" and e.at <= self.now for e in events)
        data = case.data
        if case.kind == "permit_issuance" and case.county is not None:
            data = {**data, "county": self.county_names[case.county]}
        recommended = case.recommended_by
        self.cases_out.write((
            case.id, case.kind, case.state, case.seq + 1, case.org.id, case.org.province, case.county,
            json.dumps(data, ensure_ascii=False), case.org.applicant, case.created, case.t, case.t,
            case.submitted_at, due, recommended, case.seq, nxt, overdue, case.head))
        if case.kind == "grant_request" and case.programme is not None:
            refunded = sum(t.get("refund", 0) for t in case.tranches)
            awarded = sum(case.proposed) if case.awarded_at else None
            self.grants.write((case.id, case.programme.id, case.org.id, case.score,
                               sum(case.proposed) if case.proposed else None,
                               json.dumps(case.proposed) if case.proposed else None, awarded, case.awarded_at,
                               refunded))
            for item in case.tranches:
                self.next_tranche += 1
                nxt_report = None
                if item["state"] in ("released", "returned"):
                    nxt_report = next((m for m in (item["due"] - 7 * DAY, item["due"], item["due"] + DAY)
                                       if m > self.now), None)
                self.tranches.write((
                    self.next_tranche, case.id, item["n"], item["amount"], item["state"], item.get("released_at"),
                    item.get("due"), json.dumps(item["lines"], ensure_ascii=False) if "lines" in item else None,
                    item.get("spent"), item.get("reported_at"), item.get("accepted_at"), item.get("refund"),
                    item.get("comment") if item["state"] == "returned" else None, nxt_report))


CASE_COLUMNS = ("id", "kind", "state", "version", "organization_id", "province_id", "county_id", "data",
                "created_by_id", "created_at", "updated_at", "state_entered_at", "submitted_at", "due_at",
                "recommended_by_id", "last_seq", "next_event_at", "overdue", "head_hash")
ENTRY_COLUMNS = ("id", "case_id", "seq", "at", "actor_id", "role", "action", "from_state", "to_state", "comment",
                 "details", "snapshot_hash", "prev_hash", "hash", "province_id")
EVENT_COLUMNS = ("id", "permit_id", "seq", "at", "actor_id", "role", "action", "from_state", "to_state", "reason",
                 "valid_until", "case_id", "prev_hash", "hash")


# -- schema: secondary indexes and constraints off for the load, rebuilt after ----------------------
def schema_objects(conn: psycopg.Connection) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    constraints = conn.execute(
        """SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
           FROM pg_constraint c
           WHERE (c.conrelid::regclass::text = ANY(%s) AND c.contype IN ('f', 'u', 'c'))
              OR (c.confrelid::regclass::text = ANY(%s) AND c.contype = 'f')
           ORDER BY c.conname""", (list(TABLES), list(TABLES))).fetchall()
    indexes = conn.execute(
        """SELECT i.tablename, i.indexname, i.indexdef FROM pg_indexes i
           WHERE i.schemaname = 'public' AND i.tablename = ANY(%s)
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
           ORDER BY i.indexname""", (list(TABLES),)).fetchall()
    return [tuple(r) for r in constraints], [tuple(r) for r in indexes]  # type: ignore[misc]


def drop(conn: psycopg.Connection, constraints: list[tuple[str, str, str]],
         indexes: list[tuple[str, str, str]]) -> None:
    for table, name, _definition in sorted(constraints, key=lambda c: not c[2].startswith("FOREIGN KEY")):
        conn.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
    for _table, name, _definition in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    # Row triggers (the entries' province, the history's append-only guard) have nothing to do
    # for rows that are complete and only inserted: a plpgsql call per row is time the load saves.
    for table in TABLES:
        conn.execute(f'ALTER TABLE "{table}" DISABLE TRIGGER USER')


def rebuild(dsn: str, constraints: list[tuple[str, str, str]], indexes: list[tuple[str, str, str]]) -> None:
    """Indexes and unique constraints two at a time, the largest tables first; then checks and
    foreign keys (validated: the load is checked like any insert would have been)."""
    weight = {"audit_entries": 0, "cases": 1, "tranches": 2, "grants": 2, "permit_events": 3, "permits": 3}
    statements = sorted(
        [(t, d) for t, _n, d in indexes]
        + [(t, f'ALTER TABLE "{t}" ADD CONSTRAINT "{n}" {d}') for t, n, d in constraints if d.startswith("UNIQUE")],
        key=lambda ts: weight.get(ts[0], 9))

    def run(statement: str) -> None:
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("SET maintenance_work_mem = '512MB'")
            c.execute(statement)

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(run, [s for _t, s in statements]))
    with psycopg.connect(dsn, autocommit=True) as c:
        for table in TABLES:
            c.execute(f'ALTER TABLE "{table}" ENABLE TRIGGER USER')
    rest = [(t, n, d) for t, n, d in constraints if not d.startswith("UNIQUE")]
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(run, [f'ALTER TABLE "{t}" ADD CONSTRAINT "{n}" {d}' for t, n, d in rest]))


def load(dsn: str, *, cases: int, now: datetime, seed: int, holidays: frozenset[date], thursday_off: bool,
         password_hash: str, report_days: int, validity_years: int,
         log: Callable[[str], None] = print) -> dict[str, Any]:
    """Fill an empty, migrated database (reference data loaded) with `cases` cases."""
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        if conn.execute("SELECT EXISTS (SELECT 1 FROM cases) OR EXISTS (SELECT 1 FROM users)").fetchone()[0]:
            raise ValueError("the database already holds users or cases: populate an empty one (or --reset)")
        provinces = [tuple(r) for r in conn.execute("SELECT id, code FROM provinces ORDER BY id")]
        counties: dict[int, list[tuple[int, str]]] = defaultdict(list)
        names: dict[int, str] = {}
        for cid, pid, fa, en in conn.execute("SELECT id, province_id, name_fa, name_en FROM counties ORDER BY id"):
            counties[pid].append((cid, "".join(ch for ch in en.lower() if ch.isalnum())))
            names[cid] = fa
        constraints, indexes = schema_objects(conn)
        drop(conn, constraints, indexes)
    loader = Loader(dsn, cases=cases, now=now, seed=seed, holidays=holidays, thursday_off=thursday_off,
                    password_hash=password_hash, report_days=report_days, validity_years=validity_years, log=log)
    loader.county_names = names  # type: ignore[attr-defined]
    sinks: dict[str, Sink] = {}
    ok = False
    try:
        sinks.update({
            "users": Sink(dsn, "users", ("id", "email", "name", "password_hash", "province_id", "county_id", "is_active",
                                         "locale", "money_unit", "created_at")),
            "roles": Sink(dsn, "user_roles", ("user_id", "role")),
            "members": Sink(dsn, "memberships", ("user_id", "organization_id")),
            "orgs": Sink(dsn, "organizations", ("id", "name", "name_key", "province_id", "county_id", "created_at")),
            "cases_out": Sink(dsn, "cases", CASE_COLUMNS),
            "entries": Sink(dsn, "audit_entries", ENTRY_COLUMNS),
            "grants": Sink(dsn, "grants", ("case_id", "programme_id", "organization_id", "score", "proposed_rials",
                                           "proposed_tranches", "awarded_rials", "awarded_at", "refunded_rials")),
            "tranches": Sink(dsn, "tranches", ("id", "case_id", "n", "amount_rials", "state", "released_at",
                                               "report_due_at", "report_lines", "spent_rials", "reported_at",
                                               "accepted_at", "refund_rials", "return_comment", "next_event_at")),
        })
        for name, sink in sinks.items():
            setattr(loader, name, sink)
        staff = loader.make_staff(provinces, counties)  # type: ignore[arg-type]
        n_orgs = max(3, math.ceil(cases / CASES_PER_ORG))
        loader.spawn(loader.org_founder(provinces, counties, n_orgs, staff))  # type: ignore[arg-type]
        t1 = time.perf_counter()
        loader.run()
        for case in list(loader.live.values()):
            loader.finish(case)
        times["simulate and stream"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        permit_sink = Sink(dsn, "permits", ("id", "number", "case_id", "organization_id", "province_id", "county_id",
                                            "state", "issued_at", "valid_until", "version", "last_seq",
                                            "open_renewal_case_id", "next_event_at", "head_hash"))
        event_sink = Sink(dsn, "permit_events", EVENT_COLUMNS)
        sinks["permits"], sinks["events"] = permit_sink, event_sink
        for permit in loader.permits:
            nxt = next_after(permit_events(permit), now)  # type: ignore[arg-type]
            permit_sink.write((permit.id, permit.number, permit.case_id, permit.org.id, permit.org.province,
                               permit.org.county, permit.state, permit.issued_at, permit.valid_until,
                               len(permit.events), len(permit.events), permit.open_renewal, nxt, permit.head))
            for event in permit.events:
                event_sink.write(event)
        programme_sink = Sink(dsn, "programmes", ("id", "name", "name_key", "province_id", "fiscal_year",
                                                  "budget_rials", "max_award_rials", "awarded_rials",
                                                  "disbursed_rials", "opens_on", "closes_on", "fields",
                                                  "created_by_id", "created_at"))
        sinks["programmes"] = programme_sink
        for p in loader.programmes.values():
            budget = max(p.max_award * 2, math.ceil(p.awarded * 1.25 / 1_000_000_000) * 1_000_000_000)
            opens = jdatetime.date(p.year, 1, 1).togregorian()
            closes = jdatetime.date(p.year + 1, 1, 1).togregorian() - DAY
            programme_sink.write((p.id, p.name, name_key(p.name), p.province, p.year, budget, p.max_award, p.awarded,
                                  p.disbursed, opens, closes, json.dumps(FIELDS), loader.staff[(p.province, "finance")][0],
                                  datetime.combine(opens, datetime.min.time(), tzinfo=timezone.utc)))
        for sink in sinks.values():
            sink.finish()
        times["finish copies"] = time.perf_counter() - t1
        ok = True
    finally:
        for sink in sinks.values():
            sink.close(commit=ok)
        t1 = time.perf_counter()
        with psycopg.connect(dsn, autocommit=True) as conn:
            for table in ("users", "user_roles", "memberships", "organizations", "cases", "audit_entries", "permits",
                          "permit_events", "programmes", "tranches"):
                conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                             f"GREATEST((SELECT max(id) FROM {table}), 1))")
        rebuild(dsn, constraints, indexes)
        times["indexes, constraints"] = time.perf_counter() - t1
    t1 = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
    times["vacuum analyze"] = time.perf_counter() - t1
    times["total"] = time.perf_counter() - t0
    return {"cases": loader.cases_made, "entries": loader.next_entry, "permits": len(loader.permits),
            "permit_events": loader.next_event, "organizations": n_orgs, "programmes": len(loader.programmes),
            "states": dict(sorted(loader.counts.items())), "seconds": times}

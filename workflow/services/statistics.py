"""Year-over-year figures of a province (or the whole country) for the statistics page.

Officials report a Jalali year against the one before ("12 permits this year against 5 last
year"), so every figure here is a pair, with the ratio this/last. A year runs from Nowruz to
Nowruz, Tehran time (`jalali_year_bounds`).

The counts are aggregated in the database: one grouped query per table over the two years at
once, each row counted into its year with `SUM(CASE …)`, so the cost does not depend on how many
cases exist beyond what the range and the province select. A province is selected through the
indexed province columns (`cases.province_id` leads `ix_cases_queue`), and entries and events
are reached from there through their `case_id`/`permit_id` indexes.

Time spent per step needs working days, which depend on the holidays table and the office's
Thursday, so that last step is done in Python — but on PostgreSQL only over what the database
has already grouped: (kind, state, action, Tehran start day, Tehran end day) with a count, a
few thousand rows for a year of a province however many cases it holds. The working days of
each distinct pair of days are computed once, and the medians are exact weighted medians of
those counts (the value `percentile_cont(0.5)` would give). SQLite (the laptop demo) has no
time zones, so there the step rows are read one by one and converted in Python.
"""
from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import Date, Interval, and_, case, cast, delete, false, func, literal, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from .. import registry
from ..calendar import TEHRAN, jalali_year, jalali_year_bounds, to_tehran, working_days_between
from ..holidays import holidays
from ..models import AuditEntry, Case, Grant, Permit, PermitEvent, Province, StatisticsReport, Tranche, utcnow
from ..process import Deadline

# The figures in the order the page and the CSV list them. "approvals" is what the seeds call
# "approvals of renewal and establishment": the two kinds of decision counted together.
FIGURES = (
    "permits_issued", "establishments_approved", "renewals_approved", "approvals",
    "suspensions", "revocations", "grants_awarded", "grants_awarded_rials", "disbursed_rials",
    "sla_breaches",
)
MONEY_FIGURES = frozenset({"grants_awarded_rials", "disbursed_rials"})
APPROVAL_KINDS = {"permit_issuance": "establishments_approved", "permit_renewal": "renewals_approved"}
PERMIT_ACTIONS = {"issue": "permits_issued", "suspend": "suspensions", "revoke": "revocations"}

# Years the page accepts: from well before the first record to shortly after today; outside it
# jdatetime itself gives up, and there is nothing to count anyway.
MIN_YEAR, MAX_YEAR = 1300, 1600

# The review path in the order a case travels it, so the steps read top to bottom.
STATE_ORDER = ("submitted", "needs_correction", "under_review", "inquiry", "finance_review",
               "awaiting_decision")


@dataclass(frozen=True)
class Figure:
    key: str
    this_year: int
    last_year: int

    @property
    def is_money(self) -> bool:
        return self.key in MONEY_FIGURES

    @property
    def ratio(self) -> float | None:
        """this / last; None when last year had none (there is no ratio to a zero)."""
        return ratio(self.this_year, self.last_year)


@dataclass
class YearSteps:
    """The steps of one (state, action) that ended in one year."""

    days: Counter[int] = field(default_factory=Counter)  # working days → how many steps took that long
    breaches: int = 0

    @property
    def count(self) -> int:
        return sum(self.days.values())

    @property
    def median(self) -> float | None:
        return weighted_median(self.days)


@dataclass
class Step:
    """A stay in `from_state` ended by `action`: its median working days and SLA breaches."""

    from_state: str
    action: str
    this_year: YearSteps = field(default_factory=YearSteps)
    last_year: YearSteps = field(default_factory=YearSteps)
    # The declared deadlines of the state in the processes these steps came from; one when the
    # processes agree (they do today), so the page can name it.
    deadlines: set[Deadline] = field(default_factory=set)

    @property
    def deadline(self) -> Deadline | None:
        return next(iter(self.deadlines)) if len(self.deadlines) == 1 else None

    @property
    def median_ratio(self) -> float | None:
        this, last = self.this_year.median, self.last_year.median
        return None if this is None or last is None else ratio(this, last)


@dataclass
class Report:
    year: int
    province_id: int | None  # None: the whole country
    figures: list[Figure]
    steps: list[Step]

    @property
    def last_year(self) -> int:
        return self.year - 1

    def figure(self, key: str) -> Figure:
        return next(f for f in self.figures if f.key == key)


def ratio(this: float, last: float) -> float | None:
    if not last:
        return None
    return this / last


def weighted_median(counts: Counter[int]) -> float | None:
    """The median of values given as value → how many times; the mean of the two middle values
    when their number is even (as `percentile_cont(0.5)` computes it)."""
    n = sum(counts.values())
    if n == 0:
        return None
    wanted = (n - 1) // 2, n // 2  # 0-based positions of the middle value(s)
    found: list[int] = []
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        while len(found) < 2 and wanted[len(found)] < seen:
            found.append(value)
        if len(found) == 2:
            break
    return (found[0] + found[1]) / 2


def compute(session: Session, year: int, province_id: int | None) -> Report:
    """Every figure of the statistics page for Jalali `year` and the year before."""
    last_start, this_start = jalali_year_bounds(year - 1)[0], jalali_year_bounds(year)[0]
    this_end = jalali_year_bounds(year)[1]
    counts: dict[str, list[int]] = {key: [0, 0] for key in FIGURES}  # key → [this, last]

    def split(column: Any, value: Any = 1) -> tuple[Any, Any]:
        """SUM(CASE …) of `value` over this year's rows and over last year's."""
        return (func.sum(case((column >= this_start, value), else_=0)),
                func.sum(case((column < this_start, value), else_=0)))

    def add(key: str, this: Any, last: Any) -> None:
        counts[key][0] += int(this or 0)
        counts[key][1] += int(last or 0)

    # Permits issued, suspended and revoked: the permit's own history.
    query = (select(PermitEvent.action, *split(PermitEvent.at))
             .where(PermitEvent.action.in_(PERMIT_ACTIONS), PermitEvent.at >= last_start, PermitEvent.at < this_end)
             .group_by(PermitEvent.action))
    if province_id is not None:
        query = query.join(Permit, Permit.id == PermitEvent.permit_id).where(Permit.province_id == province_id)
    for action, this, last in session.execute(query):
        add(PERMIT_ACTIONS[action], this, last)

    # Establishments and renewals approved: the director's decisions on the two kinds of case.
    query = (select(Case.kind, *split(AuditEntry.at))
             .select_from(AuditEntry).join(Case, Case.id == AuditEntry.case_id)
             .where(AuditEntry.action == "approve", Case.kind.in_(APPROVAL_KINDS),
                    AuditEntry.at >= last_start, AuditEntry.at < this_end)
             .group_by(Case.kind))
    if province_id is not None:
        query = query.where(Case.province_id == province_id)
    for kind, this, last in session.execute(query):
        add(APPROVAL_KINDS[kind], this, last)
    add("approvals", *counts["establishments_approved"])
    add("approvals", *counts["renewals_approved"])

    # Grants awarded (how many, how much) by the day of the award; money paid by the tranche's release.
    query = (select(*split(Grant.awarded_at), *split(Grant.awarded_at, Grant.awarded_rials))
             .select_from(Grant)
             .where(Grant.awarded_at >= last_start, Grant.awarded_at < this_end))
    if province_id is not None:
        query = query.join(Case, Case.id == Grant.case_id).where(Case.province_id == province_id)
    n_this, n_last, rials_this, rials_last = session.execute(query).one()
    add("grants_awarded", n_this, n_last)
    add("grants_awarded_rials", rials_this, rials_last)
    query = (select(*split(Tranche.released_at, Tranche.amount_rials)).select_from(Tranche)
             .where(Tranche.released_at >= last_start, Tranche.released_at < this_end))
    if province_id is not None:
        query = query.join(Case, Case.id == Tranche.case_id).where(Case.province_id == province_id)
    add("disbursed_rials", *session.execute(query).one())

    steps = step_figures(session, year, province_id)
    add("sla_breaches", sum(s.this_year.breaches for s in steps), sum(s.last_year.breaches for s in steps))
    figures = [Figure(key, *counts[key]) for key in FIGURES]
    return Report(year=year, province_id=province_id, figures=figures, steps=steps)


# -- time per step ----------------------------------------------------------------------------

def _deadlines() -> dict[tuple[str, str], Deadline]:
    """(kind, state) → the state's declared deadline, for every process."""
    return {(kind, state): deadline for kind, process in registry.PROCESSES.items()
            for state, deadline in process.deadlines.items()}


def _late_in_calendar_days(deadlines: dict[tuple[str, str], Deadline], entry: Any, previous: Any) -> Any:
    """SQL: the step outlasted its state's calendar-day deadline (applicants' deadlines are exact
    moments, so this is decided on the timestamps, not on the days)."""
    tests = [and_(Case.kind == kind, entry.from_state == state,
                  entry.at > previous.at + literal(timedelta(days=deadline.calendar_days), Interval()))
             for (kind, state), deadline in deadlines.items() if deadline.calendar_days is not None]
    return or_(*tests) if tests else false()


def _step_rows(session: Session, year: int, province_id: int | None,
               deadlines: dict[tuple[str, str], Deadline]) -> Iterator[tuple[str, str, str, date, date, bool, int]]:
    """(kind, state, action, start day, end day, late by the calendar, how many) of every step
    that ended in `year` or the year before, in a state with a deadline.

    A step is a pair of consecutive entries of a case: the one that put the case into the state
    (seq − 1, found through the (case_id, seq) unique index) and the one that took it out.
    """
    start, end = jalali_year_bounds(year - 1)[0], jalali_year_bounds(year)[1]
    entry, previous = AuditEntry, aliased(AuditEntry)
    states = sorted({state for _kind, state in deadlines})
    where = [entry.at >= start, entry.at < end, entry.from_state.in_(states)]
    if province_id is not None:
        where.append(Case.province_id == province_id)

    def joined(query: Any) -> Any:
        return (query.select_from(entry)
                .join(previous, and_(previous.case_id == entry.case_id, previous.seq == entry.seq - 1))
                .join(Case, Case.id == entry.case_id)
                .where(*where))

    if session.get_bind().dialect.name == "postgresql":
        start_day = cast(func.timezone("Asia/Tehran", previous.at), Date)
        end_day = cast(func.timezone("Asia/Tehran", entry.at), Date)
        late = _late_in_calendar_days(deadlines, entry, previous)
        # Grouped outside a subquery: the expressions carry bound parameters, which PostgreSQL
        # would not recognise as the same expression in SELECT and in GROUP BY.
        rows = joined(select(Case.kind.label("kind"), entry.from_state.label("state"), entry.action.label("action"),
                             start_day.label("first"), end_day.label("last"), late.label("late"))).subquery()
        query = (select(rows.c.kind, rows.c.state, rows.c.action, rows.c.first, rows.c.last, rows.c.late, func.count())
                 .group_by(rows.c.kind, rows.c.state, rows.c.action, rows.c.first, rows.c.last, rows.c.late))
        for kind, state, action, first, last, is_late, n in session.execute(query):
            yield kind, state, action, first, last, bool(is_late), n
        return
    # SQLite: no time zones in the database; the rows of a laptop's demo are few.
    query = joined(select(Case.kind, entry.from_state, entry.action, previous.at, entry.at))
    for kind, state, action, began, ended in session.execute(query):
        deadline = deadlines.get((kind, state))
        days = deadline.calendar_days if deadline is not None else None
        is_late = days is not None and ended > began + timedelta(days=days)
        yield kind, state, action, to_tehran(began).date(), to_tehran(ended).date(), is_late, 1


def step_figures(session: Session, year: int, province_id: int | None) -> list[Step]:
    """Median working days and SLA breaches per (state, action) of the review path, both years."""
    deadlines = _deadlines()
    this_start = jalali_year_bounds(year)[0]
    first_day_this_year = to_tehran(this_start).date()
    days_between = _working_days(holidays(session), bool(current_app.config["THURSDAY_OFF"]))
    steps: dict[tuple[str, str], Step] = {}
    for kind, state, action, first, last, late, n in _step_rows(session, year, province_id, deadlines):
        deadline = deadlines.get((kind, state))
        if deadline is None:  # a state with a deadline in another process only
            continue
        step = steps.setdefault((state, action), Step(state, action))
        step.deadlines.add(deadline)
        bucket = step.this_year if last >= first_day_this_year else step.last_year
        days = days_between(first, last)
        bucket.days[days] += n
        if deadline.working_days is not None:
            if days > deadline.working_days:
                bucket.breaches += n
        elif late:
            bucket.breaches += n
    return sorted(steps.values(), key=_step_order)


def _working_days(days_off: frozenset[date], thursday_off: bool):  # type: ignore[no-untyped-def]
    """working_days_between on Tehran days, remembered per pair: many steps share their days."""
    @functools.lru_cache(maxsize=65536)
    def between(first: date, last: date) -> int:
        noon = time(12, tzinfo=TEHRAN)
        return working_days_between(datetime.combine(first, noon), datetime.combine(last, noon),
                                    thursday_off=thursday_off, holidays=days_off)
    return between


def _step_order(step: Step) -> tuple[int, int, str]:
    from ..labels import ACTIONS

    state = STATE_ORDER.index(step.from_state) if step.from_state in STATE_ORDER else len(STATE_ORDER)
    actions = list(ACTIONS)
    action = actions.index(step.action) if step.action in actions else len(actions)
    return state, action, step.action


def years_with_data(figures: Iterable[Figure]) -> bool:
    """Whether anything at all was counted (the page says so when nothing was)."""
    return any(f.this_year or f.last_year for f in figures)


# -- pages computed ahead of time (jobs/statistics.py) ------------------------------------------

COUNTRY_SCOPE = "all"


def _scope(province_id: int | None) -> str:
    return COUNTRY_SCOPE if province_id is None else str(province_id)


def report_json(report: Report) -> dict[str, Any]:
    """The report as JSON (a StatisticsReport's body); `report_from_json` reads it back."""
    def year_json(steps: YearSteps) -> dict[str, Any]:
        return {"days": {str(d): n for d, n in sorted(steps.days.items())}, "breaches": steps.breaches}

    return {
        "year": report.year,
        "province_id": report.province_id,
        "figures": [[f.key, f.this_year, f.last_year] for f in report.figures],
        "steps": [{"from_state": s.from_state, "action": s.action, "this_year": year_json(s.this_year),
                   "last_year": year_json(s.last_year),
                   "deadlines": sorted([d.working_days, d.calendar_days] for d in s.deadlines)}
                  for s in report.steps],
    }


def report_from_json(body: dict[str, Any]) -> Report:
    def year_steps(data: dict[str, Any]) -> YearSteps:
        return YearSteps(Counter({int(d): n for d, n in data["days"].items()}), data["breaches"])

    # A figure added since the row was written reads as 0 until the next refresh.
    stored = {key: (this, last) for key, this, last in body["figures"]}
    return Report(
        year=body["year"], province_id=body["province_id"],
        figures=[Figure(key, *stored.get(key, (0, 0))) for key in FIGURES],
        steps=[Step(s["from_state"], s["action"], year_steps(s["this_year"]), year_steps(s["last_year"]),
                    {Deadline(working_days=w, calendar_days=c) for w, c in s["deadlines"]})
               for s in body["steps"]],
    )


def merged(year: int, reports: Iterable[Report]) -> Report:
    """The whole country from its provinces': counts add up, and so do the steps' day counts,
    so the medians are those of every step in the country, not a median of medians."""
    totals = {key: [0, 0] for key in FIGURES}
    steps: dict[tuple[str, str], Step] = {}
    for report in reports:
        for f in report.figures:
            totals[f.key][0] += f.this_year
            totals[f.key][1] += f.last_year
        for s in report.steps:
            step = steps.setdefault((s.from_state, s.action), Step(s.from_state, s.action))
            for mine, theirs in ((step.this_year, s.this_year), (step.last_year, s.last_year)):
                mine.days.update(theirs.days)
                mine.breaches += theirs.breaches
            step.deadlines |= s.deadlines
    return Report(year=year, province_id=None, figures=[Figure(k, *totals[k]) for k in FIGURES],
                  steps=sorted(steps.values(), key=_step_order))


def store(session: Session, report: Report, computed_at: datetime) -> None:
    """Keep `report` as its year and place's row, replacing the one before (the caller commits)."""
    scope = _scope(report.province_id)
    session.execute(delete(StatisticsReport).where(StatisticsReport.year == report.year,
                                                   StatisticsReport.scope == scope))
    session.add(StatisticsReport(year=report.year, scope=scope, computed_at=computed_at,
                                 body=report_json(report)))


def is_final(year: int, computed_at: datetime) -> bool:
    """Computed after the year ended: nothing can change it any more (entries and events are
    append-only and stamped with the moment they are written)."""
    return computed_at >= jalali_year_bounds(year)[1]


def for_page(session: Session, year: int, province_id: int | None,
             now: datetime | None = None) -> tuple[Report, datetime | None]:
    """The report the page shows and when it was computed: the stored one when it is fresh
    enough (STATISTICS_MAX_AGE_SECONDS, or any age once the year has ended), else computed
    now (and then None: the figures are as of this moment)."""
    now = now or utcnow()
    row = session.execute(select(StatisticsReport.computed_at, StatisticsReport.body).where(
        StatisticsReport.year == year, StatisticsReport.scope == _scope(province_id))).one_or_none()
    max_age = timedelta(seconds=current_app.config["STATISTICS_MAX_AGE_SECONDS"])
    if row is not None and (row.computed_at >= now - max_age or is_final(year, row.computed_at)):
        try:
            return report_from_json(row.body), row.computed_at
        except (KeyError, TypeError, ValueError):  # written by another version: compute instead
            pass
    return compute(session, year, province_id), None


def refresh(session: Session, year: int, now: datetime | None = None) -> int:
    """Compute and keep `year`'s report of every province and of the country (from the
    provinces'); commits after each province, so a long refresh holds no lock for long and
    the pages see each province as soon as it is done. Returns how many reports were kept."""
    now = now or utcnow()
    reports = []
    for (province_id,) in session.execute(select(Province.id).order_by(Province.id)).all():
        report = compute(session, year, province_id)
        reports.append(report)
        _keep(session, report, now)
    _keep(session, merged(year, reports), now)
    return len(reports) + 1


def _keep(session: Session, report: Report, now: datetime) -> None:
    store(session, report, now)
    try:
        session.commit()
    except IntegrityError:  # a refresh running at the same moment kept its own: as good as ours
        session.rollback()


def years_to_refresh(session: Session, now: datetime | None = None) -> list[int]:
    """This Jalali year, and the year before until its final reports are kept."""
    now = now or utcnow()
    this_year = jalali_year(to_tehran(now))
    last_final = session.scalar(select(func.min(StatisticsReport.computed_at)).where(
        StatisticsReport.year == this_year - 1))
    missing_last = last_final is None or not is_final(this_year - 1, last_final)
    return [this_year, this_year - 1] if missing_last else [this_year]

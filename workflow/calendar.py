"""Jalali (Solar Hijri) dates and Iranian working days.

Instants are stored in UTC, but everything a provincial office sees or
counts -- the calendar date, the working day, the deadline's clock time --
is defined by Tehran local time and the Jalali calendar, so conversions go
through Asia/Tehran before any date is taken.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Set
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import jdatetime

from workflow.text import ascii_digits, persian_digits

TEHRAN = ZoneInfo("Asia/Tehran")

JALALI_MONTHS_FA: tuple[str, ...] = (
    "فروردین",
    "اردیبهشت",
    "خرداد",
    "تیر",
    "مرداد",
    "شهریور",
    "مهر",
    "آبان",
    "آذر",
    "دی",
    "بهمن",
    "اسفند",
)
JALALI_MONTHS_EN: tuple[str, ...] = (
    "Farvardin",
    "Ordibehesht",
    "Khordad",
    "Tir",
    "Mordad",
    "Shahrivar",
    "Mehr",
    "Aban",
    "Azar",
    "Dey",
    "Bahman",
    "Esfand",
)

_THURSDAY = 3  # date.weekday(): Monday == 0
_FRIDAY = 4

_DATE_PART = r"(\d{4})([/-])(\d{1,2})\2(\d{1,2})"
_DATE_RE = re.compile(_DATE_PART)
_DATETIME_RE = re.compile(rf"{_DATE_PART}(?:T|\s+)(\d{{1,2}}):(\d{{2}})(?::(\d{{2}}))?")


def _is_fa(locale: object) -> bool:
    # Accepts "fa", "fa_IR", "fa-IR" or a babel Locale; anything else gets the
    # English rendering rather than an error, since this is display-only.
    if locale == "fa" or locale == "en":  # what every render passes: a page formats many dates
        return locale == "fa"
    return str(locale).replace("-", "_").split("_")[0].lower() == "fa"


def to_tehran(dt: datetime) -> datetime:
    """Convert a stored instant to Tehran local time; naive values are UTC
    because that is how the database hands them back."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(TEHRAN)


def to_jalali(value: date | datetime) -> jdatetime.date:
    """Jalali date of a Gregorian date, or of an instant as seen in Tehran
    (an evening UTC timestamp is already the next day there)."""
    if isinstance(value, datetime):
        value = to_tehran(value).date()
    return _jalali_day(value)


# A list page shows a few dates per row, mostly of the same few weeks; jdatetime builds a
# locale-aware object for each conversion, which was a tenth of a queue page's rendering.
@functools.lru_cache(maxsize=4096)
def _jalali_day(day: date) -> jdatetime.date:
    return jdatetime.date.fromgregorian(date=day)


def format_date(value: date | datetime | None, locale: str = "fa") -> str:
    """"۲۶ اسفند ۱۳۹۶" / "26 Esfand 1396"; None renders as "" so templates
    can pass optional columns straight through."""
    if value is None:
        return ""
    day = to_tehran(value).date() if isinstance(value, datetime) else value
    return _day_text(day, _is_fa(locale))


@functools.lru_cache(maxsize=4096)
def _day_text(day: date, fa: bool) -> str:
    j = _jalali_day(day)
    if fa:
        return persian_digits(f"{j.day} {JALALI_MONTHS_FA[j.month - 1]} {j.year}")
    return f"{j.day} {JALALI_MONTHS_EN[j.month - 1]} {j.year}"


def format_datetime(value: date | datetime | None, locale: str = "fa") -> str:
    """Date plus Tehran wall-clock HH:MM; a plain date has no time to show."""
    if value is None:
        return ""
    fa = _is_fa(locale)
    if not isinstance(value, datetime):
        return _day_text(value, fa)
    local = to_tehran(value)
    clock = f"{local.hour:02d}:{local.minute:02d}"
    return f"{_day_text(local.date(), fa)} {persian_digits(clock) if fa else clock}"


def format_numeric(value: date | datetime | None, locale: str = "fa") -> str:
    """Compact "1396/12/26" form for tables and exports."""
    if value is None:
        return ""
    j = to_jalali(value)
    text = f"{j.year:04d}/{j.month:02d}/{j.day:02d}"
    return persian_digits(text) if _is_fa(locale) else text


def _days_in_month(year: int, month: int) -> int:
    if month <= 6:
        return 31
    if month <= 11:
        return 30
    return 30 if jdatetime.date(year, 1, 1).isleap() else 29


def _jalali_to_gregorian(text: str, year: int, month: int, day: int) -> date:
    # Validated here rather than relying on jdatetime so the user-facing
    # message names the actual problem instead of "day is out of range".
    if year < 1:
        raise ValueError(f"Invalid Jalali date {text!r}: year must be positive")
    if not 1 <= month <= 12:
        raise ValueError(f"Invalid Jalali date {text!r}: month must be between 1 and 12")
    limit = _days_in_month(year, month)
    if not 1 <= day <= limit:
        raise ValueError(
            f"Invalid Jalali date {text!r}: {JALALI_MONTHS_EN[month - 1]} {year} "
            f"has days 1 to {limit}"
        )
    return jdatetime.date(year, month, day).togregorian()


def parse_jalali_date(text: str) -> date:
    """Parse "1396/12/26" or "1396-12-26" (any digit script) to a Gregorian date."""
    cleaned = ascii_digits(text).strip()
    match = _DATE_RE.fullmatch(cleaned)
    if match is None:
        raise ValueError(f"Invalid Jalali date {text!r}: expected YYYY/MM/DD")
    year, _, month, day = match.groups()
    return _jalali_to_gregorian(text, int(year), int(month), int(day))


def parse_jalali_datetime(text: str) -> datetime:
    """Parse "1405-01-15T09:00" or "1405/01/15 09:00" as Tehran wall-clock
    time -- what a clerk types -- and return the UTC instant to store."""
    cleaned = ascii_digits(text).strip()
    match = _DATETIME_RE.fullmatch(cleaned)
    if match is None:
        raise ValueError(f"Invalid Jalali date-time {text!r}: expected YYYY/MM/DD HH:MM")
    year, _, month, day, hour, minute, second = match.groups()
    if not (0 <= int(hour) <= 23 and 0 <= int(minute) <= 59 and 0 <= int(second or 0) <= 59):
        raise ValueError(f"Invalid Jalali date-time {text!r}: time out of range")
    gregorian = _jalali_to_gregorian(text, int(year), int(month), int(day))
    local = datetime.combine(
        gregorian, time(int(hour), int(minute), int(second or 0)), tzinfo=TEHRAN
    )
    return local.astimezone(timezone.utc)


def jalali_year(value: date | datetime) -> int:
    """Jalali year, the unit of annual NGO reports and permit numbering."""
    return to_jalali(value).year


def jalali_year_bounds(year: int) -> tuple[datetime, datetime]:
    """UTC [start, end) of a Jalali year, for range queries on UTC columns.

    The year turns at Tehran midnight, not UTC midnight, so a naive
    Gregorian-date filter would misfile the first/last 3.5 hours.
    """

    def nowruz(y: int) -> datetime:
        start = jdatetime.date(y, 1, 1).togregorian()
        return datetime.combine(start, time(), tzinfo=TEHRAN).astimezone(timezone.utc)

    return nowruz(year), nowruz(year + 1)


def is_working_day(
    d: date,
    *,
    thursday_off: bool = True,
    holidays: Set[date] = frozenset(),
) -> bool:
    """Iranian office week: Saturday–Wednesday, Thursday depending on the
    office, never Friday or an official holiday.

    A datetime is reduced to its Tehran date first, otherwise it would never
    match the plain dates in ``holidays``.
    """
    if isinstance(d, datetime):
        d = to_tehran(d).date()
    weekday = d.weekday()
    if weekday == _FRIDAY or (weekday == _THURSDAY and thursday_off):
        return False
    return d not in holidays


def add_working_days(
    start: datetime,
    days: int | float,
    *,
    thursday_off: bool = True,
    holidays: Set[date] = frozenset(),
) -> datetime:
    """Deadline that is ``days`` working days after ``start``.

    The result keeps the Tehran clock time of ``start`` on the N-th working
    day after start's Tehran date, so "3 working days" from a Wednesday
    10:00 submission is Sunday 10:00 (Thursday off). Fractions are rounded
    up: a half-day SLA still ends on the next working day, never earlier,
    which is the only rounding an applicant cannot lose by. ``start`` itself
    need not be a working day.
    """
    if days < 0:
        raise ValueError("days must not be negative")
    local = to_tehran(start)
    if not isinstance(holidays, frozenset):
        holidays = frozenset(holidays)
    current = _working_day_after(local.date(), math.ceil(days), thursday_off, holidays)
    return datetime.combine(current, local.time(), tzinfo=TEHRAN).astimezone(timezone.utc)


@functools.lru_cache(maxsize=1024)
def _working_day_after(start: date, days: int, thursday_off: bool, holidays: frozenset[date]) -> date:
    """The `days`-th working day after `start`. Remembered: every transition into a state with a
    deadline asks three of these (due, half-way, escalation), all from today's date with the same
    holiday set (holidays.py keeps one per minute, and a frozenset hashes once), so after the
    first transition of the day the walk over the calendar -- a thousand-odd bytecodes -- is a
    dictionary lookup."""
    remaining = days
    current = start
    while remaining:
        current += timedelta(days=1)
        if is_working_day(current, thursday_off=thursday_off, holidays=holidays):
            remaining -= 1
    return current


def working_days_between(
    start: datetime,
    end: datetime,
    *,
    thursday_off: bool = True,
    holidays: Set[date] = frozenset(),
) -> int:
    """Working days after start's Tehran date up to and including end's.

    Counted this way it is the inverse of add_working_days (same clock time
    ignored), so SLA "days used" and "deadline" never disagree. Negative
    when ``end`` is before ``start`` -- useful for "overdue by N days".
    """
    first, last = to_tehran(start).date(), to_tehran(end).date()
    if last < first:
        return -working_days_between(end, start, thursday_off=thursday_off, holidays=holidays)
    count = 0
    current = first
    while current < last:
        current += timedelta(days=1)
        if is_working_day(current, thursday_off=thursday_off, holidays=holidays):
            count += 1
    return count


def add_jalali_years(moment: datetime, years: int) -> datetime:
    """The same Tehran clock time `years` Jalali years later (30 Esfand → 29 in a common year).

    Permits are issued and read in the Jalali calendar: three years from 1 Azar 1405 must end
    on 1 Azar 1408, which adding Gregorian years would miss by a day.
    """
    local = to_tehran(moment)
    j = jdatetime.date.fromgregorian(date=local.date())
    year = j.year + years
    day = min(j.day, _days_in_month(year, j.month))
    target = jdatetime.date(year, j.month, day).togregorian()
    return datetime.combine(target, local.timetz()).astimezone(timezone.utc)

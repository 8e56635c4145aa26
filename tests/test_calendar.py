from datetime import date, datetime, timedelta, timezone

import jdatetime
import pytest

from workflow.calendar import (
    JALALI_MONTHS_EN,
    JALALI_MONTHS_FA,
    add_working_days,
    format_date,
    format_datetime,
    format_numeric,
    is_working_day,
    jalali_year,
    jalali_year_bounds,
    parse_jalali_date,
    parse_jalali_datetime,
    to_jalali,
    to_tehran,
    working_days_between,
)

UTC = timezone.utc


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_month_names() -> None:
    assert len(JALALI_MONTHS_FA) == len(JALALI_MONTHS_EN) == 12
    assert JALALI_MONTHS_FA[0] == "فروردین" and JALALI_MONTHS_FA[-1] == "اسفند"
    assert JALALI_MONTHS_EN[6] == "Mehr" and JALALI_MONTHS_EN[11] == "Esfand"
    assert not any("\u064a" in m or "\u0643" in m for m in JALALI_MONTHS_FA)


def test_known_conversion_both_ways() -> None:
    assert to_jalali(date(2018, 3, 17)) == jdatetime.date(1396, 12, 26)
    assert format_date(date(2018, 3, 17)) == "۲۶ اسفند ۱۳۹۶"
    assert format_date(date(2018, 3, 17), "en") == "26 Esfand 1396"
    assert format_numeric(date(2018, 3, 17)) == "۱۳۹۶/۱۲/۲۶"
    assert format_numeric(date(2018, 3, 17), "en") == "1396/12/26"
    assert parse_jalali_date("1396/12/26") == date(2018, 3, 17)


def test_nowruz_boundary() -> None:
    assert parse_jalali_date("1403/01/01") == date(2024, 3, 20)
    assert parse_jalali_date("1402/12/29") == date(2024, 3, 19)
    assert jalali_year(date(2024, 3, 19)) == 1402
    assert jalali_year(date(2024, 3, 20)) == 1403
    assert format_date(date(2024, 3, 20), "en") == "1 Farvardin 1403"


def test_format_none_and_locale_variants() -> None:
    assert format_date(None) == ""
    assert format_datetime(None) == ""
    assert format_numeric(None) == ""
    assert format_date(date(2018, 3, 17), "fa_IR") == "۲۶ اسفند ۱۳۹۶"
    assert format_date(date(2018, 3, 17), "en_US") == "26 Esfand 1396"


def test_tehran_shift_changes_the_date() -> None:
    late_evening_utc = utc(2024, 3, 19, 22, 0)
    assert to_tehran(late_evening_utc).date() == date(2024, 3, 20)
    assert to_jalali(late_evening_utc) == jdatetime.date(1403, 1, 1)
    assert jalali_year(late_evening_utc) == 1403
    assert format_datetime(late_evening_utc) == "۱ فروردین ۱۴۰۳ ۰۱:۳۰"
    assert format_datetime(late_evening_utc, "en") == "1 Farvardin 1403 01:30"


def test_naive_datetimes_are_utc() -> None:
    naive = datetime(2024, 3, 19, 22, 0)
    assert to_tehran(naive) == utc(2024, 3, 19, 22, 0)
    assert to_tehran(naive).utcoffset() == timedelta(hours=3, minutes=30)
    assert format_datetime(naive, "en") == "1 Farvardin 1403 01:30"


def test_format_datetime_of_plain_date_has_no_time() -> None:
    assert format_datetime(date(2018, 3, 17), "en") == "26 Esfand 1396"


def test_historical_dst_is_respected() -> None:
    # Iran observed DST (+04:30) until 2022; 12:00 UTC in June 2021 was 16:30.
    assert format_datetime(utc(2021, 6, 1, 12, 0), "en").endswith(" 16:30")


@pytest.mark.parametrize(
    "text",
    ["1396/12/26", "1396-12-26", "۱۳۹۶/۱۲/۲۶", "١٣٩٦-١٢-٢٦", " 1396/12/26 "],
)
def test_parse_jalali_date_formats(text: str) -> None:
    assert parse_jalali_date(text) == date(2018, 3, 17)


def test_parse_single_digit_month_and_day() -> None:
    assert parse_jalali_date("1403/1/1") == date(2024, 3, 20)


def test_parse_month_lengths() -> None:
    assert parse_jalali_date("1403/06/31")  # months 1-6 have 31 days
    assert parse_jalali_date("1403/07/30")
    assert parse_jalali_date("1403/12/30")  # 1403 is a leap year


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("1396/13/01", "month"),
        ("1396/00/10", "month"),
        ("1396/07/31", "Mehr"),
        ("1396/11/31", "Bahman"),
        ("1402/12/30", "Esfand"),  # not a leap year
        ("1396/01/00", "days 1 to 31"),
        ("1396/12-26", "YYYY/MM/DD"),
        ("96/12/26", "YYYY/MM/DD"),
        ("", "YYYY/MM/DD"),
        ("tomorrow", "YYYY/MM/DD"),
    ],
)
def test_parse_jalali_date_errors(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_jalali_date(text)


def test_parse_jalali_datetime_is_tehran_local() -> None:
    expected = utc(2026, 4, 4, 5, 30)  # 15 Farvardin 1405 09:00 at +03:30
    assert parse_jalali_datetime("1405-01-15T09:00") == expected
    assert parse_jalali_datetime("1405/01/15 09:00") == expected
    assert parse_jalali_datetime("۱۴۰۵/۰۱/۱۵ ۰۹:۰۰") == expected
    assert parse_jalali_datetime("1405/01/15 09:00").tzinfo is not None


def test_parse_jalali_datetime_crosses_utc_midnight() -> None:
    assert parse_jalali_datetime("1403/01/01 01:30") == utc(2024, 3, 19, 22, 0)


@pytest.mark.parametrize(
    "text",
    ["1405/01/15", "1405/01/15 24:00", "1405/01/15 09:60", "1405/13/15 09:00", "1405/01/15 9"],
)
def test_parse_jalali_datetime_errors(text: str) -> None:
    with pytest.raises(ValueError):
        parse_jalali_datetime(text)


def test_jalali_year_bounds_are_tehran_midnight() -> None:
    start, end = jalali_year_bounds(1403)
    assert start == utc(2024, 3, 19, 20, 30)
    assert end == utc(2025, 3, 20, 20, 30)
    assert jalali_year(start) == 1403
    assert jalali_year(start - timedelta(seconds=1)) == 1402
    assert jalali_year(end - timedelta(seconds=1)) == 1403
    assert jalali_year(end) == 1404


# 2024-05-15 is a Wednesday; 16th Thursday, 17th Friday, 18th Saturday.
WED = date(2024, 5, 15)
THU = date(2024, 5, 16)
FRI = date(2024, 5, 17)
SAT = date(2024, 5, 18)


def test_is_working_day_week() -> None:
    assert WED.weekday() == 2
    assert is_working_day(WED)
    assert is_working_day(SAT)
    assert not is_working_day(THU)
    assert is_working_day(THU, thursday_off=False)
    assert not is_working_day(FRI)
    assert not is_working_day(FRI, thursday_off=False)
    assert not is_working_day(SAT, holidays={SAT})
    assert not is_working_day(SAT, holidays=frozenset({SAT}))


def test_is_working_day_datetime_uses_tehran_date() -> None:
    # Wednesday 21:00 UTC is already Thursday in Tehran.
    assert not is_working_day(utc(2024, 5, 15, 21, 0))
    assert is_working_day(utc(2024, 5, 15, 20, 0))


def test_add_working_days_skips_thursday_and_friday() -> None:
    start = utc(2024, 5, 15, 6, 30)  # Wednesday 10:00 Tehran
    assert add_working_days(start, 1) == utc(2024, 5, 18, 6, 30)  # Saturday 10:00
    assert add_working_days(start, 3) == utc(2024, 5, 20, 6, 30)  # Monday
    assert add_working_days(start, 1, thursday_off=False) == utc(2024, 5, 16, 6, 30)
    assert add_working_days(start, 2, thursday_off=False) == utc(2024, 5, 18, 6, 30)


def test_add_working_days_skips_holidays() -> None:
    start = utc(2024, 5, 15, 6, 30)
    holidays = frozenset({SAT, SAT + timedelta(days=1)})
    assert add_working_days(start, 1, holidays=holidays) == utc(2024, 5, 20, 6, 30)


def test_add_working_days_across_nowruz_holidays() -> None:
    nowruz = frozenset(date(2024, 3, 20) + timedelta(days=i) for i in range(4))
    start = utc(2024, 3, 19, 5, 30)  # Tuesday 09:00 Tehran
    # 20-23 March are holidays, 21 is also Thursday, 22 Friday -> Sunday the 24th.
    assert add_working_days(start, 1, holidays=nowruz) == utc(2024, 3, 24, 5, 30)


def test_add_working_days_zero_fraction_and_result_type() -> None:
    start = utc(2024, 5, 15, 6, 30)
    assert add_working_days(start, 0) == start
    assert add_working_days(start, 0.5) == add_working_days(start, 1)
    assert add_working_days(start, 1.2) == add_working_days(start, 2)
    result = add_working_days(datetime(2024, 5, 15, 6, 30), 1)  # naive = UTC
    assert result.utcoffset() == timedelta(0)
    assert result == utc(2024, 5, 18, 6, 30)
    with pytest.raises(ValueError):
        add_working_days(start, -1)


def test_add_working_days_keeps_tehran_clock_time_across_utc_date() -> None:
    start = utc(2024, 5, 14, 21, 0)  # Wednesday 00:30 Tehran
    assert add_working_days(start, 1) == utc(2024, 5, 17, 21, 0)  # Saturday 00:30


def test_add_working_days_remembers_by_every_input() -> None:
    """The walk is memoised by date, count, week and holiday set: asking again with one of them
    changed (an admin's new holiday, another office's week) must not get the earlier answer, and
    the clock time is the caller's, not the remembered call's."""
    start = utc(2024, 5, 15, 6, 30)  # Wednesday 10:00 Tehran
    assert add_working_days(start, 1) == utc(2024, 5, 18, 6, 30)
    assert add_working_days(start, 1, holidays={SAT}) == utc(2024, 5, 19, 6, 30)  # a plain set too
    assert add_working_days(start, 1, holidays=frozenset({SAT})) == utc(2024, 5, 19, 6, 30)
    assert add_working_days(start, 1, thursday_off=False) == utc(2024, 5, 16, 6, 30)
    assert add_working_days(start + timedelta(hours=3), 1) == utc(2024, 5, 18, 9, 30)
    assert add_working_days(start, 1) == utc(2024, 5, 18, 6, 30)


def test_add_working_days_from_non_working_day() -> None:
    friday_noon = utc(2024, 5, 17, 8, 30)
    assert add_working_days(friday_noon, 1) == utc(2024, 5, 18, 8, 30)


def test_working_days_between() -> None:
    wed = utc(2024, 5, 15, 6, 30)
    assert working_days_between(wed, wed) == 0
    assert working_days_between(wed, utc(2024, 5, 17, 6, 30)) == 0  # Thu, Fri
    assert working_days_between(wed, utc(2024, 5, 18, 6, 30)) == 1
    assert working_days_between(wed, utc(2024, 5, 22, 6, 30)) == 5
    assert working_days_between(wed, utc(2024, 5, 22, 6, 30), thursday_off=False) == 6
    assert working_days_between(wed, utc(2024, 5, 22, 6, 30), holidays={SAT}) == 4
    assert working_days_between(utc(2024, 5, 22, 6, 30), wed) == -5


@pytest.mark.parametrize("days", [0, 1, 2, 5, 13, 40])
@pytest.mark.parametrize("thursday_off", [True, False])
def test_working_days_between_inverts_add_working_days(days: int, thursday_off: bool) -> None:
    start = utc(2024, 3, 10, 7, 0)
    holidays = frozenset({date(2024, 3, 20), date(2024, 3, 21), date(2024, 4, 1)})
    end = add_working_days(start, days, thursday_off=thursday_off, holidays=holidays)
    assert is_working_day(end, thursday_off=thursday_off, holidays=holidays) or days == 0
    assert working_days_between(start, end, thursday_off=thursday_off, holidays=holidays) == days


def test_add_jalali_years_keeps_the_jalali_day():
    from workflow.calendar import add_jalali_years, format_date

    issued = datetime(2026, 11, 22, 8, 30, tzinfo=timezone.utc)  # 1 Azar 1405, Tehran
    until = add_jalali_years(issued, 3)
    assert format_date(issued, "en") == "1 Azar 1405" and format_date(until, "en") == "1 Azar 1408"
    assert until.tzinfo is not None and until.hour == 8 and until.minute == 30
    # 30 Esfand 1403 (a leap year) → 29 Esfand 1404
    leap_end = datetime(2025, 3, 20, 6, 0, tzinfo=timezone.utc)
    assert format_date(leap_end, "en") == "30 Esfand 1403"
    assert format_date(add_jalali_years(leap_end, 1), "en") == "29 Esfand 1404"

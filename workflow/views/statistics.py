"""The statistics page: a Jalali year's figures against the year before, as officials report them.

Directors see their own province; auditors theirs, or every province and the whole country when
they are national (no province); administrators any. Everyone else gets 403, and asking for a
province out of one's sight is a 403 too (not an empty page, which would read as "nothing
happened there").

Charts are drawn here as inline SVG: no script, nothing fetched, readable by a screen reader
through their title and description, printed with the page. Geometry is computed left to right
and mirrored for a right-to-left page, so bars grow away from their labels in both languages.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from flask import Blueprint, Response, abort, render_template, request
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from .. import labels, replica
from ..calendar import jalali_year, to_tehran
from ..i18n import digits, lang, money, number
from ..models import Province, User, utcnow
from ..services import accounts
from ..services import statistics as stats
from ..text import ascii_digits, format_number, name_key, persian_digits

bp = Blueprint("statistics", __name__)

# What the province field accepts for "no province": the page's own value and what people type.
COUNTRY_WORDS = frozenset(name_key(w) for w in ("all", "country", "iran", "کشور", "کل کشور", "همه", "ایران"))
COUNTRY = "all"
MAX_INPUT = 100  # a province's name or a year is never longer; anything longer is refused unread


@bp.before_request
@login_required
def _signed_in() -> None:
    return None


# -- who sees what -----------------------------------------------------------------------------

def scope(user: User) -> set[int] | None:
    """The provinces whose statistics `user` may read; None: every province and the country."""
    roles = user.roles
    if "admin" in roles:
        return None
    if roles & {"director", "auditor"}:
        # Staff without a province are national (as everywhere else: engine.in_jurisdiction).
        return None if user.province_id is None else {user.province_id}
    abort(403)


@dataclass
class Choice:
    """What the form asked for, once read: a year, a province (None: the country), or errors."""

    year: int
    province: Province | None
    errors: dict[str, str]
    year_text: str
    province_value: str


def read_choice(session: Any, allowed: set[int] | None) -> Choice:
    """The year and province of the query string; defaults are this year and the user's own.

    Years may be typed in Persian, Arabic-Indic or ASCII digits; provinces by code, Persian or
    English name (spelling variants included) or id. A province out of sight is refused (403);
    what cannot be read is a message on the form.
    """
    errors: dict[str, str] = {}
    this_year = jalali_year(to_tehran(utcnow()))
    year_text = (request.args.get("year") or "").strip()[:MAX_INPUT + 1]
    year = this_year
    if year_text:
        plain = ascii_digits(year_text)
        if len(year_text) > MAX_INPUT or not plain.isascii() or not plain.isdigit() \
                or not stats.MIN_YEAR <= int(plain) <= stats.MAX_YEAR:
            errors["year"] = _("Enter a Jalali year between %(a)s and %(b)s, such as %(c)s.",
                               a=digits(stats.MIN_YEAR), b=digits(stats.MAX_YEAR), c=digits(this_year))
        else:
            year = int(plain)

    province_text = (request.args.get("province") or "").strip()
    province: Province | None = None
    if len(province_text) > MAX_INPUT:
        errors["province"] = _("No province has this name.")
    elif province_text and name_key(province_text) not in COUNTRY_WORDS:
        plain = ascii_digits(province_text)
        if plain.isascii() and plain.isdigit():
            province = session.get(Province, int(plain)) if int(plain) < 2**31 else None
        else:
            province = accounts.find_province(session, province_text)
        if province is None:
            errors["province"] = _("No province has this name.")
        elif allowed is not None and province.id not in allowed:
            abort(403)
    elif province_text and allowed is not None:
        abort(403)  # the whole country, asked by someone who sees one province
    elif not province_text and allowed is not None:
        province = session.get(Province, next(iter(allowed)))
    value = province.code if province is not None else COUNTRY
    return Choice(year=year, province=province, errors=errors, year_text=year_text, province_value=value)


def _province_options(session: Any, allowed: set[int] | None) -> list[tuple[str, str]]:
    query = select(Province).order_by(Province.name_fa if lang() == "fa" else Province.name_en)
    if allowed is not None:
        return [(p.code, p.name(lang())) for p in session.scalars(query.where(Province.id.in_(allowed)))]
    return [(COUNTRY, _("The whole country"))] + [(p.code, p.name(lang())) for p in session.scalars(query)]


# -- numbers as the page writes them -----------------------------------------------------------

def decimal_text(value: float | None, persian: bool | None = None) -> str:
    """At most two decimals, none when whole: 2.4, 4, 0.33; "—" for no value.

    Persian pages write Persian digits with the Persian decimal separator (٫, U+066B).
    """
    if value is None:
        return "—"
    persian = lang() == "fa" if persian is None else persian
    # Half up, as people round (33/8 = 4.125 → 4.13), not the float's half-even.
    rounded = Decimal(repr(float(value))).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    text = f"{rounded:f}".rstrip("0").rstrip(".")
    whole, _dot, fraction = text.partition(".")
    grouped = format_number(int(whole), persian)
    if not fraction:
        return grouped
    return grouped + ("\u066b" + persian_digits(fraction) if persian else "." + fraction)


def figure_label(key: str) -> str:
    return labels.label(labels.STATISTICS, key)


def step_label(step: stats.Step) -> str:
    return _("%(state)s → %(action)s", state=labels.label(labels.STATES, step.from_state),
             action=labels.label(labels.ACTIONS, step.action))


def deadline_text(step: stats.Step) -> str:
    deadline = step.deadline
    if deadline is None:
        return ""
    if deadline.working_days is not None:
        return _("%(n)s working days", n=digits(deadline.working_days))
    return _("%(n)s days", n=digits(deadline.calendar_days))


def _value_text(figure: stats.Figure, value: int) -> str:
    return money(value) if figure.is_money else number(value)


# -- charts ------------------------------------------------------------------------------------

WIDTH = 720
LABEL_WIDTH = 270
VALUE_ROOM = 110  # beyond the longest bar, for its value
BAR = 14
ROW_GAP = 14
TOP = 34  # the legend


@dataclass
class Bar:
    x: float
    y: float
    width: float
    series: str  # "this" or "last": the colour
    text: str
    text_x: float
    title: str


@dataclass
class Row:
    label: str
    label_x: float
    y: float
    title: str
    bars: list[Bar]
    mark: tuple[float, float, float, str] | None = None  # x, y1, y2, title of a deadline line


def paired_bars(chart_id: str, title: str, rows: list[dict[str, Any]], year: int,
                fmt: Callable[[float], str]) -> dict[str, Any]:
    """A horizontal bar chart with this year's and last year's bar for each row.

    `rows`: label, this, last (numbers, None for nothing), optionally mark (a value drawn as a
    line across the row, the deadline). Returns everything the template's SVG needs.
    """
    rtl = lang() == "fa"
    area = WIDTH - LABEL_WIDTH - VALUE_ROOM
    biggest = max([v for r in rows for v in (r["this"], r["last"], r.get("mark")) if v] or [1])

    def x(left_to_right: float) -> float:
        """Mirror for a right-to-left page: the label column sits at the reading start."""
        return round(WIDTH - left_to_right if rtl else left_to_right, 1)

    names = {"this": digits(year), "last": digits(year - 1)}
    drawn: list[Row] = []
    summary: list[str] = []
    for i, row in enumerate(rows):
        top = TOP + i * (2 * BAR + 2 + ROW_GAP)
        bars = []
        for j, series in enumerate(("this", "last")):
            value = row[series]
            width = round(area * (value or 0) / biggest, 1)
            start = LABEL_WIDTH
            text = fmt(value) if value is not None else "—"
            bars.append(Bar(
                x=x(start + width) if rtl else x(start), y=top + j * (BAR + 2), width=width, series=series,
                text=text, text_x=x(start + width + 4), title=_("%(label)s, %(year)s: %(value)s",
                                                                  label=row["label"], year=names[series], value=text),
            ))
        mark = None
        if row.get("mark"):
            mx = x(LABEL_WIDTH + area * row["mark"] / biggest)
            mark = (mx, top - 3, top + 2 * BAR + 5, _("Deadline: %(value)s", value=fmt(row["mark"])))
        line = _("%(label)s: %(this)s in %(year)s, %(last)s in %(last_year)s", label=row["label"],
                 this=bars[0].text, year=names["this"], last=bars[1].text, last_year=names["last"])
        summary.append(line)
        drawn.append(Row(label=row["label"], label_x=x(8), y=top + BAR + 5, title=line, bars=bars, mark=mark))
    height = TOP + len(rows) * (2 * BAR + 2 + ROW_GAP) + 6
    legend = [
        {"series": s, "x": x(LABEL_WIDTH + k * 90), "text_x": x(LABEL_WIDTH + k * 90 + 18), "text": names[s]}
        for k, s in enumerate(("this", "last"))
    ]
    # In a right-to-left chart a swatch's x is its right edge mirrored: shift by its width.
    for item in legend:
        if rtl:
            item["x"] = round(item["x"] - 12, 1)
    return {"id": chart_id, "title": title, "desc": "; ".join(summary), "width": WIDTH, "height": height,
            "rows": drawn, "legend": legend, "dir": "rtl" if rtl else "ltr"}


def charts(report: stats.Report) -> list[dict[str, Any]]:
    counts = [f for f in report.figures if not f.is_money]
    amounts = [f for f in report.figures if f.is_money]
    result = [
        paired_bars("chart-figures", _("Figures of %(year)s against %(last)s", year=digits(report.year),
                                       last=digits(report.last_year)),
                    [{"label": figure_label(f.key), "this": f.this_year, "last": f.last_year} for f in counts],
                    report.year, lambda v: number(int(v))),
        paired_bars("chart-money", _("Grants: amounts awarded and disbursed"),
                    [{"label": figure_label(f.key), "this": f.this_year, "last": f.last_year} for f in amounts],
                    report.year, lambda v: money(int(v))),
    ]
    if report.steps:
        result.append(paired_bars(
            "chart-steps", _("Median working days per step"),
            [{"label": step_label(s), "this": s.this_year.median, "last": s.last_year.median,
              "mark": s.deadline.working_days if s.deadline is not None else None} for s in report.steps],
            report.year, lambda v: decimal_text(v)))
    return result


# -- pages -------------------------------------------------------------------------------------

@bp.get("/statistics")
def index():  # type: ignore[no-untyped-def]
    session = replica.session()  # the read replica when there is one
    allowed = scope(current_user)
    choice = read_choice(session, allowed)
    options = _province_options(session, allowed)
    if choice.errors:
        return render_template("statistics/index.html", choice=choice, options=options, report=None,
                               charts=[]), 400
    report, as_of = stats.for_page(session, choice.year, choice.province.id if choice.province else None)
    return render_template(
        "statistics/index.html", choice=choice, options=options, report=report, as_of=as_of, charts=charts(report),
        figure_label=figure_label, step_label=step_label, deadline_text=deadline_text, decimal_text=decimal_text,
        value_text=_value_text, has_data=stats.years_with_data(report.figures),
    )


@bp.get("/statistics.csv")
def export():  # type: ignore[no-untyped-def]
    """One row per figure: figure, this year, last year, ratio. UTF-8 with a BOM, so a
    spreadsheet opened by double-click reads the Persian names; numbers in ASCII digits, amounts
    in rials (the books' unit), so it sums them."""
    session = replica.session()  # the read replica when there is one
    allowed = scope(current_user)
    choice = read_choice(session, allowed)
    if choice.errors:
        return render_template("errors/error.html", status=400,
                               message=" ".join(choice.errors.values())), 400
    report, _as_of = stats.for_page(session, choice.year, choice.province.id if choice.province else None)
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow([_("Figure"), str(report.year), str(report.last_year), _("Ratio")])
    for f in report.figures:
        label = figure_label(f.key)
        if f.is_money:
            label = _("%(figure)s (rials)", figure=label)
        writer.writerow([label, f.this_year, f.last_year, decimal_text(f.ratio, persian=False)])
    for step in report.steps:
        writer.writerow([_("Median working days: %(step)s", step=step_label(step)),
                         decimal_text(step.this_year.median, persian=False),
                         decimal_text(step.last_year.median, persian=False),
                         decimal_text(step.median_ratio, persian=False)])
    place = choice.province.code if choice.province else "iran"
    return Response(out.getvalue().encode("utf-8"), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="statistics-{report.year}-{place}.csv"',
    })

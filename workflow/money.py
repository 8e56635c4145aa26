"""Amounts of money: stored as whole rials, spoken and typed in tomans or rials.

People write amounts with Persian or Arabic-Indic digits and group them with a comma, the
Arabic thousands separator (٬), the Persian comma (،), a dot or spaces; all of that is read
here. One toman is ten rials.
"""
from __future__ import annotations

import re
from typing import Any

from .text import ascii_digits, format_number, persian_digits

UNITS = ("toman", "rial")
RIALS_PER = {"toman": 10, "rial": 1}
_SEPARATORS = re.compile(r"[\s,\u066c\u060c._'\u200c\u00a0\u202f]+")
_TENTHS = re.compile(r"[.\u066b](\d)$")
MAX_RIALS = 10**17  # far beyond any budget; keeps a typo from overflowing a BIGINT


def parse_amount(value: Any, unit: str = "rial") -> int | None:
    """Whole rials from an int or a typed amount in `unit`; None if it is not a whole amount.

    A bare integer from JSON is taken as is; text may carry digits of any script and grouping.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        text = ascii_digits(value.strip())
        tenths = 0
        # "1234.5" or "۱۲۳۴٫۵" tomans: one decimal digit is a part of a toman (what
        # `shown_amount` writes); a dot before three digits is grouping ("1.250.000").
        fraction = _TENTHS.search(text)
        if fraction:
            if unit != "toman":
                return None  # there is no part of a rial
            tenths, text = int(fraction.group(1)), text[:fraction.start()]
        text = _SEPARATORS.sub("", text)
        if not text.isdigit() or not text.isascii() or len(text) > 30:  # int() refuses 4,300 digits
            return None
        return _checked(int(text) * RIALS_PER.get(unit, 1) + tenths)
    else:
        return None
    return _checked(number * RIALS_PER.get(unit, 1))


def _checked(rials: int) -> int | None:
    return rials if 0 <= rials <= MAX_RIALS else None


def shown_amount(rials: int | None, unit: str, persian: bool) -> str:
    """The number a user reads or edits in their unit, grouped, without the unit's name.

    Rials that do not make whole tomans keep their fraction (12,345 rials are 1,234.5 tomans)
    rather than being rounded away.
    """
    if rials is None:
        return ""
    if unit == "toman":
        whole, rest = divmod(int(rials), 10)
        text = format_number(whole, persian)
        if rest:
            text += "\u066b" + persian_digits(rest) if persian else f".{rest}"
        return text
    return format_number(int(rials), persian)


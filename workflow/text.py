"""Normalisation of Persian user input.

Persian text reaches us from many keyboards: Windows' Arabic layout types
Arabic yeh/kaf, phones type Arabic-Indic digits, and copy-paste from Word or
PDFs brings NBSPs, tatweel and stray zero-width non-joiners. Two strings that
a Persian reader sees as identical must compare (and be stored) identically,
otherwise uniqueness checks and searches silently miss matches.
"""

from __future__ import annotations

import re

ZWNJ = "\u200c"

_PERSIAN_DIGITS = "۰۱۲۳۴۵۶۷۸۹"
_ARABIC_DIGITS = "٠١٢٣٤٥٦٧٨٩"
_ASCII_DIGITS = "0123456789"

_TO_ASCII_DIGITS = str.maketrans(_PERSIAN_DIGITS + _ARABIC_DIGITS, _ASCII_DIGITS * 2)
_TO_PERSIAN_DIGITS = str.maketrans(_ASCII_DIGITS, _PERSIAN_DIGITS)

_CHAR_MAP = str.maketrans(
    {
        "\u064a": "\u06cc",  # Arabic yeh -> Persian yeh
        "\u0649": "\u06cc",  # alef maksura -> Persian yeh
        "\u0643": "\u06a9",  # Arabic kaf -> Persian keheh
        "\u0640": None,  # tatweel is purely decorative stretching
        **{ord(a): p for a, p in zip(_ARABIC_DIGITS + _PERSIAN_DIGITS, _ASCII_DIGITS * 2)},
    }
)

# Applied on top of normalize_line() only for comparison keys: these are
# spelling variants a searcher should not have to match exactly, but they are
# kept in stored text because they are legitimate orthography.
_KEY_MAP = str.maketrans(
    {
        "\u0629": "\u0647",  # teh marbuta -> heh
        "\u06c0": "\u0647",  # heh with yeh above -> heh
        "\u0623": "\u0627",  # alef with hamza above -> alef
        "\u0625": "\u0627",  # alef with hamza below -> alef
    }
)

_DIACRITICS_RE = re.compile("[\u064b-\u065f\u0670]")
_SPACE_RE = re.compile(r"\s+")
_ZWNJ_RUN_RE = re.compile(ZWNJ + "{2,}")
# A ZWNJ next to a space carries no meaning and usually marks a half-fixed
# typo ("سمن ‌ها"); removing it lets the space collapse normally.
_ZWNJ_BY_SPACE_RE = re.compile(rf"{ZWNJ}(?=\s)|(?<=\s){ZWNJ}")
_ID_SEPARATORS_RE = re.compile(r"[\s\-\u2010-\u2015\u2212.]+")
_NATIONAL_ID_RE = re.compile(r"[0-9]{10}")


def ascii_digits(value: str) -> str:
    """Turn Persian and Arabic-Indic digits into ASCII so int() and regexes work."""
    return value.translate(_TO_ASCII_DIGITS)


def whole_number(value: object, max_digits: int = 30) -> int | None:
    """The whole number typed in `value` (ASCII, Persian or Arabic-Indic digits, spaces around
    it), or None for anything else, text too long to be a number we keep included.

    `str.isdigit()` alone is not the test: it accepts digits that int() refuses (superscripts
    such as "²", circled digits), and int() refuses a string of more than 4,300 digits; each
    was a 500 where a 4xx was due.
    """
    if not isinstance(value, str):
        return None
    text = ascii_digits(value.strip())
    if not text or len(text) > max_digits or not text.isascii() or not text.isdigit():
        return None
    return int(text)


def persian_digits(value: object) -> str:
    """Render ASCII digits as Persian ones for display in fa pages."""
    return str(value).translate(_TO_PERSIAN_DIGITS)


def _normalize_lines(value: str) -> list[str]:
    text = _ZWNJ_RUN_RE.sub(ZWNJ, value.translate(_CHAR_MAP))
    lines = []
    for raw in text.splitlines():
        line = _ZWNJ_BY_SPACE_RE.sub("", raw)
        line = _SPACE_RE.sub(" ", line).strip(" " + ZWNJ)
        lines.append(line)
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return lines


def normalize(value: str | None) -> str:
    """Canonical form for storing free text, keeping line breaks.

    Line breaks survive because multi-line fields (descriptions, addresses)
    carry meaning in their layout; everything else that differs only in
    invisible or keyboard-dependent ways is unified.
    """
    if value is None:
        return ""
    return "\n".join(_normalize_lines(value))


def normalize_line(value: str | None) -> str:
    """Like normalize() but for one-line fields such as names, where a pasted
    newline is always an accident."""
    if value is None:
        return ""
    return " ".join(line for line in _normalize_lines(value) if line)


def name_key(value: str | None) -> str:
    """Comparison key for uniqueness checks and search.

    Spaces and ZWNJ are dropped entirely because Persian writers disagree on
    whether compound words are joined, half-spaced or spaced ("سمن‌ها",
    "سمنها", "سمن ها"); the key must not depend on that choice.
    """
    key = normalize_line(value).casefold()
    key = _DIACRITICS_RE.sub("", key).translate(_KEY_MAP)
    return _SPACE_RE.sub("", key).replace(ZWNJ, "")


def clean_national_id(value: str | None) -> str:
    """Strip the grouping people add when typing a کد ملی ("049-937089-9")."""
    if value is None:
        return ""
    return _ID_SEPARATORS_RE.sub("", ascii_digits(value))


def is_valid_national_id(value: str | None) -> bool:
    """Check an Iranian national id (کد ملی) including its check digit.

    All-same-digit ids satisfy the checksum arithmetic but are never issued;
    people type them to get past a required field, so they are rejected.
    """
    digits = clean_national_id(value)
    if not _NATIONAL_ID_RE.fullmatch(digits) or len(set(digits)) == 1:
        return False
    s = sum(int(digits[i]) * (10 - i) for i in range(9)) % 11
    check = int(digits[9])
    return check == s if s < 2 else check == 11 - s


def format_number(n: int, persian: bool = True) -> str:
    """Group thousands the way each locale's readers expect.

    Persian uses the Arabic thousands separator (U+066C) because an ASCII
    comma is visually confusable with the Persian comma "،" in RTL text.
    """
    grouped = f"{n:,}"
    if not persian:
        return grouped
    return persian_digits(grouped.replace(",", "\u066c"))

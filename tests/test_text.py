import pytest

from workflow.text import (
    ascii_digits,
    clean_national_id,
    format_number,
    is_valid_national_id,
    name_key,
    normalize,
    normalize_line,
    persian_digits,
)

ZWNJ = "\u200c"


def _with_check_digit(first_nine: str) -> str:
    """Build a valid id independently of the module under test."""
    s = sum(int(first_nine[i]) * (10 - i) for i in range(9)) % 11
    return first_nine + str(s if s < 2 else 11 - s)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("\u064a", "\u06cc"),  # Arabic yeh
        ("\u0649", "\u06cc"),  # alef maksura
        ("\u0643", "\u06a9"),  # Arabic kaf
        ("\u06cc\u06a9", "\u06cc\u06a9"),  # Persian letters untouched
        ("۰۱۲۳۴۵۶۷۸۹", "0123456789"),
        ("٠١٢٣٤٥٦٧٨٩", "0123456789"),
        ("0123456789", "0123456789"),
        ("كـــرمان", "کرمان"),  # tatweel removed
    ],
)
def test_normalize_character_mappings(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_normalize_none_and_empty() -> None:
    assert normalize(None) == ""
    assert normalize("") == ""
    assert normalize(" \n\t\u00a0\n ") == ""
    assert normalize_line(None) == ""


def test_normalize_collapses_horizontal_whitespace_but_keeps_lines() -> None:
    raw = "\n\n  انجمن \t\u00a0 حمایت  \r\n  از   کودکان  \n\n"
    assert normalize(raw) == "انجمن حمایت\nاز کودکان"


def test_normalize_keeps_inner_blank_line_between_paragraphs() -> None:
    assert normalize("بند اول\n\nبند دوم") == "بند اول\n\nبند دوم"


def test_normalize_line_joins_lines() -> None:
    assert normalize_line("  علی \n\n  رضایی \n") == "علی رضایی"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (f"سمن{ZWNJ}ها", f"سمن{ZWNJ}ها"),  # a correct ZWNJ is kept
        (f"سمن{ZWNJ}{ZWNJ}{ZWNJ}ها", f"سمن{ZWNJ}ها"),  # runs collapse
        (f"سمن {ZWNJ}ها", "سمن ها"),  # next to a space it goes
        (f"سمن{ZWNJ} ها", "سمن ها"),
        (f"سمن {ZWNJ}{ZWNJ} ها", "سمن ها"),  # and the spaces then collapse
        (f"سمن\u00a0{ZWNJ}ها", "سمن ها"),  # NBSP counts as a space
        (f"{ZWNJ}سمن‌ها{ZWNJ}", f"سمن{ZWNJ}ها"),  # ends
        (f"الف{ZWNJ}\nب", "الف\nب"),  # line ends count as ends
    ],
)
def test_normalize_zwnj(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_normalize_real_sentence_with_arabic_letters() -> None:
    raw = "مؤسسه خيريه حمايت از كودكان  كار در استان كرمان"
    expected = "مؤسسه خیریه حمایت از کودکان کار در استان کرمان"
    assert normalize(raw) == expected
    assert "\u064a" not in normalize(raw) and "\u0643" not in normalize(raw)


def test_normalize_is_idempotent() -> None:
    raw = f"  ١٢ كيلو {ZWNJ}{ZWNJ} ـ متر\n\n x  "
    assert normalize(normalize(raw)) == normalize(raw)


@pytest.mark.parametrize(
    "variant",
    [
        f"سمن{ZWNJ}ها",
        "سمنها",
        "سمن ها",
        "سمن  ها",
        f"سمن {ZWNJ} ها",
        "  سمن\u00a0ها\n",
    ],
)
def test_name_key_spacing_variants_are_equal(variant: str) -> None:
    assert name_key(variant) == name_key("سمنها")


def test_name_key_real_text_with_arabic_yeh_and_kaf() -> None:
    arabic_keyboard = "انجمن حمايت از كودكان كار و خيابان"
    persian_keyboard = f"انجمن حمایت از کودکان{ZWNJ}کار و خیابان"
    assert name_key(arabic_keyboard) == name_key(persian_keyboard)


def test_name_key_letter_variants() -> None:
    assert name_key("مؤسسهٔ خیریه") == name_key("مؤسسه خیریه")  # hamza above heh
    assert name_key("مؤسسۀ خیریه") == name_key("مؤسسه خیریه")
    assert name_key("جمعية") == name_key("جمعیه")
    assert name_key("أحمد") == name_key("احمد") == name_key("إحمد")
    assert name_key("مُحَمَّد") == name_key("محمد")
    assert name_key("Green  NGO") == name_key("greenngo")
    assert name_key("ـمحمدـ") == name_key("محمد")


def test_name_key_keeps_alef_madda_and_real_differences() -> None:
    assert name_key("آرمان") != name_key("ارمان")
    assert name_key("کرمان") != name_key("کرمانشاه")
    assert name_key(None) == ""


def test_digit_conversion() -> None:
    assert ascii_digits("۱۴۰۳/٠٥/۰۹ abc") == "1403/05/09 abc"
    assert persian_digits(1403) == "۱۴۰۳"
    assert persian_digits("No. 12-3") == "No. ۱۲-۳"
    assert ascii_digits(persian_digits(9876543210)) == "9876543210"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("049-937089-9", "0499370899"),
        ("049 937 0899", "0499370899"),
        ("049.937.089.9", "0499370899"),
        ("۰۴۹۹۳۷۰۸۹۹", "0499370899"),
        ("٠٤٩٩٣٧٠٨٩٩", "0499370899"),
        (" 0499370899\u00a0", "0499370899"),
        (None, ""),
    ],
)
def test_clean_national_id(raw: str | None, expected: str) -> None:
    assert clean_national_id(raw) == expected


@pytest.mark.parametrize(
    "national_id",
    [
        "0499370899",
        "0790419904",
        "0084575948",
        "۰۴۹۹۳۷۰۸۹۹",
        "049-937089-9",
        _with_check_digit("298765432"),
        _with_check_digit("123456789"),
        _with_check_digit("000000001"),
    ],
)
def test_valid_national_ids(national_id: str) -> None:
    assert is_valid_national_id(national_id)


def test_check_digit_branches_are_both_covered() -> None:
    # s < 2 means the check digit equals s; find cases of both kinds so each
    # branch of the rule is exercised, not only the common one.
    low = [
        _with_check_digit(f"{n:09d}")
        for n in range(100000, 100200)
        if sum(int(c) * (10 - i) for i, c in enumerate(f"{n:09d}")) % 11 < 2
    ]
    assert low
    for national_id in low:
        assert is_valid_national_id(national_id)


@pytest.mark.parametrize(
    "national_id",
    [
        "0499370898",  # wrong check digit
        "0499370890",
        "049937089",  # 9 digits
        "04993708990",  # 11 digits
        "04993708a9",
        "abcdefghij",
        "0000000000",
        "1111111111",
        "5555555555",
        "",
        None,
    ],
)
def test_invalid_national_ids(national_id: str | None) -> None:
    assert not is_valid_national_id(national_id)


def test_every_wrong_check_digit_is_rejected() -> None:
    valid = "0790419904"
    for digit in "0123456789":
        candidate = valid[:9] + digit
        assert is_valid_national_id(candidate) == (candidate == valid)


def test_format_number() -> None:
    assert format_number(1234567) == "۱٬۲۳۴٬۵۶۷"
    assert format_number(1234567, persian=False) == "1,234,567"
    assert format_number(999) == "۹۹۹"
    assert format_number(0, persian=False) == "0"
    assert format_number(-2500000, persian=False) == "-2,500,000"

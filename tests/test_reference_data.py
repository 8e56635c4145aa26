import re

from workflow.reference_data import FIELD_CODES, FIELDS, PROVINCES
from workflow.text import name_key, normalize

ARABIC_LETTERS = re.compile("[\u064a\u0649\u0643]")  # ي ى ك

KERMAN_DEPRIVED = [
    "فاریاب",
    "قلعه گنج",
    "رودبار جنوب",
    "منوجان",
    "عنبرآباد",
    "ریگان",
    "نرماشیر",
    "ارزوئیه",
    "رابر",
    "کوهبنان",
]


def _province(code: str) -> dict:
    return next(p for p in PROVINCES if p["code"] == code)


def _all_persian_names() -> list[str]:
    names = [p["name_fa"] for p in PROVINCES] + [f["name_fa"] for f in FIELDS]
    names += [fa for p in PROVINCES for fa, _ in p["counties"]]
    return names


def test_thirty_one_provinces_with_unique_codes_and_names() -> None:
    assert len(PROVINCES) == 31
    for key in ("code", "name_en"):
        assert len({p[key] for p in PROVINCES}) == 31
    assert len({name_key(p["name_fa"]) for p in PROVINCES}) == 31


def test_province_codes_are_ascii_slugs() -> None:
    for province in PROVINCES:
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", province["code"]), province["code"]
    assert {"kerman", "qazvin", "tehran", "khorasan-razavi"} <= {p["code"] for p in PROVINCES}


def test_persian_names_use_persian_letters_and_are_normalized() -> None:
    for name in _all_persian_names():
        assert name
        assert not ARABIC_LETTERS.search(name), name
        assert normalize(name) == name, name


def test_only_pilot_provinces_have_counties() -> None:
    with_counties = {p["code"] for p in PROVINCES if p["counties"]}
    assert with_counties == {"kerman", "qazvin"}


def test_kerman_has_the_deprived_counties() -> None:
    kerman = _province("kerman")
    persian = [fa for fa, _ in kerman["counties"]]
    for county in KERMAN_DEPRIVED:
        assert county in persian, county
    english = {en for _, en in kerman["counties"]}
    assert {"Kerman", "Rafsanjan", "Sirjan", "Bam", "Jiroft", "Rudbar-e Jonubi"} <= english


def test_qazvin_counties() -> None:
    english = {en for _, en in _province("qazvin")["counties"]}
    assert len(english) >= 6
    assert {"Qazvin", "Takestan", "Abyek", "Buin Zahra", "Alborz", "Avaj"} <= english


def test_county_names_unique_within_province() -> None:
    for province in PROVINCES:
        counties = province["counties"]
        assert len({name_key(fa) for fa, _ in counties}) == len(counties)
        assert len({en for _, en in counties}) == len(counties)


def test_fields() -> None:
    codes = [f["code"] for f in FIELDS]
    assert len(codes) == len(set(codes))
    assert FIELD_CODES == frozenset(codes)
    assert len({name_key(f["name_fa"]) for f in FIELDS}) == len(FIELDS)
    assert {"children", "women", "social_harms", "addiction_recovery", "family_counselling"} <= FIELD_CODES
    names = {f["code"]: f["name_fa"] for f in FIELDS}
    assert names["children"] == "کودکان"
    assert names["social_harms"] == "آسیب\u200cهای اجتماعی"

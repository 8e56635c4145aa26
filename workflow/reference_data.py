"""Reference data (provinces, counties, fields of activity) seeded into the DB.

Kept in code rather than a fixture file so it is reviewed like code: every
Persian name here becomes a lookup target, and a single Arabic ي/ك would make
a province unfindable from a Persian keyboard. Persian names are therefore
written exactly as normalize() would store them.

Counties are listed only for provinces with a pilot office (Kerman, Qazvin);
other provinces get theirs when they onboard, from official lists.
"""

from __future__ import annotations

from typing import TypedDict


class Province(TypedDict):
    code: str
    name_fa: str
    name_en: str
    counties: list[tuple[str, str]]


class Field(TypedDict):
    code: str
    name_fa: str
    name_en: str


def _province(
    code: str, name_fa: str, name_en: str, counties: list[tuple[str, str]] | None = None
) -> Province:
    return {"code": code, "name_fa": name_fa, "name_en": name_en, "counties": counties or []}


# Includes the ten counties the domain document classes as deprived (فاریاب،
# قلعه گنج، رودبار جنوب، منوجان، عنبرآباد، ریگان، نرماشیر، ارزوئیه، رابر،
# کوهبنان); their spellings follow that document so its lists match verbatim.
_KERMAN_COUNTIES: list[tuple[str, str]] = [
    ("کرمان", "Kerman"),
    ("رفسنجان", "Rafsanjan"),
    ("سیرجان", "Sirjan"),
    ("بم", "Bam"),
    ("جیرفت", "Jiroft"),
    ("زرند", "Zarand"),
    ("شهربابک", "Shahr-e Babak"),
    ("بافت", "Baft"),
    ("بردسیر", "Bardsir"),
    ("کهنوج", "Kahnuj"),
    ("راور", "Ravar"),
    ("انار", "Anar"),
    ("رابر", "Rabor"),
    ("رودبار جنوب", "Rudbar-e Jonubi"),
    ("منوجان", "Manujan"),
    ("قلعه گنج", "Qaleh Ganj"),
    ("فاریاب", "Faryab"),
    ("عنبرآباد", "Anbarabad"),
    ("ریگان", "Rigan"),
    ("نرماشیر", "Narmashir"),
    ("فهرج", "Fahraj"),
    ("ارزوئیه", "Arzuiyeh"),
    ("کوهبنان", "Kuhbanan"),
]

_QAZVIN_COUNTIES: list[tuple[str, str]] = [
    ("قزوین", "Qazvin"),
    ("تاکستان", "Takestan"),
    ("آبیک", "Abyek"),
    ("بوئین‌زهرا", "Buin Zahra"),
    ("البرز", "Alborz"),
    ("آوج", "Avaj"),
]

# Codes mirror the Persian word order ("خراسان رضوی" -> khorasan-razavi) so
# the paired provinces sort together.
PROVINCES: list[Province] = [
    _province("alborz", "البرز", "Alborz"),
    _province("ardabil", "اردبیل", "Ardabil"),
    _province("bushehr", "بوشهر", "Bushehr"),
    _province("chaharmahal-bakhtiari", "چهارمحال و بختیاری", "Chaharmahal and Bakhtiari"),
    _province("azerbaijan-east", "آذربایجان شرقی", "East Azerbaijan"),
    _province("fars", "فارس", "Fars"),
    _province("gilan", "گیلان", "Gilan"),
    _province("golestan", "گلستان", "Golestan"),
    _province("hamadan", "همدان", "Hamadan"),
    _province("hormozgan", "هرمزگان", "Hormozgan"),
    _province("ilam", "ایلام", "Ilam"),
    _province("isfahan", "اصفهان", "Isfahan"),
    _province("kerman", "کرمان", "Kerman", _KERMAN_COUNTIES),
    _province("kermanshah", "کرمانشاه", "Kermanshah"),
    _province("khorasan-north", "خراسان شمالی", "North Khorasan"),
    _province("khorasan-razavi", "خراسان رضوی", "Razavi Khorasan"),
    _province("khorasan-south", "خراسان جنوبی", "South Khorasan"),
    _province("khuzestan", "خوزستان", "Khuzestan"),
    _province("kohgiluyeh-boyer-ahmad", "کهگیلویه و بویراحمد", "Kohgiluyeh and Boyer-Ahmad"),
    _province("kurdistan", "کردستان", "Kurdistan"),
    _province("lorestan", "لرستان", "Lorestan"),
    _province("markazi", "مرکزی", "Markazi"),
    _province("mazandaran", "مازندران", "Mazandaran"),
    _province("qazvin", "قزوین", "Qazvin", _QAZVIN_COUNTIES),
    _province("qom", "قم", "Qom"),
    _province("semnan", "سمنان", "Semnan"),
    _province("sistan-baluchestan", "سیستان و بلوچستان", "Sistan and Baluchestan"),
    _province("tehran", "تهران", "Tehran"),
    _province("azerbaijan-west", "آذربایجان غربی", "West Azerbaijan"),
    _province("yazd", "یزد", "Yazd"),
    _province("zanjan", "زنجان", "Zanjan"),
]

FIELDS: list[Field] = [
    {"code": "children", "name_fa": "کودکان", "name_en": "Children"},
    {"code": "women", "name_fa": "زنان", "name_en": "Women"},
    {"code": "social_harms", "name_fa": "آسیب‌های اجتماعی", "name_en": "Social harms"},
    {"code": "employment", "name_fa": "اشتغال", "name_en": "Employment"},
    {"code": "addiction_recovery", "name_fa": "ترک اعتیاد", "name_en": "Addiction recovery"},
    {"code": "disability", "name_fa": "معلولان", "name_en": "Disability"},
    {"code": "elderly", "name_fa": "سالمندان", "name_en": "Elderly"},
    {"code": "environment", "name_fa": "محیط زیست", "name_en": "Environment"},
    {"code": "culture", "name_fa": "فرهنگی", "name_en": "Culture"},
    {"code": "health", "name_fa": "سلامت", "name_en": "Health"},
    {"code": "education", "name_fa": "آموزش", "name_en": "Education"},
    {"code": "charity", "name_fa": "خیریه", "name_en": "Charity"},
    {"code": "youth", "name_fa": "جوانان", "name_en": "Youth"},
    {"code": "family_counselling", "name_fa": "مشاوره خانواده", "name_en": "Family counselling"},
]

FIELD_CODES: frozenset[str] = frozenset(field["code"] for field in FIELDS)

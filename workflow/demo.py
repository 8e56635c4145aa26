"""Demo data for `make run`: the Kerman and Qazvin offices of domain.md and their NGOs.

Cases are moved through the real engine so the demo's histories are the ones users would
produce, not rows typed into tables.
"""
from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import engine
from .calendar import jalali_year, to_tehran
from .models import User, utcnow
from .services import accounts, applications

DEMO_PASSWORD = "demo1234"
OFFICE_ROLES = ("intake", "expert", "director", "finance", "auditor")

NGOS = {
    "kerman": [
        ("انجمن حمایت از کودکان کار کرمان", "Kerman", "children"),
        ("مؤسسه خیریه مهرآفرین رفسنجان", "Rafsanjan", "charity"),
        ("جمعیت زنان کارآفرین سیرجان", "Sirjan", "women"),
        ("کانون سالمندان بم", "Bam", "elderly"),
        ("انجمن توانبخشی معلولان جیرفت", "Jiroft", "disability"),
        ("سمن محیط زیست کوهبنان", "Kuhbanan", "environment"),
    ],
    "qazvin": [
        ("مجمع خیرین اشتغال قزوین", "Qazvin", "employment"),
        ("انجمن بهبودیافتگان اعتیاد تاکستان", "Takestan", "addiction_recovery"),
        ("کانون فرهنگی جوانان آبیک", "Abyek", "culture"),
    ],
}

FOUNDER_NAMES = [
    "زهرا احمدی", "علی رضایی", "مریم حسینی", "حسین کریمی", "فاطمه موسوی", "محمد جعفری",
    "نرگس صادقی", "رضا قاسمی", "سمیه نوری", "مهدی کاظمی",
]


def national_id(rng: random.Random) -> str:
    """A random national ID with a correct check digit, so demo data passes validation."""
    while True:
        body = [rng.randint(0, 9) for _ in range(9)]
        if len(set(body)) == 1:
            continue
        s = sum(d * (10 - i) for i, d in enumerate(body)) % 11
        check = s if s < 2 else 11 - s
        return "".join(map(str, body)) + str(check)


def minimal_pdf(title: str = "Statute") -> bytes:
    """A small valid one-page PDF, for the demo's statutes and for tests."""
    text = title.encode("latin-1", "replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\nBT /F1 18 Tf 72 770 Td (" % (len(text) + 36) + text
        + b") Tj ET\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def seed(session: Session) -> list[tuple[str, str]]:
    """Create the demo once; returns (login, roles) pairs to print. Safe to run twice."""
    logins: list[tuple[str, str]] = []
    if session.scalar(select(User.id).where(User.email == "admin@demo.ir")):
        return _describe(session)
    rng = random.Random(1405)
    accounts.create_user(session, email="admin@demo.ir", password=DEMO_PASSWORD, name="مدیر سامانه",
                         roles=["admin"])
    for code, ngos in NGOS.items():
        province = accounts.find_province(session, code)
        assert province is not None, code
        staff: dict[str, User] = {}
        for role in OFFICE_ROLES:
            staff[role] = accounts.create_user(
                session, email=f"{role}.{code}@demo.ir", password=DEMO_PASSWORD,
                name=f"{_ROLE_FA[role]} {province.name_fa}", roles=[role], province=province,
            )
        holders: list[tuple[User, Any]] = []
        for i, (name, county_name, field) in enumerate(ngos):
            county = accounts.find_county(session, province, county_name)
            org = accounts.create_organization(session, name=name, province=province, county=county)
            member = accounts.create_user(
                session, email=f"ngo{i + 1}.{code}@demo.ir", password=DEMO_PASSWORD,
                name=f"نماینده {name}", roles=["applicant"], organizations=[org],
            )
            target = _DEMO_STATES[i % len(_DEMO_STATES)]
            _case_in_state(session, rng, member, org, county_name, field, staff, target)
            if target == "approved":
                holders.append((member, org))
        _grants(session, province, staff, holders)
    return _describe(session)


# One open programme per province, from the seeds: Kerman's facilitation offices were set up
# with a credit of 2 billion tomans; Qazvin's budget is the demo's own figure.
_PROGRAMMES = {
    "kerman": ("تسهیل‌گری محله‌های حاشیه‌نشین", 20_000_000_000, 1_500_000_000,
               ["charity", "children", "women", "social_harms", "family_counselling"]),
    "qazvin": ("حمایت از بهبودیافتگان و اشتغال", 8_000_000_000, 800_000_000,
               ["addiction_recovery", "employment", "culture"]),
}


def _grants(session: Session, province: Any, staff: dict[str, User], holders: list[tuple[User, Any]]) -> None:
    """The province's programme, and a grant request from each NGO holding a permit: in Kerman
    awarded in two tranches with the first paid (its report due), in Qazvin at finance review."""
    from .services import grants

    name, budget, largest, fields = _PROGRAMMES[province.name_en.lower()]
    today = to_tehran(utcnow()).date()
    programme = grants.create_programme(session, staff["finance"], {
        "name": name, "province": province.id, "fiscal_year": jalali_year(today), "budget_rials": budget,
        "max_award_rials": largest, "opens_on": (today - timedelta(days=20)).isoformat(),
        "closes_on": (today + timedelta(days=60)).isoformat(), "fields": fields,
    })
    for member, org in holders:
        amount = largest * 2 // 3
        case, _ = applications.create(session, member, kind="grant_request", organization_id=org.id, data={
            "programme_id": programme.id, "title": "کلاس‌های مهارت‌آموزی در محله",
            "summary": "آموزش مهارت‌های شغلی به ۳۰ نفر از ساکنان محله در شش ماه.",
            "requested_rials": amount,
            "budget_lines": [{"item": "حق‌التدریس مربیان", "rials": amount * 3 // 5},
                             {"item": "مواد و ابزار آموزشی", "rials": amount - amount * 3 // 5}],
        })
        engine.fire(session, case, "submit", member)
        engine.fire(session, case, "accept", staff["intake"])
        engine.fire(session, case, "recommend_approval", staff["expert"], comment="برنامه دقیق و هزینه‌ها معقول است.",
                    values={"score": 84})
        if province.name_en != "Kerman":
            continue
        first = amount // 2
        engine.fire(session, case, "propose_amount", staff["finance"],
                    values={"amount_rials": amount, "tranches": [first, amount - first]})
        engine.fire(session, case, "approve", staff["director"])
        engine.fire(session, case, "release_tranche", staff["finance"], values={"tranche": 1})


_ROLE_FA = {"intake": "کارشناس پذیرش", "expert": "کارشناس بررسی", "director": "مدیرکل",
            "finance": "کارشناس مالی", "auditor": "بازرس"}

# The path each demo NGO's application has travelled; the first stays a fresh draft to try.
_DEMO_STATES = ["draft", "approved", "submitted", "awaiting_decision", "needs_correction", "under_review"]
_PATHS: dict[str, list[tuple[str, str, str]]] = {
    "draft": [],
    "submitted": [("submit", "applicant", "")],
    "needs_correction": [("submit", "applicant", ""),
                         ("return_for_correction", "intake", "اساسنامه امضا نشده است.")],
    "under_review": [("submit", "applicant", ""), ("accept", "intake", "")],
    "awaiting_decision": [("submit", "applicant", ""), ("accept", "intake", ""),
                          ("send_inquiry", "expert", "استعلام از اداره اطلاعات درباره مؤسسان"),
                          ("record_inquiry", "expert", "پاسخ استعلام: مورد منفی ندارد."),
                          ("recommend_approval", "expert", "")],
    "approved": [("submit", "applicant", ""), ("accept", "intake", ""),
                 ("recommend_approval", "expert", "مدارک کامل است."), ("approve", "director", "")],
}


def _case_in_state(session: Session, rng: random.Random, member: User, org: Any, county: str,
                   field: str, staff: dict[str, User], target: str) -> None:
    founders = [{"full_name": n, "national_id": national_id(rng)} for n in rng.sample(FOUNDER_NAMES, 3)]
    data = {"name": org.name, "field": field, "county": county,
            "address": f"{county}، خیابان امام، پلاک {rng.randint(1, 200)}", "founders": founders}
    case, _ = applications.create(session, member, kind="permit_issuance", organization_id=org.id, data=data)
    applications.attach_document(session, member, case, content=minimal_pdf(org.name_key), filename="statute.pdf")
    path = _PATHS[target]
    start = utcnow() - timedelta(days=3 * len(path) + 1)
    if target == "approved":
        # Issued almost three years ago: the permit ends in about 40 days, so the demo shows
        # the Renew button and the sweep's 60-day reminder.
        start = utcnow() - timedelta(days=3 * 365 - 40 + 3 * len(path))
    for step, (action, role, comment) in enumerate(path):
        actor = member if role == "applicant" else staff[role]
        engine.fire(session, case, action, actor, comment=comment, now=start + timedelta(days=3 * step))


def _describe(session: Session) -> list[tuple[str, str]]:
    users = session.scalars(select(User).where(User.email.like("%@demo.ir")).order_by(User.id))
    return [(u.email, ", ".join(sorted(u.roles))) for u in users]

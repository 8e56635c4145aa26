"""The Persian catalogue covers every source string, and covers it correctly.

Re-extracts the messages from the sources exactly as `pybabel extract -F babel.cfg -k _l
-k lazy_gettext` does (babel's Python API, in process, so it takes well under a second) and
checks translations/fa/LC_MESSAGES/messages.po against it. Only babel and the standard library
are used: no app, no database, no conftest fixtures.

When a check fails after you added or changed a string, see translations/README.md.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po, write_po

try:  # babel >= 2.14
    from babel.messages.frontend import parse_mapping_cfg
except ImportError:  # pragma: no cover - older babel
    from babel.messages.frontend import parse_mapping as parse_mapping_cfg

ROOT = Path(__file__).resolve().parent.parent
BABEL_CFG = ROOT / "babel.cfg"
FA_PO = ROOT / "translations" / "fa" / "LC_MESSAGES" / "messages.po"
# The same keywords as the documented command: babel's defaults plus -k _l -k lazy_gettext.
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}
PLACEHOLDER = re.compile(r"%\([^)]*\)[#0 +\-]*\d*(?:\.\d+)?[a-zA-Z]")
ARABIC_YEH, ARABIC_KAF = "\u064a", "\u0643"


def _ids(message_id: str | tuple[str, ...]) -> tuple[str, ...]:
    return message_id if isinstance(message_id, tuple) else (message_id,)


def _strings(message_string: str | tuple[str, ...] | None) -> tuple[str, ...]:
    if not message_string:
        return ("",)
    return message_string if isinstance(message_string, tuple) else (message_string,)


@pytest.fixture(scope="module")
def source_catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """The catalogue the sources hold now, written to a temporary .pot and read back."""
    with BABEL_CFG.open(encoding="utf-8") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    catalog = Catalog(charset="utf-8")
    for filename, lineno, message, comments, context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS
    ):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    pot = tmp_path_factory.mktemp("i18n") / "messages.pot"
    with pot.open("wb") as out:
        write_po(out, catalog)
    with pot.open("rb") as src:
        extracted = read_po(src)
    assert len([m for m in extracted if m.id]) > 0, "extraction found no messages; is babel.cfg right?"
    return extracted


@pytest.fixture(scope="module")
def fa_catalog() -> Catalog:
    assert FA_PO.is_file(), f"{FA_PO.relative_to(ROOT)} is missing"
    with FA_PO.open("rb") as src:
        return read_po(src, locale="fa")


def _bare(text: str) -> str:
    """The text without its placeholders and escaped percent signs."""
    return PLACEHOLDER.sub("", text).replace("%%", "")


def _translated(fa_catalog: Catalog):  # type: ignore[no-untyped-def]
    return [m for m in fa_catalog if m.id and any(_strings(m.string))]


def test_every_source_string_has_a_persian_translation(source_catalog: Catalog, fa_catalog: Catalog) -> None:
    missing = []
    for message in source_catalog:
        if not message.id:
            continue
        fa = fa_catalog.get(message.id, context=message.context)
        if fa is None or not all(s.strip() for s in _strings(fa.string)):
            where = ", ".join(f"{f}:{n}" for f, n in message.locations[:3])
            missing.append(f"  {_ids(message.id)[0]!r}  ({where})")
    assert not missing, (
        f"{len(missing)} string(s) have no Persian translation in {FA_PO.relative_to(ROOT)}:\n"
        + "\n".join(missing)
        + "\nRun the update steps in translations/README.md and translate them."
    )


def test_persian_keeps_the_placeholders(fa_catalog: Catalog) -> None:
    wrong = []
    for message in _translated(fa_catalog):
        wanted = {p for source in _ids(message.id) for p in PLACEHOLDER.findall(source)}
        for text in _strings(message.string):
            found = set(PLACEHOLDER.findall(text))
            # A stray % would break Jinja's newstyle gettext, which always applies `% variables`.
            stray = "%" in _bare(text) and not any("%" in _bare(source) for source in _ids(message.id))
            if found != wanted or stray:
                wrong.append(f"  {_ids(message.id)[0]!r}: wants {sorted(wanted)}, has {sorted(found)}"
                             + (" and a stray %" if stray else ""))
    assert not wrong, "Persian translations with wrong placeholders:\n" + "\n".join(wrong)


def test_persian_uses_persian_yeh_and_kaf(fa_catalog: Catalog) -> None:
    wrong = [
        f"  {_ids(m.id)[0]!r}: {text!r}"
        for m in _translated(fa_catalog)
        for text in _strings(m.string)
        if ARABIC_YEH in text or ARABIC_KAF in text
    ]
    assert not wrong, (
        "Persian translations with Arabic ي (U+064A) or ك (U+0643); use ی (U+06CC) and ک (U+06A9):\n"
        + "\n".join(wrong)
    )


def test_no_fuzzy_persian_entries(fa_catalog: Catalog) -> None:
    fuzzy = [f"  {_ids(m.id)[0]!r}" for m in fa_catalog if m.id and m.fuzzy]
    assert not fuzzy, (
        "Fuzzy entries in the Persian catalogue (review them, then drop the '#, fuzzy' flag):\n"
        + "\n".join(fuzzy)
    )

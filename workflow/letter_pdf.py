"""Drawing a letter or a certificate as PDF, from a plain description ("sheet") of its text.

Why apart from workflow/letters.py (which decides what a letter says): the PDF stack — fpdf2,
fontTools, Pillow, HarfBuzz and the parsed Noto fonts — is about 35 MB of a process's memory
once loaded, and a few letters drawn at once by a worker's threads push its peak past that. A
web worker draws no letter itself: it hands the sheet to a renderer process of its own, started
on its first letter and reused (one letter at a time, restarted after MAX_LETTERS letters so
its memory cannot creep), so the workers stay small and the PDF stack is loaded once per worker
only where letters are made. Tests and the laptop draw in-process (LETTERS_INLINE).

The sheet holds only text and bytes, all translated and formatted by the caller; the drawing
is deterministic (fixed creation date), so a sheet drawn here or in the renderer gives the same
bytes, and so the same hash in the audit entry.
"""
from __future__ import annotations

import io
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from pathlib import Path
from typing import Any

FONTS = Path(__file__).resolve().parent / "fonts"
INK = (20, 40, 80)
MAX_LETTERS = 200  # letters a renderer draws before it is replaced by a fresh process
TIMEOUT = 120

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_owner: int | None = None  # the process the pool belongs to (a forked child starts its own)


def _pdf():  # type: ignore[no-untyped-def]
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_margins(20, 20, 20)
    pdf.set_auto_page_break(True, 20)
    pdf.add_font("naskh", "", str(FONTS / "NotoNaskhArabic-Regular.ttf"))
    pdf.add_font("naskh", "B", str(FONTS / "NotoNaskhArabic-Bold.ttf"))
    pdf.add_font("sans", "", str(FONTS / "NotoSans-Regular.ttf"))
    # Latin letters (a name typed in English) come from Noto Sans, in bold lines too.
    pdf.set_fallback_fonts(["sans"], exact_match=False)
    pdf.set_text_shaping(use_shaping_engine=True, direction="rtl", script="arab", language="fas")
    # A fixed creation date keeps the bytes (and so the hash) a function of the letter's content.
    pdf.set_creation_date(datetime(2000, 1, 1))
    pdf.add_page()
    return pdf


def render(sheet: dict[str, Any]) -> bytes:
    """The PDF of `sheet`: {heading: {office, date, number, title}, paragraphs: [text],
    signature: {name, office} | None, rows: [text], qr: {png, caption} | None}."""
    import logging

    logging.getLogger("fontTools").setLevel(logging.WARNING)  # a line per font and table otherwise
    pdf = _pdf()
    heading = sheet["heading"]
    pdf.set_text_color(*INK)
    pdf.set_font("naskh", "B", 13)
    pdf.cell(0, 9, heading["office"], align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("naskh", "", 11)
    pdf.cell(0, 8, heading["date"], align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 8, heading["number"], align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("naskh", "B", 18)
    pdf.cell(0, 14, heading["title"], align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_draw_color(*INK)
    pdf.line(20, pdf.get_y() + 1, 190, pdf.get_y() + 1)
    pdf.ln(6)
    pdf.set_text_color(0, 0, 0)
    for text in sheet.get("paragraphs", ()):
        pdf.set_font("naskh", "", 13)
        pdf.multi_cell(0, 10, text, align="R", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
    signature = sheet.get("signature")
    if signature:
        pdf.ln(10)
        pdf.set_font("naskh", "B", 12)
        pdf.cell(0, 8, signature["name"], align="L", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("naskh", "", 11)
        pdf.cell(0, 8, signature["office"], align="L", new_x="LMARGIN", new_y="NEXT")
    rows = sheet.get("rows")
    if rows:
        pdf.set_font("naskh", "", 14)
        for text in rows:
            pdf.multi_cell(0, 11, text, align="R", new_x="LMARGIN", new_y="NEXT")
    qr = sheet.get("qr")
    if qr:
        top = pdf.get_y() + 8
        pdf.image(io.BytesIO(qr["png"]), x=20, y=top, w=45)
        pdf.set_xy(70, top + 8)
        pdf.set_font("naskh", "", 11)
        pdf.multi_cell(120, 8, qr["caption"], align="R")
    return bytes(pdf.output())


def _renderer() -> ProcessPoolExecutor:
    global _pool, _owner
    with _lock:
        if _pool is None or _owner != os.getpid():
            # spawn, not fork: a worker's threads may hold locks a forked child would inherit held.
            _pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                        max_tasks_per_child=MAX_LETTERS)
            _owner = os.getpid()
        return _pool


def draw(sheet: dict[str, Any], inline: bool) -> bytes:
    """The PDF of `sheet`, drawn here (`inline`) or by this process's renderer."""
    global _pool
    if inline:
        return render(sheet)
    for attempt in (1, 2):
        pool = _renderer()
        try:
            return pool.submit(render, sheet).result(timeout=TIMEOUT)
        except BrokenProcessPool:
            # The renderer died (killed for memory, say): start another once, then give up.
            with _lock:
                if _pool is pool:
                    _pool = None
            if attempt == 2:
                raise
    raise AssertionError("unreachable")

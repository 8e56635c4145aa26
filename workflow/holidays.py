"""The set of official holidays, read often and changed rarely.

Every transition computes a due date in working days, so the set is cached per process for a
minute; an admin's edit clears this process's cache at once and the others within the minute.
"""
from __future__ import annotations

import time
import weakref
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .calendar import parse_jalali_date
from .models import Holiday

DATA_FILE = Path(__file__).parent / "data" / "holidays.csv"
TTL_SECONDS = 60.0
# Per engine (one per database an app talks to); an engine a test disposed of takes its entry along.
_cache: weakref.WeakKeyDictionary[Any, tuple[float, frozenset[date]]] = weakref.WeakKeyDictionary()


def holidays(session: Session) -> frozenset[date]:
    # `.engine` of an Engine is itself; of a Connection (a session bound to one), its engine.
    # The engine object is the key: its URL hashes by rendering itself as text, every time.
    key = session.get_bind().engine
    hit = _cache.get(key)
    if hit is not None and time.monotonic() - hit[0] < TTL_SECONDS:
        return hit[1]
    days = frozenset(session.scalars(select(Holiday.day)))
    _cache[key] = (time.monotonic(), days)
    return days


def forget() -> None:
    _cache.clear()


def read_data_file(path: Path = DATA_FILE) -> list[tuple[date, str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        jalali, _sep, name = line.partition(",")
        rows.append((parse_jalali_date(jalali), name.strip()))
    return rows


def load_data_file(session: Session) -> int:
    """Add the file's holidays that are missing (an admin's deletions of old ones stay deleted
    only until the next init-db; the file lists the fixed national holidays)."""
    have = set(session.scalars(select(Holiday.day)))
    added = 0
    for day, name in read_data_file():
        if day not in have:
            session.add(Holiday(day=day, name=name))
            added += 1
    session.flush()
    forget()
    return added

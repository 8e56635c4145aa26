"""Objects of the session made from rows read with Core, for the reads every request makes.

An ORM query spends more CPU setting up its loading and walking its loaders than the database
spends answering: for the bearer's user and the case a transition acts on, about as much again
as the statement itself. These reads select the tables' columns with Core and make the objects
here, the way the ORM's loader does (a new instance, its identity key, the row's values as
loaded state), so the objects are in every way the ones a query would have returned: persistent
in the session, unmodified, relationships not read here loaded on first access, changes flushed
and version-checked as usual.

A row whose object the session already holds is not made again: the caller falls back to its
ORM query, which knows how to merge a row into an object that may have changed since.
"""
from __future__ import annotations

import functools
from types import SimpleNamespace
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import Column, inspect
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import instance_state

T = TypeVar("T")


@functools.cache
def columns(cls: type) -> tuple[Column[Any], ...]:
    """The table's columns in the table's order: what a Core select of `cls` lists."""
    return tuple(cls.__table__.columns)  # type: ignore[attr-defined]


@functools.cache
def attributes(cls: type) -> tuple[str, ...]:
    """The attribute of each of `columns(cls)` (User.is_active_flag for users.is_active, say)."""
    by_column = {prop.columns[0]: prop.key for prop in inspect(cls).column_attrs}
    return tuple(by_column[column] for column in columns(cls))


@functools.cache
def position(cls: type, attribute: str) -> int:
    """Where `attribute`'s column is in `columns(cls)`."""
    return attributes(cls).index(attribute)


@functools.cache
def _mapper(cls: type) -> Any:
    return inspect(cls)


@functools.cache
def _key_positions(cls: type) -> tuple[int, ...]:
    """Where the primary key's columns are in `columns(cls)` (`id`, or a grant's `case_id`)."""
    return tuple(columns(cls).index(column) for column in _mapper(cls).primary_key)


@functools.cache
def _attribute_set(cls: type) -> frozenset[str]:
    return frozenset(attributes(cls))


def plain(obj: Any) -> Any:
    """The object's values as plain attributes, as reading the object's would give them.

    Serialising reads every column of a row (a queue page, a hundred), and each read of a mapped
    attribute runs the ORM's descriptor, twenty-odd bytecodes. When every column is loaded,
    a copy of the instance's dict answers the same reads at C speed. Anything else is returned
    as it is: an object with a column expired or deferred (its reads load it), and records or
    plain objects (their attributes are cheap already)."""
    loaded = getattr(obj, "__dict__", None)
    if loaded is None or _STATE not in loaded or not loaded.keys() >= _attribute_set(type(obj)):
        return obj
    return SimpleNamespace(**loaded)


_STATE = "_sa_instance_state"  # in the dict of every instance the ORM manages


def identity(cls: type, id_: Any) -> Any:
    return _mapper(cls).identity_key_from_primary_key((id_,))


def held(session: Session, cls: type, id_: Any) -> bool:
    """Whether the session already has the object of this class and id."""
    return identity(cls, id_) in session.identity_map


def loaded(cls: type[T], values: Sequence[Any]) -> T:
    """The object whose row has `values` (in `columns(cls)` order), as a query loads it: detached
    with its identity, nothing modified; `attach` makes it persistent."""
    mapper = _mapper(cls)
    instance = mapper.class_manager.new_instance()
    instance.__dict__.update(zip(attributes(cls), values))
    instance_state(instance).key = mapper.identity_key_from_primary_key(
        tuple(values[i] for i in _key_positions(cls)))
    return instance  # type: ignore[no-any-return]


def attach(session: Session, *objects: Any) -> None:
    """Make objects from `loaded` persistent in `session`: what `session.add` does for a detached
    object (identity map, the attach events), without its walk of every relationship for
    objects to cascade to. Here each object is given, and none has a pending change to cascade;
    the walk was a good part of the cost of a request's reads. `_save_or_update_impl` is the
    step of `Session.add` that attaches one object (SQLAlchemy is pinned in setup.cfg)."""
    for obj in objects:
        session._save_or_update_impl(instance_state(obj))


def flush_pending(session: Session) -> None:
    """What an ORM query would do first (autoflush), so a Core read sees the session's changes."""
    if session.autoflush:
        session.flush()  # returns at once when nothing is pending

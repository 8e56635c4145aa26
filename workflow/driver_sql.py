"""The few statements every transition runs, sent straight to psycopg's cursor.

A Core statement executed through SQLAlchemy's Connection costs, in Python, about twice what
psycopg spends sending it and reading the answer: an execution context, the parameters built
and processed, a cursor made and a result wrapped, for each of the four statements of a
transition (the bearer's user, the case, its UPDATE, the audit entry). That is what kept the
transition endpoint far behind the same SQL from a bare handler (bench/transitions.py).

Here a statement is compiled once by SQLAlchemy (same SQL text, same bind and result types as
SQLAlchemy would use), and run on the session's own DBAPI connection, so it is in the request's
transaction exactly as before. What SQLAlchemy's execution adds beyond that is either not used
by these statements, and then `run` hands them to SQLAlchemy instead:

- Python-side column defaults (`insert_prefetch`/`update_prefetch`), "expanding" IN lists and
  literal-execute parameters, escaped bind names, positional paramstyles (SQLite);
- an engine with cursor-execute listeners or echo on (bench/transitions.py --trace, a debugger):
  they see every statement only if SQLAlchemy runs it;

or done here the way SQLAlchemy does it: errors come out as SQLAlchemy's exception classes
(`DBAPIError.instance`: IntegrityError, OperationalError, ...), and a connection the server
dropped is invalidated so the pool never hands it out again.
"""
from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.orm.session import SessionTransactionState
from sqlalchemy.sql import ClauseElement

_CURSOR = "driver_sql.cursor"


class Compiled:
    """What running one statement with one set of parameter names needs, worked out once: the
    SQL, where each bind's value comes from (a caller's parameter, or a value fixed in the
    statement, already processed for the driver), and the result columns' processors."""

    __slots__ = ("sql", "named_sql", "fixed", "renamed", "processed", "results", "ordered")

    def __init__(self, compiled: Any, dialect: Any, keys: tuple[str, ...]) -> None:
        self.named_sql: str = compiled.string  # what an error reports, with the values by name
        self.sql, self.ordered = _positional(compiled.string)
        processors = compiled._bind_processors
        # What construct_params would do for every call with these names, decided here once.
        # The caller's parameters are passed on as they are (psycopg takes the names the SQL
        # uses and ignores the rest), with the statement's fixed values, the few binds named
        # apart from their parameter, and the values the driver needs converted.
        renamed, processed, fixed = [], [], {}
        for bind, name in compiled.bind_names.items():
            process = processors.get(name)
            if bind.key in keys or name in keys:
                key = name if name in keys else bind.key
                if key != name:
                    renamed.append((name, key))
                if process is not None:
                    processed.append((name, process))
            else:
                fixed[name] = process(bind.value) if process is not None else bind.value
        self.fixed: dict[str, Any] = fixed
        self.renamed: tuple[tuple[str, str], ...] = tuple(renamed)
        self.processed: tuple[tuple[str, Callable[[Any], Any]], ...] = tuple(processed)
        result_processors = [col.type._cached_result_processor(dialect, None) for col in compiled._result_columns]
        self.results: tuple[tuple[int, Callable[[Any], Any]], ...] = tuple(
            (i, p) for i, p in enumerate(result_processors) if p is not None)


_NAMED = re.compile(r"%\(([^)]+)\)s(::)?")  # a placeholder's name, and the cast that may follow it


def _positional(sql: str) -> tuple[str, Callable[[Mapping[str, Any]], tuple[Any, ...]] | None]:
    """The SQL with `%s` for each `%(name)s`, and what takes the values out of a parameters dict
    in that order; or the SQL as it is and None where psycopg must read the names itself.

    psycopg sends values in order whatever the style: given a dict, it builds the list in
    Python on every execution (a transition's statements have 35 values); an itemgetter does it
    in C. Left named: SQL with a literal `%%`, and SQL using a name twice without a cast at each
    use. Named, psycopg sends such a value once and PostgreSQL infers one type for both uses;
    positional, it is sent twice, and a NULL could leave one use with no type to infer
    (SQLAlchemy casts every bind for psycopg, `%(now)s::TIMESTAMP WITH TIME ZONE`, so the
    transition's statements are positional)."""
    if "%%" in sql:
        return sql, None
    uses = _NAMED.findall(sql)
    names = [name for name, _cast in uses]
    if not all(cast for name, cast in uses if names.count(name) > 1):
        return sql, None
    positional = _NAMED.sub(r"%s\2", sql)  # the cast stays
    if len(names) > 1:
        return positional, operator.itemgetter(*names)
    if names:
        name = names[0]
        return positional, lambda values: (values[name],)
    return sql, lambda _values: ()


def _prepare(statement: ClauseElement, dialect: Any, keys: tuple[str, ...]) -> Compiled | None:
    """The statement compiled for these parameter names (an UPDATE's SET clause follows them, as
    in SQLAlchemy's own execution), or None where SQLAlchemy must run it."""
    if dialect.driver != "psycopg":
        return None
    compiled: Any = statement.compile(dialect=dialect, column_keys=list(keys))
    if (compiled.positional or compiled.escaped_bind_names or compiled.literal_execute_params
            or compiled.post_compile_params or compiled.insert_prefetch or compiled.update_prefetch
            or getattr(compiled, "_collected_params", None)):
        return None
    # A value computed per execution, or one the caller must give and did not: SQLAlchemy's
    # own execution evaluates the one and raises for the other.
    if any(bind.callable is not None or (bind.required and bind.key not in keys and name not in keys)
           for bind, name in compiled.bind_names.items()):
        return None
    return Compiled(compiled, dialect, keys)


# (statement, parameter names) → plan, kept on the dialect they were compiled for: an engine
# disposed of (a test's) takes its plans with it. The statements are built once per process
# (functools.cache in their modules), so each dialect holds a handful. An attribute of the
# dialect rather than a WeakKeyDictionary of dialects: that made a weak reference per lookup.
_PLANS = "_workflow_driver_sql_plans"
_MAX_PLANS = 256


def _plan(statement: ClauseElement, dialect: Any, keys: tuple[str, ...]) -> Compiled | None:
    plans: dict[tuple[ClauseElement, tuple[str, ...]], Compiled | None] | None = getattr(dialect, _PLANS, None)
    if plans is None:
        plans = {}
        setattr(dialect, _PLANS, plans)
    key = (statement, keys)
    try:
        return plans[key]
    except KeyError:
        if len(plans) >= _MAX_PLANS:  # a caller building statements per call: stay bounded
            plans.clear()
        plan = plans[key] = _prepare(statement, dialect, keys)
        return plan


class Ran:
    """The rows a statement returned (tuples, result types applied) and the rows it changed."""

    __slots__ = ("rows", "rowcount")

    def __init__(self, rows: list[Sequence[Any]], rowcount: int) -> None:
        self.rows, self.rowcount = rows, rowcount

    def one(self) -> Sequence[Any]:
        if len(self.rows) != 1:
            raise LookupError(f"expected one row, got {len(self.rows)}")
        return self.rows[0]

    def one_or_none(self) -> Sequence[Any] | None:
        if len(self.rows) > 1:
            raise LookupError(f"expected at most one row, got {len(self.rows)}")
        return self.rows[0] if self.rows else None


def run(session: Session, statement: ClauseElement, params: Mapping[str, Any]) -> Ran:
    """Execute `statement` with `params` in the session's transaction, as
    `session.connection().execute(statement, params)` would."""
    connection = transaction_connection(session)
    keys = tuple(sorted(params))
    plan = None if _observed(connection) else _plan(statement, connection.dialect, keys)
    if plan is None:
        result = connection.execute(statement, params)
        return Ran(list(result.all()) if result.returns_rows else [], result.rowcount)
    values = {**plan.fixed, **params} if plan.fixed else dict(params)
    for name, key in plan.renamed:
        values[name] = params[key]
    for name, process in plan.processed:
        values[name] = process(values[name])
    cursor = _cursor(connection)
    try:
        cursor.execute(plan.sql, values if plan.ordered is None else plan.ordered(values))
        rows = cursor.fetchall() if cursor.pgresult is not None and cursor.pgresult.nfields else []
    except connection.dialect.loaded_dbapi.Error as exc:
        _raise(connection, plan.named_sql, values, exc, cursor)
    if plan.results and rows:
        processed = []
        for row in rows:
            row = list(row)
            for i, process in plan.results:
                row[i] = process(row[i])
            processed.append(tuple(row))
        rows = processed
    return Ran(rows, cursor.rowcount)


_ACTIVE = SessionTransactionState.ACTIVE


def transaction_connection(session: Session) -> Connection:
    """`session.connection()`: the Connection of the session's transaction, begun if need be.

    Once the transaction holds its connection, `Session.connection` still resolves the bind and
    runs its transaction's state checks (a context manager per call) before handing back the
    same object; a transition asks five times. Here the held connection is returned directly
    when the answer cannot differ: the session has one bind, its transaction is active and no
    `with session.begin()` block is being closed. Anything else goes to SQLAlchemy. The
    attributes read are SQLAlchemy's own (pinned in setup.cfg), checked by tests/test_driver_sql.py.
    """
    transaction = session._transaction
    if transaction is not None and transaction._state is _ACTIVE and session._trans_context_manager is None:
        held = transaction._connections.get(session.bind)
        if held is not None:
            return held[0]  # type: ignore[no-any-return]
    return session.connection()


def _observed(connection: Connection) -> bool:
    """Whether something watches the statements SQLAlchemy runs, by the flags its own execution
    checks: `_has_events` once an execution listener is attached to the connection, its engine
    or its dialect; `_echo` when echo or INFO logging is on."""
    return bool(connection._has_events or connection.engine._has_events or connection.dialect._has_events
                or connection._echo)


def _cursor(connection: Connection) -> Any:
    """One cursor per DBAPI connection, kept with it: making a psycopg cursor costs about as much
    Python as running a small statement, and the connection runs one statement at a time."""
    pooled = connection.connection
    cursor = pooled.info.get(_CURSOR)
    if cursor is None or cursor.closed:
        cursor = pooled.info[_CURSOR] = pooled.driver_connection.cursor()  # type: ignore[union-attr]
    return cursor


def _raise(connection: Connection, sql: str, values: Mapping[str, Any], exc: Exception, cursor: Any) -> None:
    dialect = connection.dialect
    dropped = dialect.is_disconnect(exc, connection.connection.dbapi_connection, cursor)  # type: ignore[arg-type]
    if dropped:
        connection.invalidate(exc)
    raise DBAPIError.instance(sql, values, exc, dialect.loaded_dbapi.Error, dialect=dialect,
                              connection_invalidated=dropped) from exc

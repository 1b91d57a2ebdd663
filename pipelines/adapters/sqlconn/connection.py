"""An open SQL connection: checked identifiers, statements, streaming, transactions. [pure]
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipelines.adapters.sqlconn.dialects import MYSQL, POSTGRES, SQLITE, Dialect, Table
from pipelines.adapters.sqlconn.names import nearest, resolve_name, unknown_name
from pipelines.errors import ConfigError, StepError


@dataclass
class Stream:
    """The result of :meth:`SqlConnection.stream`: column names, then lists of row tuples."""

    columns: list[str]
    batches: Iterator[list[tuple]]


@dataclass
class SqlConnection:
    raw: Any
    dialect: Dialect
    config: dict
    code: str
    describe: str
    query_timeout_ms: int = 0
    _deadline: float | None = field(default=None, repr=False)
    _closed: bool = field(default=False, repr=False)

    def __post_init__(self):
        if self.dialect is SQLITE and self.query_timeout_ms:
            self.raw.set_progress_handler(self._sqlite_progress, 10_000)

    # SQLite has no statement timeout: a progress handler interrupts the statement past the deadline.
    def _sqlite_progress(self) -> int:
        return 1 if self._deadline is not None and time.monotonic() > self._deadline else 0

    @contextlib.contextmanager
    def _timed(self):
        if self.dialect is SQLITE and self.query_timeout_ms:
            self._deadline = time.monotonic() + self.query_timeout_ms / 1000
        try:
            yield
        finally:
            self._deadline = None

    # Statements. Every one an adapter sends goes through these (tests wrap them to watch what runs).
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement with bound parameters; the cursor (rowcount, fetch*)."""
        cur = self.raw.cursor()
        with self._timed():
            cur.execute(sql, list(params))
        return cur

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any:
        cur = self.raw.cursor()
        with self._timed():
            cur.executemany(sql, [list(r) for r in rows])
        return cur

    def stream(self, sql: str, params: Sequence[Any], size: int) -> Stream:
        """Run a query and read its rows ``size`` at a time without holding the whole result: a server-side
        cursor on PostgreSQL (inside the current transaction), an unbuffered cursor on MySQL."""
        if self.dialect is POSTGRES:
            cur = self.raw.cursor(name="datahub_stream")
            cur.itersize = size
        elif self.dialect is MYSQL:
            import pymysql.cursors

            cur = self.raw.cursor(pymysql.cursors.SSCursor)
        else:
            cur = self.raw.cursor()
        with self._timed():
            cur.execute(sql, list(params))
        columns = [d[0] for d in cur.description or []]

        def batches() -> Iterator[list[tuple]]:
            while True:
                with self._timed():
                    rows = cur.fetchmany(size)
                if not rows:
                    return
                yield rows

        return Stream(columns, batches())

    def result_columns(self, sql: str, params: Sequence[Any]) -> list[str]:
        """The column names ``sql`` returns, asking for no rows (``LIMIT 0`` around it). A name the database
        does not know becomes a ConfigError with the nearest table or column."""
        try:
            cur = self.execute(f"SELECT * FROM ({sql}) AS dh_probe LIMIT 0", params)
            names = [d[0] for d in cur.description or []]
            cur.close()
            return names
        except Exception as exc:
            self.rollback()
            raise self.explain(exc, field="query") from None

    def explain(self, exc: BaseException, *, field: str | None = None) -> Exception:
        """A ConfigError for an unknown name (with the nearest existing one), a retryable StepError for a
        timeout or a lost connection, a plain StepError otherwise."""
        message = self.dialect.message(exc)
        if self.dialect.is_timeout(exc):
            return StepError(f"the query on connection '{self.code}' timed out after {self.query_timeout_ms} ms: "
                             f"{message}", retryable=True)
        undefined = self.dialect.is_undefined_name(exc)
        if undefined is not None:
            with contextlib.suppress(Exception):
                self.rollback()
                kind, name = undefined
                schema = self.dialect.default_schema(self)
                if kind == "table":
                    known = self.dialect.list_tables(self, schema)
                    hint = nearest(name, known)
                else:
                    known = [c.name for t in self.dialect.list_tables(self, schema)[:200]
                             for c in self.dialect.list_columns(self, schema, t)]
                    hint = nearest(name, sorted(set(known)))
                if hint:
                    message += f"; did you mean '{hint}'?"
            return ConfigError(message, field=field)
        if _is_connection_lost(exc):
            return StepError(f"lost the connection '{self.code}': {message}", retryable=True)
        return StepError(f"{self.dialect.label} error on connection '{self.code}': {message}")

    # Transactions. PostgreSQL and MySQL start one implicitly; SQLite runs in autocommit until BEGIN.
    def begin(self, *, write: bool = True) -> None:
        if self.dialect is SQLITE and not self.raw.in_transaction:
            self.raw.execute("BEGIN IMMEDIATE" if write else "BEGIN")

    def commit(self) -> None:
        self.raw.commit()

    def rollback(self) -> None:
        with contextlib.suppress(Exception):
            self.raw.rollback()

    def savepoint(self, name: str = "dh_row") -> None:
        self.raw.cursor().execute(f"SAVEPOINT {name}")

    def release(self, name: str = "dh_row") -> None:
        self.raw.cursor().execute(f"RELEASE SAVEPOINT {name}")

    def rollback_to(self, name: str = "dh_row") -> None:
        self.raw.cursor().execute(f"ROLLBACK TO SAVEPOINT {name}")

    def close(self) -> None:
        """Close without waiting for an unread result (an unbuffered MySQL result is dropped, not drained)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            if self.dialect is MYSQL:
                self.raw.close()  # sends QUIT; the server drops whatever was still streaming
            else:
                self.rollback()
                self.raw.close()

    # Catalogue.
    def default_schema(self) -> str | None:
        return self.dialect.default_schema(self)

    def table(self, name: Any, *, field: str | None = "table") -> Table:
        """Find ``name`` (``table`` or ``schema.table``) in the catalogue, or ConfigError with the nearest."""
        if not isinstance(name, str) or not name.strip() or "\x00" in name or len(name) > 300:
            raise ConfigError(f"a table name must be a non-empty string, got {name!r}", field=field)
        schema = self.default_schema()
        known = self.dialect.list_tables(self, schema)
        hit = resolve_name(name, known)
        explicit = False
        if hit is None and "." in name:
            wanted_schema, short = name.split(".", 1)
            schemas = self.dialect.list_schemas(self)
            found_schema = resolve_name(wanted_schema, schemas)
            if found_schema is not None:
                schema_tables = self.dialect.list_tables(self, found_schema)
                hit = resolve_name(short, schema_tables)
                if hit is None:
                    raise unknown_name("table", short, f"schema '{found_schema}' of connection '{self.code}'",
                                   schema_tables, field)
                schema, explicit = found_schema, True
        if hit is None:
            where = f"connection '{self.code}'" + (f" (schema {schema})" if schema and schema != "main" else "")
            raise unknown_name("table", name, where, known, field)
        columns = self.dialect.list_columns(self, schema, hit)
        return Table(schema, hit, self.dialect.qualified(schema, hit, explicit), {c.name: c for c in columns},
                     f"connection '{self.code}'")

    def check_identifiers(self, table: Any, columns: Iterable[str] | Mapping[str, str | None] = (), *,
                          table_field: str | None = "table") -> Table:
        """Validate ``table`` and ``columns`` against the catalogue before any query uses them.

        ``columns`` is a list of names, or a mapping name -> the config field to blame in the error
        (``{"skux": "lookupFields.0"}``). Returns the :class:`Table`; use ``table.column(name)`` for the
        catalogue's spelling and ``dialect.quote`` to put it into SQL.
        """
        t = self.table(table, field=table_field)
        items = columns.items() if isinstance(columns, Mapping) else ((c, None) for c in columns)
        for name, where in items:
            t.column(name, field=where)
        return t

    def unique_keys(self, table: Table) -> list[tuple[str, ...]]:
        return self.dialect.unique_keys(self, table)

    def native_upsert_key(self, table: Table, key: Sequence[str], written: Iterable[str], *,
                          keys: Sequence[Sequence[str]] | None = None) -> bool:
        """Whether ``INSERT ... ON CONFLICT`` / ``ON DUPLICATE KEY`` can upsert on ``key``: a unique index on
        exactly those columns exists (PostgreSQL and SQLite infer the conflict target from it). MySQL's
        ON DUPLICATE KEY fires on any unique key, so there it also needs that no other unique key lies
        wholly inside the written columns."""
        keys = [frozenset(k) for k in (self.unique_keys(table) if keys is None else keys)]
        wanted = frozenset(key)
        if wanted not in keys:
            return False
        if self.dialect is MYSQL:
            cols = frozenset(written) | wanted
            return not any(k != wanted and k <= cols for k in keys)
        if self.dialect is SQLITE:
            import sqlite3

            return sqlite3.sqlite_version_info >= (3, 24, 0)
        return True


def _is_connection_lost(exc: BaseException) -> bool:
    name = type(exc).__name__
    if name == "OperationalError":
        args = getattr(exc, "args", ())
        if args and isinstance(args[0], int):
            return args[0] in (2003, 2006, 2013, 2055)
        text = str(exc).lower()
        return "connection" in text or "server closed" in text or "database is locked" in text
    return False

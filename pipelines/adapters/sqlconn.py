"""SQL connections for adapters: open one from a Connection, know its dialect, check names. [pure]

Shared by the ``database`` extractor, the ``tableUpsert`` loader and the CDC extractor. Nothing here
imports Django; the drivers (psycopg 3, PyMySQL, sqlite3) are imported when a connection is opened.

Opening::

    conn = open_step_connection(ctx, config["connectionCode"], read_only=True, query_timeout_ms=30_000)
    # or, outside a step:  conn = connect(connection_dict, secret=resolve_secret)

A connection dict is ``{"code", "type": POSTGRES | MYSQL | SQLITE, **config}`` (what ``ctx.connection(code)``
returns). Config keys:

- POSTGRES / MYSQL (MariaDB too): ``host``, ``port``, ``database``, ``user`` (or ``username``),
  ``passwordSecretCode``; or ``connectionStringSecretCode`` naming a secret that holds a whole URL
  (``postgresql://user:pw@host:5432/db?sslmode=require``, ``mysql://user:pw@host:3306/db``); the URL's parts
  win over the separate keys. ``ssl {enabled, rejectUnauthorized}``, ``schema`` (PostgreSQL: the schema
  unqualified table names are looked up in; default ``current_schema()``), ``connectTimeoutMs`` (10,000).
- SQLITE: ``path`` (or ``database``): an existing file inside one of the allowed folders
  (``settings.DATAHUB_SQLITE_DIRS``, else the environment variable of that name, ``:``-separated, else
  ``<DATAHUB_VAR_DIR>/sqlite``); Datahub's own database is always refused. ``connectionStringSecretCode``
  may hold ``sqlite:///absolute/path``.

Sessions are set up alike everywhere: UTC time zone (PostgreSQL ``timezone``, MySQL ``time_zone``), foreign
keys enforced on SQLite, and MySQL's ``FOUND_ROWS`` flag so an UPDATE's row count is the rows *matched*.

What a :class:`SqlConnection` gives:

- ``dialect``: identifier quoting (:meth:`Dialect.quote`), the driver placeholder (``dialect.ph``), the
  catalogue queries (tables, columns, unique keys), the upsert clause, and how to read a driver error
  (:meth:`Dialect.is_record_error`, :meth:`Dialect.is_timeout`, :meth:`Dialect.message`).
- :meth:`SqlConnection.check_identifiers` ``(table, columns)``: resolves a table (``name`` or
  ``schema.name``) and column names against the catalogue and raises ConfigError naming the wrong one and
  the nearest existing one. Every identifier an adapter puts into SQL comes from the catalogue and goes
  through ``quote``; every value is a bound parameter.
- :meth:`SqlConnection.execute`, :meth:`executemany`, :meth:`stream` (server-side cursor on PostgreSQL,
  unbuffered on MySQL), :meth:`begin` / :meth:`commit` / :meth:`rollback` / :meth:`savepoint` /
  :meth:`rollback_to` / :meth:`release`.
- :func:`check_select` and :meth:`Dialect.bind` for user-written queries: a single SELECT (or WITH ...
  SELECT), no comments, no ``;`` chains, no data-changing keywords; ``?`` or ``$1``, ``$2`` placeholders
  rewritten for the driver.

Values read are made JSON-safe by :func:`json_value` (dates and times as ISO 8601 strings, Decimals as
strings so no digit is lost, bytes as base64, UUIDs as strings, intervals as ISO 8601 durations).
"""

from __future__ import annotations

import base64
import contextlib
import difflib
import json
import math
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from pipelines.errors import ConfigError, StepError

SQL_TYPES = ("POSTGRES", "MYSQL", "SQLITE")
# The plugin's databaseType values, and ours, to a Connection type.
DATABASE_TYPES = {"POSTGRESQL": "POSTGRES", "POSTGRES": "POSTGRES", "MYSQL": "MYSQL", "MARIADB": "MYSQL",
                  "SQLITE": "SQLITE"}
DEFAULT_CONNECT_TIMEOUT_MS = 10_000
DEFAULT_QUERY_TIMEOUT_MS = 30_000


# --- names -------------------------------------------------------------------------------------------


def nearest(name: str, known: Iterable[str]) -> str | None:
    """The known name closest to ``name`` (case-insensitive first), or None."""
    known = list(known)
    lowered = {k.lower(): k for k in known}
    if str(name).lower() in lowered:
        return lowered[str(name).lower()]
    close = difflib.get_close_matches(str(name).lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[close[0]] if close else None


def resolve_name(name: str, known: Iterable[str]) -> str | None:
    """``name`` as the catalogue spells it: an exact match, else the one case-insensitive match."""
    known = list(known)
    if name in known:
        return name
    folded = [k for k in known if k.lower() == str(name).lower()]
    return folded[0] if len(folded) == 1 else None


def _listing(names: Sequence[str], limit: int = 15) -> str:
    shown = ", ".join(names[:limit]) or "none"
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _unknown(kind: str, name: str, where: str, known: Sequence[str], field: str | None) -> ConfigError:
    text = f"{kind} '{name}' does not exist in {where}"
    hint = nearest(name, known)
    text += f"; did you mean '{hint}'?" if hint else f" ({kind}s: {_listing(list(known))})"
    return ConfigError(text, field=field)


# --- JSON-safe values ----------------------------------------------------------------------------------


def json_value(value: Any) -> Any:
    """A JSON-safe copy of a value read from a database."""
    t = type(value)
    if value is None or t is str or t is int or t is bool:
        return value
    if t is float:
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return format(value, "f") if value.is_finite() else str(value)
    if isinstance(value, datetime | date | dtime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return iso_duration(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_value(v) for v in value]
    if isinstance(value, int | float | str):  # bool/int/str subclasses (enums)
        return value
    return str(value)


def iso_duration(value: timedelta) -> str:
    """``P1DT2H3M4.5S`` (the form Django's DurationField and most parsers read back)."""
    sign = "-" if value < timedelta(0) else ""
    value = abs(value)
    days, seconds = value.days, value.seconds
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    secs = f"{seconds}.{value.microseconds:06d}".rstrip("0").rstrip(".") if value.microseconds else str(seconds)
    return f"{sign}P{days}DT{hours:02d}H{minutes:02d}M{secs}S"


def encode_cursor(value: Any) -> dict:
    """A value read from the database as ``{"value", "type"}`` for a checkpoint, so that the next run binds
    the same type again (a timestamp stays a timestamp, a Decimal keeps its digits)."""
    if isinstance(value, datetime):
        return {"value": value.isoformat(), "type": "datetime"}
    if isinstance(value, date):
        return {"value": value.isoformat(), "type": "date"}
    if isinstance(value, Decimal):
        return {"value": str(value), "type": "decimal"}
    if isinstance(value, bool | int | float | str) or value is None:
        return {"value": value, "type": "json"}
    return {"value": json_value(value), "type": "json"}


def decode_cursor(data: Mapping) -> Any:
    kind, value = data.get("type", "json"), data.get("value")
    try:
        if kind == "datetime":
            return datetime.fromisoformat(value)
        if kind == "date":
            return date.fromisoformat(value)
        if kind == "decimal":
            return Decimal(value)
    except (TypeError, ValueError, InvalidOperation):
        raise ConfigError(f"the saved checkpoint value {value!r} is not a valid {kind}") from None
    return value


# --- user-written queries --------------------------------------------------------------------------------

# Keywords that change data or state, refused anywhere in an extractor's query (outside literals and quoted
# names). The read-only transaction the query runs in is the real guard; this check explains the refusal.
FORBIDDEN_KEYWORDS = frozenset(
    "INSERT UPDATE DELETE MERGE UPSERT DROP ALTER CREATE TRUNCATE GRANT REVOKE COPY CALL EXEC EXECUTE "
    "LOCK UNLOCK ATTACH DETACH PRAGMA VACUUM INTO LOAD HANDLER SHUTDOWN KILL REINDEX REFRESH LISTEN NOTIFY "
    "PREPARE DEALLOCATE COMMIT ROLLBACK SAVEPOINT".split()
)

_WORD = re.compile(r"[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$")
_DOLLAR_PARAM = re.compile(r"\$(\d+)")


@dataclass(frozen=True)
class _Token:
    kind: str  # word, literal (strings, quoted names), param_q, param_n, semicolon, comment, other
    text: str
    number: int = 0


def _scan(sql: str, dialect: str) -> list[_Token]:
    """Split ``sql`` so that literals, quoted names and comments are never mistaken for code.

    ``dialect`` is "postgres", "mysql" or "sqlite": MySQL strings take backslash escapes and ``#``
    starts a comment; PostgreSQL has dollar-quoted strings and E'' strings; SQLite quotes names with [].
    An unterminated literal raises ConfigError (the database would refuse it anyway).
    """
    tokens: list[_Token] = []
    i, n = 0, len(sql)
    other_start = None

    def flush(upto: int):
        nonlocal other_start
        if other_start is not None and other_start < upto:
            tokens.append(_Token("other", sql[other_start:upto]))
        other_start = None

    def quoted(start: int, close: str, backslash: bool) -> int:
        j = start + 1
        while j < n:
            c = sql[j]
            if backslash and c == "\\":
                j += 2
                continue
            if c == close:
                if j + 1 < n and sql[j + 1] == close:
                    j += 2
                    continue
                return j + 1
            j += 1
        raise ConfigError("the query has an unterminated quote", field="query")

    while i < n:
        c = sql[i]
        nxt = sql[i + 1] if i + 1 < n else ""
        if c == "'":
            flush(i)
            backslash = dialect == "mysql" or (
                dialect == "postgres" and tokens and tokens[-1].kind == "word" and tokens[-1].text in ("E", "e")
                and tokens[-1].text == sql[i - 1:i]
            )
            j = quoted(i, "'", backslash)
            tokens.append(_Token("literal", sql[i:j]))
            i = j
        elif c == '"' or c == "`" and dialect in ("mysql", "sqlite") or c == "[" and dialect == "sqlite":
            flush(i)
            close = "]" if c == "[" else c
            j = quoted(i, close, backslash=(dialect == "mysql" and c == '"'))
            tokens.append(_Token("literal", sql[i:j]))
            i = j
        elif (c == "-" and nxt == "-") or (c == "/" and nxt == "*") or (c == "#" and dialect == "mysql"):
            flush(i)
            tokens.append(_Token("comment", sql[i:i + 2]))
            end = sql.find("*/", i + 2) + 2 if c == "/" else sql.find("\n", i)
            i = n if end <= 1 or end == -1 else end
        elif c == "$":
            flush(i)
            m = _DOLLAR_PARAM.match(sql, i)
            tag = _DOLLAR_TAG.match(sql, i) if dialect == "postgres" else None
            if m:
                tokens.append(_Token("param_n", m.group(0), int(m.group(1))))
                i = m.end()
            elif tag:
                end = sql.find(tag.group(0), tag.end())
                if end == -1:
                    raise ConfigError("the query has an unterminated $-quoted string", field="query")
                j = end + len(tag.group(0))
                tokens.append(_Token("literal", sql[i:j]))
                i = j
            else:
                tokens.append(_Token("other", c))
                i += 1
        elif c == "?":
            flush(i)
            tokens.append(_Token("param_q", c))
            i += 1
        elif c == ";":
            flush(i)
            tokens.append(_Token("semicolon", c))
            i += 1
        else:
            m = _WORD.match(sql, i) if (c.isalpha() or c == "_" or ord(c) >= 0x80) else None
            if m:
                flush(i)
                tokens.append(_Token("word", m.group(0)))
                i = m.end()
            else:
                if other_start is None:
                    other_start = i
                i += 1
    flush(n)
    return tokens


def check_select(sql: Any, dialect: str = "postgres") -> str:
    """``sql`` if it is one read-only SELECT (or WITH ... SELECT) statement, else ConfigError.

    A single trailing ``;`` is dropped. Refused: any other ``;``, comments, and the keywords in
    :data:`FORBIDDEN_KEYWORDS` outside literals and quoted names (quote a column that has such a name).
    """
    if not isinstance(sql, str) or not sql.strip():
        raise ConfigError("the query is empty", field="query")
    text = sql.strip()
    tokens = _scan(text, dialect)
    if tokens and tokens[-1].kind == "semicolon":  # one trailing ';' is harmless
        tokens.pop()
        text = text[: text.rfind(";")].rstrip()
    kinds = [t.kind for t in tokens]
    if "comment" in kinds:
        raise ConfigError("comments are not allowed in the query", field="query")
    if "semicolon" in kinds:
        raise ConfigError("the query must be a single statement: ';' is not allowed", field="query")
    words = [t.text.upper() for t in tokens if t.kind == "word"]
    if not words or words[0] not in ("SELECT", "WITH"):
        first = words[0] if words else text.split()[0]
        raise ConfigError(f"the query must be a SELECT (or WITH ... SELECT) statement, not {first}", field="query")
    bad = sorted({w for w in words if w in FORBIDDEN_KEYWORDS})
    if bad:
        raise ConfigError(f"the query may only read data, but it contains {', '.join(bad)} (quote a name "
                          "that is spelt like one of these keywords)", field="query")
    if "SELECT" not in words:
        raise ConfigError("the query must contain a SELECT", field="query")
    return text


# --- dialects --------------------------------------------------------------------------------------------


@dataclass
class Column:
    name: str
    data_type: str  # as the catalogue says (lower case)
    kind: str  # int, num, bool, text, json, array, datetime, date, bytes, other
    nullable: bool = True
    has_default: bool = False


@dataclass
class Table:
    schema: str | None
    name: str
    quoted: str  # schema-qualified where it matters, ready for SQL
    columns: dict[str, Column]
    where: str  # for messages: "connection 'shop' (schema public)"

    def column(self, name: Any, *, field: str | None = None) -> Column:
        """The column ``name`` (exact, else the one case-insensitive match) or ConfigError with the nearest."""
        if not isinstance(name, str) or not name:
            raise ConfigError(f"a column name must be a non-empty string, got {name!r}", field=field)
        hit = resolve_name(name, self.columns)
        if hit is None:
            raise _unknown("column", name, f"table '{self.name}'", list(self.columns), field)
        return self.columns[hit]


class Dialect:
    """What differs between PostgreSQL, MySQL and SQLite. Stateless; one instance per kind."""

    name = ""  # postgres, mysql, sqlite
    label = ""  # PostgreSQL, MySQL, SQLite
    connection_type = ""  # POSTGRES, MYSQL, SQLITE
    ph = "%s"  # the driver's placeholder
    quote_char = '"'

    def quote(self, name: str) -> str:
        """``name`` as a quoted identifier, ready for a parameterised execute (``%`` doubled for the
        drivers that use %s placeholders). Names come from the catalogue; this never validates them."""
        if not isinstance(name, str) or not name or "\x00" in name:
            raise ConfigError(f"not a valid SQL name: {name!r}")
        q = self.quote_char
        out = q + name.replace(q, q + q) + q
        return out.replace("%", "%%") if self.ph == "%s" else out

    def bind(self, sql: str, params: Sequence[Any] | None) -> tuple[str, list]:
        """Rewrite a checked query's ``?`` or ``$n`` placeholders for the driver; return the SQL and the
        parameters in the order the driver needs them. ``$n`` may repeat and come in any order; when a
        query uses ``$n``, a ``?`` is left alone (PostgreSQL's jsonb operators)."""
        params = list(params or [])
        tokens = _scan(sql, self.name)
        numbered = any(t.kind == "param_n" for t in tokens)
        out: list[str] = []
        bound: list[Any] = []
        q_count = 0
        for t in tokens:
            if t.kind == "param_n":
                if t.number < 1 or t.number > len(params):
                    raise ConfigError(f"the query uses {t.text} but {len(params)} parameter(s) are given",
                                      field="parameters")
                bound.append(params[t.number - 1])
                out.append(self.ph)
            elif t.kind == "param_q" and not numbered:
                q_count += 1
                if q_count > len(params):
                    raise ConfigError(f"the query has more '?' placeholders than the {len(params)} parameter(s) "
                                      "given", field="parameters")
                bound.append(params[q_count - 1])
                out.append(self.ph)
            else:
                out.append(t.text.replace("%", "%%") if self.ph == "%s" else t.text)
        if not numbered and q_count != len(params):
            raise ConfigError(f"the query has {q_count} placeholder(s) but {len(params)} parameter(s) are given",
                              field="parameters")
        if numbered:
            used = {t.number for t in tokens if t.kind == "param_n"}
            unused = sorted(set(range(1, len(params) + 1)) - used)
            if unused:
                raise ConfigError(f"parameter(s) {', '.join('$' + str(u) for u in unused)} are given but not used",
                                  field="parameters")
        return "".join(out), bound

    # Catalogue. ``conn`` is a SqlConnection.
    def default_schema(self, conn: SqlConnection) -> str | None:
        raise NotImplementedError

    def list_tables(self, conn: SqlConnection, schema: str | None) -> list[str]:
        raise NotImplementedError

    def list_schemas(self, conn: SqlConnection) -> list[str]:
        raise NotImplementedError

    def list_columns(self, conn: SqlConnection, schema: str | None, table: str) -> list[Column]:
        raise NotImplementedError

    def unique_keys(self, conn: SqlConnection, table: Table) -> list[tuple[str, ...]]:
        """Column tuples of the unique indexes (primary key included) that an upsert can target: no
        partial indexes, no expression or prefix indexes."""
        raise NotImplementedError

    def qualified(self, schema: str | None, table: str, explicit: bool) -> str:
        return self.quote(table) if not explicit or schema is None else f"{self.quote(schema)}.{self.quote(table)}"

    def upsert_clause(self, key: Sequence[str], update: Sequence[str]) -> str:
        """What follows ``INSERT ... VALUES (...)`` to update the row a unique key already has."""
        target = ", ".join(self.quote(c) for c in key)
        if not update:
            return f" ON CONFLICT ({target}) DO NOTHING"
        sets = ", ".join(f"{self.quote(c)} = excluded.{self.quote(c)}" for c in update)
        return f" ON CONFLICT ({target}) DO UPDATE SET {sets}"

    def limit_one(self) -> str:
        return " LIMIT 1"

    # Values and errors.
    def coerce(self, column: Column, value: Any) -> Any:
        """A record value made fit for ``column`` (the plugin's loader rules: "true"/"false" for booleans,
        numeric strings for numbers, blank strings are NULL for non-text columns, objects and arrays are
        JSON). Raises ValueError with a message for the record."""
        return _coerce(self, column, value)

    def json_param(self, column: Column, value: Any) -> Any:
        return json.dumps(value, ensure_ascii=False)

    def datetime_param(self, column: Column, value: Any) -> Any:
        return value

    def is_record_error(self, exc: BaseException) -> bool:
        """The error belongs to the row (a constraint, a bad value), not to the connection or the SQL."""
        raise NotImplementedError

    def is_timeout(self, exc: BaseException) -> bool:
        raise NotImplementedError

    def is_undefined_name(self, exc: BaseException) -> tuple[str, str] | None:
        """("table" | "column", name) when the error says a name does not exist."""
        return None

    def message(self, exc: BaseException) -> str:
        return " ".join(str(exc).split()) or type(exc).__name__


class PostgresDialect(Dialect):
    name, label, connection_type, ph = "postgres", "PostgreSQL", "POSTGRES", "%s"

    def default_schema(self, conn):
        return conn.config.get("schema") or conn.execute("SELECT current_schema()").fetchone()[0]

    def list_schemas(self, conn):
        rows = conn.execute("SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE %s ORDER BY 1",
                            ["pg\\_%"]).fetchall()
        return [r[0] for r in rows]

    def list_tables(self, conn, schema):
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY table_name",
            [schema]).fetchall()
        return [r[0] for r in rows]

    def list_columns(self, conn, schema, table):
        rows = conn.execute(
            "SELECT column_name, data_type, udt_name, is_nullable, column_default IS NOT NULL OR "
            "is_identity = 'YES' FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
            "ORDER BY ordinal_position", [schema, table]).fetchall()
        return [Column(name, dt.lower(), _pg_kind(dt.lower(), udt), nullable == "YES", bool(default))
                for name, dt, udt, nullable, default in rows]

    def unique_keys(self, conn, table):
        rows = conn.execute(
            "SELECT i.indexrelid, a.attname FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum "
            "WHERE n.nspname = %s AND c.relname = %s AND i.indisunique AND i.indpred IS NULL "
            "AND i.indexprs IS NULL AND k.ord <= i.indnkeyatts ORDER BY i.indexrelid, k.ord",
            [table.schema, table.name]).fetchall()
        return _group_keys(rows)

    def qualified(self, schema, table, explicit):
        return f"{self.quote(schema)}.{self.quote(table)}"

    def json_param(self, column, value):
        if column.kind == "json":
            from psycopg.types.json import Jsonb

            return Jsonb(value)
        if column.kind == "array" and isinstance(value, list):
            return value
        return json.dumps(value, ensure_ascii=False)

    def is_record_error(self, exc):
        import psycopg

        return isinstance(exc, psycopg.IntegrityError | psycopg.DataError)

    def is_timeout(self, exc):
        import psycopg

        return isinstance(exc, psycopg.errors.QueryCanceled)

    def is_undefined_name(self, exc):
        state = getattr(exc, "sqlstate", None)
        text = str(exc)
        if state == "42P01":
            m = re.search(r'relation "([^"]+)" does not exist', text)
            return ("table", m.group(1)) if m else None
        if state == "42703":
            m = re.search(r'column "?([^"\s]+(?:\.[^"\s]+)?)"? does not exist', text)
            return ("column", m.group(1).split(".")[-1]) if m else None
        return None

    def message(self, exc):
        diag = getattr(exc, "diag", None)
        primary = getattr(diag, "message_primary", None)
        if primary:
            detail = getattr(diag, "message_detail", None)
            return primary + (f" ({detail})" if detail else "")
        return super().message(exc)


# MySQL error numbers that belong to one row: duplicate key, NULL into NOT NULL, no default, bad or too long
# value, out of range, foreign key, CHECK constraint (MariaDB 4025, MySQL 3819).
_MYSQL_ROW_ERRORS = frozenset({1048, 1062, 1169, 1264, 1265, 1292, 1364, 1366, 1406, 1451, 1452, 1690, 3819, 4025,
                               1586, 1557, 1216, 1217, 1859, 1411, 1367})


class MysqlDialect(Dialect):
    name, label, connection_type, ph, quote_char = "mysql", "MySQL", "MYSQL", "%s", "`"

    def default_schema(self, conn):
        return conn.execute("SELECT DATABASE()").fetchone()[0]

    def list_schemas(self, conn):
        return [r[0] for r in conn.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY 1").fetchall()]

    def list_tables(self, conn, schema):
        rows = conn.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
                            "ORDER BY TABLE_NAME", [schema]).fetchall()
        return [r[0] for r in rows]

    def list_columns(self, conn, schema, table):
        rows = conn.execute(
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA "
            "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
            [schema, table]).fetchall()
        out = []
        for name, dt, ct, nullable, default, extra in rows:
            has_default = (default is not None and default != "NULL") or "auto_increment" in (extra or "").lower()
            out.append(Column(name, _text(dt).lower(), _mysql_kind(_text(dt).lower(), _text(ct).lower()),
                              nullable == "YES", has_default))
        return out

    def unique_keys(self, conn, table):
        rows = conn.execute(
            "SELECT INDEX_NAME, COLUMN_NAME, SUB_PART FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s "
            "AND TABLE_NAME = %s AND NON_UNIQUE = 0 ORDER BY INDEX_NAME, SEQ_IN_INDEX",
            [table.schema, table.name]).fetchall()
        prefixed = {r[0] for r in rows if r[2] is not None or r[1] is None}
        return _group_keys([(r[0], r[1]) for r in rows if r[0] not in prefixed])

    def upsert_clause(self, key, update):
        # ON DUPLICATE KEY fires on any unique key: callers use it only when the lookup key is the one that
        # can conflict (see SqlConnection.native_upsert_key).
        cols = update or [key[0]]
        return " ON DUPLICATE KEY UPDATE " + ", ".join(f"{self.quote(c)} = VALUES({self.quote(c)})" for c in cols)

    def datetime_param(self, column, value):
        # MySQL DATETIME has no zone and refuses ISO strings with one: aware values are stored as UTC.
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                return value
            value = parsed if column.kind == "datetime" else value
        if isinstance(value, datetime) and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def is_record_error(self, exc):
        import pymysql

        if isinstance(exc, pymysql.IntegrityError | pymysql.DataError):
            return True
        return isinstance(exc, pymysql.MySQLError) and bool(exc.args) and exc.args[0] in _MYSQL_ROW_ERRORS

    def is_timeout(self, exc):
        import pymysql

        if not isinstance(exc, pymysql.MySQLError) or not exc.args:
            return False
        # 2013: lost the connection while waiting (our read timeout); 1969 MariaDB / 3024 MySQL statement time.
        return exc.args[0] in (1969, 3024) or (exc.args[0] == 2013 and "timed out" in str(exc))

    def is_undefined_name(self, exc):
        if not getattr(exc, "args", None):
            return None
        code, text = exc.args[0], str(exc.args[-1])
        if code == 1146:
            m = re.search(r"Table '(?:[^'.]+\.)?([^']+)' doesn't exist", text)
            return ("table", m.group(1)) if m else None
        if code == 1054:
            m = re.search(r"Unknown column '(?:[^'.]+\.)?([^']+)'", text)
            return ("column", m.group(1)) if m else None
        return None

    def message(self, exc):
        import pymysql

        if isinstance(exc, pymysql.MySQLError) and len(exc.args) >= 2:
            return f"{exc.args[1]} (MySQL error {exc.args[0]})"
        return super().message(exc)


class SqliteDialect(Dialect):
    name, label, connection_type, ph = "sqlite", "SQLite", "SQLITE", "?"

    def default_schema(self, conn):
        return "main"

    def list_schemas(self, conn):
        return [r[1] for r in conn.execute("PRAGMA database_list").fetchall()]

    def list_tables(self, conn, schema):
        rows = conn.execute(
            f"SELECT name FROM {self.quote(schema)}.sqlite_master WHERE type IN ('table', 'view') "
            "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name").fetchall()
        return [r[0] for r in rows]

    def list_columns(self, conn, schema, table):
        rows = conn.execute('SELECT name, type, "notnull", dflt_value, pk FROM pragma_table_info(?, ?)',
                            [table, schema]).fetchall()
        return [Column(name, (dt or "").lower(), _sqlite_kind((dt or "").lower()), not notnull,
                       default is not None or (pk == 1 and "int" in (dt or "").lower()))
                for name, dt, notnull, default, pk in rows]

    def unique_keys(self, conn, table):
        keys: list[tuple[str, ...]] = []
        pk = conn.execute('SELECT name FROM pragma_table_info(?, ?) WHERE pk > 0 ORDER BY pk',
                          [table.name, table.schema]).fetchall()
        if pk:
            keys.append(tuple(r[0] for r in pk))
        indexes = conn.execute('SELECT name FROM pragma_index_list(?, ?) WHERE "unique" AND NOT partial',
                               [table.name, table.schema]).fetchall()
        for (index,) in indexes:
            cols = conn.execute("SELECT name FROM pragma_index_info(?, ?) ORDER BY seqno",
                                [index, table.schema]).fetchall()
            if cols and all(c[0] is not None for c in cols):
                keys.append(tuple(c[0] for c in cols))
        return list(dict.fromkeys(keys))

    def qualified(self, schema, table, explicit):
        return self.quote(table) if not explicit or schema in (None, "main") else f"{self.quote(schema)}.{self.quote(table)}"

    def coerce(self, column, value):
        # sqlite3 binds no Decimal (Django registers an adapter, but only where its SQLite backend is loaded):
        # the text goes in and the column's numeric affinity makes a number of it.
        value = super().coerce(column, value)
        return format(value, "f") if isinstance(value, Decimal) else value

    def is_record_error(self, exc):
        import sqlite3

        return isinstance(exc, sqlite3.IntegrityError | sqlite3.DataError)

    def is_timeout(self, exc):
        import sqlite3

        return isinstance(exc, sqlite3.OperationalError) and "interrupted" in str(exc)

    def is_undefined_name(self, exc):
        text = str(exc)
        m = re.search(r"no such table: (?:\w+\.)?(\S+)", text)
        if m:
            return ("table", m.group(1))
        m = re.search(r"no such column: (?:\w+\.)?(\S+)", text)
        return ("column", m.group(1)) if m else None


POSTGRES, MYSQL, SQLITE = PostgresDialect(), MysqlDialect(), SqliteDialect()
DIALECTS: dict[str, Dialect] = {"POSTGRES": POSTGRES, "MYSQL": MYSQL, "SQLITE": SQLITE}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes | bytearray) else str(value or "")


def _group_keys(rows) -> list[tuple[str, ...]]:
    keys: dict[Any, list[str]] = {}
    for index, column in rows:
        keys.setdefault(index, []).append(column)
    return list(dict.fromkeys(tuple(v) for v in keys.values()))


def _pg_kind(dt: str, udt: str) -> str:
    if dt in ("smallint", "integer", "bigint"):
        return "int"
    if dt in ("numeric", "real", "double precision", "money"):
        return "num"
    if dt == "boolean":
        return "bool"
    if dt in ("json", "jsonb"):
        return "json"
    if dt == "array":
        return "array"
    if dt.startswith("timestamp"):
        return "datetime"
    if dt == "date":
        return "date"
    if dt in ("text", "character varying", "character", "citext", "name") or udt == "citext":
        return "text"
    if dt == "bytea":
        return "bytes"
    return "other"


def _mysql_kind(dt: str, column_type: str) -> str:
    if column_type.startswith("tinyint(1)") or dt in ("bool", "boolean"):
        return "bool"
    if dt in ("tinyint", "smallint", "mediumint", "int", "integer", "bigint", "year"):
        return "int"
    if dt in ("decimal", "numeric", "float", "double", "real"):
        return "num"
    if dt in ("datetime", "timestamp"):
        return "datetime"
    if dt == "date":
        return "date"
    if dt == "json":
        return "text"  # MariaDB's JSON is LONGTEXT with a check: objects go in as JSON text
    if dt in ("char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set"):
        return "text"
    if "blob" in dt or "binary" in dt:
        return "bytes"
    return "other"


def _sqlite_kind(declared: str) -> str:
    # SQLite's own affinity rules (https://sqlite.org/datatype3.html 3.1), with BOOL and DATE names noticed.
    if "bool" in declared:
        return "bool"
    if "int" in declared:
        return "int"
    if any(s in declared for s in ("char", "clob", "text")):
        return "text"
    if "json" in declared:
        return "text"
    if declared == "" or "blob" in declared:
        return "other"
    if "date" in declared or "time" in declared:
        return "datetime"
    return "num"


_TRUE = frozenset({"true", "t", "yes", "y", "1", "on"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "off"})


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _coerce(d: Dialect, column: Column, value: Any) -> Any:
    kind = column.kind
    if value is None:
        return None
    where = f"column '{column.name}' ({column.data_type or 'untyped'})"
    if isinstance(value, dict | list):
        if kind in ("json", "array", "text", "other"):
            return d.json_param(column, value)
        raise ValueError(f"{where} cannot take {'an object' if isinstance(value, dict) else 'an array'}")
    if kind == "json":
        return d.json_param(column, value)
    if isinstance(value, str) and kind not in ("text", "other", "bytes") and not value.strip():
        return None  # a blank cell is no value
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError(f"{where} takes true or false, got {_short(value)}")
    if kind == "int":
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                number = Decimal(value.strip())
            except InvalidOperation:
                number = None
            if number is not None and number.is_finite() and number == number.to_integral_value():
                return int(number)
        raise ValueError(f"{where} takes a whole number, got {_short(value)}")
    if kind == "num":
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int | float | Decimal):
            return value
        if isinstance(value, str):
            try:
                number = Decimal(value.strip())
            except InvalidOperation:
                number = None
            if number is not None and number.is_finite():
                return number
        raise ValueError(f"{where} takes a number, got {_short(value)}")
    if kind == "text":
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float | Decimal):
            return str(value)
        return value
    if kind in ("datetime", "date"):
        return d.datetime_param(column, value)
    return value


# --- connecting ----------------------------------------------------------------------------------------


@dataclass
class ConnectParams:
    """What :func:`connect` hands the driver, worked out from the connection dict (no I/O but secrets)."""

    type: str  # POSTGRES, MYSQL, SQLITE
    kwargs: dict
    describe: str  # "postgres://user@host:5432/db", never with a password
    conninfo: str | None = None  # PostgreSQL: a URL or key=value string from connectionStringSecretCode


def _secret(secret: Callable[[str], str] | None, code: Any, field: str) -> str:
    if not isinstance(code, str) or not code:
        raise ConfigError(f"{field} must name a secret", field=field)
    if secret is None:
        raise ConfigError(f"secret '{code}' cannot be resolved here (no secret resolver)", field=field)
    value = secret(code)
    if not isinstance(value, str):
        raise ConfigError(f"secret '{code}' did not resolve to text", field=field)
    return value


def _int(config: Mapping, key: str, default: int | None) -> int | None:
    value = config.get(key, default)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be a whole number, got {value!r}", field=key) from None


def sqlite_dirs() -> list[Path]:
    """The folders SQLite files may live in: ``settings.DATAHUB_SQLITE_DIRS``, else the environment variable
    ``DATAHUB_SQLITE_DIRS`` (``:``-separated), else ``<DATAHUB_VAR_DIR>/sqlite``."""
    configured = None
    try:
        from django.conf import settings

        if settings.configured:
            configured = getattr(settings, "DATAHUB_SQLITE_DIRS", None)
            if configured is None:
                env = os.environ.get("DATAHUB_SQLITE_DIRS")
                configured = env.split(os.pathsep) if env else [Path(settings.VAR_DIR) / "sqlite"]
    except ImportError:  # pragma: no cover - Django is a dependency; this keeps the module usable without it
        pass
    if configured is None:
        env = os.environ.get("DATAHUB_SQLITE_DIRS")
        configured = env.split(os.pathsep) if env else [Path(os.environ.get("DATAHUB_VAR_DIR", "var")) / "sqlite"]
    if isinstance(configured, str | Path):
        configured = [configured]
    return [Path(p).resolve() for p in configured if str(p).strip()]


def _own_databases() -> set[Path]:
    try:
        from django.conf import settings

        if not settings.configured:
            return set()
        names = set()
        for db in settings.DATABASES.values():
            for name in (db.get("NAME"), (db.get("TEST") or {}).get("NAME")):
                if name and "sqlite" in db.get("ENGINE", "") and str(name) != ":memory:":
                    names.add(Path(str(name)).resolve())
        return names
    except ImportError:  # pragma: no cover
        return set()


def _sqlite_path(raw: Any, code: str, allowed_dirs: Sequence[str | Path] | None) -> Path:
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigError(f"SQLite connection '{code}' needs a path", field="connectionCode")
    path = Path(raw).expanduser().resolve()
    dirs = [Path(d).resolve() for d in allowed_dirs] if allowed_dirs is not None else sqlite_dirs()
    if not any(path.is_relative_to(d) for d in dirs):
        raise ConfigError(
            f"SQLite file {raw} of connection '{code}' is outside the allowed folders "
            f"({', '.join(str(d) for d in dirs) or 'none'}; set DATAHUB_SQLITE_DIRS)", field="connectionCode")
    if path in _own_databases():
        raise ConfigError(f"connection '{code}' points at Datahub's own database, which is refused",
                          field="connectionCode")
    if not path.is_file():
        raise ConfigError(f"SQLite file {raw} of connection '{code}' does not exist", field="connectionCode")
    return path


def connect_params(
    connection: Mapping,
    secret: Callable[[str], str] | None = None,
    *,
    allowed_dirs: Sequence[str | Path] | None = None,
    query_timeout_ms: int | None = None,
) -> ConnectParams:
    """Resolve a connection dict (and its secrets) into driver arguments. Pure but for ``secret``."""
    ctype = str(connection.get("type", "")).upper()
    code = str(connection.get("code", "?"))
    if ctype not in SQL_TYPES:
        raise ConfigError(f"connection '{code}' is of type {ctype or 'unknown'}; a SQL adapter needs one of "
                          f"{', '.join(SQL_TYPES)}", field="connectionCode")
    timeout_s = max(1, round((_int(connection, "connectTimeoutMs", DEFAULT_CONNECT_TIMEOUT_MS) or 0) / 1000))
    url = None
    if connection.get("connectionStringSecretCode"):
        url = _secret(secret, connection["connectionStringSecretCode"], "connectionStringSecretCode").strip()

    if ctype == "SQLITE":
        raw = connection.get("path") or connection.get("database")
        if url is not None:
            parts = urlsplit(url)
            if parts.scheme != "sqlite":
                raise ConfigError(f"the connection string of '{code}' must be sqlite:///path, not {parts.scheme}://",
                                  field="connectionCode")
            raw = unquote(parts.path)
        path = _sqlite_path(raw, code, allowed_dirs)
        return ConnectParams(ctype, {"path": str(path), "timeout": timeout_s}, f"sqlite://{path}")

    user = connection.get("user") or connection.get("username")
    password = None
    if connection.get("passwordSecretCode"):
        password = _secret(secret, connection["passwordSecretCode"], "passwordSecretCode")
    ssl = connection.get("ssl") or {}
    if not isinstance(ssl, Mapping):
        raise ConfigError("ssl must be an object {enabled, rejectUnauthorized}", field="ssl")

    if ctype == "POSTGRES":
        kwargs: dict[str, Any] = {"connect_timeout": timeout_s, "application_name": "datahub",
                                  "options": "-c timezone=UTC"}
        if query_timeout_ms:
            kwargs["options"] += f" -c statement_timeout={int(query_timeout_ms)}"
        for key, value in (("host", connection.get("host")), ("port", _int(connection, "port", None)),
                           ("dbname", connection.get("database")), ("user", user), ("password", password)):
            if value not in (None, ""):
                kwargs[key] = value
        if ssl.get("enabled"):
            kwargs["sslmode"] = "verify-full" if ssl.get("rejectUnauthorized", True) else "require"
        if url is not None:
            scheme = url.split("://", 1)[0].lower() if "://" in url else ""
            if scheme and scheme not in ("postgres", "postgresql"):
                raise ConfigError(f"the connection string of '{code}' must be postgresql://..., not {scheme}://",
                                  field="connectionCode")
            for key in ("host", "port", "dbname", "user", "password"):
                kwargs.pop(key, None)  # the string says where and who
            describe = _describe_url(url) if scheme else "postgres (connection string)"
            return ConnectParams(ctype, kwargs, describe, conninfo=url)
        describe = f"postgres://{user or ''}@{kwargs.get('host', 'localhost')}:{kwargs.get('port', 5432)}/" \
                   f"{kwargs.get('dbname', '')}"
        return ConnectParams(ctype, kwargs, describe)

    # MYSQL
    kwargs = {"host": connection.get("host") or "localhost", "port": _int(connection, "port", 3306),
              "user": user, "password": password or "", "database": connection.get("database"),
              "connect_timeout": timeout_s, "charset": "utf8mb4"}
    if ssl.get("enabled"):
        verify = bool(ssl.get("rejectUnauthorized", True))
        kwargs.update(ssl={}, ssl_verify_cert=verify, ssl_verify_identity=verify)
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme not in ("mysql", "mariadb", "mysql+pymysql"):
            raise ConfigError(f"the connection string of '{code}' must be mysql://..., not {parts.scheme}://",
                              field="connectionCode")
        kwargs.update(host=parts.hostname or "localhost", port=parts.port or 3306,
                      user=unquote(parts.username or "") or None, password=unquote(parts.password or ""),
                      database=unquote(parts.path.lstrip("/")) or None)
        query = dict(parse_qsl(parts.query))
        if query.get("ssl", "").lower() in ("true", "1", "required"):
            kwargs["ssl"] = {}
    describe = f"mysql://{kwargs['user'] or ''}@{kwargs['host']}:{kwargs['port']}/{kwargs['database'] or ''}"
    return ConnectParams(ctype, kwargs, describe)


def _describe_url(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    if parts.username:
        netloc = f"{unquote(parts.username)}@{netloc}"
    return f"{parts.scheme}://{netloc}{parts.path}"


def connect(
    connection: Mapping,
    secret: Callable[[str], str] | None = None,
    *,
    read_only: bool = False,
    query_timeout_ms: int | None = DEFAULT_QUERY_TIMEOUT_MS,
    allowed_dirs: Sequence[str | Path] | None = None,
) -> SqlConnection:
    """Open a connection. ``read_only`` makes every transaction read-only (PostgreSQL and MySQL) or sets
    SQLite's ``query_only``. ``query_timeout_ms`` (0 or None: no limit) bounds each statement and each fetch
    (PostgreSQL ``statement_timeout``; MySQL the socket read timeout; SQLite a progress-handler deadline).

    An unreachable server is a retryable StepError; refused credentials, a missing database and bad config
    are not retryable.
    """
    params = connect_params(connection, secret, allowed_dirs=allowed_dirs, query_timeout_ms=query_timeout_ms)
    dialect = DIALECTS[params.type]
    code = str(connection.get("code", "?"))
    try:
        raw = _open(params, read_only=read_only, query_timeout_ms=query_timeout_ms)
    except ConfigError:
        raise
    except Exception as exc:
        message = dialect.message(exc)
        retryable = not _permanent_connect_error(message)
        raise StepError(f"cannot connect to {dialect.label} connection '{code}' ({params.describe}): {message}",
                        retryable=retryable) from None
    return SqlConnection(raw, dialect, dict(connection), code, params.describe, query_timeout_ms or 0)


_PERMANENT = re.compile(r"authentication failed|access denied|password|does not exist|unknown database|"
                        r"no pg_hba\.conf entry|role .* does not exist|invalid (dsn|connection)", re.I)


def _permanent_connect_error(message: str) -> bool:
    return bool(_PERMANENT.search(message))


def _open(params: ConnectParams, *, read_only: bool, query_timeout_ms: int | None):
    if params.type == "POSTGRES":
        import psycopg

        raw = psycopg.connect(params.conninfo or "", **params.kwargs)
        raw.read_only = read_only
        return raw
    if params.type == "MYSQL":
        import pymysql
        from pymysql.constants import CLIENT

        timeout_s = (query_timeout_ms / 1000) if query_timeout_ms else None
        init = "SET time_zone = '+00:00'"
        raw = pymysql.connect(**params.kwargs, autocommit=False, client_flag=CLIENT.FOUND_ROWS,
                              read_timeout=timeout_s, write_timeout=timeout_s, init_command=init)
        if read_only:
            with raw.cursor() as cur:
                cur.execute("SET SESSION TRANSACTION READ ONLY")
        return raw
    import sqlite3

    path = params.kwargs["path"]
    mode = "ro" if read_only else "rw"
    raw = sqlite3.connect(f"file:{Path(path).as_uri()[len('file://'):]}?mode={mode}", uri=True,
                          timeout=params.kwargs["timeout"], isolation_level=None)
    raw.execute("PRAGMA foreign_keys = ON")
    if read_only:
        raw.execute("PRAGMA query_only = ON")
    return raw


def step_connection(ctx: Any, code: Any, *, database_type: str | None = None,
                    field: str = "connectionCode") -> dict:
    """The connection dict for ``code`` through ``ctx.connection`` (an AdapterContext), checked to be a SQL
    connection. ``database_type`` (the plugin's ``databaseType``), when given, must agree with its type."""
    if not isinstance(code, str) or not code:
        raise ConfigError("connectionCode is required", field=field)
    if getattr(ctx, "connection", None) is None:
        raise ConfigError(f"connection '{code}' cannot be resolved here (no connection resolver)", field=field)
    connection = dict(ctx.connection(code))
    ctype = str(connection.get("type", "")).upper()
    if ctype not in SQL_TYPES:
        raise ConfigError(f"connection '{code}' is of type {ctype or 'unknown'}; a SQL adapter needs one of "
                          f"{', '.join(SQL_TYPES)}", field=field)
    if database_type:
        wanted = DATABASE_TYPES.get(str(database_type).upper())
        if wanted is None:
            raise ConfigError(f"databaseType {database_type} is not supported (use POSTGRESQL, MYSQL or SQLITE)",
                              field="databaseType")
        if ctype != wanted:
            raise ConfigError(f"databaseType is {database_type} but connection '{code}' is of type {ctype}",
                              field="databaseType")
    return connection


def dialect_for(connection: Mapping) -> Dialect:
    """The dialect of a (checked) connection dict."""
    return DIALECTS[str(connection.get("type", "")).upper()]


def open_step_connection(ctx: Any, code: Any, *, read_only: bool = False,
                         query_timeout_ms: int | None = DEFAULT_QUERY_TIMEOUT_MS,
                         database_type: str | None = None, field: str = "connectionCode") -> SqlConnection:
    """:func:`step_connection` then :func:`connect` with ``ctx.secret``."""
    connection = step_connection(ctx, code, database_type=database_type, field=field)
    return connect(connection, getattr(ctx, "secret", None), read_only=read_only, query_timeout_ms=query_timeout_ms)


# --- the connection ------------------------------------------------------------------------------------


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
                    raise _unknown("table", short, f"schema '{found_schema}' of connection '{self.code}'",
                                   schema_tables, field)
                schema, explicit = found_schema, True
        if hit is None:
            where = f"connection '{self.code}'" + (f" (schema {schema})" if schema and schema != "main" else "")
            raise _unknown("table", name, where, known, field)
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

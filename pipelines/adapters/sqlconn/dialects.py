"""What differs between PostgreSQL, MySQL and SQLite: quoting, placeholders, the catalogue, upserts,
reading driver errors. [pure]
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pipelines.adapters.sqlconn.coercion import coerce
from pipelines.adapters.sqlconn.names import resolve_name, unknown_name
from pipelines.adapters.sqlconn.scanner import scan
from pipelines.errors import ConfigError

if TYPE_CHECKING:
    from pipelines.adapters.sqlconn.connection import SqlConnection


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
            raise unknown_name("column", name, f"table '{self.name}'", list(self.columns), field)
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
        tokens = scan(sql, self.name)
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
        return coerce(self, column, value)

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

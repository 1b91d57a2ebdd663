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

The package, one concern a module: :mod:`~pipelines.adapters.sqlconn.connect` (from settings to an open
connection), :mod:`~pipelines.adapters.sqlconn.connection` (:class:`SqlConnection`),
:mod:`~pipelines.adapters.sqlconn.dialects` (what differs between the three databases),
:mod:`~pipelines.adapters.sqlconn.coercion` (record values to column values),
:mod:`~pipelines.adapters.sqlconn.scanner` (user-written queries), :mod:`~pipelines.adapters.sqlconn.values`
(JSON-safe values and cursors) and :mod:`~pipelines.adapters.sqlconn.names` (catalogue names). This file
names what the adapters use of it.
"""

from pipelines.adapters.sqlconn.coercion import short
from pipelines.adapters.sqlconn.connect import (
    DATABASE_TYPES,
    DEFAULT_CONNECT_TIMEOUT_MS,
    DEFAULT_QUERY_TIMEOUT_MS,
    SQL_TYPES,
    ConnectParams,
    connect,
    connect_params,
    dialect_for,
    open_step_connection,
    sqlite_dirs,
    step_connection,
)
from pipelines.adapters.sqlconn.connection import SqlConnection, Stream
from pipelines.adapters.sqlconn.dialects import DIALECTS, MYSQL, POSTGRES, SQLITE, Column, Dialect, Table
from pipelines.adapters.sqlconn.names import nearest, resolve_name
from pipelines.adapters.sqlconn.scanner import FORBIDDEN_KEYWORDS, check_select
from pipelines.adapters.sqlconn.values import decode_cursor, encode_cursor, iso_duration, json_value

__all__ = [
    "DATABASE_TYPES", "DEFAULT_CONNECT_TIMEOUT_MS", "DEFAULT_QUERY_TIMEOUT_MS", "DIALECTS", "FORBIDDEN_KEYWORDS",
    "MYSQL", "POSTGRES", "SQLITE", "SQL_TYPES", "Column", "ConnectParams", "Dialect", "SqlConnection", "Stream",
    "Table", "check_select", "connect", "connect_params", "decode_cursor", "dialect_for", "encode_cursor",
    "iso_duration", "json_value", "nearest", "open_step_connection", "resolve_name", "short", "sqlite_dirs",
    "step_connection",
]

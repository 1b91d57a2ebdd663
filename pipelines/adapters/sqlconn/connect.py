"""Opening a connection from a Connection's settings: parameters, secrets, SQLite folders, drivers. [pure]

The drivers (psycopg 3, PyMySQL, sqlite3) are imported when a connection is opened.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from pipelines.adapters.sqlconn.connection import SqlConnection
from pipelines.adapters.sqlconn.dialects import DIALECTS, Dialect
from pipelines.errors import ConfigError, StepError

SQL_TYPES = ("POSTGRES", "MYSQL", "SQLITE")
# The plugin's databaseType values, and ours, to a Connection type.
DATABASE_TYPES = {"POSTGRESQL": "POSTGRES", "POSTGRES": "POSTGRES", "MYSQL": "MYSQL", "MARIADB": "MYSQL",
                  "SQLITE": "SQLITE"}
DEFAULT_CONNECT_TIMEOUT_MS = 10_000
DEFAULT_QUERY_TIMEOUT_MS = 30_000


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

"""Testing a connection: a real connect with a clear answer.

One check per connection type, in the table :data:`CHECKS` (the page lists what it can test from it):

- POSTGRES, MYSQL, SQLITE: open the connection the way the SQL adapters do (``sqlconn.connect``, read-only)
  and run ``SELECT 1``.
- HTTP, GRAPHQL: a GET of the base URL with the connection's headers and auth, through the guarded HTTP
  client (the SSRF checks and ``DATAHUB_HTTP_ALLOW`` apply as in a run). Any HTTP answer means reachable;
  401 and 403 say the credentials were refused.
- REDIS: PING, with the connection's options (``queues.redis_options``).
- CUSTOM with an ``amqpUrl`` (or ``vhost``): open an AMQP connection to RabbitMQ (``queues.amqp_parameters``).
- FOLDER, SFTP, FTP: open the file store as a run does (``filestores.open_store``: host key, login, root) and
  list the root.

What is guaranteed: a check never raises for a failure of the target; it answers ``CheckResult(ok=False,
message)``. Every secret value read during the check (and the password and path of a secret URL) is replaced by ``***``
in the message, so a driver that echoes a URL or a password cannot leak it to the page. Each check is bounded by ``timeout_s``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from pipelines.adapters import queues, sqlconn
from pipelines.adapters.base import AdapterContext
from pipelines.adapters.http_auth import apply_auth, resolve_target
from pipelines.errors import DatahubError
from pipelines.filestores import open_store

DEFAULT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    message: str
    elapsed_ms: int = 0

    def as_dict(self) -> dict:
        return {"ok": self.ok, "message": self.message, "elapsedMs": self.elapsed_ms}


def _sql(conn: Mapping, ctx: AdapterContext, timeout_s: float) -> str:
    connection = sqlconn.connect({**conn, "connectTimeoutMs": int(timeout_s * 1000)}, ctx.secret,
                                 read_only=True, query_timeout_ms=int(timeout_s * 1000))
    try:
        connection.execute("SELECT 1").fetchall()
    finally:
        connection.close()
    return f"connected to {connection.dialect.label} ({connection.describe}) and ran SELECT 1"


def _http(conn: Mapping, ctx: AdapterContext, timeout_s: float) -> str:
    target = resolve_target({"connectionCode": conn["code"]}, ctx)
    headers, params = dict(target.headers), {}
    apply_auth(target.auth, ctx, headers, params)
    response = ctx.http.get(target.url, headers=headers, params=params or None, timeout=timeout_s)
    status = response.status
    if status in (401, 403):
        raise DatahubError(f"{target.url} is reachable but refused the credentials (HTTP {status})")
    return f"{target.url} answered HTTP {status}"


def _redis(conn: Mapping, ctx: AdapterContext, timeout_s: float) -> str:
    import redis

    options = queues.redis_options(conn, ctx, timeout_s=timeout_s)
    client = redis.Redis(**options)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise DatahubError(f"Redis at {options.get('host', '?')}:{options.get('port', '')}: {exc}") from None
    finally:
        client.close()
    return f"Redis at {options.get('host', '?')}:{options.get('port', '')} answered PING"


def _amqp(conn: Mapping, ctx: AdapterContext, timeout_s: float) -> str:
    import pika

    params = queues.amqp_parameters(conn, ctx, timeout_s=timeout_s)
    where = f"RabbitMQ at {params.host}:{params.port}{params.virtual_host and ' vhost ' + params.virtual_host}"
    try:
        pika.BlockingConnection(params).close()
    except pika.exceptions.AMQPError as exc:
        raise DatahubError(f"{where}: {type(exc).__name__} {exc}".rstrip()) from None
    return f"{where}: connected"


def _custom(conn: Mapping, ctx: AdapterContext, timeout_s: float) -> str:
    if any(conn.get(k) for k in ("amqpUrl", "vhost", "virtualHost")) or \
            str(conn.get("url", "")).startswith(("amqp://", "amqps://")):
        return _amqp(conn, ctx, timeout_s)
    raise DatahubError("a CUSTOM connection can be tested only as RabbitMQ (give amqpUrl, or host and vhost)")


def _files(conn: Mapping, ctx: AdapterContext, timeout_s: float) -> str:
    bounded = {**conn, "timeoutSec": timeout_s}
    with open_store(conn["code"], lambda code: bounded, ctx.secret) as store:
        count = len(store.list("."))
    return f"{store.label}: logged in and listed the root ({count} files)"


CHECKS: dict[str, Callable[[Mapping, AdapterContext, float], str]] = {
    "POSTGRES": _sql,
    "MYSQL": _sql,
    "SQLITE": _sql,
    "HTTP": _http,
    "GRAPHQL": _http,
    "REDIS": _redis,
    "CUSTOM": _custom,
    "FOLDER": _files,
    "SFTP": _files,
    "FTP": _files,
}


def check(conn: Mapping, *, secret: Callable[[str], str], http: Any, timeout_s: float = DEFAULT_TIMEOUT_S) -> CheckResult:
    """Test the connection dict ``conn`` (``{"code", "type", **config}``). [pure: no Django]"""
    used: list[str] = []

    def tracked_secret(code: str) -> str:
        value = secret(code)
        used.append(value)
        return value

    ctx = AdapterContext(step_key="connection-test", secret=tracked_secret,
                         connection=lambda code: conn if code == conn["code"] else {}, http=http)
    started = time.monotonic()
    test = CHECKS.get(str(conn.get("type", "")).upper())
    try:
        if test is None:
            raise DatahubError(f"connections of type {conn.get('type')} cannot be tested")
        ok, message = True, test(conn, ctx, timeout_s)
    except DatahubError as exc:
        ok, message = False, str(exc)
    except Exception as exc:  # a driver's own error: its text is the clearest answer there is
        ok, message = False, f"{type(exc).__name__}: {exc}"
    return CheckResult(ok, redact(message, used), int((time.monotonic() - started) * 1000))


def redact(message: str, values: list[str]) -> str:
    """``message`` with every secret value, and the password and path of a secret URL, as ``***``."""
    hidden: set[str] = set()
    for value in values:
        hidden.add(value)
        try:
            parts = urlsplit(value)
        except ValueError:
            continue
        if parts.scheme and parts.password:
            hidden.update({parts.password, unquote(parts.password)})
        if parts.scheme and len(parts.path) > 1:  # a file path held by a secret (sqlite:///...) is secret too
            hidden.update({parts.path, parts.path.lstrip("/"), unquote(parts.path)})
    for text in sorted((h for h in hidden if len(h) >= 3), key=len, reverse=True):
        message = message.replace(text, "***")
    return message


def check_connection(connection, timeout_s: float = DEFAULT_TIMEOUT_S) -> CheckResult:
    """Test a saved :class:`pipelines.models.Connection` with the worker's secrets and HTTP policy."""
    from django.conf import settings

    from pipelines.http import HttpClient, HttpPolicy
    from pipelines.secrets import resolve_secret

    policy = HttpPolicy(allow=tuple(settings.DATAHUB_HTTP_ALLOW), max_bytes=1024 * 1024, timeout=timeout_s)
    client = HttpClient(policy)
    try:
        return check({**connection.config, "code": connection.code, "type": connection.type},
                     secret=resolve_secret, http=client, timeout_s=timeout_s)
    finally:
        client.close()

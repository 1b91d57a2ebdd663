"""Message-queue sink ``queueProducer``: records to a Redis stream or a RabbitMQ queue. [pure]

The drivers (redis-py, pika) are imported when a step opens its connection. Config, by ``queueType``:

* ``REDIS_STREAMS``: one ``XADD <queueName> [MAXLEN ~ maxLength] *`` per record, with the fields ``data`` (the
  record as JSON), ``operation`` (UPSERT or DELETE) and ``id`` (when the record has one). The records of a
  chunk of ``batchSize`` go in one pipelined round trip; an entry counts as written when Redis returned its id.
  The connection (``connectionCode``, type REDIS): ``url`` (``redis://host:port/db`` or ``rediss://``) or
  ``host`` / ``port`` (6379) / ``db`` (0) / ``tls``; ``username`` (ACL user) and ``passwordSecretCode``; or
  ``connectionStringSecretCode`` naming a secret that holds a whole URL with its password.
* ``RABBITMQ_AMQP`` (``RABBITMQ``, the plugin's older name, is the same here): one message per record,
  published to ``exchange`` (default: the default exchange) with ``routingKey`` (default ``queueName``),
  ``mandatory`` and publisher confirms: a record counts as written only when the broker acknowledged it; a
  nack or an unroutable message fails that record alone. Properties: ``content_type`` application/json,
  delivery mode 2 when ``persistent`` (default), ``priority``, ``expiration`` = ``ttlMs``, ``message_id`` =
  the record's id, headers = ``headers`` plus ``x-datahub-operation`` (UPSERT or DELETE). With
  ``declareQueue`` (default) ``queueName`` is declared durable when it does not exist yet, and bound to
  ``exchange`` with the routing key when an exchange is named. The connection (``connectionCode``, type
  CUSTOM, or RABBITMQ should that type be added): ``amqpUrl`` (``amqp://host:5672/vhost`` or ``amqps://``)
  or ``host`` / ``port`` (5672) / ``vhost`` (/) / ``tls``; ``username`` and ``passwordSecretCode``; or
  ``connectionStringSecretCode`` (a whole URL with its password). Without a username pika's default
  (guest) is used.

Shared with the ``webhook`` sink: ``defaultOperation`` UPSERT or DELETE; a record's ``__operation``
overrides it and is removed before sending; another value fails that record alone; a DELETE record is
reduced to ``{idField: id}`` (and fails alone when it has no id).

Failures: credentials written into a URL, a wrong connection type, a missing secret are ConfigErrors; a
broker that cannot be reached (refused, timed out, lost mid-batch) fails the step with a retryable StepError
(the records of that batch already delivered are sent again by the retry: delivery is at least once); a
refused login, a missing exchange or a key holding something else than a stream fail the step for good.

Dry runs send nothing.

Why one module of some 510 lines: the producers share one message-building and one delivery-accounting
path, and differ only in the few lines that talk to each broker.

Why one module of this size: it is one sink over two brokers, sharing the record preparation, the connection
options and the delivery loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from pipelines.adapters.base import AdapterContext, Writer, WriteResult
from pipelines.adapters.http_auth import connection_of, resolve_secret
from pipelines.adapters.rest import _OPERATIONS
from pipelines.errors import ConfigError, StepCancelled, StepError
from pipelines.http_policy import check_headers
from pipelines.records import MISSING, Batch, Path, PathError, Record, chunked, dumps, path
from pipelines.registry import sinks

OPERATION_HEADER = "x-datahub-operation"
QUEUE_TYPES = ("REDIS_STREAMS", "RABBITMQ_AMQP", "RABBITMQ")
_AMQP_ONLY = ("exchange", "routingKey", "headers", "persistent", "priority", "ttlMs")
_REDIS_ONLY = ("maxLength",)

QUEUE_PRODUCER_SCHEMA = {
    "type": "object",
    "properties": {
        "queueType": {"enum": list(QUEUE_TYPES),
                      "description": "REDIS_STREAMS: XADD to a Redis stream. RABBITMQ_AMQP: publish over AMQP "
                      "0-9-1 with publisher confirms (RABBITMQ is the same)."},
        "connectionCode": {"type": "string", "minLength": 1,
                           "description": "The broker: a REDIS connection for REDIS_STREAMS (url or host/port/db, "
                           "username, passwordSecretCode); a CUSTOM connection for RABBITMQ_AMQP (amqpUrl or "
                           "host/port/vhost, username, passwordSecretCode)."},
        "queueName": {"type": "string", "minLength": 1, "maxLength": 255,
                      "description": "The stream key (Redis) or the queue (RabbitMQ)."},
        "exchange": {"type": "string", "maxLength": 255, "default": "",
                     "description": "RabbitMQ: the exchange to publish to; empty is the default exchange, which "
                     "routes by queue name."},
        "routingKey": {"type": "string", "maxLength": 255,
                       "description": "RabbitMQ: the routing key; default queueName. With the default exchange "
                       "it must be queueName."},
        "declareQueue": {"type": "boolean", "default": True,
                         "description": "RabbitMQ: declare queueName (durable) if it does not exist, and bind it to "
                         "exchange with the routing key when an exchange is named."},
        "headers": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]},
                    "description": "RabbitMQ: message headers (not secret) added to x-datahub-operation."},
        "idField": {"type": "string", "minLength": 1, "default": "id",
                    "description": "Dot path of the record id: the message id, the stream entry's id field, and "
                    "all a DELETE record sends."},
        "persistent": {"type": "boolean", "default": True,
                       "description": "RabbitMQ: persistent delivery (mode 2), kept across a broker restart in a "
                       "durable queue."},
        "priority": {"type": "integer", "minimum": 0, "maximum": 255,
                     "description": "RabbitMQ: message priority (effective on queues declared with "
                     "x-max-priority)."},
        "ttlMs": {"type": "integer", "minimum": 1, "maximum": 2_147_483_647,
                  "description": "RabbitMQ: per-message TTL (expiration) in milliseconds."},
        "maxLength": {"type": "integer", "minimum": 1,
                      "description": "Redis: trim the stream to about this many entries (XADD MAXLEN ~)."},
        "batchSize": {"type": "integer", "minimum": 1, "maximum": 10_000, "default": 100,
                      "description": "Records per chunk, sent one chunk after another (Redis: one pipelined "
                      "round trip per chunk)."},
        "defaultOperation": {"enum": list(_OPERATIONS), "default": "UPSERT",
                             "description": "What a record without __operation is. A DELETE record is reduced to "
                             "{idField: id}. A record's __operation field overrides this and is removed before "
                             "sending; another value fails that record."},
        "timeoutMs": {"type": "integer", "minimum": 1, "maximum": 300_000, "default": 10_000,
                      "description": "Connect and socket timeout."},
    },
    "required": ["queueType", "connectionCode", "queueName"],
    "additionalProperties": False,
}


# -- records to messages ---------------------------------------------------------------------------

def _id_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return dumps(value).decode()


def prepare(record: Record, default_op: str, id_path: Path) -> tuple[str, Record, str | None] | str:
    """``(operation, body, id)`` of a record, or why it fails alone (as the webhook sink decides it)."""
    op = record.get("__operation")
    op = default_op if op in (None, "") else (op.upper() if isinstance(op, str) else op)
    if op not in _OPERATIONS:
        return f"invalid __operation {op!r} (UPSERT or DELETE)"
    ident = id_path.get(record)
    ident = None if ident is MISSING or ident is None else ident
    if op == "DELETE":
        if ident is None:
            return f"a DELETE record needs its id in '{id_path.text}'"
        body = {id_path.text: ident}
    else:
        body = {k: v for k, v in record.items() if k != "__operation"}
    return op, body, None if ident is None else _id_text(ident)


# -- connections -----------------------------------------------------------------------------------

def _check_url(url: Any, schemes: tuple[str, ...], field: str) -> str:
    if not isinstance(url, str) or not url:
        raise ConfigError("must be a URL", field=field)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError as exc:
        raise ConfigError(f"invalid URL: {exc}", field=field) from None
    if parts.scheme.lower() not in schemes or not parts.hostname:
        raise ConfigError(f"'{url}' is not a {' or '.join(s + '://' for s in schemes)} URL", field=field)
    return url


def _plain_url(conn: Mapping, keys: tuple[str, ...], schemes: tuple[str, ...], code: str) -> str | None:
    """The connection's non-secret URL (credentials in it refused), or None."""
    key = next((k for k in keys if conn.get(k)), None)
    if key is None:
        return None
    url = _check_url(conn[key], schemes, "connectionCode")
    if urlsplit(url).password is not None:
        raise ConfigError(f"connection '{code}': a password may not be written into {key}; name a secret in "
                          "passwordSecretCode (or connectionStringSecretCode)", field="connectionCode")
    return url


def _secret_url(ctx: AdapterContext, conn: Mapping, schemes: tuple[str, ...]) -> str | None:
    code = conn.get("connectionStringSecretCode")
    if not code:
        return None
    url = resolve_secret(ctx, code, "connectionCode")
    try:
        return _check_url(url, schemes, "connectionCode")
    except ConfigError:
        raise ConfigError(f"secret '{code}' does not hold a {' or '.join(s + '://' for s in schemes)} URL",
                          field="connectionCode") from None


def _password(ctx: AdapterContext, conn: Mapping) -> str | None:
    code = conn.get("passwordSecretCode")
    return resolve_secret(ctx, code, "connectionCode") if code else None


def _int_setting(conn: Mapping, key: str, default: int, code: str) -> int:
    value = conn.get(key, default)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"connection '{code}': {key} must be a number", field="connectionCode") from None


def redis_options(conn: Mapping, ctx: AdapterContext, *, timeout_s: float = 10.0) -> dict:
    """Keyword arguments of ``redis.ConnectionPool`` for a REDIS connection dict (password from its secret)."""
    from redis.connection import SSLConnection, parse_url

    code = conn.get("code", "?")
    url = _secret_url(ctx, conn, ("redis", "rediss")) or _plain_url(conn, ("url",), ("redis", "rediss"), code)
    if url:
        options = parse_url(url)
    else:
        options = {"host": str(conn.get("host") or "127.0.0.1"), "port": _int_setting(conn, "port", 6379, code),
                   "db": _int_setting(conn, "db", 0, code)}
        if conn.get("tls") or conn.get("ssl"):
            options["connection_class"] = SSLConnection
    if conn.get("username") and not options.get("username"):
        options["username"] = str(conn["username"])
    password = _password(ctx, conn)
    if password is not None and not options.get("password"):
        options["password"] = password
    options.update(socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    return options


def amqp_parameters(conn: Mapping, ctx: AdapterContext, *, timeout_s: float = 10.0):
    """``pika.URLParameters`` for a RabbitMQ connection dict (password from its secret)."""
    import pika

    code = conn.get("code", "?")
    schemes = ("amqp", "amqps")
    url = _secret_url(ctx, conn, schemes) or _plain_url(conn, ("amqpUrl", "url"), schemes, code)
    if not url:
        scheme = "amqps" if conn.get("tls") or conn.get("ssl") else "amqp"
        host = str(conn.get("host") or "127.0.0.1")
        port = _int_setting(conn, "port", 5671 if scheme == "amqps" else 5672, code)
        vhost = str(conn.get("vhost") or conn.get("virtualHost") or "/")
        url = f"{scheme}://{host}:{port}/{quote(vhost, safe='')}"
    params = pika.URLParameters(url)
    parts = urlsplit(url)
    user = unquote(parts.username) if parts.username else (conn.get("username") or conn.get("user"))
    password = unquote(parts.password) if parts.password is not None else _password(ctx, conn)
    if user or password is not None:
        params.credentials = pika.PlainCredentials(str(user or "guest"), password or "")
    params.connection_attempts = 1
    params.retry_delay = 0
    params.socket_timeout = timeout_s
    params.stack_timeout = timeout_s
    params.blocked_connection_timeout = timeout_s
    return params


def broker_connection(ctx: AdapterContext, code: str, types: tuple[str, ...], queue_type: str) -> Mapping:
    conn = connection_of(ctx, code)
    kind = str(conn.get("type", "")).upper()
    if kind not in types:
        raise ConfigError(f"connection '{code}' is a {conn.get('type')} connection; {queue_type} needs "
                          f"{' or '.join(types)}", field="connectionCode")
    return conn


# -- the sink --------------------------------------------------------------------------------------

@sinks.register(
    "queueProducer",
    name="Queue producer",
    category="queue",
    builtin=True,
    description="Publishes each record as a message to a Redis stream (XADD) or a RabbitMQ queue (AMQP with "
    "publisher confirms), with x-datahub-operation UPSERT or DELETE; a record counts as written once the "
    "broker took it.",
    schema=QUEUE_PRODUCER_SCHEMA,
)
class QueueProducer(Writer):
    def __init__(self, config: dict, ctx: AdapterContext):
        super().__init__(config, ctx)
        self._backend: _Backend | None = None

    def _setup(self) -> _Backend:
        if self._backend is not None:
            return self._backend
        cfg = self.config
        kind = str(cfg.get("queueType") or "").upper()
        if kind not in QUEUE_TYPES:
            raise ConfigError(f"queueType must be one of {', '.join(QUEUE_TYPES)}", field="queueType")
        for key in ("connectionCode", "queueName"):
            if not cfg.get(key):
                raise ConfigError(f"'{key}' is required", field=key)
        try:
            id_path = path(cfg.get("idField") or "id")
        except PathError as exc:
            raise ConfigError(str(exc), field="idField") from None
        ignored = _REDIS_ONLY if kind != "REDIS_STREAMS" else _AMQP_ONLY
        for key in ignored:
            if cfg.get(key) not in (None, "", {}) and not (key == "persistent" and cfg[key] is True):
                self.ctx.warn(f"queueProducer: {key} does not apply to {kind}; ignored")
        timeout_s = int(cfg.get("timeoutMs") or 10_000) / 1000
        backend = (_RedisStream if kind == "REDIS_STREAMS" else _Amqp)(cfg, self.ctx, timeout_s)
        backend.default_op = str(cfg.get("defaultOperation") or "UPSERT").upper()
        backend.id_path = id_path
        backend.open()
        self._backend = backend
        return backend

    def write(self, batch: Batch) -> WriteResult:
        if self.ctx.dry_run:
            return WriteResult(0, [], None)
        backend = self._setup()
        failed: list[tuple[Record, str]] = []
        written = 0
        for chunk in chunked(batch, int(self.config.get("batchSize") or 100)):
            if self.ctx.cancelled.is_set():
                raise StepCancelled()
            messages = []
            for record in chunk:
                prepared = prepare(record, backend.default_op, backend.id_path)
                if isinstance(prepared, str):
                    failed.append((record, prepared))
                else:
                    messages.append((record, *prepared))
            if messages:
                written += backend.send(messages, failed)
        return WriteResult(written, failed, None)

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None


class _Backend:
    default_op = "UPSERT"
    id_path: Path

    def __init__(self, config: dict, ctx: AdapterContext, timeout_s: float):
        self.config = config
        self.ctx = ctx
        self.timeout_s = timeout_s
        self.queue = str(config["queueName"])

    def open(self) -> None:
        raise NotImplementedError

    def send(self, messages: list[tuple[Record, str, Record, str | None]], failed: list) -> int:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _RedisStream(_Backend):
    def open(self) -> None:
        import redis

        conn = broker_connection(self.ctx, self.config["connectionCode"], ("REDIS",), "REDIS_STREAMS")
        options = redis_options(conn, self.ctx, timeout_s=self.timeout_s)
        self.where = f"Redis {options.get('host', options.get('path', '?'))}:{options.get('port', '')}"
        self.pool = redis.ConnectionPool(**options)
        self.client = redis.Redis(connection_pool=self.pool)
        self.max_len = self.config.get("maxLength")
        self._call(self.client.ping)

    def _call(self, fn, *args, **kwargs):
        import redis

        try:
            return fn(*args, **kwargs)
        except redis.AuthenticationError as exc:
            raise StepError(f"{self.where} refused the login: {exc}") from None
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise StepError(f"{self.where} cannot be reached: {exc}", retryable=True) from None
        except redis.ResponseError as exc:
            if str(exc).startswith(("NOAUTH", "WRONGPASS", "NOPERM")):
                raise StepError(f"{self.where} refused: {exc}") from None
            raise

    def send(self, messages, failed) -> int:
        import redis

        pipe = self.client.pipeline(transaction=False)
        for _, op, body, ident in messages:
            fields = {"data": dumps(body), "operation": op}
            if ident is not None:
                fields["id"] = ident
            if self.max_len:
                pipe.xadd(self.queue, fields, maxlen=int(self.max_len), approximate=True)
            else:
                pipe.xadd(self.queue, fields)
        results = self._call(pipe.execute, raise_on_error=False)
        written = 0
        for (record, *_), result in zip(messages, results, strict=True):
            if isinstance(result, redis.ResponseError):
                text = str(result)
                if text.startswith("WRONGTYPE"):
                    raise StepError(f"{self.where}: key '{self.queue}' holds something else than a stream")
                if text.startswith(("NOAUTH", "WRONGPASS", "NOPERM")):
                    raise StepError(f"{self.where} refused: {text}")
                failed.append((record, f"XADD {self.queue}: {text}"))
            elif isinstance(result, Exception):
                failed.append((record, f"XADD {self.queue}: {result}"))
            else:
                written += 1
        return written

    def close(self) -> None:
        self.pool.disconnect()


class _Amqp(_Backend):
    def open(self) -> None:
        import pika

        cfg = self.config
        self.exchange = str(cfg.get("exchange") or "")
        self.routing_key = str(cfg.get("routingKey") or self.queue)
        if not self.exchange and self.routing_key != self.queue:
            raise ConfigError("with the default exchange the routing key is the queue name; name an exchange or "
                              "drop routingKey", field="routingKey")
        self.headers = check_headers(cfg.get("headers"), "headers")
        if OPERATION_HEADER in {h.lower() for h in self.headers}:
            raise ConfigError(f"{OPERATION_HEADER} is set by the sink", field=f"headers.{OPERATION_HEADER}")
        self.persistent = cfg.get("persistent", True) is not False
        self.priority = cfg.get("priority")
        self.ttl = cfg.get("ttlMs")
        conn = broker_connection(self.ctx, cfg["connectionCode"], ("CUSTOM", "RABBITMQ"), "RABBITMQ_AMQP")
        params = amqp_parameters(conn, self.ctx, timeout_s=self.timeout_s)
        self.where = f"RabbitMQ {params.host}:{params.port}"
        self.pika = pika
        self.params = params
        self.connection = None
        self._connect()

    def _connect(self) -> None:
        try:
            self.connection = self.pika.BlockingConnection(self.params)
            self.channel = self.connection.channel()
            if self.config.get("declareQueue", True):
                self._declare()
            self.channel.confirm_delivery()
        except Exception as exc:
            self.close()
            raise self._error(exc) from None

    def _ensure_open(self) -> None:
        """Reconnect when the broker dropped the idle connection between two batches (pika's blocking
        connection answers heartbeats only while it is called); nothing of the batch has been sent yet."""
        try:
            if self.connection is not None and self.connection.is_open:
                self.connection.process_data_events(0)
                if self.channel.is_open:
                    return
        except Exception:  # noqa: BLE001  (a lost connection is opened again below)
            pass
        self.close()
        self.ctx.warn(f"queueProducer: the connection to {self.where} was lost between batches; reconnected")
        self._connect()

    def _declare(self) -> None:
        try:
            self.channel.queue_declare(self.queue, passive=True)
        except self.pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code != 404:
                raise
            self.channel = self.connection.channel()
            self.channel.queue_declare(self.queue, durable=True)
        if self.exchange:
            self.channel.queue_bind(self.queue, self.exchange, routing_key=self.routing_key)

    def _error(self, exc: BaseException) -> Exception:
        e = self.pika.exceptions
        if isinstance(exc, ConfigError | StepError):
            return exc
        if isinstance(exc, e.ProbableAuthenticationError | e.AuthenticationError):
            return StepError(f"{self.where} refused the login: {exc}")
        if isinstance(exc, e.ProbableAccessDeniedError):
            return StepError(f"{self.where} refused access to the virtual host: {exc}")
        if isinstance(exc, e.ChannelClosedByBroker):
            if exc.reply_code == 404:
                what = f"exchange '{self.exchange}'" if self.exchange else f"queue '{self.queue}'"
                return StepError(f"{self.where}: {what} does not exist ({exc.reply_text})")
            return StepError(f"{self.where} closed the channel: {exc.reply_code} {exc.reply_text}")
        if isinstance(exc, e.AMQPError | OSError):
            why = str(exc) or repr(exc)
            return StepError(f"{self.where} cannot be reached: {type(exc).__name__}: {why}", retryable=True)
        return exc if isinstance(exc, Exception) else StepError(str(exc))

    def _properties(self, op: str, ident: str | None):
        return self.pika.BasicProperties(
            content_type="application/json",
            delivery_mode=2 if self.persistent else 1,
            priority=self.priority,
            expiration=str(self.ttl) if self.ttl else None,
            message_id=ident,
            timestamp=int(self.ctx.now().timestamp()),
            app_id="datahub",
            headers={**self.headers, OPERATION_HEADER: op},
        )

    def send(self, messages, failed) -> int:
        e = self.pika.exceptions
        self._ensure_open()
        written = 0
        for record, op, body, ident in messages:
            if self.ctx.cancelled.is_set():
                raise StepCancelled()
            try:
                self.channel.basic_publish(self.exchange, self.routing_key, dumps(body),
                                           properties=self._properties(op, ident), mandatory=True)
            except e.UnroutableError:
                failed.append((record, f"unroutable: no queue is bound to exchange '{self.exchange}' with routing "
                                       f"key '{self.routing_key}'"))
            except e.NackError:
                failed.append((record, f"{self.where} refused the message (nack)"))
            except Exception as exc:
                raise self._error(exc) from None
            else:
                written += 1
        return written

    def close(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except Exception:  # noqa: BLE001  (closing a broken connection)
                pass

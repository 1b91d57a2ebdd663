"""Taking messages from a broker, and giving them back: RabbitMQ (pika) and Redis streams (redis-py).

One ``Broker`` per consuming thread (a pika connection is not thread-safe). The connection settings are the
queueProducer sink's (``pipelines.adapters.queues``): the same connection types, URLs and secrets.

What each guarantees:

* A message is taken (``fetch``) without being acknowledged. Until ``ack`` the broker keeps it: RabbitMQ
  delivers it again when this connection closes or dies, or on ``release`` (nack with requeue); Redis keeps
  it in the group's pending list, from where any consumer claims it (XAUTOCLAIM) once it has been idle for
  ``claimIdleMs``. ``keep_alive`` resets that idle time (XCLAIM to itself) while a run is awaited.
* ``dead_letter`` publishes the message with its reason to the dead-letter queue or stream and returns
  once the broker confirmed it (publisher confirms; XADD returned an id). Only then does the caller ack
  the original: a dead letter is never lost between the two.
* A message's ``key`` is stable across redeliveries: the stream entry id (Redis), the AMQP ``message_id``
  (RabbitMQ; the queueProducer sink sets it from the record id) or, without one, ``sha256:`` of the body
  (then two messages with the same body are one message, for idempotency).
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from pipelines.adapters.base import AdapterContext
from pipelines.adapters.queues import OPERATION_HEADER, amqp_parameters, broker_connection, redis_options
from pipelines.errors import ConfigError
from runs.consumers.config import MessageSettings

KEY_LENGTH = 255
TIMEOUT_S = 10.0
IDLE_WAIT_S = 1.0  # an idle fetch returns after this long (the loop measures lag and looks at stop between)
SLICE_S = 0.2  # the longest single wait on the broker, so a stop is noticed within it


class BrokerError(Exception):
    """The broker cannot be reached or refused an operation; the consumer reconnects after a pause."""


@dataclass
class Message:
    key: str
    body: bytes
    handle: Any  # the delivery tag (RabbitMQ) or the entry id (Redis)
    operation: str | None = None
    # Why the message cannot even be read as a body (a stream entry without a data field); None when it can.
    problem: str | None = None
    extra: dict = field(default_factory=dict)


def body_key(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def consumer_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


class Broker:
    where = "broker"

    def fetch(self, limit: int, wait_s: float, stop: threading.Event) -> list[Message]:
        """Up to ``limit`` messages: returns when it has them, ``wait_s`` after the first one arrived with what
        has arrived, after IDLE_WAIT_S when none came, or soon after ``stop`` is set."""
        raise NotImplementedError

    @staticmethod
    def gather(have, pull, limit: int, wait_s: float, stop: threading.Event) -> None:
        """Call ``pull(seconds)`` until ``have()`` reaches ``limit`` or a time above runs out (the shared timing of
        ``fetch``). An idle consumer comes back every IDLE_WAIT_S, never spinning, whatever batchWaitMs is."""
        start = time.monotonic()
        first = start if have() else None
        while have() < limit and not stop.is_set():
            now = time.monotonic()
            left = first + wait_s - now if first is not None else start + IDLE_WAIT_S - now
            if left <= 0:
                return
            pull(min(left, SLICE_S))
            if first is None and have():
                first = time.monotonic()

    def ack(self, messages: list[Message]) -> None:
        raise NotImplementedError

    def release(self, messages: list[Message]) -> None:
        """Give messages back to be delivered again (now, or after claimIdleMs for Redis)."""
        raise NotImplementedError

    def keep_alive(self, messages: list[Message]) -> None:
        """Called about every half second while a run of these messages is awaited."""
        raise NotImplementedError

    def dead_letter(self, message: Message, reason: str, attempts: int) -> None:
        raise NotImplementedError

    def lag(self) -> int | None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


def open_broker(settings: MessageSettings, ctx: AdapterContext) -> Broker:
    """A connected broker for ``settings``; ConfigError for a wrong connection, BrokerError when unreachable."""
    if settings.is_redis:
        conn = broker_connection(ctx, settings.connection_code, ("REDIS",), "REDIS_STREAMS")
        return RedisStreamBroker(settings, redis_options(conn, ctx, timeout_s=TIMEOUT_S))
    conn = broker_connection(ctx, settings.connection_code, ("CUSTOM", "RABBITMQ"), "RABBITMQ_AMQP")
    return RabbitBroker(settings, amqp_parameters(conn, ctx, timeout_s=TIMEOUT_S))


# -- RabbitMQ -----------------------------------------------------------------------------------------

class RabbitBroker(Broker):
    def __init__(self, settings: MessageSettings, params):
        import pika

        self.pika = pika
        self.settings = settings
        self.where = f"RabbitMQ {params.host}:{params.port} queue '{settings.queue_name}'"
        self.buffer: deque[Message] = deque()
        self.connection = None
        try:
            self.connection = pika.BlockingConnection(params)
            self.channel = self.connection.channel()
            if settings.declare_queue:
                self.channel.queue_declare(settings.queue_name, durable=True)
                self.channel.queue_declare(settings.dead_letter_queue, durable=True)
            else:
                self.channel.queue_declare(settings.queue_name, passive=True)
            self.channel.confirm_delivery()
            self.channel.basic_qos(prefetch_count=settings.prefetch)
            self.channel.basic_consume(settings.queue_name, self._on_message, auto_ack=False)
        except Exception as exc:
            self.close()
            raise self._error(exc) from None

    def _error(self, exc: BaseException) -> Exception:
        e = self.pika.exceptions
        if isinstance(exc, BrokerError | ConfigError):
            return exc
        if isinstance(exc, e.ChannelClosedByBroker):
            return BrokerError(f"{self.where}: the broker closed the channel: {exc.reply_code} {exc.reply_text}")
        if isinstance(exc, e.ProbableAuthenticationError | e.AuthenticationError):
            return BrokerError(f"{self.where} refused the login: {exc}")
        return BrokerError(f"{self.where} cannot be reached: {type(exc).__name__}: {exc or repr(exc)}")

    def _on_message(self, channel, method, properties, body: bytes) -> None:
        headers = properties.headers or {}
        ident = properties.message_id
        key = f"id:{ident}"[:KEY_LENGTH] if ident else body_key(body)
        operation = headers.get(OPERATION_HEADER)
        self.buffer.append(Message(key=key, body=body, handle=method.delivery_tag,
                                   operation=operation if isinstance(operation, str) else None,
                                   extra={"redelivered": method.redelivered, "message_id": ident}))

    def _pump(self, seconds: float) -> None:
        try:
            self.connection.process_data_events(time_limit=seconds)
        except Exception as exc:
            raise self._error(exc) from None

    def fetch(self, limit, wait_s, stop):
        self.gather(lambda: len(self.buffer), self._pump, limit, wait_s, stop)
        if stop.is_set():
            return []  # closing the connection gives the buffer back to the queue
        return [self.buffer.popleft() for _ in range(min(limit, len(self.buffer)))]

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise self._error(exc) from None

    def ack(self, messages):
        for m in messages:
            self._call(self.channel.basic_ack, delivery_tag=m.handle)

    def release(self, messages):
        for m in messages:
            self._call(self.channel.basic_nack, delivery_tag=m.handle, requeue=True)

    def keep_alive(self, messages):
        self._pump(0)  # answers heartbeats; deliveries meanwhile wait in the buffer for the next fetch

    def dead_letter(self, message, reason, attempts):
        headers = {"x-datahub-reason": reason[:2000], "x-datahub-attempts": attempts,
                   "x-datahub-queue": self.settings.queue_name}
        props = self.pika.BasicProperties(content_type="application/json", delivery_mode=2,
                                          message_id=message.extra.get("message_id"), headers=headers)
        try:
            self.channel.basic_publish("", self.settings.dead_letter_queue, message.body, properties=props,
                                       mandatory=True)
        except self.pika.exceptions.UnroutableError:
            raise BrokerError(f"{self.where}: the dead-letter queue '{self.settings.dead_letter_queue}' does not "
                              "exist (declare it, or set declareQueue)") from None
        except Exception as exc:
            raise self._error(exc) from None

    def lag(self):
        declared = self._call(self.channel.queue_declare, self.settings.queue_name, passive=True)
        return declared.method.message_count

    def close(self):
        connection, self.connection = self.connection, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except Exception:  # noqa: BLE001  (closing a broken connection)
                pass


# -- Redis streams ------------------------------------------------------------------------------------

class RedisStreamBroker(Broker):
    def __init__(self, settings: MessageSettings, options: dict):
        import redis

        self.redis = redis
        self.settings = settings
        self.stream = settings.queue_name
        self.group = settings.consumer_group
        self.name = consumer_name()
        self.where = f"Redis {options.get('host', '?')}:{options.get('port', '')} stream '{self.stream}'"
        self.pool = redis.ConnectionPool(**options)
        self.client = redis.Redis(connection_pool=self.pool)
        self.next_claim = 0.0
        self.claim_cursor = "0-0"
        try:
            self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                self.close()
                raise BrokerError(f"{self.where}: cannot create group '{self.group}': {exc}") from None
        except Exception as exc:
            self.close()
            raise self._error(exc) from None

    def _error(self, exc: BaseException) -> Exception:
        if isinstance(exc, BrokerError | ConfigError):
            return exc
        return BrokerError(f"{self.where}: {type(exc).__name__}: {exc}")

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise self._error(exc) from None

    def _message(self, entry_id, fields: dict) -> Message:
        entry_id = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        fields = {(k.decode() if isinstance(k, bytes) else k): v for k, v in (fields or {}).items()}
        data = fields.get("data")
        operation = fields.get("operation")
        operation = operation.decode(errors="replace") if isinstance(operation, bytes) else operation
        if data is None:
            names = ", ".join(sorted(fields)) or "none"
            return Message(key=entry_id, body=repr(fields).encode(), handle=entry_id,
                           problem=f"the stream entry has no 'data' field (its fields: {names})")
        body = data if isinstance(data, bytes) else str(data).encode()
        return Message(key=entry_id, body=body, handle=entry_id, operation=operation)

    def _claim(self, limit: int) -> list[Message]:
        """Entries another consumer took and left idle for claimIdleMs (it died): ours now."""
        now = time.monotonic()
        if now < self.next_claim:
            return []
        result = self._call(self.client.xautoclaim, self.stream, self.group, self.name,
                            min_idle_time=self.settings.claim_idle_ms, start_id=self.claim_cursor, count=limit)
        cursor, entries = result[0], result[1]
        deleted = result[2] if len(result) > 2 else []
        self.claim_cursor = cursor.decode() if isinstance(cursor, bytes) else str(cursor)
        if self.claim_cursor == "0-0":  # a full pass: look again after a while
            self.next_claim = now + max(0.2, self.settings.claim_idle_ms / 4000)
        if deleted:  # trimmed away before anyone acknowledged them: nothing left to run
            self._call(self.client.xack, self.stream, self.group, *deleted)
        return [self._message(entry_id, fields) for entry_id, fields in entries if fields is not None]

    def fetch(self, limit, wait_s, stop):
        taken = self._claim(limit)

        def read(seconds: float) -> None:
            reply = self._call(self.client.xreadgroup, self.group, self.name, {self.stream: ">"},
                               count=limit - len(taken), block=max(1, int(seconds * 1000)))  # 0 would block for ever
            for _stream, entries in reply or []:
                taken.extend(self._message(entry_id, fields) for entry_id, fields in entries)

        self.gather(lambda: len(taken), read, limit, wait_s, stop)
        # Even when stopping: entries read are pending on this consumer's name, which no one will use again;
        # handling them now is quicker than leaving them to be claimed after claimIdleMs.
        return taken

    def ack(self, messages):
        if messages:
            self._call(self.client.xack, self.stream, self.group, *[m.handle for m in messages])

    def release(self, messages):
        pass  # they stay pending: claimed again (by any consumer) after claimIdleMs

    def keep_alive(self, messages):
        if messages:
            self._call(self.client.xclaim, self.stream, self.group, self.name, 0, [m.handle for m in messages],
                       justid=True)

    def dead_letter(self, message, reason, attempts):
        fields = {"data": message.body, "reason": reason[:2000], "id": message.key, "attempts": attempts,
                  "stream": self.stream}
        self._call(self.client.xadd, self.settings.dead_letter_queue, fields)

    def lag(self):
        """Entries the group has not acknowledged: not yet delivered (the group's lag) plus pending."""
        groups = self._call(self.client.xinfo_groups, self.stream)
        for g in groups:
            name = g.get("name")
            name = name.decode() if isinstance(name, bytes) else name
            if name == self.group:
                lag = g.get("lag")
                return None if lag is None else int(lag) + int(g.get("pending") or 0)
        return None

    def close(self):
        self.pool.disconnect()

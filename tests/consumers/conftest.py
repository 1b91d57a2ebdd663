"""MESSAGE-trigger tests against the real RabbitMQ (127.0.0.1:5672, guest/guest) and Redis (127.0.0.1:6379).

Every test gets queue and stream names of its own (``datahub-test-msg-<random>``) and removes them, and
their dead-letter queues, afterwards. A test whose broker is not running is skipped and says which one.
``broker`` is parametrized: each test that uses it runs once per broker.
"""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest

from pipelines.models import Connection
from pipelines.services import save_definition
from runs.consumers.brokers import open_broker
from runs.consumers.config import MessageSettings
from runs.consumers.services import configured_consumers
from runs.consumers.worker import ConsumerWorker, adapter_context

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F?connection_attempts=1&socket_timeout=2"
REDIS_URL = "redis://127.0.0.1:6379/0"


def unique(prefix="msg"):
    return f"datahub-test-{prefix}-{uuid.uuid4().hex[:10]}"


def wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Rabbit:
    kind = "RABBITMQ_AMQP"
    connection = {"type": "CUSTOM", "config": {"amqpUrl": "amqp://127.0.0.1:5672/%2F"}}

    def __init__(self):
        import pika

        self.pika = pika
        self.conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        self.channel = self.conn.channel()
        self.names: list[str] = []

    def prepare(self, name):
        self.names += [name, f"{name}.dead"]

    def publish(self, name, body, message_id=None, headers=None):
        body = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.channel.queue_declare(name, durable=True)
        props = self.pika.BasicProperties(message_id=message_id, headers=headers, delivery_mode=2)
        self.channel.basic_publish("", name, body, properties=props)

    def depth(self, name) -> int:
        """Messages ready in the queue (not those delivered and not yet acknowledged)."""
        return self.channel.queue_declare(name, passive=True).method.message_count

    def dead_letters(self, name) -> list[tuple[bytes, dict]]:
        out = []
        while True:
            method, props, body = self.channel.basic_get(f"{name}.dead", auto_ack=True)
            if method is None:
                return out
            out.append((body, props.headers or {}))

    def close(self):
        for name in self.names:
            try:
                self.channel.queue_delete(name)
            except Exception:  # noqa: BLE001
                pass
        self.conn.close()


class Redis:
    kind = "REDIS_STREAMS"
    connection = {"type": "REDIS", "config": {"url": REDIS_URL}}

    def __init__(self):
        import redis

        self.client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        self.client.ping()
        self.names: list[str] = []

    def prepare(self, name):
        self.names += [name, f"{name}.dead"]

    def publish(self, name, body, message_id=None, headers=None):
        body = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.client.xadd(name, {"data": body, **({"id": message_id} if message_id else {})}).decode()

    def publish_fields(self, name, fields):
        return self.client.xadd(name, fields).decode()

    def depth(self, name) -> int:
        """Entries the group has not acknowledged (not yet read, plus pending)."""
        groups = self.client.xinfo_groups(name)
        return sum(int(g["lag"] or 0) + int(g["pending"]) for g in groups) if groups else self.client.xlen(name)

    def dead_letters(self, name) -> list[tuple[bytes, dict]]:
        entries = self.client.xrange(f"{name}.dead")
        return [(fields[b"data"], {k.decode(): v.decode() for k, v in fields.items() if k != b"data"})
                for _id, fields in entries]

    def close(self):
        for name in self.names:
            self.client.delete(name)
        self.client.close()


@pytest.fixture(params=["rabbitmq", "redis"])
def broker(request):
    try:
        server = Rabbit() if request.param == "rabbitmq" else Redis()
    except Exception as exc:
        where = "RabbitMQ on 127.0.0.1:5672 (guest/guest)" if request.param == "rabbitmq" else "Redis on 127.0.0.1:6379"
        pytest.skip(f"{where} is not reachable ({type(exc).__name__}); the MESSAGE trigger tests need it")
    yield server
    server.close()


@pytest.fixture
def one_broker():
    """Redis, or RabbitMQ when Redis is not running: for what does not depend on the broker (the process's
    life, the CLI), tested once."""
    for make in (Redis, Rabbit):
        try:
            server = make()
            break
        except Exception:  # noqa: BLE001
            continue
    else:
        pytest.skip("neither Redis (127.0.0.1:6379) nor RabbitMQ (127.0.0.1:5672) is reachable")
    yield server
    server.close()


def message_pipeline(server, queue, *, code=None, steps=None, **trigger):
    """A pipeline MESSAGE trigger -> SINK records (or ``steps`` after the trigger), with its connection."""
    Connection.objects.get_or_create(code="broker-" + server.kind.lower().replace("_", "-"),
                                     defaults=server.connection)
    server.prepare(queue)
    trigger = {"type": "MESSAGE", "queueType": server.kind,
               "connectionCode": "broker-" + server.kind.lower().replace("_", "-"), "queueName": queue,
               "batchWaitMs": 300, "claimIdleMs": 200, **trigger}
    after = steps or [{"key": "out", "type": "SINK", "adapterCode": "records", "config": {}}]
    return save_definition({
        "version": 1, "code": code or unique("p")[:60], "name": "message test",
        "steps": [{"key": "inbox", "type": "TRIGGER", "config": trigger}, *after],
    })


class Consuming:
    """One consuming thread's worker, driven by the test (``poll`` = one batch)."""

    def __init__(self, pipeline):
        found = configured_consumers([pipeline.code])
        assert len(found) == 1, found
        self.consumer = found[0].consumer
        self.settings = MessageSettings.from_config(found[0].config, pipeline_code=pipeline.code)
        self.stop = threading.Event()
        self.broker = open_broker(self.settings, adapter_context(self.consumer))
        self.worker = ConsumerWorker(self.consumer, self.settings, self.broker, self.stop)

    def poll(self) -> int:
        return self.worker.poll_once()

    def poll_until(self, condition, timeout=10, what="the consumer"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll()
            if condition():
                return
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")

    def close(self):
        self.broker.close()


@pytest.fixture
def consuming():
    made = []

    def make(pipeline):
        c = Consuming(pipeline)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()

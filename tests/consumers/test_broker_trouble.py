"""A consumer whose broker cannot be used says why on its row (the Queues page) and keeps trying; nothing
crashes. No broker is needed: the connections point at a closed port or are of the wrong kind."""

import socket
import threading

import pytest

from pipelines.models import Connection
from pipelines.services import save_definition
from runs.consumers.config import MessageSettings
from runs.consumers.models import Consumer
from runs.consumers.services import configured_consumers
from runs.consumers.worker import run_loop

from .conftest import wait_for


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("queue_type", "connection", "expected"), [
    ("RABBITMQ_AMQP", {"type": "CUSTOM", "config": {"amqpUrl": "amqp://127.0.0.1:{port}/%2F"}},
     "RabbitMQ 127.0.0.1:{port} queue 'orders' cannot be reached: AMQPConnectionError"),
    ("REDIS_STREAMS", {"type": "REDIS", "config": {"url": "redis://127.0.0.1:{port}/0"}},
     "Redis 127.0.0.1:{port} stream 'orders': ConnectionError"),
    ("REDIS_STREAMS", {"type": "HTTP", "config": {"baseUrl": "https://example.com"}},
     "connection 'broker' is a HTTP connection; REDIS_STREAMS needs REDIS"),
])
def test_it_shows_why_the_broker_cannot_be_used_and_keeps_trying(queue_type, connection, expected):
    port = closed_port()
    config = {k: v.format(port=port) if isinstance(v, str) else v for k, v in connection["config"].items()}
    Connection.objects.create(code="broker", type=connection["type"], config=config)
    p = save_definition({"version": 1, "code": "trouble", "steps": [{"key": "inbox", "type": "TRIGGER", "config": {
        "type": "MESSAGE", "queueType": queue_type, "connectionCode": "broker", "queueName": "orders"}}]})
    [c] = configured_consumers([p.code])
    stop = threading.Event()
    thread = threading.Thread(target=run_loop, args=(c.consumer, MessageSettings.from_config(c.config,
                              pipeline_code=p.code), stop), kwargs={"measures_lag": True})
    thread.start()
    try:
        row = wait_for(lambda: Consumer.objects.filter(pk=c.consumer.pk, state="FAILING").first(), 10,
                       "the consumer to report its failure")
        assert expected.format(port=port) in row.last_error
        assert row.errors >= 1
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive(), "the consuming thread did not stop within 5 s"

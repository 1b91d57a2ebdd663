"""The queueProducer sink against the real Redis (127.0.0.1:6379) and RabbitMQ (127.0.0.1:5672, guest/guest).

Every test uses stream, queue and exchange names of its own and removes them afterwards. A test whose
service is not running is skipped and says which one.
"""

import json
import shutil
import socket
import subprocess
import time
import uuid
from datetime import UTC, datetime

import pytest

from pipelines.adapters.base import AdapterContext
from pipelines.adapters.queues import QueueProducer, amqp_parameters, redis_options
from pipelines.definition import parse
from pipelines.errors import ConfigError, StepError
from pipelines.plugins import load_plugins
from runs.engine.context import RunOptions
from runs.engine.executor import execute
from runs.engine.store import InMemoryStore

load_plugins(["runs.engine.handlers"], entry_point_group=None)

NOW = datetime(2025, 5, 1, 12, 0, 0, tzinfo=UTC)
SECRETS = {"redis-pw": "red-pass-1", "wrong-pw": "nope", "rabbit-pw": "guest",
           "redis-url": "redis://:red-pass-1@127.0.0.1:1/0", "amqp-url": "amqp://guest:guest@127.0.0.1:5672/%2F"}
CONNECTIONS = {
    "redis": {"type": "REDIS", "url": "redis://127.0.0.1:6379/0"},
    "rabbit": {"type": "CUSTOM", "amqpUrl": "amqp://127.0.0.1:5672/%2F", "username": "guest",
               "passwordSecretCode": "rabbit-pw"},
}
RECORDS = [
    {"id": 1, "sku": "A-1", "price": 9.5},
    {"id": 2, "sku": "B-2", "price": 12, "__operation": "delete"},
    {"id": 3, "sku": "C-3", "__operation": "ARCHIVE"},
    {"id": 4, "sku": "D-4", "tags": ["x"], "__operation": "UPSERT"},
]


def secret(code):
    if code not in SECRETS:
        raise ConfigError(f"unknown secret '{code}'")
    return SECRETS[code]


def connections(extra=None):
    known = {**CONNECTIONS, **(extra or {})}

    def resolve(code):
        if code not in known:
            raise ConfigError(f"unknown connection '{code}'")
        return {**known[code], "code": code}

    return resolve


def make_ctx(extra_connections=None, **kw):
    kw.setdefault("secret", secret)
    kw.setdefault("connection", connections(extra_connections))
    kw.setdefault("now", lambda: NOW)
    return AdapterContext(step_key="sink", **kw)


def write(config, batch, **kw):
    writer = QueueProducer(config, make_ctx(**kw))
    try:
        return writer.write(batch)
    finally:
        writer.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unique(prefix):
    return f"datahub-test-{prefix}-{uuid.uuid4().hex[:10]}"


# -- services ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def redis_client():
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, db=0, socket_connect_timeout=2)
    try:
        client.ping()
    except Exception as exc:
        pytest.skip(f"Redis is not reachable on 127.0.0.1:6379 ({type(exc).__name__}); the REDIS_STREAMS tests "
                    "need it")
    yield client
    client.close()


@pytest.fixture
def stream(redis_client):
    name = unique("stream")
    yield name
    redis_client.delete(name)


@pytest.fixture(scope="module")
def rabbit():
    import pika

    try:
        connection = pika.BlockingConnection(pika.URLParameters(
            "amqp://guest:guest@127.0.0.1:5672/%2F?connection_attempts=1&socket_timeout=2"))
    except Exception as exc:
        pytest.skip(f"RabbitMQ is not reachable on 127.0.0.1:5672 with guest/guest ({type(exc).__name__}); the "
                    "RABBITMQ_AMQP tests need it")
    yield connection.channel()
    connection.close()


@pytest.fixture
def queue(rabbit):
    name = unique("queue")
    yield name
    rabbit.queue_delete(name)


@pytest.fixture
def exchange(rabbit):
    name = unique("exchange")
    rabbit.exchange_declare(name, exchange_type="direct", auto_delete=False)
    yield name
    rabbit.exchange_delete(name)


def drain(channel, name):
    """Every message of a queue, in order, as (body, properties)."""
    out = []
    while True:
        method, properties, body = channel.basic_get(name, auto_ack=True)
        if method is None:
            return out
        out.append((json.loads(body), properties))


@pytest.fixture(scope="module")
def locked_redis():
    """A Redis of this module's own that asks for a password (the one on 6379 has none)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed: the password test starts a Redis with requirepass")
    import redis

    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--requirepass", "red-pass-1",
                             "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port, password="red-pass-1", socket_connect_timeout=1)
    for _ in range(50):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.skip("the password-protected redis-server did not start")
    yield port, client
    client.close()
    proc.terminate()
    proc.wait(10)


# -- Redis streams -------------------------------------------------------------------------------------

def redis_config(stream, **kw):
    return {"queueType": "REDIS_STREAMS", "connectionCode": "redis", "queueName": stream, **kw}


def entries(client, stream):
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in client.xrange(stream)]


def test_redis_streams_xadd_each_record_with_data_operation_and_id(redis_client, stream):
    result = write(redis_config(stream), RECORDS)
    assert result.written == 3
    assert [(r["id"], m) for r, m in result.failed] == [(3, "invalid __operation 'ARCHIVE' (UPSERT or DELETE)")]
    assert result.output is None
    got = entries(redis_client, stream)
    assert [e["operation"] for e in got] == ["UPSERT", "DELETE", "UPSERT"]
    assert [e["id"] for e in got] == ["1", "2", "4"]
    assert [json.loads(e["data"]) for e in got] == [
        {"id": 1, "sku": "A-1", "price": 9.5},
        {"id": 2},  # a DELETE is reduced to its id
        {"id": 4, "sku": "D-4", "tags": ["x"]},  # __operation stripped
    ]


def test_redis_default_operation_id_field_and_chunks(redis_client, stream):
    batch = [{"product": {"code": f"P{i}"}, "n": i} for i in range(7)] + [{"n": 99}]
    result = write(redis_config(stream, defaultOperation="DELETE", idField="product.code", batchSize=3), batch)
    assert result.written == 7
    assert result.failed == [({"n": 99}, "a DELETE record needs its id in 'product.code'")]
    got = entries(redis_client, stream)
    assert [json.loads(e["data"]) for e in got] == [{"product.code": f"P{i}"} for i in range(7)]
    assert {e["operation"] for e in got} == {"DELETE"}


def test_redis_upsert_without_an_id_has_no_id_field(redis_client, stream):
    assert write(redis_config(stream), [{"name": "no id"}]).written == 1
    assert entries(redis_client, stream) == [{"data": '{"name":"no id"}', "operation": "UPSERT"}]


def test_redis_max_length_trims_the_stream(redis_client, stream):
    result = write(redis_config(stream, maxLength=10, batchSize=1000), [{"id": i} for i in range(2000)])
    assert result.written == 2000
    assert redis_client.xlen(stream) < 2000  # MAXLEN ~ trims by whole nodes: about 10, never exactly


def test_a_key_that_is_not_a_stream_fails_the_step(redis_client, stream):
    redis_client.set(stream, "a string")
    with pytest.raises(StepError) as info:
        write(redis_config(stream), [{"id": 1}])
    assert "holds something else than a stream" in str(info.value)
    assert not info.value.retryable


def test_a_redis_that_is_down_fails_the_step_retryably():
    conns = {"down": {"type": "REDIS", "host": "127.0.0.1", "port": free_port()}}
    config = {"queueType": "REDIS_STREAMS", "connectionCode": "down", "queueName": "x", "timeoutMs": 2000}
    with pytest.raises(StepError) as info:
        write(config, [{"id": 1}], extra_connections=conns)
    assert info.value.retryable
    assert "cannot be reached" in str(info.value) and "127.0.0.1" in str(info.value)


def test_the_redis_password_comes_from_the_connection_secret(locked_redis):
    port, client = locked_redis
    name = unique("stream")
    conns = {"locked": {"type": "REDIS", "host": "127.0.0.1", "port": port, "passwordSecretCode": "redis-pw"},
             "no-pw": {"type": "REDIS", "host": "127.0.0.1", "port": port},
             "wrong": {"type": "REDIS", "url": f"redis://127.0.0.1:{port}/0", "passwordSecretCode": "wrong-pw"}}
    try:
        result = write({**redis_config(name), "connectionCode": "locked"}, [{"id": 1}], extra_connections=conns)
        assert result.written == 1
        assert [json.loads(e["data"]) for e in entries(client, name)] == [{"id": 1}]
        for code in ("no-pw", "wrong"):
            with pytest.raises(StepError) as info:
                write({**redis_config(name), "connectionCode": code}, [{"id": 2}], extra_connections=conns)
            assert not info.value.retryable, code
            assert "refused" in str(info.value), code
            assert "red-pass-1" not in str(info.value) and "nope" not in str(info.value)
        assert client.xlen(name) == 1
    finally:
        client.delete(name)


def test_redis_options_are_built_from_the_connection():
    ctx = make_ctx()
    opts = redis_options({"code": "r", "type": "REDIS", "url": "redis://cache.internal:6380/3",
                          "username": "app", "passwordSecretCode": "redis-pw"}, ctx, timeout_s=4)
    assert (opts["host"], opts["port"], opts["db"], opts["username"], opts["password"]) == (
        "cache.internal", 6380, 3, "app", "red-pass-1")
    assert opts["socket_timeout"] == opts["socket_connect_timeout"] == 4
    opts = redis_options({"code": "r", "host": "h", "port": "7000", "db": 2, "tls": True}, ctx)
    assert (opts["host"], opts["port"], opts["db"]) == ("h", 7000, 2)
    assert opts["connection_class"].__name__ == "SSLConnection" and "password" not in opts
    assert redis_options({"code": "r", "connectionStringSecretCode": "redis-url"}, ctx)["password"] == "red-pass-1"
    with pytest.raises(ConfigError, match="password may not be written into url"):
        redis_options({"code": "r", "url": "redis://:secret@h:6379/0"}, ctx)
    with pytest.raises(ConfigError, match="unknown secret 'missing'"):
        redis_options({"code": "r", "url": "redis://h", "passwordSecretCode": "missing"}, ctx)
    with pytest.raises(ConfigError, match="not a redis:// or rediss:// URL"):
        redis_options({"code": "r", "url": "http://h"}, ctx)


# -- RabbitMQ --------------------------------------------------------------------------------------------

def amqp_config(queue, **kw):
    return {"queueType": "RABBITMQ_AMQP", "connectionCode": "rabbit", "queueName": queue, **kw}


def test_rabbitmq_publishes_confirmed_messages_with_properties_and_headers(rabbit, queue):
    config = amqp_config(queue, headers={"x-source": "erp", "x-version": 2}, priority=5, ttlMs=60_000)
    result = write(config, RECORDS)
    assert result.written == 3
    assert [(r["id"], m) for r, m in result.failed] == [(3, "invalid __operation 'ARCHIVE' (UPSERT or DELETE)")]
    got = drain(rabbit, queue)
    assert [body for body, _ in got] == [{"id": 1, "sku": "A-1", "price": 9.5}, {"id": 2},
                                         {"id": 4, "sku": "D-4", "tags": ["x"]}]
    ops = [p.headers["x-datahub-operation"] for _, p in got]
    assert ops == ["UPSERT", "DELETE", "UPSERT"]
    first = got[0][1]
    assert first.content_type == "application/json"
    assert first.delivery_mode == 2
    assert first.priority == 5
    assert first.expiration == "60000"
    assert first.message_id == "1"
    assert first.timestamp == int(NOW.timestamp())
    assert first.headers["x-source"] == "erp" and first.headers["x-version"] == "2"


def test_rabbitmq_declares_a_durable_queue_and_can_send_transient_messages(rabbit, queue):
    result = write(amqp_config(queue, persistent=False, defaultOperation="DELETE"), [{"id": "a", "x": 1}])
    assert result.written == 1
    assert rabbit.queue_declare(queue, passive=True).method.message_count == 1
    (body, props), = drain(rabbit, queue)
    assert body == {"id": "a"} and props.delivery_mode == 1 and props.headers["x-datahub-operation"] == "DELETE"
    # the queue survives a broker restart: declaring it again as non-durable is refused
    import pika

    conn = pika.BlockingConnection(pika.URLParameters("amqp://guest:guest@127.0.0.1:5672/%2F"))
    try:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            conn.channel().queue_declare(queue, durable=False)
        assert info.value.reply_code == 406
    finally:
        conn.close()


def test_rabbitmq_publishes_through_an_exchange_with_a_routing_key(rabbit, queue, exchange):
    result = write(amqp_config(queue, exchange=exchange, routingKey="products.updated"), [{"id": 1}, {"id": 2}])
    assert result.written == 2
    assert [b for b, _ in drain(rabbit, queue)] == [{"id": 1}, {"id": 2}]


def test_unroutable_messages_fail_their_records(rabbit, exchange):
    config = amqp_config("not-declared", exchange=exchange, routingKey="nowhere", declareQueue=False)
    result = write(config, [{"id": 1}, {"id": 2, "__operation": "nope"}])
    assert result.written == 0
    assert [m for _, m in result.failed] == [  # a bad operation is found before anything is sent
        "invalid __operation 'NOPE' (UPSERT or DELETE)",
        f"unroutable: no queue is bound to exchange '{exchange}' with routing key 'nowhere'",
    ]


def test_a_missing_exchange_fails_the_step_for_good(rabbit, queue):
    with pytest.raises(StepError) as info:
        write(amqp_config(queue, exchange=unique("missing"), routingKey="k"), [{"id": 1}])
    assert not info.value.retryable
    assert "does not exist" in str(info.value)


def test_a_rabbitmq_that_is_down_fails_the_step_retryably():
    conns = {"down": {"type": "CUSTOM", "host": "127.0.0.1", "port": free_port()}}
    config = {"queueType": "RABBITMQ_AMQP", "connectionCode": "down", "queueName": "q", "timeoutMs": 2000}
    with pytest.raises(StepError) as info:
        write(config, [{"id": 1}], extra_connections=conns)
    assert info.value.retryable
    assert "cannot be reached" in str(info.value) and "127.0.0.1" in str(info.value)


def test_a_wrong_rabbitmq_password_fails_the_step_for_good(rabbit, queue):
    conns = {"bad": {"type": "CUSTOM", "host": "127.0.0.1", "username": "guest", "passwordSecretCode": "wrong-pw"}}
    with pytest.raises(StepError) as info:
        write({**amqp_config(queue), "connectionCode": "bad"}, [{"id": 1}], extra_connections=conns)
    assert not info.value.retryable
    assert "refused the login" in str(info.value)
    assert "nope" not in str(info.value)


def test_amqp_parameters_are_built_from_the_connection():
    ctx = make_ctx()
    p = amqp_parameters({"code": "m", "host": "mq.internal", "port": 5673, "vhost": "shop", "username": "app",
                         "passwordSecretCode": "redis-pw"}, ctx, timeout_s=3)
    assert (p.host, p.port, p.virtual_host) == ("mq.internal", 5673, "shop")
    assert (p.credentials.username, p.credentials.password) == ("app", "red-pass-1")
    assert p.socket_timeout == 3 and p.connection_attempts == 1
    p = amqp_parameters({"code": "m", "connectionStringSecretCode": "amqp-url"}, ctx)
    assert (p.credentials.username, p.credentials.password, p.virtual_host) == ("guest", "guest", "/")
    with pytest.raises(ConfigError, match="password may not be written into amqpUrl"):
        amqp_parameters({"code": "m", "amqpUrl": "amqp://u:secret@h/"}, ctx)


# -- config ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("config, field, text", [
    ({"queueType": "SQS", "connectionCode": "redis", "queueName": "q"}, "queueType",
     "queueType must be one of REDIS_STREAMS, RABBITMQ_AMQP, RABBITMQ"),
    ({"queueType": "REDIS_STREAMS", "connectionCode": "rabbit", "queueName": "q"}, "connectionCode",
     "is a CUSTOM connection; REDIS_STREAMS needs REDIS"),
    ({"queueType": "RABBITMQ_AMQP", "connectionCode": "redis", "queueName": "q"}, "connectionCode",
     "is a REDIS connection; RABBITMQ_AMQP needs CUSTOM or RABBITMQ"),
    ({"queueType": "RABBITMQ", "connectionCode": "rabbit", "queueName": "q", "routingKey": "other"}, "routingKey",
     "with the default exchange the routing key is the queue name"),
    ({"queueType": "RABBITMQ_AMQP", "connectionCode": "rabbit", "queueName": "q", "headers": {"Authorization": "x"}},
     "headers.Authorization", "carries a credential"),
    ({"queueType": "REDIS_STREAMS", "connectionCode": "unknown", "queueName": "q"}, "connectionCode",
     "unknown connection 'unknown'"),
])
def test_config_errors(config, field, text):
    with pytest.raises(ConfigError) as info:
        write(config, [{"id": 1}])
    assert text in str(info.value)
    assert info.value.field == field


def test_settings_of_the_other_queue_type_are_warned_about(redis_client, stream):
    ctx = make_ctx()
    writer = QueueProducer(redis_config(stream, priority=3, ttlMs=10), ctx)
    try:
        assert writer.write([{"id": 1}]).written == 1
    finally:
        writer.close()
    assert ctx.warnings == ["queueProducer: priority does not apply to REDIS_STREAMS; ignored",
                            "queueProducer: ttlMs does not apply to REDIS_STREAMS; ignored"]


def test_a_dry_run_sends_nothing():
    # no connection store at all: a dry run must not even look the connection up
    ctx = AdapterContext(step_key="sink", dry_run=True)
    writer = QueueProducer({"queueType": "REDIS_STREAMS", "connectionCode": "redis", "queueName": "q"}, ctx)
    assert writer.write([{"id": 1}]).written == 0
    writer.close()


def test_the_schema_rejects_unknown_fields_and_bad_values():
    d = {"version": 1, "steps": [
        {"key": "src", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": []}},
        {"key": "sink", "type": "SINK", "adapterCode": "queueProducer",
         "config": {"queueType": "KAFKA", "queueName": "q", "batchSize": 20_000, "priorty": 1}}]}
    with pytest.raises(Exception) as info:
        parse(d)
    text = str(info.value)
    assert "config.queueType" in text and "config.batchSize" in text and "priorty" in text
    assert "connectionCode" in text


# -- through the executor --------------------------------------------------------------------------------

def run(definition, **options):
    store = InMemoryStore()
    opts = RunOptions(keep_outputs=True, secret=secret, connection=connections(options.pop("conns", None)),
                      **options)
    return execute(parse(definition), store, opts), store


def pipeline(sink_config, **step):
    return {"version": 1, "steps": [
        {"key": "src", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": RECORDS}},
        {"key": "sink", "type": "SINK", "adapterCode": "queueProducer", "config": sink_config, **step}]}


def test_through_the_executor_bad_records_become_record_errors(redis_client, stream):
    result, store = run(pipeline(redis_config(stream)))
    assert result.status == "COMPLETED"
    assert [e.message for e in store.record_errors()] == ["invalid __operation 'ARCHIVE' (UPSERT or DELETE)"]
    assert redis_client.xlen(stream) == 3


def test_through_the_executor_a_broker_that_is_down_is_retried_then_fails_the_step():
    conns = {"down": {"type": "CUSTOM", "host": "127.0.0.1", "port": free_port()}}
    config = {"queueType": "RABBITMQ_AMQP", "connectionCode": "down", "queueName": "q", "timeoutMs": 2000}
    result, store = run(pipeline(config, retries=1), conns=conns)
    assert result.status == "FAILED"
    assert "cannot be reached" in store.finished()["sink"].error
    assert store.finished()["sink"].attempts == 2


def test_a_connection_lost_between_batches_is_opened_again(rabbit, queue):
    ctx = make_ctx()
    writer = QueueProducer(amqp_config(queue), ctx)
    try:
        assert writer.write([{"id": 1}]).written == 1
        writer._backend.connection.close()  # as if the broker had dropped it while the step waited
        assert writer.write([{"id": 2}]).written == 1
    finally:
        writer.close()
    assert [b for b, _ in drain(rabbit, queue)] == [{"id": 1}, {"id": 2}]
    assert ctx.warnings == ["queueProducer: the connection to RabbitMQ 127.0.0.1:5672 was lost between batches; "
                            "reconnected"]

"""What an operator does on the Queues page: watch a consumer that a real `manage.py consume` process runs
take messages from Redis (the list refreshes itself), see a malformed message's dead letter with its
reason, and stop and start the consumer with the buttons."""

import json

import pytest
from playwright.sync_api import expect

from pipelines.models import Connection
from pipelines.services import save_definition
from runs.consumers.models import Consumer
from runs.models import Run
from tests.browser.conftest import log_in
from tests.consumers.conftest import Redis, unique, wait_for
from tests.consumers.processes import ConsumeProcess


@pytest.fixture
def redis_server():
    try:
        server = Redis()
    except Exception as exc:
        pytest.skip(f"Redis is not reachable on 127.0.0.1:6379 ({type(exc).__name__}); this test consumes from it")
    yield server
    server.close()


def test_it_watches_stops_and_starts_a_consumer(page, shoot, alice, redis_server, tmp_path):
    stream = unique("browser")
    redis_server.prepare(stream)
    Connection.objects.create(code="redis-local", type="REDIS", config={"url": "redis://127.0.0.1:6379/0"})
    p = save_definition({"version": 1, "code": "orders-in", "name": "Orders in", "steps": [
        {"key": "inbox", "type": "TRIGGER", "config": {
            "type": "MESSAGE", "queueType": "REDIS_STREAMS", "connectionCode": "redis-local", "queueName": stream,
            "batchWaitMs": 200}},
        {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}}]})
    consume = ConsumeProcess(tmp_path, "consume", "--pipeline", p.code, "--tick", "0.5")
    try:
        log_in(page, "alice")
        page.click("nav >> text=Queues")
        row = page.locator('tr[data-consumer="orders-in/inbox"]')
        expect(row.locator("[data-state]")).to_have_text("RUNNING", timeout=20_000)

        redis_server.publish(stream, {"sku": "A-1"})
        redis_server.publish(stream, b"{oops")
        expect(row.locator("[data-received]")).to_have_text("2", timeout=10_000)
        expect(row.locator("[data-runs]")).to_have_text("1")
        expect(row.locator("[data-dead-letters]")).to_have_text("1")
        assert Run.objects.get(pipeline=p).seed_records == [{"sku": "A-1"}]
        shoot(page, "queues-running")

        row.locator("[data-dead-letters] a").click()
        expect(page.locator("#dead-letter-table [data-reason]")).to_have_text(
            "malformed message: not JSON: Expecting property name enclosed in double quotes at line 1, column 2 "
            "(starts '{oops')")
        expect(page.locator("#dead-letter-table [data-body]")).to_have_text("{oops")
        shoot(page, "consumer-dead-letters")

        page.click("text=Queues >> nth=0")
        row.locator("[data-action=stop]").click()
        expect(row.locator("[data-action=start]")).to_be_visible()
        expect(row.locator("[data-state]")).to_have_text("STOPPED", timeout=10_000)
        assert Consumer.objects.get(pipeline=p).desired == "STOPPED"
        redis_server.publish(stream, {"sku": "B-2"})
        page.wait_for_timeout(1500)
        assert Run.objects.filter(pipeline=p).count() == 1, "a stopped consumer took a message"

        row.locator("[data-action=start]").click()
        expect(row.locator("[data-state]")).to_have_text("RUNNING", timeout=10_000)
        wait_for(lambda: Run.objects.filter(pipeline=p).count() == 2, 10, "the message sent while stopped")
        assert json.loads(json.dumps(Run.objects.filter(pipeline=p).order_by("pk").last().seed_records)) == [
            {"sku": "B-2"}]
        shoot(page, "queues-restarted")
    finally:
        consume.close()

"""Paged lists in a browser (issue 18): a consumer's dead letters page by page, newest first, and the
waiting gates page by page in place (htmx), the page's own refresh staying on its page. Offline: no request
leaves 127.0.0.1, no console error."""

import pytest
from playwright.sync_api import expect

from pipelines.services import save_definition
from runs import services
from runs.consumers.models import DeadLetter
from runs.consumers.services import configured_consumers
from tests.browser.conftest import log_in


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def test_the_dead_letters_page_newest_first(offline_page, shoot, alice):
    page = offline_page
    p = save_definition({"version": 1, "code": "orders-in", "name": "Orders in", "steps": [
        {"key": "inbox", "type": "TRIGGER", "config": {
            "type": "MESSAGE", "queueType": "REDIS_STREAMS", "connectionCode": "redis", "queueName": "orders"}},
        {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}}]})
    [c] = configured_consumers([p.code])
    DeadLetter.objects.bulk_create(DeadLetter(consumer=c.consumer, key=f"{n}-0", body=f'{{"n": {n}}}',
                                              reason=f"reason {n}") for n in range(120))
    log_in(page, "alice")
    page.goto(f"/queues/{c.consumer.pk}/")
    rows = page.locator("#dead-letter-table [data-reason]")
    expect(rows).to_have_count(50)
    expect(rows.first).to_have_text("reason 119")
    expect(page.locator("#dead-letters .hint")).to_have_text("120 in all, newest first; 1–50 shown")
    page.get_by_role("link", name="Older →").click()
    expect(rows.first).to_have_text("reason 69")
    page.get_by_role("link", name="Older →").click()
    expect(rows).to_have_count(20)
    expect(rows.last).to_have_text("reason 0")
    expect(page.get_by_text("Page 3 of 3")).to_be_visible()
    shoot(page, "dead-letters-last-page")


def test_the_waiting_gates_page_in_place(offline_page, shoot, alice):
    page = offline_page
    pipeline = save_definition({"version": 1, "code": "gated", "name": "Gated", "steps": [
        {"key": "src", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": [{"sku": "A"}]}},
        {"key": "gate", "type": "GATE", "config": {"approvalType": "MANUAL"}},
        {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}}]})
    runs = [services.run_now(services.create_run(pipeline, allow_concurrent=True)).run for _ in range(27)]
    log_in(page, "alice")
    page.goto("/gates/")
    gates = page.locator("#pending-gates tbody tr")
    expect(gates).to_have_count(25)
    expect(gates.first).to_have_attribute("data-gate", f"{runs[0].pk}/gate")  # oldest first
    page.get_by_role("link", name="Newer →").click()
    expect(gates).to_have_count(2)
    expect(gates.last).to_have_attribute("data-gate", f"{runs[-1].pk}/gate")
    assert page.url.endswith("/gates/")  # swapped in place
    # The panel's refresh (every 5 s) asks for the page it shows.
    expect(page.locator("#gates-pending")).to_have_attribute("hx-get", "/gates/?page=2")
    page.wait_for_timeout(5_500)
    expect(gates).to_have_count(2)
    shoot(page, "gates-second-page")

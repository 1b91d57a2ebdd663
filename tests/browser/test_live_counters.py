"""The run page while a long step runs: its counters move, with a speed and the time left (issue 16 goal 9).
Offline, with a clean console."""

import re
import threading
import time

import pytest
from django.db import connections
from playwright.sync_api import expect

from pipelines import registry
from pipelines.adapters.base import Writer, WriteResult
from pipelines.services import save_definition
from runs import services
from tests.browser.conftest import log_in

RECORDS = 5000


class SlowWriter(Writer):
    def write(self, batch):
        time.sleep(0.12)
        return WriteResult(written=len(batch))


@pytest.fixture
def slow_loader():
    snap = registry.snapshot_all()
    registry.loaders.register("slowLoad", SlowWriter, schema={"type": "object"})
    yield
    registry.restore_all(snap)


def _number(text: str) -> int:
    return int(re.sub(r"[^0-9]", "", text) or 0)


def test_it_shows_a_running_steps_counters_moving(offline_page, shoot, alice, slow_loader):
    definition = {"version": 1, "code": "big", "name": "Big load", "edges": [], "steps": [
        {"key": "src", "type": "EXTRACT", "adapterCode": "inMemory",
         "config": {"data": [{"id": i} for i in range(RECORDS)]}},
        {"key": "load", "type": "LOAD", "adapterCode": "slowLoad", "config": {}, "throughput": {"batchSize": 100}},
    ]}
    run = services.create_run(save_definition(definition))
    worker = threading.Thread(target=lambda: (services.run_now(run), connections.close_all()))
    page = offline_page
    log_in(page, "alice")
    worker.start()
    try:
        page.goto(f"/runs/{run.pk}/")
        live = page.locator('#step-table tr[data-step="load"] .live-progress')
        expect(live).to_contain_text("records/s", timeout=15_000)
        expect(live).to_contain_text("left")
        expect(page.locator("#run-speed")).to_contain_text("records/s")
        cell = page.locator('#step-table tr[data-step="load"] td.num').nth(1)  # In
        first = _number(cell.inner_text())
        shoot(page, "running")
        expect(cell).not_to_have_text(re.compile(rf"^\s*{first:,}\s*$"), timeout=5_000)
        second = _number(cell.inner_text())
        assert 0 < first < second <= RECORDS
        expect(page.locator("#run-status")).to_contain_text(re.compile("completed", re.I), timeout=30_000)
    finally:
        worker.join()
    expect(page.locator("#run-speed")).to_have_count(0)
    expect(page.locator('#step-table tr[data-step="load"] td.num').nth(1)).to_have_text(f"{RECORDS:,}")
    shoot(page, "done")

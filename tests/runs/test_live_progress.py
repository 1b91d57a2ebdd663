"""Live counters (issue 15 goal 6, issue 16 goal 9): while a step runs, its row's counters move about once a
second, and the run page, REST and GraphQL show them with a rate and, when the total is known, an ETA."""

import re
import threading
import time

import pytest
from django.db import connections

from pipelines import registry
from pipelines.adapters.base import Writer, WriteResult
from pipelines.services import save_definition
from runs import services
from runs.engine.events import RunStarted, StepCounts, StepFinished, StepProgress, StepStarted
from runs.engine.status import StepStatus
from runs.models import RunStatus, StepRun
from runs.store import DjangoRunStore

pytestmark = pytest.mark.django_db(transaction=True)

RECORDS = 4000
BATCH = 100
PAUSE = 0.12  # 40 batches: about 5 s


class SlowWriter(Writer):
    def write(self, batch):
        time.sleep(self.config["pause"])
        return WriteResult(written=len(batch), failed=[(r, "bad record") for r in batch if r.get("bad")])


@pytest.fixture
def slow_loader():
    snap = registry.snapshot_all()
    registry.loaders.register("slowLoad", SlowWriter, schema={"type": "object"})
    yield
    registry.restore_all(snap)


def _definition():
    records = [{"id": i, "bad": i % 20 == 0} for i in range(RECORDS)]
    return {"version": 1, "code": "slow", "name": "Slow load", "steps": [
        {"key": "src", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": records}},
        {"key": "load", "type": "LOAD", "adapterCode": "slowLoad", "config": {"pause": PAUSE},
         "throughput": {"batchSize": BATCH}},
    ], "edges": []}


GQL = "query($id: ID!) { run(id: $id) { stepRuns { stepKey status recordsIn recordsExpected recordsPerSecond etaSeconds } } }"


def test_a_running_steps_counters_move_on_its_row_the_run_page_and_the_apis(slow_loader, admin_client):
    run = services.create_run(save_definition(_definition()))
    errors: list[BaseException] = []

    def work():
        try:
            services.run_now(run)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    worker = threading.Thread(target=work)
    worker.start()
    rows, page, api, graph = [], None, None, None
    try:
        while worker.is_alive():
            row = StepRun.objects.filter(run=run, step_key="load").first()
            if row is not None and row.status == StepStatus.RUNNING and row.records_in:
                rows.append((row.records_in, row.records_out, row.records_error, row.records_expected,
                             row.records_per_second, row.eta_seconds))
                if page is None and row.records_in < RECORDS // 2:
                    poll = admin_client.get(f"/runs/{run.pk}/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="run-progress")
                    page = (row.records_in, poll.content.decode())
                    api = admin_client.get(f"/api/runs/{run.pk}/").json()
                    graph = admin_client.post("/graphql/", {"query": GQL, "variables": {"id": run.pk}},
                                              content_type="application/json").json()
            time.sleep(0.1)
    finally:
        worker.join()
    assert not errors
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED

    # The row moved while the step ran: at least two different readings, growing, with what is known.
    readings = sorted(set(rows))
    assert len({r[0] for r in readings}) >= 2, rows
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)
    assert all(0 < r[0] <= RECORDS and r[3] == RECORDS and r[4] > 0 and r[5] >= 0 for r in rows), rows
    assert all(r[5] > 0 for r in rows if r[0] < RECORDS), rows  # time left until all is read
    assert any(r[2] > 0 for r in rows)  # failed records count while the step runs too

    # The run page's progress poll shows the moving counter, the speed and the time left.
    assert page is not None
    records_in, html = page
    cells = re.search(r'<tr data-step="load">(.*?)</tr>', html, re.S).group(1)
    shown = [int(n.replace(",", "")) for n in re.findall(r'<td class="num">([0-9,]+)</td>', cells)]
    # Tries, In, Out, Dropped: In is what the row said then or a later report (the worker goes on meanwhile).
    assert records_in <= shown[1] <= RECORDS, shown
    assert "records/s" in html and "left" in html and 'id="run-speed"' in html
    # REST and GraphQL say the same.
    step = next(s for s in api["stepRuns"] if s["stepKey"] == "load")
    assert step["status"] == "RUNNING" and step["recordsIn"] > 0 and step["recordsExpected"] == RECORDS
    assert step["recordsPerSecond"] > 0 and step["etaSeconds"] > 0
    assert "errors" not in graph, graph
    gstep = next(s for s in graph["data"]["run"]["stepRuns"] if s["stepKey"] == "load")
    assert gstep["recordsExpected"] == RECORDS and gstep["recordsPerSecond"] > 0 and gstep["etaSeconds"] > 0

    # At its end the row has the final counts and no live figures.
    done = StepRun.objects.get(run=run, step_key="load")
    assert (done.records_in, done.records_out, done.records_error) == (RECORDS, RECORDS - RECORDS // 20, RECORDS // 20)
    assert done.records_expected is None and done.records_per_second is None and done.eta_seconds is None
    final = admin_client.get(f"/runs/{run.pk}/").content.decode()
    assert 'id="run-speed"' not in final and "records/s" not in final


def test_progress_lands_only_on_the_attempt_still_running(db):
    run = services.create_run(save_definition(_definition() | {"steps": _definition()["steps"][:1]}))
    store = DjangoRunStore(run)
    store.emit(RunStarted(("src",)))
    store.emit(StepStarted("src", 2))
    store.emit(StepProgress("src", 1, StepCounts(5, 5), 1000, 10))  # a late report of attempt 1: ignored
    row = StepRun.objects.get(run=run, step_key="src")
    assert (row.records_in, row.records_expected) == (0, None)
    store.emit(StepProgress("src", 2, StepCounts(7, 6, 1), 2000, 10))
    row.refresh_from_db()
    assert (row.records_in, row.records_out, row.records_error, row.records_expected) == (7, 6, 1, 10)
    assert row.records_per_second == pytest.approx(3.5) and row.eta_seconds == pytest.approx(3 / 3.5)
    store.emit(StepFinished("src", StepStatus.COMPLETED, StepCounts(10, 9, 1), 2500, 2))
    store.emit(StepProgress("src", 2, StepCounts(8, 7, 1), 2400, 10))  # arrives after the end: ignored
    row.refresh_from_db()
    assert (row.status, row.records_in, row.records_out, row.records_per_second) == ("COMPLETED", 10, 9, None)

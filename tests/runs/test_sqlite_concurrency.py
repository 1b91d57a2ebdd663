"""The SQLite default holds when workers write while the web side polls and writes too."""

import threading
import time

import pytest
from django.db import connection, connections

from pipelines import registry
from pipelines.adapters.base import Extractor
from pipelines.models import Secret
from pipelines.services import save_definition
from runs import services
from runs.models import Run

pytestmark = pytest.mark.django_db(transaction=True)


class WritingExtractor(Extractor):
    """Writes through the ORM from its step thread, as a model extractor or loader would."""

    def batches(self):
        for i in range(40):
            Secret.objects.update_or_create(code=f"{self.ctx.step_key}-{i % 5}", defaults={"description": str(i)})
        yield [{"step": self.ctx.step_key}]


@pytest.fixture
def writer():
    snap = registry.snapshot_all()
    registry.extractors.register("ormWriter", WritingExtractor, schema={"type": "object"})
    yield
    registry.restore_all(snap)


def test_it_runs_four_parallel_writing_steps_while_the_run_is_polled(writer):
    if connection.vendor != "sqlite":
        pytest.skip("this checks SQLite's locking; other databases lock rows, not the file")
    steps = [{"key": "start", "type": "TRIGGER", "config": {}}]
    steps += [{"key": f"w{i}", "type": "EXTRACT", "adapterCode": "ormWriter", "config": {}} for i in range(4)]
    d = {"code": "writers", "steps": steps, "edges": [{"from": "start", "to": f"w{i}"} for i in range(4)],
         "context": {"parallelExecution": {"enabled": True, "maxConcurrentSteps": 4}}}
    run = services.create_run(save_definition(d))
    errors: list[BaseException] = []
    done = threading.Event()

    def poll():  # the run page: reads, plus a write (cancel flag, heartbeat-like) now and then
        try:
            while not done.is_set():
                Run.objects.get(pk=run.pk).step_runs.count()
                Run.objects.filter(pk=run.pk).update(cancel_requested=False)
                time.sleep(0.005)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    pollers = [threading.Thread(target=poll) for _ in range(2)]
    for p in pollers:
        p.start()
    try:
        outcome = services.run_now(run)
    finally:
        done.set()
        for p in pollers:
            p.join()
    assert errors == []
    assert outcome.run.status == "COMPLETED", outcome.run.error
    assert Secret.objects.count() == 20

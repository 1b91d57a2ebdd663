"""Continuous CDC runs (runs.cdc) against real SQLite, PostgreSQL and MariaDB: a long run that polls, pushes
each batch through the pipeline, shows its progress, stops on cancel, and resumes from the checkpoint."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections

from pipelines.services import save_definition
from runs import services
from runs.models import Checkpoint, Run
from tests.adapters import test_database as _db
from tests.adapters.test_cdc import NOW, T, Target, cdc_pipeline, connection_row, orders_table

pg_database, mysql_database, target = _db.pg_database, _db.mysql_database, _db.target

pytestmark = pytest.mark.django_db(transaction=True)


def continuous(target: Target, **config) -> dict:
    lag = 100 if target.kind == "sqlite" else 0
    return cdc_pipeline(mode="CONTINUOUS", pollIntervalMs=50, batchSize=3, safetyLagMs=lag, **config)


class Background:
    """A continuous run executing in another thread, as on a worker."""

    def __init__(self, run: Run, body=None):
        self.run = run
        self.outcome = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._body, args=(body,), daemon=True)
        self.thread.start()

    def _body(self, body):
        try:
            self.outcome = body() if body else services.run_now(self.run)
        except BaseException as exc:  # reported to the test
            self.error = exc
        finally:
            connections.close_all()

    def stop(self, timeout: float = 10) -> Run:
        services.cancel_run(self.run)
        return self.join(timeout)

    def join(self, timeout: float = 10) -> Run:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the continuous run did not stop"
        assert self.error is None, self.error
        return Run.objects.get(pk=self.run.pk)


def start(pipeline) -> Background:
    return Background(services.create_run(pipeline))


def wait_for(check, timeout: float = 20, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def copied(target: Target) -> list[tuple]:
    return target.rows("SELECT id, name FROM orders_copy ORDER BY id")


def setup_tables(target: Target) -> None:
    connection_row(target)
    orders_table(target)
    target.create("orders_copy", "id INT PRIMARY KEY, name VARCHAR(50), op VARCHAR(10)")


def test_it_polls_pushes_each_batch_shows_progress_stops_on_cancel_and_resumes(target):
    setup_tables(target)
    target.insert("orders", [{"id": i, "name": f"o{i}", "created_at": T(1), "updated_at": T(1, i)} for i in range(1, 6)])
    pipeline = save_definition(continuous(target))

    first = start(pipeline)
    wait_for(lambda: len(copied(target)) == 5, what="the first five rows")
    run = wait_for(lambda: (r := Run.objects.get(pk=first.run.pk)).progress and r.progress["records"] == 5 and r,
                   what="the progress")
    assert run.status == "RUNNING"
    progress = run.progress
    assert progress["mode"] == "CONTINUOUS" and progress["step"] == "changes"
    assert progress["batches"] == 2 and progress["lastCursor"]["key"] == [5]  # batches of 3: 3 + 2
    assert progress["lagSeconds"] is not None and progress["polls"] >= 2
    line = run.step_runs.get(step_key="changes").warnings[0]
    assert line.startswith("continuous CDC: 2 batches, 5 changes")

    # A change made now arrives while the run goes on.
    target.run(f"INSERT INTO orders (id, name, created_at, updated_at) VALUES (6, 'o6', {NOW[target.kind]}, "
               f"{NOW[target.kind]})")
    wait_for(lambda: len(copied(target)) == 6, what="a row written while the run polls")
    began = time.monotonic()
    stopped = first.stop()
    assert time.monotonic() - began < 5
    assert stopped.status == "CANCELLED" and stopped.finished_at is not None
    steps = {s.step_key: s for s in stopped.step_runs.all()}
    assert steps["changes"].records_out == 6 and steps["load"].records_out == 6  # counts add up over batches

    # While nothing runs: two inserts and an update. The next run starts from the saved cursor.
    now = NOW[target.kind]
    target.run(*(f"INSERT INTO orders (id, name, created_at, updated_at) VALUES ({i}, 'o{i}', {now}, {now})"
                 for i in (7, 8)),
               f"UPDATE orders SET name = 'renamed', updated_at = {now} WHERE id = 1")
    second = start(pipeline)
    wait_for(lambda: ("1", "renamed") in [(str(i), n) for i, n in copied(target)], what="the resumed changes")
    resumed = second.stop()
    assert resumed.status == "CANCELLED"
    assert resumed.step_runs.get(step_key="changes").records_out == 3  # 7, 8 and 1: nothing read twice
    assert [i for i, _ in copied(target)] == [1, 2, 3, 4, 5, 6, 7, 8]


def test_a_batch_whose_load_fails_ends_the_run_and_is_delivered_by_the_next_one(target):
    setup_tables(target)
    target.insert("orders", [{"id": i, "name": f"o{i}", "created_at": T(1), "updated_at": T(1, i)} for i in (1, 2, 3)])
    pipeline = save_definition(continuous(target))
    first = start(pipeline)
    wait_for(lambda: len(copied(target)) == 3, what="the first batch")
    wait_for(lambda: Checkpoint.objects.filter(pipeline=pipeline, step_key="changes").exists(), what="the cursor")

    target.run("DROP TABLE orders_copy")  # the loader's table goes away
    target.insert("orders", [{"id": i, "name": f"o{i}", "created_at": T(2), "updated_at": T(2)} for i in (4, 5)])
    failed = first.join(timeout=20)
    assert failed.status == "FAILED"
    assert "batch 2 failed" in failed.error and "orders_copy" in failed.error
    cursor = Checkpoint.objects.get(pipeline=pipeline, step_key="changes").data["cursor"]
    assert [k["value"] for k in cursor["key"]] == [3]  # still before the batch that was not loaded

    target.create("orders_copy", "id INT PRIMARY KEY, name VARCHAR(50), op VARCHAR(10)")
    second = start(pipeline)
    wait_for(lambda: [i for i, _ in copied(target)] == [4, 5], what="the batch delivered again")
    assert second.stop().status == "CANCELLED"


@pytest.mark.parametrize("target", ["sqlite"], indirect=True)
def test_it_hands_itself_over_before_the_task_timeout_and_a_worker_continues_it(target, settings):
    from django_q.models import OrmQ

    from runs.tasks import execute_run

    setup_tables(target)
    target.insert("orders", [{"id": 1, "name": "o1", "created_at": T(1), "updated_at": T(1)}])
    pipeline = save_definition(continuous(target))
    settings.DATAHUB_CONTINUOUS_RUN_SECONDS = 0.5
    first = start(pipeline)
    handed = first.join(timeout=10)
    assert handed.status == "PENDING" and handed.progress["records"] == 1
    assert [q.name() for q in OrmQ.objects.all()] == [f"run-{handed.pk}"]
    began = handed.started_at

    settings.DATAHUB_CONTINUOUS_RUN_SECONDS = 60
    target.insert("orders", [{"id": 2, "name": "o2", "created_at": T(2), "updated_at": T(2)}])
    worker = Background(handed, body=lambda: execute_run(handed.pk))
    wait_for(lambda: len(copied(target)) == 2, what="the continued run")
    run = wait_for(lambda: (r := Run.objects.get(pk=handed.pk)).progress["records"] == 2 and r, what="progress")
    assert run.status == "RUNNING" and run.started_at == began
    assert run.step_runs.get(step_key="changes").records_out == 2
    assert worker.stop().status == "CANCELLED"


@pytest.mark.parametrize("target", ["sqlite"], indirect=True)
def test_a_run_whose_worker_dies_mid_batch_is_resumed_from_its_committed_checkpoint(target, monkeypatch):
    """The worker dies while loading the second batch: the reaper takes the run back (no resume state: a
    continuous run restarts from its checkpoint), a worker continues it, the batch is read again."""
    from runs.engine.events import StepStarted
    from runs.store import DjangoRunStore
    from runs.tasks import execute_run

    class WorkerKilled(BaseException):
        """Not an Exception: nothing in the run catches it, as with a killed process."""

    setup_tables(target)
    target.insert("orders", [{"id": i, "name": f"o{i}", "created_at": T(1), "updated_at": T(1, i)} for i in (1, 2, 3)])
    pipeline = save_definition(continuous(target))
    emit, loads = DjangoRunStore.emit, []

    def dying(self, event):
        emit(self, event)
        if isinstance(event, StepStarted) and event.step_key == "load":
            loads.append(event)
            if len(loads) == 2:
                raise WorkerKilled()

    monkeypatch.setattr(DjangoRunStore, "emit", dying)
    first = start(pipeline)
    wait_for(lambda: len(copied(target)) == 3, what="the first batch")
    target.insert("orders", [{"id": i, "name": f"o{i}", "created_at": T(2), "updated_at": T(2, i)} for i in (4, 5)])
    first.thread.join(20)
    assert isinstance(first.error, WorkerKilled)
    monkeypatch.setattr(DjangoRunStore, "emit", emit)
    dead = Run.objects.get(pk=first.run.pk)
    assert dead.status == "RUNNING" and [i for i, _ in copied(target)] == [1, 2, 3]
    cursor = Checkpoint.objects.get(pipeline=pipeline, step_key="changes").data["cursor"]
    assert [k["value"] for k in cursor["key"]] == [3]  # the batch in flight was not committed

    Run.objects.filter(pk=dead.pk).update(heartbeat_at=dead.heartbeat_at - services.timezone.timedelta(minutes=5))
    assert services.reap_stale_runs(max_silence_seconds=60) == 1
    taken = Run.objects.get(pk=dead.pk)
    assert taken.status == "PENDING" and taken.resume_state is None and taken.resumes == 1
    assert taken.step_runs.get(step_key="load").status == "PENDING"

    worker = Background(taken, body=lambda: execute_run(taken.pk))
    wait_for(lambda: [i for i, _ in copied(target)] == [1, 2, 3, 4, 5], what="the lost batch, read again")
    run = wait_for(lambda: (r := Run.objects.get(pk=taken.pk)).progress["records"] == 5 and r, what="progress")
    assert run.status == "RUNNING" and run.started_at == dead.started_at
    assert worker.stop().status == "CANCELLED"
    assert [e.kind for e in run.events.all()] == ["STARTED", "WORKER_LOST", "RESUMED"]
    assert "from its committed checkpoint" in run.events.get(kind="WORKER_LOST").detail


@pytest.mark.parametrize("target", ["sqlite"], indirect=True)
def test_a_draining_worker_hands_a_continuous_run_back_between_polls(target, monkeypatch):
    from django_q.models import OrmQ

    from runs import drain

    setup_tables(target)
    target.insert("orders", [{"id": 1, "name": "o1", "created_at": T(1), "updated_at": T(1)}])
    pipeline = save_definition(continuous(target))
    monkeypatch.setattr(drain, "_shared", None)  # put back after the test: this process is no worker
    drain.install()
    first = start(pipeline)
    wait_for(lambda: len(copied(target)) == 1, what="the first batch")
    drain.start(time.time() + 5)  # what `manage.py worker` does on SIGTERM
    handed = first.join(timeout=10)
    assert handed.status == "PENDING" and handed.progress["records"] == 1 and handed.resumes == 0
    assert [q.name() for q in OrmQ.objects.all()] == [f"run-{handed.pk}"]
    assert [e.kind for e in handed.events.all()] == ["STARTED", "HANDED_BACK"]


@pytest.mark.parametrize("target", ["sqlite"], indirect=True)
def test_a_continuous_pipeline_cannot_pause_at_a_gate(target, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    setup_tables(target)
    target.insert("orders", [{"id": 1, "name": "o1", "created_at": T(1), "updated_at": T(1)}])
    gate = {"key": "gate", "type": "GATE", "config": {"approvalType": "MANUAL"}}
    pipeline = save_definition(continuous(target, extra_steps=[gate]))
    run = start(pipeline).join(timeout=10)
    assert run.status == "FAILED" and "cannot pause at a gate" in run.error
    assert not Checkpoint.objects.filter(pipeline=pipeline, step_key="changes").exists()


@pytest.mark.parametrize("target", ["sqlite"], indirect=True)
def test_a_dry_run_of_a_continuous_pipeline_polls_once(target):
    setup_tables(target)
    target.insert("orders", [{"id": i, "name": "x", "created_at": T(1), "updated_at": T(1)} for i in range(1, 6)])
    pipeline = save_definition(continuous(target))
    run = services.run_now(services.create_run(pipeline, dry_run=True)).run
    assert run.status == "COMPLETED", run.error
    assert run.step_runs.get(step_key="changes").records_out == 3  # one batch
    assert run.progress is None and copied(target) == []


def test_a_bad_table_name_fails_the_continuous_run_at_once(target):
    setup_tables(target)
    pipeline = save_definition(continuous(target, table="ordrs"))
    run = start(pipeline).join(timeout=10)
    assert run.status == "FAILED"
    assert "table 'ordrs' does not exist" in run.error and "did you mean 'orders'" in run.error

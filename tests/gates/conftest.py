"""Shared pieces of the gate tests: pipelines with a gate, a loader that counts its writes (to prove that
no step before a gate runs twice), an approver persona, and running tasks through the worker's code path."""

import pytest
from django.contrib.auth.models import Permission

from pipelines import registry
from pipelines.adapters.base import Writer, WriteResult
from pipelines.services import save_definition
from runs import services as run_services
from runs.models import Run, RunStatus


class CountingWriter(Writer):
    """Test loader: remembers every record it wrote, by step key, across 'workers' of this process."""

    written: dict[str, list] = {}

    def write(self, batch):
        CountingWriter.written.setdefault(self.ctx.step_key, []).extend(dict(r) for r in batch)
        return WriteResult(written=len(batch))


class FailingWriter(Writer):
    """Test loader: every record whose `bad` field is true is a record error."""

    def write(self, batch):
        failed = [(r, "bad record") for r in batch if r.get("bad")]
        return WriteResult(written=len(batch) - len(failed), failed=failed)


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture
def counting():
    snap = registry.snapshot_all()
    CountingWriter.written = {}
    registry.loaders.register("counting", CountingWriter, schema={"type": "object"}, replace=True)
    registry.loaders.register("failingRecords", FailingWriter, schema={"type": "object"}, replace=True)
    yield CountingWriter.written
    registry.restore_all(snap)


@pytest.fixture
def approver(alice):
    """alice, who may also approve and reject gates."""
    alice.user_permissions.add(Permission.objects.get(content_type__app_label="gates", codename="approve_gate"))
    return type(alice).objects.get(pk=alice.pk)  # a fresh object: permissions are cached per instance


def src(key="src", records=None):
    records = records if records is not None else [{"sku": "A-1", "price": 10}, {"sku": "B-2", "price": 20}]
    return {"key": key, "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": records}}


def gate(key="gate", approval="MANUAL", **config):
    return {"key": key, "type": "GATE", "config": {"approvalType": approval, **config}}


def load(key):
    return {"key": key, "type": "LOAD", "adapterCode": "counting", "config": {}}


def linear(code="gated", records=None, **gate_config):
    """src -> before (LOAD, counted) -> gate -> after (LOAD, counted), in list order."""
    approval = gate_config.pop("approval", "MANUAL")
    return {"code": code, "name": f"Pipeline {code}",
            "steps": [src(records=records), load("before"), gate(approval=approval, **gate_config), load("after")],
            "edges": []}


def start(definition, **kwargs) -> Run:
    """Create and execute a run in this process (the worker's code path); returns it reloaded."""
    pipeline = save_definition(definition)
    run = run_services.create_run(pipeline, **kwargs)
    return run_services.run_now(run).run


def paused(definition, **kwargs) -> Run:
    run = start(definition, **kwargs)
    assert run.status == RunStatus.PAUSED, run.error
    return run


def resume_on_a_worker(run: Run) -> Run:
    """What a qcluster worker does with the task the approval enqueued."""
    from django_q.tasks import async_task

    async_task("runs.tasks.resume_run", run.pk, sync=True)
    return Run.objects.get(pk=run.pk)


def queued_tasks() -> list[str]:
    """Names of the tasks waiting in django-q2's ORM broker (none run without a cluster in tests)."""
    from django_q.models import OrmQ

    return [q.name() for q in OrmQ.objects.all()]


def deliver_notices() -> list[str]:
    """What a qcluster worker does with the notice deliveries queued so far (a gate's, a run's): each queued
    ``hooks`` task run through the worker's code path, in order. Returns the names of the tasks run."""
    from django_q.models import OrmQ
    from django_q.tasks import async_task

    names = []
    for q in OrmQ.objects.order_by("id"):
        if q.group() != "hooks":
            continue
        q.delete()
        async_task(q.task["func"], *q.args(), sync=True)
        names.append(q.name())
    return names


def run_retries() -> list[str]:
    """What django-q2's scheduler does with the one-off schedules of notice retries, whatever their time."""
    import ast

    from django_q.models import Schedule
    from django_q.tasks import async_task

    names = []
    for s in Schedule.objects.filter(schedule_type=Schedule.ONCE).order_by("id"):
        s.delete()
        async_task(s.func, *ast.literal_eval(s.args), sync=True)
        names.append(s.name)
    return names

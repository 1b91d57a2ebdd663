"""EVENT triggers: model changes -> outbox rows in the same transaction -> debounced, batched runs."""

import threading
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.db import connections, transaction
from django.utils import timezone

from pipelines.errors import DefinitionError
from pipelines.models import Pipeline
from pipelines.services import save_definition
from runs import services
from runs.model_events import dispatch
from runs.models import EventSubscription, OutboxEvent, Run, RunStatus

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def allow_groups(settings):
    settings.DATAHUB_EVENT_MODELS = ["auth.Group"]


def definition(code="groups", **trigger):
    trigger = {"type": "EVENT", "models": ["auth.Group"], **trigger}
    return {
        "version": 1, "code": code, "name": code,
        "steps": [
            {"key": "changed", "type": "TRIGGER", "config": trigger},
            {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}},
        ],
        "edges": [{"from": "changed", "to": "out"}],
    }


@pytest.fixture
def subscribe(django_capture_on_commit_callbacks):
    """Save a pipeline with its after-commit work (the subscription sync) done; its subscription."""

    def subscribe(concurrent=False, **trigger):
        with django_capture_on_commit_callbacks(execute=True):
            p = save_definition(definition(**trigger))
        if concurrent:
            Pipeline.objects.filter(pk=p.pk).update(allow_concurrent_runs=True)
        return EventSubscription.objects.get(pipeline=p)

    return subscribe


def later(seconds=5):
    return timezone.now() + timedelta(seconds=seconds)


def seeds(run):
    return [{k: r[k] for k in ("model", "pk", "operation") if k in r} | ({"fields": r["fields"]} if "fields" in r else {})
            for r in run.seed_records]


def test_it_turns_a_create_an_update_and_a_delete_into_runs_seeded_with_ids_and_operations(subscribe):
    sub = subscribe()
    group = Group.objects.create(name="buyers")
    first = dispatch.dispatch(sub.pk, now=later())
    run = Run.objects.get(pk=first.run_ids[0])
    assert (run.trigger, run.seed_step) == ("event", "changed")
    assert seeds(run) == [{"model": "auth.Group", "pk": group.pk, "operation": "created"}]
    outcome = services.run_now(run, keep_outputs=True)
    assert outcome.run.status == RunStatus.COMPLETED
    assert [r["operation"] for r in outcome.result.output("out")] == ["created"]

    group.name = "sellers"
    group.save(update_fields=["name"])
    pk = group.pk
    group.delete()
    second = Run.objects.get(pk=dispatch.dispatch(sub.pk, now=later()).run_ids[0])
    assert seeds(second) == [{"model": "auth.Group", "pk": pk, "operation": "updated", "fields": ["name"]},
                             {"model": "auth.Group", "pk": pk, "operation": "deleted"}]
    assert all(isinstance(r["eventId"], int) and r["occurredAt"] for r in second.seed_records)
    assert not OutboxEvent.objects.filter(run__isnull=True).exists()


def test_it_writes_no_event_for_a_rolled_back_change(subscribe):
    sub = subscribe()
    with pytest.raises(RuntimeError), transaction.atomic():
        Group.objects.create(name="ghost")
        assert OutboxEvent.objects.count() == 1  # written in the changing transaction ...
        raise RuntimeError("the change fails")
    assert OutboxEvent.objects.count() == 0  # ... and gone with it
    assert dispatch.dispatch(sub.pk, now=later()).run_ids == []
    assert not Run.objects.exists()


def test_it_batches_a_hundred_saves_within_the_debounce_window_into_one_run(subscribe):
    sub = subscribe(debounceMs=2000)
    for i in range(100):
        Group.objects.create(name=f"g{i:03d}")
    waiting = dispatch.dispatch(sub.pk, now=timezone.now())
    assert waiting.run_ids == [] and 0 < waiting.wait <= 2
    assert not Run.objects.exists()
    started = dispatch.dispatch(sub.pk, now=later(3))
    assert len(started.run_ids) == 1 and started.wait is None
    run = Run.objects.get()
    assert len(run.seed_records) == 100
    assert {r["operation"] for r in run.seed_records} == {"created"}
    assert sorted(r["pk"] for r in run.seed_records) == sorted(Group.objects.values_list("pk", flat=True))


def test_it_starts_a_busy_stream_after_max_wait_and_splits_at_max_events(subscribe):
    sub = subscribe(concurrent=True, debounceMs=2000, maxWaitMs=60_000, maxEvents=3)
    for i in range(2):
        Group.objects.create(name=f"g{i}")
    # Events keep coming (the last one is fresh), but the first is older than maxWaitMs.
    now = timezone.now()
    OutboxEvent.objects.filter(pk=OutboxEvent.objects.first().pk).update(created_at=now - timedelta(seconds=61))
    assert len(dispatch.dispatch(sub.pk, now=now).run_ids) == 1
    for i in range(2, 9):  # seven more: a full batch of three goes at once, however fresh
        Group.objects.create(name=f"g{i}")
    sizes = []
    while (outcome := dispatch.dispatch(sub.pk, now=timezone.now())).run_ids:
        sizes.append(len(Run.objects.get(pk=outcome.run_ids[0]).seed_records))
    assert sizes == [3, 3] and outcome.wait > 0  # the seventh waits for its debounce
    assert OutboxEvent.objects.filter(run__isnull=True).count() == 1


def test_an_event_is_done_only_once_its_run_exists_and_a_second_pickup_starts_nothing(subscribe, monkeypatch):
    sub = subscribe()
    Group.objects.create(name="a")
    Group.objects.create(name="b")

    def crash(events, run):
        assert Run.objects.filter(pk=run.pk).exists()  # the run was created ...
        raise SystemExit("the worker dies before the events are marked")

    with monkeypatch.context() as m:
        m.setattr(dispatch, "_mark", crash)
        with pytest.raises(SystemExit):
            dispatch.dispatch(sub.pk, now=later())
    # ... and rolled back with the unmarked events: nothing started, both still pending.
    assert not Run.objects.exists()
    assert OutboxEvent.objects.filter(run__isnull=True).count() == 2
    run_ids = dispatch.dispatch(sub.pk, now=later()).run_ids
    assert len(run_ids) == 1 and len(Run.objects.get(pk=run_ids[0]).seed_records) == 2
    assert dispatch.dispatch(sub.pk, now=later()).run_ids == []
    assert Run.objects.count() == 1
    # A dispatcher holding a stale list of the same events cannot take them again.
    with pytest.raises(dispatch.MarkingRace):
        dispatch._mark(list(OutboxEvent.objects.all()), Run.objects.get())


@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_at_once_start_one_run(subscribe):
    sub = subscribe(concurrent=True)
    for i in range(20):
        Group.objects.create(name=f"g{i}")
    barrier, errors = threading.Barrier(2), []

    def pick_up():
        try:
            barrier.wait(5)
            dispatch.dispatch(sub.pk, now=later())
        except Exception as exc:  # the loser may be refused by the database's lock; that is fine
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=pick_up) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    run = Run.objects.get()
    assert set(OutboxEvent.objects.values_list("run_id", flat=True)) == {run.pk}
    assert len(run.seed_records) == 20


def test_it_waits_while_the_pipeline_is_busy_and_goes_when_the_run_ends(subscribe, django_capture_on_commit_callbacks):
    sub = subscribe(debounceMs=200, maxWaitMs=200)  # one active run at a time; the wake task sleeps 0.2 s
    busy = services.create_run(sub.pipeline)
    Group.objects.create(name="a")
    outcome = dispatch.dispatch(sub.pk, now=later())
    assert outcome.run_ids == [] and "already has an active run" in outcome.note
    assert OutboxEvent.objects.filter(run__isnull=True).count() == 1
    Run.objects.filter(pk=busy.pk).update(status=RunStatus.COMPLETED)
    with django_capture_on_commit_callbacks() as callbacks:
        dispatch.on_run_ended(None, run=busy)
    assert len(callbacks) == 1 and EventSubscription.objects.get().wake_queued
    assert len(dispatch.wake(sub.pk).split("[")) == 2  # one run started by the wake task
    assert Run.objects.filter(trigger="event").count() == 1


def test_the_first_event_queues_one_wake_task_and_the_task_starts_the_run(subscribe, django_capture_on_commit_callbacks):
    sub = subscribe(debounceMs=0, maxWaitMs=0)
    with django_capture_on_commit_callbacks() as callbacks:
        with transaction.atomic():
            for i in range(5):
                Group.objects.create(name=f"g{i}")
    assert len(callbacks) == 1  # five events, one task
    assert EventSubscription.objects.get().wake_queued
    assert dispatch.wake(sub.pk).startswith("started [")
    assert len(Run.objects.get().seed_records) == 5
    assert not EventSubscription.objects.get().wake_queued  # stopped, so the next event queues a task again


def test_the_sweep_dispatches_what_no_task_took(subscribe):
    sub = subscribe(concurrent=True, maxEvents=2)
    for i in range(5):
        Group.objects.create(name=f"g{i}")
    OutboxEvent.objects.update(created_at=timezone.now() - timedelta(minutes=5))
    assert dispatch.sweep() == 3
    assert not OutboxEvent.objects.filter(run__isnull=True).exists()
    assert not EventSubscription.objects.get(pk=sub.pk).wake_queued


def test_it_records_only_allowed_models_wanted_operations_and_enabled_pipelines(subscribe, settings,
                                                                                django_capture_on_commit_callbacks):
    sub = subscribe(operations=["deleted"])
    group = Group.objects.create(name="a")
    group.name = "b"
    group.save()
    assert not OutboxEvent.objects.exists()
    group.delete()
    assert list(OutboxEvent.objects.values_list("operation", flat=True)) == ["deleted"]
    settings.DATAHUB_EVENT_MODELS = []  # taken off the list: no longer recorded, whatever subscribes
    Group.objects.create(name="c").delete()
    assert OutboxEvent.objects.count() == 1
    settings.DATAHUB_EVENT_MODELS = ["auth.*"]
    with django_capture_on_commit_callbacks(execute=True):
        p = sub.pipeline
        p.enabled = False
        p.save()
    assert not EventSubscription.objects.exists()  # a disabled pipeline subscribes to nothing
    Group.objects.create(name="d")
    assert not OutboxEvent.objects.exists()


@pytest.mark.parametrize("trigger, field, message", [
    ({"models": ["auth.Grop"]}, "config.models[0]", "no model 'auth.Grop'; did you mean 'auth.Group'?"),
    ({"models": ["auth.User"]}, "config.models[0]",
     "model 'auth.User' is not in DATAHUB_EVENT_MODELS (auth.Group); add 'auth.User' or 'auth.*' to allow it"),
    ({"models": ["runs.Run"]}, "config.models[0]", "model 'runs.Run' cannot be subscribed to"),
    ({"models": ["pipelines.Secret"]}, "config.models[0]", "cannot be subscribed to"),
    ({"models": []}, "config.models", ""),
    ({"models": "auth.Group"}, "config.models", ""),
    ({"operations": ["saved"]}, "config.operations", ""),
    ({"debounceMs": 5000, "maxWaitMs": 1000}, "config.debounceMs", "must not exceed maxWaitMs (1000)"),
])
def test_it_refuses_an_unknown_or_disallowed_model_and_bad_settings_at_save(trigger, field, message, settings):
    settings.DATAHUB_EVENT_MODELS = ["auth.Group", "runs.*", "pipelines.*"]
    if "auth.User" in str(trigger):
        settings.DATAHUB_EVENT_MODELS = ["auth.Group"]
    with pytest.raises(DefinitionError) as caught:
        save_definition(definition(**trigger))
    assert field in str(caught.value) and message in str(caught.value)
    assert not EventSubscription.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_saved_model_becomes_a_completed_run_through_the_worker_code_path(subscribe, monkeypatch):
    """Committed for real; django-q2 in sync mode runs the wake task and then the run, as a worker would."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)
    subscribe(debounceMs=0, maxWaitMs=0)
    with transaction.atomic():
        group = Group.objects.create(name="buyers")
    run = Run.objects.get()
    assert run.status == RunStatus.COMPLETED
    assert seeds(run) == [{"model": "auth.Group", "pk": group.pk, "operation": "created"}]
    assert run.step_runs.get(step_key="out").records_in == 1
    assert OutboxEvent.objects.get().run_id == run.pk


KILLED_DISPATCHER = """
import os, signal, sys
from datetime import timedelta
import django
django.setup()
from django.utils import timezone
from runs.model_events import dispatch
from runs.models import Run

def die(events, run):
    assert Run.objects.filter(pk=run.pk).exists()
    os.kill(os.getpid(), signal.SIGKILL)  # the worker dies with the run created and the events not marked

dispatch._mark = die
dispatch.dispatch(int(sys.argv[1]), now=timezone.now() + timedelta(seconds=5))
"""


@pytest.mark.django_db(transaction=True)
def test_a_dispatcher_killed_between_run_and_marking_loses_nothing_and_duplicates_nothing(subscribe, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from tests.consumers.processes import ROOT, database_url

    sub = subscribe()
    for i in range(3):
        Group.objects.create(name=f"g{i}")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATAHUB_", "DJANGO_")) and k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"DJANGO_SETTINGS_MODULE": "datahub_project.settings", "DATABASE_URL": database_url(),
                "DATAHUB_VAR_DIR": str(tmp_path), "DATAHUB_EVENT_MODELS": "auth.Group"})
    killed = subprocess.run([sys.executable, "-c", KILLED_DISPATCHER, str(sub.pk)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not Run.objects.exists()  # the run died with its transaction ...
    assert OutboxEvent.objects.filter(run__isnull=True).count() == 3  # ... and every event waits
    first = dispatch.dispatch(sub.pk, now=later())
    assert len(first.run_ids) == 1 and len(Run.objects.get().seed_records) == 3
    assert dispatch.dispatch(sub.pk, now=later()).run_ids == []  # picked up again: nothing more starts
    assert Run.objects.count() == 1


def test_a_system_check_names_bad_entries_of_the_allow_list(settings):
    from datahub_project.checks import check_event_models

    settings.DATAHUB_EVENT_MODELS = ["auth.Group", "auth.*", "auth.Grop", "nope.*", "runs.Run", "pipelines.Secret"]
    messages = [e.msg for e in check_event_models(None)]
    assert len(messages) == 4 and all(e.id == "datahub.E020" for e in check_event_models(None))
    assert "'auth.Grop', which is no installed model or app" in messages[0]
    assert "'nope.*', which is no installed model or app" in messages[1]
    assert "'runs.Run', which EVENT triggers may never use" in messages[2]
    assert "'pipelines.Secret'" in messages[3]


def test_it_starts_nothing_for_a_pipeline_disabled_before_its_subscription_went(subscribe):
    sub = subscribe()
    Group.objects.create(name="a")
    Pipeline.objects.filter(pk=sub.pipeline_id).update(enabled=False)  # the sync after the commit not yet done
    outcome = dispatch.dispatch(sub.pk, now=later())
    assert outcome.run_ids == [] and "disabled" in outcome.note
    assert not Run.objects.exists()


def test_migrate_schedules_the_sweep_every_minute():
    from django_q.models import Schedule

    sweep = Schedule.objects.get(name=dispatch.SWEEP_NAME)
    assert (sweep.func, sweep.schedule_type, sweep.minutes, sweep.repeats) == (
        "runs.model_events.dispatch.sweep", Schedule.MINUTES, 1, -1)

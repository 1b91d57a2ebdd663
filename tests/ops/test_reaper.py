"""The reaper, in-process: a run whose worker went silent is taken back once per silence, and past the
resume limit ends FAILED once and is announced once."""

import pytest
from django.utils import timezone

from pipelines.services import save_definition
from runs import services
from runs.models import Run, RunStatus
from runs.signals import run_ended
from tests.fixtures import simple_definition

pytestmark = pytest.mark.django_db


def test_it_announces_each_run_it_gives_up_on_once(settings):
    ended = []

    def listener(sender, run, **kwargs):
        ended.append((run.pk, run.status))

    settings.DATAHUB_MAX_RESUMES = 0
    run = services.create_run(save_definition(simple_definition("silent")))
    assert services.claim(run.pk)
    Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timezone.timedelta(minutes=10))
    run_ended.connect(listener)
    try:
        assert services.reap_stale_runs(max_silence_seconds=60) == 1
        assert services.reap_stale_runs(max_silence_seconds=60) == 0  # a second reaper finds nothing
    finally:
        run_ended.disconnect(listener)
    assert ended == [(run.pk, RunStatus.FAILED)]


def _pending_since(code, seconds):
    run = services.create_run(save_definition(simple_definition(code)), allow_concurrent=True)
    Run.objects.filter(pk=run.pk).update(created_at=timezone.now() - timezone.timedelta(seconds=seconds))
    return run


def _queued_run_ids():
    from django_q.models import OrmQ

    return sorted(task.args()[0] for task in OrmQ.objects.all())


def test_it_queues_again_a_pending_run_whose_task_was_lost():
    from django_q.models import OrmQ

    OrmQ.objects.all().delete()
    lost = _pending_since("lost", 600)
    _pending_since("young", 5)
    assert services.requeue_lost_runs(120) == 1
    assert _queued_run_ids() == [lost.pk]
    # Its task now waits in the queue: the next reaper adds no second copy.
    assert services.requeue_lost_runs(120) == 0
    assert _queued_run_ids() == [lost.pk]
    # The copy executes it; any other copy finds it claimed.
    from runs.tasks import execute_run

    assert execute_run(lost.pk) == "COMPLETED" and execute_run(lost.pk) == "skipped"


def test_the_reaper_task_takes_back_silent_runs_and_queues_lost_ones(django_capture_on_commit_callbacks):
    from django_q.models import OrmQ

    from runs import tasks

    OrmQ.objects.all().delete()
    silent = services.create_run(save_definition(simple_definition("silent-2")))
    assert services.claim(silent.pk)
    Run.objects.filter(pk=silent.pk).update(heartbeat_at=timezone.now() - timezone.timedelta(hours=1))
    lost = _pending_since("lost-2", 3600)
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.reap_stale_runs() == 1
    assert Run.objects.get(pk=silent.pk).status == RunStatus.PENDING
    # The silent run was queued again at once; the lost one because the queue was empty before.
    assert _queued_run_ids() == sorted([silent.pk, lost.pk])

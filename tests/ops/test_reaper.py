"""The reaper, in-process: a run whose worker went silent ends FAILED once and is announced once."""

import pytest
from django.utils import timezone

from pipelines.services import save_definition
from runs import services
from runs.models import Run, RunStatus
from runs.signals import run_ended
from tests.fixtures import simple_definition

pytestmark = pytest.mark.django_db


def test_it_announces_each_reaped_run_once():
    ended = []

    def listener(sender, run, **kwargs):
        ended.append((run.pk, run.status))

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

"""TIMEOUT: approved by itself timeoutSeconds after the gate parked, by a django-q2 schedule (a database row,
so it survives restarts), unless a person decided first."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import OrmQ, Schedule

from gates import services, tasks
from gates.models import GateRequest, GateStatus
from runs.models import Run, RunStatus
from tests.gates.conftest import linear, paused, queued_tasks, resume_on_a_worker

pytestmark = pytest.mark.django_db(transaction=True)


def timed(seconds=3600):
    return linear(approval="TIMEOUT", timeoutSeconds=seconds)


def test_it_schedules_the_approval_for_when_the_timeout_passes(counting):
    before = timezone.now()
    run = paused(timed(3600))
    gate = GateRequest.objects.get()
    assert before + timedelta(seconds=3600) <= gate.timeout_at <= timezone.now() + timedelta(seconds=3600)
    timer = Schedule.objects.get(name=services.timer_name(gate))
    assert timer.func == "gates.tasks.auto_approve" and timer.args == repr((gate.pk,))
    assert timer.schedule_type == Schedule.ONCE and timer.next_run == gate.timeout_at
    assert Run.objects.get(pk=run.pk).status == RunStatus.PAUSED


def test_it_approves_by_itself_after_the_timeout_and_the_run_completes(counting):
    run = paused(timed(3600))
    gate = GateRequest.objects.get()
    GateRequest.objects.filter(pk=gate.pk).update(timeout_at=timezone.now() - timedelta(seconds=1))

    assert tasks.auto_approve(gate.pk) == "approved"
    gate.refresh_from_db()
    assert gate.status == GateStatus.APPROVED and gate.decided_automatically and gate.decided_by is None
    assert gate.decider == "the timeout" and "automatically" in gate.reason
    assert not Schedule.objects.filter(name=services.timer_name(gate)).exists()
    assert queued_tasks() == [f"resume-{run.pk}"]
    run = resume_on_a_worker(run)
    assert run.status == RunStatus.COMPLETED, run.error
    assert len(counting["after"]) == 2 and len(counting["before"]) == 2


def test_it_fires_through_django_q2s_scheduler(counting):
    from django_q.brokers import get_broker
    from django_q.scheduler import scheduler

    run = paused(timed(3600))
    gate = GateRequest.objects.get()
    past = timezone.now() - timedelta(seconds=1)
    GateRequest.objects.filter(pk=gate.pk).update(timeout_at=past)
    Schedule.objects.filter(name=services.timer_name(gate)).update(next_run=past)

    scheduler(broker=get_broker())  # what a qcluster's scheduler does every loop
    assert not Schedule.objects.filter(name=services.timer_name(gate)).exists()  # ONCE: gone after firing
    [task] = [q for q in OrmQ.objects.all() if q.func() == "gates.tasks.auto_approve"]  # (and the reaper's)
    assert task.args() == (gate.pk,)

    from django_q.tasks import async_task

    async_task(task.func(), *task.args(), sync=True)  # the worker that pulls it
    assert GateRequest.objects.get().status == GateStatus.APPROVED
    assert f"resume-{run.pk}" in queued_tasks()


def test_a_person_deciding_first_wins_over_the_timer(counting, approver):
    run = paused(timed(3600))
    gate = GateRequest.objects.get()
    services.approve(run, "gate", approver)
    assert not Schedule.objects.filter(name=services.timer_name(gate)).exists()
    GateRequest.objects.filter(pk=gate.pk).update(timeout_at=timezone.now() - timedelta(seconds=1))

    assert tasks.auto_approve(gate.pk) == "already approved"  # the timer fires late: nothing changes
    gate.refresh_from_db()
    assert gate.decided_by == approver and not gate.decided_automatically
    assert queued_tasks() == [f"resume-{run.pk}"]  # the run continues once


def test_a_rejection_first_wins_over_the_timer(counting, approver):
    run = paused(timed(3600))
    services.reject(run, "gate", approver, "no")
    gate = GateRequest.objects.get()
    GateRequest.objects.filter(pk=gate.pk).update(timeout_at=timezone.now() - timedelta(seconds=1))
    assert tasks.auto_approve(gate.pk) == "already rejected"
    assert Run.objects.get(pk=run.pk).status == RunStatus.CANCELLED and queued_tasks() == []


def test_the_timer_does_nothing_before_the_timeout(counting):
    paused(timed(3600))
    gate = GateRequest.objects.get()
    assert tasks.auto_approve(gate.pk) == "not due"
    assert GateRequest.objects.get().status == GateStatus.PENDING
    assert Schedule.objects.get(name=services.timer_name(gate)).next_run == gate.timeout_at
    assert tasks.auto_approve(gate.pk + 1000) == "gone"


def test_it_says_a_short_timeout_in_seconds_on_the_queue_and_the_review_page(client, counting, approver):
    """Django's timeuntil rounds to whole minutes: a 30 s gate read '0 minutes'."""
    run = paused(timed(30))
    client.force_login(approver)
    listing = client.get("/gates/").content.decode()
    review = client.get(f"/gates/{run.pk}/gate/").content.decode()
    for page in (listing, review):
        assert re.search(r"\b\d+\s+seconds\s+from\s+now", page), page
        assert "0 minutes" not in page

"""A MANUAL gate parks the records, frees the worker, and continues from the gate once approved: on another
worker, with the saved records, without running any earlier step again."""

import pytest
from django.core.files.storage import default_storage

from gates import services
from gates.models import GateRequest, GateStatus
from runs.models import Run, RunStatus
from tests.gates.conftest import deliver_notices, gate, linear, paused, queued_tasks, resume_on_a_worker, src

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_pauses_the_run_and_opens_a_gate_request(counting):
    run = paused(linear(previewCount=1))
    gate = GateRequest.objects.get(run=run, step_key="gate")
    assert gate.status == GateStatus.PENDING and gate.approval_type == "MANUAL"
    assert gate.record_count == 2 and gate.preview == [{"sku": "A-1", "price": 10}]
    assert gate.stats == {"extracted": 2, "errors": 0, "errorRatePercent": 0.0}
    assert default_storage.exists(gate.held_file)
    steps = {s.step_key: s.status for s in run.step_runs.all()}
    assert steps == {"src": "COMPLETED", "before": "COMPLETED", "gate": "PAUSED", "after": "PENDING"}
    assert run.worker and run.finished_at is None
    assert "after" not in counting  # nothing after the gate ran


def test_it_continues_from_the_gate_on_another_worker_without_rerunning_earlier_steps(counting, approver):
    run = paused(linear())
    before = run.step_runs.get(step_key="before")
    assert len(counting["before"]) == 2

    decided = services.approve(run, "gate", approver)
    assert decided.status == GateStatus.APPROVED and decided.decided_by == approver
    assert queued_tasks() == [f"resume-{run.pk}"]  # handed to a worker, not run in the request

    # A "restart": nothing of the first worker's memory is used, only the database and the held file.
    counting_before = list(counting["before"])
    run = resume_on_a_worker(Run.objects.get(pk=run.pk))
    assert run.status == RunStatus.COMPLETED, run.error
    assert counting["after"] == [{"sku": "A-1", "price": 10}, {"sku": "B-2", "price": 20}]
    assert counting["before"] == counting_before  # the loader before the gate wrote once
    again = run.step_runs.get(step_key="before")
    assert (again.started_at, again.attempts) == (before.started_at, 1)
    assert run.step_runs.get(step_key="gate").status == "COMPLETED"
    assert run.resume_state is None and not GateRequest.objects.get(pk=decided.pk).held_file


def test_it_lists_the_waiting_gate_until_it_is_decided(counting, approver):
    run = paused(linear())
    assert [g.step_key for g in services.pending_gates(approver)] == ["gate"]
    services.approve(run, "gate", approver)
    assert list(services.pending_gates(approver)) == []


def test_a_repeated_pause_notice_opens_one_request_and_sends_one_notice(counting, settings):
    from django.core import mail

    from runs.models import Run as RunModel
    from runs.signals import step_paused

    run = paused(linear(notifyEmail="ops@example.com"))
    info = {"approvalType": "MANUAL", "recordCount": 2, "notifyEmail": ["ops@example.com"]}
    step_paused.send(RunModel, run=run, step_key="gate", info=info)  # delivered again
    deliver_notices()
    assert GateRequest.objects.filter(run=run).count() == 1 and len(mail.outbox) == 1


def test_a_pause_that_is_not_a_gate_opens_nothing(counting):
    from runs.models import Run as RunModel
    from runs.signals import step_paused

    run = paused(linear())
    step_paused.send(RunModel, run=run, step_key="before", info={})
    assert list(GateRequest.objects.filter(run=run).values_list("step_key", flat=True)) == ["gate"]


def test_an_output_that_ended_before_the_gate_keeps_its_whole_total_in_the_runs_sample(counting, approver):
    # `side` (nothing reads it) ends in the part before the gate and holds only the sample's first records;
    # the part after the approval must not count that head as the whole output.
    records = [{"sku": f"S-{n}", "price": n} for n in range(150)]
    definition = {"code": "sampled", "name": "Pipeline sampled",
                  "steps": [src(records=records),
                            {"key": "side", "type": "TRANSFORM",
                             "config": {"operators": [{"op": "trim", "args": {"path": "sku"}}]}},
                            gate(), {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}}],
                  "edges": [{"from": "src", "to": "side"}, {"from": "src", "to": "gate"},
                            {"from": "gate", "to": "out"}]}
    run = paused(definition)
    side = next(e for e in run.output_sample if e["step"] == "side")
    assert (side["total"], len(side["records"])) == (150, 100)
    services.approve(run, "gate", approver)
    run = resume_on_a_worker(Run.objects.get(pk=run.pk))
    assert run.status == RunStatus.COMPLETED, run.error
    totals = {e["step"]: (e["total"], len(e["records"])) for e in run.output_sample}
    assert totals == {"side": (150, 100), "out": (150, 100)}

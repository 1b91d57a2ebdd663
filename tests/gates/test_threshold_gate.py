"""THRESHOLD: approved by itself when the run's error rate so far is below the threshold, else it waits.
Error rate = record errors of the steps ended so far / records extracted x 100 (see gates.step)."""

import pytest

from gates.models import GateRequest
from gates.step import error_rate
from runs.models import RunStatus
from tests.gates.conftest import gate, load, src, start

pytestmark = pytest.mark.django_db(transaction=True)


def pipeline(threshold):
    """10 records, 2 of them rejected by the loader before the gate: an error rate of 20 %."""
    records = [{"n": i, "bad": i in (3, 7)} for i in range(10)]
    return {"code": "threshold", "steps": [
        src(records=records),
        {"key": "check", "type": "LOAD", "adapterCode": "failingRecords", "config": {}},
        gate(approval="THRESHOLD", errorThresholdPercent=threshold),
        load("after"),
    ], "edges": []}


def test_it_approves_by_itself_below_the_threshold(counting):
    run = start(pipeline(25))
    assert run.status == RunStatus.COMPLETED, run.error
    gate_step = run.step_runs.get(step_key="gate")
    assert gate_step.status == "COMPLETED" and gate_step.records_out == 8
    assert any("approved by itself: error rate 20.00 %" in w for w in gate_step.warnings)
    assert len(counting["after"]) == 8
    assert not GateRequest.objects.exists()


def test_it_waits_at_the_threshold(counting):
    run = start(pipeline(20))
    assert run.status == RunStatus.PAUSED  # equal is not below
    gate = GateRequest.objects.get()
    assert gate.approval_type == "THRESHOLD"
    assert gate.stats == {"extracted": 10, "errors": 2, "errorRatePercent": 20.0, "errorThresholdPercent": 20}
    assert "after" not in counting


def test_it_waits_above_the_threshold(counting):
    run = start(pipeline(10))
    assert run.status == RunStatus.PAUSED
    assert any("waiting for a person" in w for w in run.step_runs.get(step_key="gate").warnings)
    assert GateRequest.objects.get().record_count == 8


def test_it_always_waits_with_a_threshold_of_zero(counting):
    d = pipeline(0)
    d["steps"][0] = src(records=[{"n": 1}])
    assert start(d).status == RunStatus.PAUSED


def test_it_computes_the_rate_as_written_down():
    assert error_rate(10, 2) == 20.0
    assert error_rate(0, 0) == 0.0  # nothing extracted, nothing failed
    assert error_rate(0, 3) == 100.0  # failures without a count to divide by: do not approve by itself
    assert error_rate(4, 9) == 100.0  # capped

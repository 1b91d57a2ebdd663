"""A pipeline with several triggers runs only what the trigger that fired reaches."""

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from pipelines.services import save_definition
from runs import schedules, services
from runs.models import Run, RunStatus, ScheduleState

pytestmark = pytest.mark.django_db

T0 = datetime(2025, 3, 1, 0, 30, tzinfo=UTC)


def two_triggers(code="two"):
    """nightly -> load_all -> out and hook -> clean -> out; a third root, 'loose', no trigger reaches."""
    return {
        "version": 1, "code": code, "name": code,
        "steps": [
            {"key": "nightly", "type": "TRIGGER", "config": {"type": "SCHEDULE", "cron": "0 * * * *"}},
            {"key": "hook", "type": "TRIGGER", "config": {"type": "WEBHOOK", "authentication": "NONE"}},
            {"key": "load_all", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": [{"src": "all"}]}},
            {"key": "clean", "type": "TRANSFORM", "config": {"operators": [{"op": "trim", "args": {"path": "src"}}]}},
            {"key": "loose", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": [{"src": "loose"}]}},
            {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}},
        ],
        "edges": [
            {"from": "nightly", "to": "load_all"}, {"from": "load_all", "to": "out"},
            {"from": "hook", "to": "clean"}, {"from": "clean", "to": "out"},
            {"from": "loose", "to": "out"},
        ],
    }


@pytest.fixture
def save(django_capture_on_commit_callbacks):
    def save(d):
        with django_capture_on_commit_callbacks(execute=True):
            return save_definition(d)

    return save


def statuses(run):
    return {s.step_key: (s.status, s.error) for s in run.step_runs.all()}


def test_a_scheduled_run_runs_only_what_its_trigger_reaches(save):
    p = save(two_triggers())
    ScheduleState.objects.filter(pipeline=p).update(handled_until=T0 - timedelta(minutes=31),
                                                    anchor=T0 - timedelta(minutes=31))
    assert schedules.fire(p.pk, "nightly", now=T0 - timedelta(minutes=29)).startswith("started run")
    run = Run.objects.get()
    assert (run.trigger, run.seed_step) == ("schedule", "nightly")
    outcome = services.run_now(run, keep_outputs=True)
    assert outcome.run.status == RunStatus.COMPLETED
    assert outcome.result.output("out") == [{"src": "all"}]
    found = statuses(outcome.run)
    assert found["nightly"][0] == found["load_all"][0] == found["out"][0] == "COMPLETED"
    for key in ("hook", "clean", "loose"):
        assert found[key] == ("SKIPPED", "not part of this run (it starts at step 'nightly')"), key


def test_a_webhook_run_of_the_same_pipeline_runs_only_the_other_branch(save):
    save(two_triggers())
    response = Client().post("/hooks/two/hook/", data=b'[{"src": " w "}]', content_type="application/json")
    assert response.status_code == 202
    outcome = services.run_now(Run.objects.get(pk=response.json()["runId"]), keep_outputs=True)
    assert outcome.result.output("out") == [{"src": "w"}]
    found = statuses(outcome.run)
    assert {k for k, (status, _) in found.items() if status == "SKIPPED"} == {"nightly", "load_all", "loose"}


def test_a_pipeline_with_one_trigger_still_runs_whole_when_scheduled(save):
    d = two_triggers("one")
    d["steps"] = [s for s in d["steps"] if s["key"] not in ("hook", "clean")]
    d["edges"] = [e for e in d["edges"] if "hook" not in e.values() and "clean" not in e.values()]
    p = save(d)
    ScheduleState.objects.filter(pipeline=p).update(handled_until=T0 - timedelta(minutes=31),
                                                    anchor=T0 - timedelta(minutes=31))
    schedules.fire(p.pk, "nightly", now=T0 - timedelta(minutes=29))
    run = Run.objects.get()
    assert run.seed_step == ""
    outcome = services.run_now(run, keep_outputs=True)
    assert sorted(r["src"] for r in outcome.result.output("out")) == ["all", "loose"]


def test_the_seed_is_the_trigger_only_when_several_are_enabled():
    d = two_triggers()
    assert services.seed_for_trigger(d, "nightly") == "nightly"
    assert services.seed_for_trigger(d, "ghost") == ""
    d["steps"][1]["disabled"] = True
    assert services.seed_for_trigger(d, "nightly") == ""

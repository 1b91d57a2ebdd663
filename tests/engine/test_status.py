"""Run and step statuses are written once (runs.engine.status) and used as enums everywhere (issue 14)."""

import pytest

from pipelines.definition import parse
from runs import models
from runs.engine import status
from runs.engine.buffers import buffer_of
from runs.engine.context import RunOptions
from runs.engine.events import RunFinished, StepFinished
from runs.engine.executor import execute
from runs.engine.run_state import Plan
from runs.engine.status import Handover, RunStatus, Skip, SkipCause, StepStatus
from runs.engine.store import InMemoryStore


def test_the_models_choices_are_the_engine_enums():
    assert models.RunStatus.choices == [(s.value, s.name.title()) for s in status.RunStatus]
    assert models.StepStatus.choices == [(s.value, s.name.title()) for s in status.StepStatus]
    # A member of one equals the member of the other and the plain string (rows hold strings).
    assert models.StepStatus.SKIPPED == status.StepStatus.SKIPPED == "SKIPPED"
    assert not set(Handover) & set(RunStatus)


def test_ended_steps_are_the_ones_that_release_their_successors():
    assert {s for s in StepStatus if s.ended} == {"COMPLETED", "FAILED", "SKIPPED", "CANCELLED"}
    assert set(status.ENDED_STEP_STATUSES) == {s for s in StepStatus if s.ended}
    assert not StepStatus.PAUSED.ended and not StepStatus.RUNNING.ended


def _run(definition, **options):
    store = InMemoryStore()
    result = execute(parse(definition), store, RunOptions(**options))
    return result, store


def _inline(key, records):
    return {"key": key, "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": records}}


def _transform(key, **extra):
    return {"key": key, "type": "TRANSFORM", "config": {"operators": []}, **extra}


def test_a_run_reports_enum_members_not_bare_strings(probes):
    d = {
        "steps": [{"key": "bad", "type": "EXTRACT", "adapterCode": "probe", "config": {"fail": True}},
                  _inline("good", [{"a": 1}]), _transform("after_bad"), _transform("after_good")],
        "edges": [{"from": "bad", "to": "after_bad"}, {"from": "good", "to": "after_good"}],
        "context": {"parallelExecution": {"enabled": True, "errorPolicy": "CONTINUE"}},
    }
    result, store = _run(d)
    assert result.status is RunStatus.FAILED
    assert result.statuses == {"bad": StepStatus.FAILED, "good": StepStatus.COMPLETED,
                               "after_bad": StepStatus.SKIPPED, "after_good": StepStatus.COMPLETED}
    assert all(type(s) is StepStatus for s in result.statuses.values())
    ends = [e for e in store.events if isinstance(e, StepFinished)]
    assert all(type(e.status) is StepStatus for e in ends)
    (finished,) = [e for e in store.events if isinstance(e, RunFinished)]
    assert finished.status is RunStatus.FAILED
    # The skipped step's message is its structured reason's.
    assert store.finished()["after_bad"].error == Skip(SkipCause.UPSTREAM, "bad").message


@pytest.mark.parametrize(
    "skip, text",
    [
        (Skip(SkipCause.UPSTREAM, "a"), "skipped: upstream step 'a' did not complete"),
        (Skip(SkipCause.AFTER_FAILURE, "a"), "not run: step 'a' failed"),
        (Skip(SkipCause.NOT_SEEDED, "t"), "not part of this run (it starts at step 't')"),
        (Skip(SkipCause.DISABLED), "disabled: input passed through"),
    ],
)
def test_every_skip_cause_has_its_message(skip, text):
    assert skip.message == text


def test_skips_of_every_cause_reach_the_store_as_their_messages(probes):
    # FAIL_FAST: 'other' (not below 'src') never starts once 'src' failed; 'after' (below it) is skipped.
    _, store = _run({"steps": [{"key": "src", "type": "EXTRACT", "adapterCode": "probe", "config": {"fail": True}},
                               _transform("after"), _inline("other", []), _transform("last")],
                     "edges": [{"from": "src", "to": "after"}, {"from": "other", "to": "last"}]})
    assert store.finished()["after"].error == Skip(SkipCause.UPSTREAM, "src").message
    assert store.finished()["other"].error == Skip(SkipCause.AFTER_FAILURE, "src").message
    # A seeded run skips what is not below its seed; a disabled step passes its input through.
    d = {"steps": [_inline("src", [{"a": 1}]), _transform("t"), _transform("off", disabled=True)]}
    result, store = _run(d, seed_step="t", seed_records=buffer_of([{"a": 2}]))
    assert result.status is RunStatus.COMPLETED
    assert store.finished()["src"].error == Skip(SkipCause.NOT_SEEDED, "t").message
    assert store.finished()["off"].status is StepStatus.SKIPPED
    assert store.finished()["off"].error == Skip(SkipCause.DISABLED).message
    assert store.finished()["off"].counts.records_out == 1


def test_the_plan_is_what_the_definition_says_and_never_changes():
    d = parse({"steps": [_inline("a", []), _transform("b")], "edges": [{"from": "a", "to": "b"}]})
    plan = Plan.of(d)
    assert plan.order == ("a", "b")
    assert [i.source for i in plan.inputs["b"]] == ["a"]
    assert plan.policy == "FAIL_FAST" and plan.max_in_flight == 1
    assert plan.read_by_others == {"a"}
    with pytest.raises(AttributeError):
        plan.order = ("b", "a")  # frozen: the run's state lives in RunState, never here

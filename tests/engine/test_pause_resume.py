"""A step that pauses (a gate) holds back what depends on it; the rest of the run goes on; a resume
continues from there without running any earlier step again."""

import pytest

from pipelines.definition import parse
from runs.engine.context import PreviousStep, RunOptions, StepHandler, StepOutcome
from runs.engine.executor import execute
from runs.engine.store import InMemoryStore


class Hold(StepHandler):
    def run(self, step, inputs, ctx):
        held = ctx.new_buffer()
        for batch in inputs.batches(ctx.batch_size):
            held.append(batch)
        return StepOutcome({None: held}, len(held), 0, paused=True)


@pytest.fixture
def hold(registries):
    registries.step_types.register("GATE", Hold(), schema={"type": "object"}, replace=True)


def inline(key, records):
    return {"key": key, "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": records}}


DEFINITION = {
    "steps": [
        inline("src", [{"id": 1}, {"id": 2}]),
        {"key": "gate", "type": "GATE", "config": {}},
        {"key": "after", "type": "TRANSFORM", "config": {"operators": [{"op": "set", "args": {"path": "ok",
                                                                                          "value": True}}]}},
        inline("side", [{"side": 1}]),
        {"key": "side-out", "type": "SINK", "adapterCode": "records", "config": {}},
    ],
    "edges": [{"from": "src", "to": "gate"}, {"from": "gate", "to": "after"}, {"from": "side", "to": "side-out"}],
    "context": {"parallelExecution": {"enabled": True}},
}


def previous_of(result, release=()):
    return {
        key: PreviousStep("COMPLETED" if key in release else status, key in result.usable or key in release,
                          result.outputs.get(key, {}))
        for key, status in result.statuses.items() if status != "PENDING"
    }


def test_it_pauses_at_the_gate_while_independent_branches_finish(hold):
    store = InMemoryStore()
    result = execute(parse(DEFINITION), store, RunOptions())
    assert result.status == "PAUSED"
    assert result.statuses == {"src": "COMPLETED", "gate": "PAUSED", "after": "PENDING", "side": "COMPLETED",
                               "side-out": "COMPLETED"}
    assert result.outputs["gate"][None].to_list() == [{"id": 1}, {"id": 2}]


def test_it_resumes_after_the_gate_without_running_earlier_steps(hold):
    first = execute(parse(DEFINITION), InMemoryStore(), RunOptions())
    store = InMemoryStore()
    second = execute(parse(DEFINITION), store, RunOptions(previous=previous_of(first, {"gate"}), keep_outputs=True))
    assert second.status == "COMPLETED"
    assert set(store.finished()) == {"after"}  # only what waited behind the gate ran
    assert second.output("after") == [{"id": 1, "ok": True}, {"id": 2, "ok": True}]


def test_it_stays_paused_while_a_second_gate_waits(hold):
    d = {**DEFINITION, "steps": [*DEFINITION["steps"], {"key": "gate2", "type": "GATE", "config": {}}],
         "edges": [*DEFINITION["edges"], {"from": "side", "to": "gate2"}]}
    first = execute(parse(d), InMemoryStore(), RunOptions())
    assert first.statuses["gate"] == first.statuses["gate2"] == "PAUSED"
    second = execute(parse(d), InMemoryStore(), RunOptions(previous=previous_of(first, {"gate"})))
    assert second.status == "PAUSED"
    assert second.statuses["after"] == "COMPLETED" and second.statuses["gate2"] == "PAUSED"

import time

import pytest

from pipelines.definition import parse
from runs.engine.context import RunOptions
from runs.engine.executor import execute
from runs.engine.store import InMemoryStore


def run(definition, **options):
    store = InMemoryStore()
    result = execute(parse(definition), store, RunOptions(keep_outputs=True, **options))
    return result, store


def inline(key, records):
    return {"key": key, "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": records}}


def keep(key):
    return {"key": key, "type": "SINK", "adapterCode": "records", "config": {}}


def test_it_runs_steps_in_list_order_without_edges():
    result, store = run({"steps": [inline("src", [{"a": 1}, {"a": 2}]), keep("out")]})
    assert result.status == "COMPLETED"
    assert result.output("out") == [{"a": 1}, {"a": 2}]
    assert store.finished()["src"].counts.records_out == 2
    assert store.finished()["out"].counts.records_in == 2


def test_it_concatenates_fan_in_inputs_in_edge_order():
    d = {
        "steps": [inline("a", [{"x": "a"}]), inline("b", [{"x": "b"}]), keep("out")],
        "edges": [{"from": "b", "to": "out"}, {"from": "a", "to": "out"}],
    }
    result, _ = run(d)
    assert result.output("out") == [{"x": "b"}, {"x": "a"}]


def test_it_passes_no_records_over_dependency_only_edges():
    d = {
        "steps": [inline("a", [{"x": "a"}]), inline("b", [{"x": "b"}]), keep("out")],
        "edges": [{"from": "a", "to": "out", "dependencyOnly": True}, {"from": "b", "to": "out"}],
    }
    result, store = run(d)
    assert result.output("out") == [{"x": "b"}]


def test_it_fails_the_run_and_skips_the_rest_when_a_step_fails(probes):
    d = {"steps": [{"key": "src", "type": "EXTRACT", "adapterCode": "probe", "config": {"fail": True}}, keep("out")]}
    result, store = run(d)
    assert result.status == "FAILED"
    assert "probe src failed" in result.error
    assert store.finished()["out"].status == "SKIPPED"


def test_it_retries_a_failing_step(probes):
    step = {"key": "src", "type": "EXTRACT", "adapterCode": "probe", "config": {"failTimes": 2},
            "retries": 2, "retryDelayMs": 10}
    result, store = run({"steps": [step, keep("out")]})
    assert result.status == "COMPLETED"
    assert probes.calls["src"] == 3
    assert store.finished()["src"].attempts == 3


def test_it_gives_up_after_the_last_retry(probes):
    step = {"key": "src", "type": "EXTRACT", "adapterCode": "probe", "config": {"failTimes": 5}, "retries": 1}
    result, _ = run({"steps": [step, keep("out")]})
    assert result.status == "FAILED"
    assert probes.calls["src"] == 2


def test_it_does_not_retry_a_non_retryable_error(probes):
    step = {"key": "src", "type": "EXTRACT", "adapterCode": "probe", "config": {"fail": True, "retryable": False},
            "retries": 3}
    result, _ = run({"steps": [step]})
    assert result.status == "FAILED"
    assert probes.calls["src"] == 1


def test_it_times_out_a_slow_step(probes):
    step = {"key": "src", "type": "EXTRACT", "adapterCode": "probe", "config": {"sleep": 5}, "timeoutMs": 100}
    started = time.monotonic()
    result, _ = run({"steps": [step, keep("out")]})
    assert time.monotonic() - started < 2
    assert result.status == "FAILED"
    assert "timed out after 100 ms" in result.error


def test_it_continues_past_a_step_with_continue_on_error(probes):
    d = {"steps": [
        inline("src", [{"a": 1}]),
        {"key": "flaky", "type": "LOAD", "adapterCode": "failing", "config": {}, "continueOnError": True,
         "timeoutMs": 1},
        keep("out"),
    ]}
    d["steps"][1] = {"key": "flaky", "type": "EXTRACT", "adapterCode": "probe", "config": {"fail": True},
                     "continueOnError": True}
    result, store = run(d)
    assert result.status == "COMPLETED"
    assert store.finished()["flaky"].status == "FAILED"
    assert store.finished()["out"].status == "COMPLETED"
    assert result.output("out") == []


def test_it_passes_input_through_a_disabled_step():
    d = {"steps": [inline("src", [{"a": 1}]),
                   {"key": "t", "type": "TRANSFORM", "config": {"operators": []}, "disabled": True},
                   keep("out")]}
    result, store = run(d)
    assert store.finished()["t"].status == "SKIPPED"
    assert result.output("out") == [{"a": 1}]


def test_it_records_failed_records_and_loads_the_rest(probes):
    d = {"steps": [inline("src", [{"id": 1}, {"id": 2, "bad": True}, {"id": 3}]),
                   {"key": "load", "type": "LOAD", "adapterCode": "failing", "config": {}}]}
    result, store = run(d)
    assert result.status == "COMPLETED"
    errors = store.record_errors()
    assert [(e.step_key, e.record["id"], e.message) for e in errors] == [("load", 2, "bad record")]
    assert result.output("load") == [{"id": 1}, {"id": 3}]
    assert store.finished()["load"].counts.errors == 1


def test_it_writes_nothing_in_a_dry_run(probes):
    d = {"steps": [inline("src", [{"id": 1, "bad": True}]),
                   {"key": "load", "type": "LOAD", "adapterCode": "failing", "config": {}}]}
    result, store = run(d, dry_run=True)
    assert result.status == "COMPLETED"
    assert store.record_errors() == []
    assert result.output("load") == [{"id": 1, "bad": True}]


def test_it_limits_records_for_a_preview():
    d = {"steps": [{"key": "gen", "type": "EXTRACT", "adapterCode": "generator", "config": {"count": 1000}},
                   keep("out")]}
    result, _ = run(d, record_limit=5)
    assert len(result.output("out")) == 5


def test_it_cancels_a_run_when_asked(probes):
    import threading

    d = {"steps": [{"key": "src", "type": "EXTRACT", "adapterCode": "probe", "config": {"sleep": 5}}, keep("out")]}
    store = InMemoryStore()
    threading.Timer(0.2, store.cancel.set).start()
    started = time.monotonic()
    result = execute(parse(d), store, RunOptions())
    assert time.monotonic() - started < 2
    assert result.status == "CANCELLED"
    statuses = {k: v.status for k, v in store.finished().items()}
    assert statuses == {"src": "CANCELLED", "out": "CANCELLED"}


def test_it_keeps_memory_bounded_by_spilling_large_outputs():
    d = {"steps": [{"key": "gen", "type": "EXTRACT", "adapterCode": "generator",
                    "config": {"count": 5000, "template": {"sku": "seq:1"}}},
                   {"key": "t", "type": "TRANSFORM", "config": {"operators": []}},
                   keep("out")]}
    result, _ = run(d, spill_records=100)
    assert result.outputs["gen"][None].spilled
    out = result.output("out")
    assert len(out) == 5000 and out[-1]["sku"] == 5000


@pytest.mark.parametrize("policy", ["FAIL_FAST", "CONTINUE", "BEST_EFFORT"])
def test_it_runs_independent_steps_in_parallel(probes, policy):
    steps = [{"key": "start", "type": "TRIGGER", "config": {}}]
    steps += [{"key": f"s{i}", "type": "EXTRACT", "adapterCode": "probe", "config": {"sleep": 0.3}} for i in range(4)]
    edges = [{"from": "start", "to": f"s{i}"} for i in range(4)]
    d = {"steps": steps, "edges": edges,
         "context": {"parallelExecution": {"enabled": True, "maxConcurrentSteps": 4, "errorPolicy": policy}}}
    started = time.monotonic()
    result, _ = run(d)
    elapsed = time.monotonic() - started
    assert result.status == "COMPLETED"
    assert elapsed < 0.9, f"4 x 0.3 s steps took {elapsed:.2f} s with 4 in parallel"


def test_it_caps_concurrency_at_max_concurrent_steps(probes):
    steps = [{"key": "start", "type": "TRIGGER", "config": {}}]
    steps += [{"key": f"s{i}", "type": "EXTRACT", "adapterCode": "probe", "config": {"sleep": 0.3}} for i in range(4)]
    edges = [{"from": "start", "to": f"s{i}"} for i in range(4)]
    d = {"steps": steps, "edges": edges,
         "context": {"parallelExecution": {"enabled": True, "maxConcurrentSteps": 2}}}
    started = time.monotonic()
    run(d)
    elapsed = time.monotonic() - started
    assert 0.55 < elapsed < 1.2


def _policy_graph(policy):
    """start -> bad -> after_bad ; start -> good -> after_good"""
    return {
        "steps": [
            {"key": "start", "type": "TRIGGER", "config": {}},
            {"key": "bad", "type": "EXTRACT", "adapterCode": "probe", "config": {"fail": True}},
            {"key": "good", "type": "EXTRACT", "adapterCode": "probe", "config": {"sleep": 0.3}},
            keep("after_bad"),
            keep("after_good"),
        ],
        "edges": [
            {"from": "start", "to": "bad"}, {"from": "start", "to": "good"},
            {"from": "bad", "to": "after_bad"}, {"from": "good", "to": "after_good"},
        ],
        "context": {"parallelExecution": {"enabled": True, "maxConcurrentSteps": 2, "errorPolicy": policy}},
    }


def test_it_stops_starting_steps_after_a_failure_with_fail_fast(probes):
    result, store = run(_policy_graph("FAIL_FAST"))
    status = {k: v.status for k, v in store.finished().items()}
    assert result.status == "FAILED"
    assert status["bad"] == "FAILED"
    assert status["good"] in ("CANCELLED", "COMPLETED")  # in flight: told to stop
    assert status["after_good"] == "SKIPPED"
    assert status["after_bad"] == "SKIPPED"


def test_it_finishes_independent_branches_with_continue(probes):
    result, store = run(_policy_graph("CONTINUE"))
    status = {k: v.status for k, v in store.finished().items()}
    assert result.status == "FAILED"
    assert status["after_good"] == "COMPLETED"
    assert status["after_bad"] == "SKIPPED"


def test_it_completes_with_errors_recorded_with_best_effort(probes):
    result, store = run(_policy_graph("BEST_EFFORT"))
    status = {k: v.status for k, v in store.finished().items()}
    assert result.status == "COMPLETED"
    assert 'step "bad" failed' in result.error
    assert status["after_good"] == "COMPLETED"
    assert status["after_bad"] == "SKIPPED"


def test_it_fails_best_effort_when_nothing_succeeded(probes):
    d = {"steps": [{"key": "start", "type": "TRIGGER", "config": {}},
                   {"key": "bad", "type": "EXTRACT", "adapterCode": "probe", "config": {"fail": True}}],
         "edges": [{"from": "start", "to": "bad"}],
         "context": {"parallelExecution": {"enabled": True, "errorPolicy": "BEST_EFFORT"}}}
    result, _ = run(d)
    assert result.status == "FAILED"


def test_it_runs_a_best_effort_fan_in_with_the_inputs_that_succeeded(probes):
    d = {"steps": [{"key": "start", "type": "TRIGGER", "config": {}},
                   {"key": "bad", "type": "EXTRACT", "adapterCode": "probe", "config": {"fail": True}},
                   inline("good", [{"ok": 1}]),
                   keep("out")],
         "edges": [{"from": "start", "to": "bad"}, {"from": "start", "to": "good"},
                   {"from": "bad", "to": "out"}, {"from": "good", "to": "out"}],
         "context": {"parallelExecution": {"enabled": True, "errorPolicy": "BEST_EFFORT"}}}
    result, _ = run(d)
    assert result.status == "COMPLETED"
    assert result.output("out") == [{"ok": 1}]


def test_it_saves_checkpoints_only_for_completed_steps(registries):
    from pipelines.adapters.base import Extractor

    class Counting(Extractor):
        def batches(self):
            self.ctx.checkpoint["seen"] = self.ctx.checkpoint.get("seen", 0) + 1
            yield [{"n": self.ctx.checkpoint["seen"]}]

    registries.extractors.register("counting", Counting, schema={"type": "object"})
    d = parse({"steps": [{"key": "c", "type": "EXTRACT", "adapterCode": "counting", "config": {}}, keep("out")]})
    store = InMemoryStore()
    for expected in (1, 2):
        result = execute(d, store, RunOptions(keep_outputs=True))
        assert result.output("out") == [{"n": expected}]
    assert store.checkpoints["c"] == {"seen": 2}


def test_it_runs_only_the_seeded_step_and_what_follows_it():
    from runs.engine.buffers import buffer_of

    d = {"steps": [inline("a", [{"x": "a"}]), inline("b", [{"x": "b"}]),
                   {"key": "t", "type": "TRANSFORM", "config": {"operators": [{"op": "set", "args": {"path": "seen",
                                                                                                   "value": True}}]}},
                   keep("out")],
         "edges": [{"from": "a", "to": "t"}, {"from": "b", "to": "out"}, {"from": "t", "to": "out"}]}
    result, store = run(d, seed_step="t", seed_records=buffer_of([{"x": "replayed"}]))
    status = {k: v.status for k, v in store.finished().items()}
    assert status == {"a": "SKIPPED", "b": "SKIPPED", "t": "COMPLETED", "out": "COMPLETED"}
    assert result.output("out") == [{"x": "replayed", "seen": True}]


def test_it_resumes_with_the_outputs_of_steps_completed_before():
    from runs.engine.buffers import buffer_of

    d = {"steps": [inline("a", [{"x": "fresh"}]), keep("out")]}
    from runs.engine.context import PreviousStep

    result, store = run(d, previous={"a": PreviousStep("COMPLETED", True, {None: buffer_of([{"x": "kept"}])})})
    assert result.output("out") == [{"x": "kept"}]
    assert "a" not in store.finished()  # not run again

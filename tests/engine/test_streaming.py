"""Streaming between steps: a consumer reads its producer's batches while the producer runs, and every case
that needs whole inputs stays as it was (runs.engine.stream_plan, runs.engine.streams)."""

import threading
import time

import pytest

from pipelines import registry
from pipelines.adapters.base import Extractor, Writer, WriteResult
from pipelines.definition import parse
from pipelines.errors import StepError
from runs.engine import processes
from runs.engine.context import RunOptions, StepOutcome
from runs.engine.executor import execute
from runs.engine.handlers import run_chain  # noqa: F401  (registers the step types)
from runs.engine.store import InMemoryStore
from runs.engine.stream_plan import streamed_inputs
from runs.engine.streams import estimate_bytes


class Shared:
    """What the test extractor and exporter tell each other, reset per test."""

    first_seen = threading.Event()
    written: list = []
    finished: list = []
    write_delay = 0.0
    fail_writes = 0
    lead: list = []


def rows(start, n):
    return [{"id": i, "pad": "p" * 40} for i in range(start, start + n)]


class WaitingExtractor(Extractor):
    """Yields a batch, then waits until the consumer has written it: only streaming lets it end."""

    def batches(self):
        yield rows(0, 10)
        if not Shared.first_seen.wait(5):
            raise StepError("the consumer did not get the first batch while this step ran", retryable=False)
        yield rows(10, 10)


class ManyExtractor(Extractor):
    """``batches`` batches of ``size`` as fast as it can; notes how far ahead of the consumer it is."""

    def batches(self):
        size, total = self.config.get("size", 100), self.config.get("batches", 10)
        for n in range(total):
            Shared.lead.append(n - len(Shared.written))
            yield rows(n * size, size)
            if self.config.get("failAfter") == n + 1:
                raise StepError("source broke half way", retryable=False)
            if self.config.get("sleep"):
                time.sleep(self.config["sleep"])


class FileLikeExport(Writer):
    """An exporter that publishes in finish() only, like a file export; slow or failing when asked."""

    publishes_at_finish = True

    def write(self, batch):
        if Shared.fail_writes:
            Shared.fail_writes -= 1
            raise StepError("export broke", retryable=True)
        time.sleep(Shared.write_delay)
        Shared.written.append([r["id"] for r in batch])
        Shared.first_seen.set()
        return WriteResult(written=len(batch))

    def finish(self):
        Shared.finished.append(sum(len(b) for b in Shared.written))


@pytest.fixture
def plugins(registries):
    Shared.first_seen = threading.Event()
    Shared.written, Shared.finished, Shared.lead = [], [], []
    Shared.write_delay, Shared.fail_writes = 0.0, 0
    registry.extractors.register("waiting", WaitingExtractor, schema={"type": "object"})
    registry.extractors.register("many", ManyExtractor, schema={"type": "object"})
    registry.exporters.register("fileLike", FileLikeExport, schema={"type": "object"})
    return Shared


def step(key, type_, adapter=None, **extra):
    out = {"key": key, "type": type_, "config": extra.pop("config", {})}
    if adapter:
        out["adapterCode"] = adapter
    out.update(extra)
    return out


def identity(key="t", **extra):
    return step(key, "TRANSFORM", config={"operators": [{"op": "set", "args": {"path": "seen", "value": True}}]},
                **extra)


def run(definition, store=None, **options):
    store = store or InMemoryStore()
    options.setdefault("keep_outputs", True)
    return execute(parse(definition), store, RunOptions(**options)), store


def written_ids():
    return [i for b in Shared.written for i in b]


# --- streaming happens -----------------------------------------------------------------------------


def test_the_consumer_gets_the_first_batch_before_its_producer_ends(plugins):
    # Without edges, in list order, with parallel execution off: the chain is one pipe.
    result, store = run({"steps": [step("src", "EXTRACT", "waiting"), identity(), step("out", "EXPORT", "fileLike")]})
    assert result.status == "COMPLETED", result.error
    assert written_ids() == list(range(20))
    assert Shared.finished == [20]
    assert [r["id"] for r in result.output("t")] == list(range(20))  # keep_outputs still shows it


def test_a_slow_consumer_holds_a_fast_producer_back_within_the_memory_budget(plugins):
    Shared.write_delay = 0.003
    budget = 4 * estimate_bytes(rows(0, 100))
    d = {"steps": [step("src", "EXTRACT", "many", config={"batches": 200}), step("out", "EXPORT", "fileLike")]}
    result, _ = run(d, stream_memory_bytes=budget, keep_outputs=False)
    assert result.status == "COMPLETED", result.error
    assert written_ids() == list(range(20_000))
    # The producer is never more than the budget (4 batches) plus the one being written ahead.
    assert max(Shared.lead) <= 6, str(Shared.lead)


class PerBatchLoader(Writer):
    """A loader writing each batch as it comes (no publishes_at_finish): it must not consume a stream."""

    def write(self, batch):
        return WriteResult(written=len(batch))


def test_the_plan_streams_only_single_consumer_pipes_whose_ends_allow_it(plugins):
    from pipelines import graph, hooks

    registry.loaders.register("perBatch", PerBatchLoader, schema={"type": "object"})
    raw = {
        "steps": [
            step("src", "EXTRACT", "inMemory", config={"data": []}),
            identity("a"),  # streams from src
            identity("b"),  # a fans out to b and c: both wait
            identity("c"),
            step("retried", "TRANSFORM", config={"operators": []}, retries=1),
            step("timed", "TRANSFORM", config={"operators": []}, timeoutMs=1000),
            step("route", "ROUTE", config={"branches": [{"name": "x"}]}),
            identity("branch"),
            step("load", "LOAD", "perBatch"),
            step("file", "EXPORT", "fileLike"),
            step("src2", "EXTRACT", "inMemory", config={"data": []}, retries=2),
            identity("after_retried_producer"),
            step("src3", "EXTRACT", "inMemory", config={"data": []}, timeoutMs=5000),
            identity("after_timed_producer"),
        ],
        "edges": [
            {"from": "src", "to": "a"}, {"from": "a", "to": "b"}, {"from": "a", "to": "c"},
            {"from": "b", "to": "retried"}, {"from": "c", "to": "timed"}, {"from": "retried", "to": "route"},
            {"from": "route", "to": "branch", "branch": "x"}, {"from": "timed", "to": "load"},
            {"from": "load", "to": "file"}, {"from": "src2", "to": "after_retried_producer"},
            {"from": "src3", "to": "after_timed_producer"},
        ],
    }
    d = parse(raw)
    plan = streamed_inputs(d, graph.inputs(d), graph.successors(d), registry.step_types, hooks.parse(None),
                           RunOptions())
    assert plan == {"a": "src", "file": "load"}
    # Under parallel execution a TRANSFORM may run in a worker process: it still reads a stream (the parent
    # feeds the child as the producer produces), but writes none (test_processes holds that side).
    parallel = parse({**raw, "context": {"parallelExecution": {"enabled": True}}})
    if processes.cpu_count() >= 2:
        assert streamed_inputs(parallel, graph.inputs(parallel), graph.successors(parallel),
                               registry.step_types, hooks.parse(None), RunOptions()) == {"a": "src", "file": "load"}
    # A hook at the producer's AFTER_ stage (it reads the whole output) keeps its consumer waiting.
    with_hook = hooks.parse({"AFTER_EXTRACT": [{"type": "WEBHOOK", "url": "https://example.com/h"}]})
    assert "a" not in streamed_inputs(d, graph.inputs(d), graph.successors(d), registry.step_types, with_hook,
                                      RunOptions())


# --- whole inputs stay whole -----------------------------------------------------------------------


def test_an_aggregate_fed_by_a_stream_sees_every_record(plugins):
    d = {"steps": [
        step("src", "EXTRACT", "many", config={"batches": 30}),
        step("sum", "TRANSFORM", config={"operators": [{"op": "aggregate", "args": {
            "op": "count", "target": "n"}}]}),
    ]}
    result, _ = run(d)
    out = result.output("sum")
    assert len(out) == 3000 and {r["n"] for r in out} == {3000}


@pytest.mark.parametrize("kind, expected", [("RIGHT", 3), ("FULL", 4)])
def test_right_and_full_joins_fed_by_a_stream_keep_their_unmatched_right_rows(plugins, kind, expected):
    right = [{"sku": 1, "price": 10}, {"sku": 2, "price": 20}, {"sku": 99, "price": 0}]
    d = {"steps": [
        step("src", "EXTRACT", "inMemory", config={"data": [{"sku": 1}, {"sku": 2}, {"sku": 3}]}),
        step("join", "TRANSFORM", config={"operators": [{"op": "multiJoin", "args": {
            "leftKey": "sku", "rightKey": "sku", "type": kind, "prefix": "r_", "rightData": right}}]}),
    ]}
    result, _ = run(d)
    assert result.status == "COMPLETED", result.error
    assert len(result.output("join")) == expected
    assert any(r.get("r_sku") == 99 for r in result.output("join"))


def test_fan_out_and_route_branches_still_give_every_consumer_the_whole_output(plugins):
    d = {
        "steps": [
            step("src", "EXTRACT", "many", config={"batches": 5}),
            identity("a"),
            step("route", "ROUTE", config={"branches": [{"name": "low", "when": [
                {"field": "id", "operator": "lt", "value": 100}]}]}),
            identity("low"),
            identity("rest"),
        ],
        "edges": [
            {"from": "src", "to": "a"}, {"from": "src", "to": "route"},
            {"from": "route", "to": "low", "branch": "low"}, {"from": "route", "to": "rest", "branch": "default"},
        ],
    }
    result, _ = run(d)
    assert result.status == "COMPLETED", result.error
    assert len(result.output("a")) == 500
    assert len(result.output("low")) == 100 and len(result.output("rest")) == 400


def test_a_durable_run_saves_the_whole_streamed_output(plugins):
    saved = {}

    def persist(key, outputs):
        saved[key] = [r for b in outputs[None].batches() for r in b]
        return {"_main": key}

    d = {"steps": [step("src", "EXTRACT", "many", config={"batches": 20}), identity(), step("out", "EXPORT", "fileLike")]}
    result, store = run(d, persist=persist, keep_outputs=False)
    assert result.status == "COMPLETED", result.error
    assert [r["id"] for r in saved["src"]] == list(range(2000))
    assert len(saved["t"]) == 2000 and all(r["seen"] for r in saved["t"])
    assert written_ids() == list(range(2000))


def test_a_consumer_with_retries_waits_and_its_second_attempt_reads_everything(plugins):
    Shared.fail_writes = 1  # the first attempt fails at its first batch
    d = {"steps": [step("src", "EXTRACT", "many", config={"batches": 5}), step("out", "EXPORT", "fileLike", retries=1)]}
    result, store = run(d)
    assert result.status == "COMPLETED", result.error
    assert written_ids() == list(range(500))
    assert store.finished()["out"].attempts == 2


# --- failures, cancellation, timeouts --------------------------------------------------------------


def test_a_producer_that_fails_mid_stream_skips_its_consumer_and_nothing_is_published(plugins):
    d = {"steps": [step("src", "EXTRACT", "many", config={"batches": 10, "failAfter": 3}),
                   step("out", "EXPORT", "fileLike")]}
    result, store = run(d)
    assert result.status == "FAILED"
    assert "source broke half way" in result.error
    out = store.finished()["out"]
    assert out.status == "SKIPPED"
    assert "upstream step 'src' did not complete" in out.error
    assert Shared.finished == []  # finish() never ran: the file was not published


def test_under_continue_a_broken_stream_skips_its_consumer_and_the_other_branch_runs(plugins):
    d = {
        # processes off: these steps stay in threads (test_process_feed holds streams into worker processes).
        "context": {"parallelExecution": {"enabled": True, "maxConcurrentSteps": 2, "errorPolicy": "CONTINUE",
                                          "processes": "off"}},
        "steps": [
            step("bad", "EXTRACT", "many", config={"batches": 10, "failAfter": 2}),
            identity("after_bad"),
            step("good", "EXTRACT", "inMemory", config={"data": [{"id": 1}]}),
            identity("after_good"),
        ],
        "edges": [{"from": "bad", "to": "after_bad"}, {"from": "good", "to": "after_good"}],
    }
    result, store = run(d)
    assert result.status == "FAILED"
    finished = store.finished()
    assert finished["after_bad"].status == "SKIPPED"
    assert finished["after_good"].status == "COMPLETED"
    assert result.output("after_good") == [{"id": 1, "seen": True}]


def test_a_consumer_that_fails_does_not_leave_its_producer_blocked(plugins):
    Shared.fail_writes = 1
    d = {
        "context": {"parallelExecution": {"enabled": True, "maxConcurrentSteps": 2, "errorPolicy": "CONTINUE"}},
        "steps": [step("src", "EXTRACT", "many", config={"batches": 100}), step("out", "EXPORT", "fileLike")],
        "edges": [{"from": "src", "to": "out"}],
    }
    started = time.monotonic()
    result, store = run(d, stream_memory_bytes=1)  # the producer would wait at once for a reader
    assert time.monotonic() - started < 10
    assert store.finished()["src"].status == "COMPLETED"
    assert store.finished()["src"].counts.records_out == 10_000
    assert store.finished()["out"].status == "FAILED"


def test_cancelling_the_run_stops_both_ends_of_a_stream(plugins):
    store = InMemoryStore()
    d = {"steps": [step("src", "EXTRACT", "many", config={"batches": 100_000, "sleep": 0.001}),
                   step("out", "EXPORT", "fileLike")]}
    threading.Timer(0.3, store.cancel.set).start()
    result, store = run(d, store=store, heartbeat_seconds=0.05)
    assert result.status == "CANCELLED"
    finished = store.finished()
    assert finished["src"].status == "CANCELLED"
    assert finished["out"].status == "CANCELLED"
    assert Shared.finished == []


def test_a_producer_stopped_by_fail_fast_breaks_the_stream_and_nothing_is_published(plugins):
    d = {
        "context": {"parallelExecution": {"enabled": True, "maxConcurrentSteps": 2, "errorPolicy": "FAIL_FAST",
                                          "processes": "off"}},
        "steps": [
            step("slow", "EXTRACT", "many", config={"batches": 100_000, "sleep": 0.001}),
            step("out", "EXPORT", "fileLike"),
            step("bad", "EXTRACT", "many", config={"batches": 10, "failAfter": 1}),
            identity("after_bad"),
        ],
        "edges": [{"from": "slow", "to": "out"}, {"from": "bad", "to": "after_bad"}],
    }
    result, store = run(d)
    assert result.status == "FAILED"
    assert "source broke half way" in result.error
    finished = store.finished()
    assert finished["slow"].status == "CANCELLED"
    assert finished["out"].status == "SKIPPED"
    assert "upstream step 'slow' did not complete" in finished["out"].error
    assert Shared.finished == []


def test_record_errors_of_a_streamed_consumer_reach_the_dead_letters(plugins):
    d = {"steps": [
        step("src", "EXTRACT", "many", config={"batches": 3}),
        step("check", "VALIDATE", config={"fields": {"id": {"type": "integer", "max": 149}}}),
    ]}
    result, store = run(d)
    assert result.status == "COMPLETED", result.error
    assert len(result.output("check")) == 150
    assert store.finished()["check"].counts.errors == 150
    assert len(store.record_errors()) == 150


class OwnBufferHandler:
    """A plugin step type that says it streams but writes its main output into a buffer of its own."""

    streams_output = True

    def run(self, step, inputs, ctx):
        out = ctx.new_buffer()
        out.extend({"id": i} for i in range(2500))
        return StepOutcome({None: out}, 0, len(out))


def test_a_producer_that_wrote_elsewhere_still_hands_its_whole_output_to_its_consumer(plugins):
    registry.step_types.register("VALIDATE", OwnBufferHandler(), schema={"type": "object"}, replace=True)
    result, _ = run({"steps": [{"key": "src", "type": "VALIDATE", "config": {}}, identity()]})
    assert result.status == "COMPLETED", result.error
    assert [r["id"] for r in result.output("t")] == list(range(2500))
    assert len(result.output("src")) == 2500  # keep_outputs: the kept copy


class Hold:
    """A gate: holds its whole input and pauses."""

    def run(self, step, inputs, ctx):
        held = ctx.new_buffer()
        for batch in inputs.batches(ctx.batch_size):
            held.append(batch)
        return StepOutcome({None: held}, len(held), 0, paused=True)


def test_a_gate_after_a_streamed_pair_holds_the_whole_output_and_the_run_resumes_after_it(plugins):
    from runs.engine.context import PreviousStep

    registry.step_types.register("GATE", Hold(), schema={"type": "object"}, replace=True)
    d = {"steps": [step("src", "EXTRACT", "many", config={"batches": 20}), identity(),
                   {"key": "gate", "type": "GATE", "config": {}}, identity("after")]}
    first, _ = run(d, keep_outputs=False)
    assert first.status == "PAUSED"
    assert len(first.outputs["gate"][None].to_list()) == 2000 and first.statuses["t"] == "COMPLETED"
    previous = {k: PreviousStep("COMPLETED" if k == "gate" else s, k in first.usable or k == "gate",
                                first.outputs.get(k, {})) for k, s in first.statuses.items() if s != "PENDING"}
    second, store = run(d, previous=previous)
    assert second.status == "COMPLETED", second.error
    assert set(store.finished()) == {"after"}
    assert [r["id"] for r in second.output("after")] == list(range(2000))

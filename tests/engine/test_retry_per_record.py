import time

import pytest

from pipelines.definition import parse, problems_of
from pipelines.errors import RecordError
from pipelines.operators.base import record_operator
from runs.engine.context import RunOptions
from runs.engine.events import RecordRetried
from runs.engine.executor import execute
from runs.engine.store import InMemoryStore


@pytest.fixture
def flaky(registries):
    """An operator failing each record the number of times its `fails` field says (per run)."""
    seen: dict = {}

    @record_operator("flaky", name="Flaky", category="custom", description="fails N times", builtin=False,
                     schema={"type": "object", "properties": {"message": {"type": "string", "description": "m"}}})
    def build(args, ctx):
        def fn(record):
            n = seen.get(record["id"], 0)
            seen[record["id"]] = n + 1
            if n < record.get("fails", 0):
                raise RecordError(args.get("message", "temporary glitch"))
            record["tries"] = n + 1
            return record

        return fn

    return seen


def definition(records, retry=None, extra_ops=()):
    config = {"operators": [{"op": "flaky", "args": {}}, *extra_ops]}
    if retry is not None:
        config["retryPerRecord"] = retry
    return parse({"steps": [
        {"key": "src", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": records}},
        {"key": "t", "type": "TRANSFORM", "config": config},
    ]})


def run(d):
    store = InMemoryStore()
    return execute(d, store, RunOptions(keep_outputs=True)), store


def test_it_retries_a_failing_record_from_its_original_value(flaky):
    records = [{"id": 1}, {"id": 2, "fails": 2}, {"id": 3}]
    result, store = run(definition(records, {"maxRetries": 2, "retryDelayMs": 1}))
    assert result.output("t") == [{"id": 1, "tries": 1}, {"id": 2, "fails": 2, "tries": 3}, {"id": 3, "tries": 1}]
    assert store.record_errors() == []
    audit = [(e.record["id"], e.attempt, e.error) for e in store.events if isinstance(e, RecordRetried)]
    assert audit == [(2, 1, "temporary glitch"), (2, 2, "temporary glitch")]


def test_it_sends_a_record_to_the_errors_after_the_last_attempt_with_its_count(flaky):
    result, store = run(definition([{"id": 1, "fails": 9}, {"id": 2}], {"maxRetries": 2, "retryDelayMs": 1}))
    assert result.status == "COMPLETED"
    assert result.output("t") == [{"id": 2, "tries": 1}]
    [error] = store.record_errors()
    assert (error.record, error.attempts, error.message) == ({"id": 1, "fails": 9}, 3, "temporary glitch")


def test_it_does_not_retry_without_a_policy(flaky):
    result, store = run(definition([{"id": 1, "fails": 1}]))
    assert result.output("t") == []
    assert store.record_errors()[0].attempts == 1


def test_it_retries_only_errors_matching_the_patterns(flaky, registries):
    records = [{"id": 1, "fails": 1}]
    _, store = run(definition(records, {"maxRetries": 3, "retryDelayMs": 1, "retryableErrors": ["timeout|503"]}))
    assert store.record_errors()[0].attempts == 1
    flaky.clear()
    result, _ = run(definition(records, {"maxRetries": 3, "retryDelayMs": 1, "retryableErrors": ["glitch"]}))
    assert result.output("t") == [{"id": 1, "fails": 1, "tries": 2}]


def test_it_waits_per_round_not_per_record(flaky):
    records = [{"id": i, "fails": 1} for i in range(500)]
    started = time.monotonic()
    result, _ = run(definition(records, {"maxRetries": 1, "retryDelayMs": 100}))
    elapsed = time.monotonic() - started
    assert len(result.output("t")) == 500
    assert elapsed < 2, f"500 retried records took {elapsed:.2f} s; one 100 ms round expected"


def test_it_backs_off_exponentially(flaky):
    started = time.monotonic()
    run(definition([{"id": 1, "fails": 3}], {"maxRetries": 3, "retryDelayMs": 50, "backoff": "EXPONENTIAL"}))
    assert time.monotonic() - started >= 0.35  # 50 + 100 + 200 ms


def test_it_keeps_input_order_with_retried_records(flaky):
    records = [{"id": i, "fails": i % 3} for i in range(12)]
    result, _ = run(definition(records, {"maxRetries": 2, "retryDelayMs": 1},
                               extra_ops=[{"op": "remove", "args": {"path": "fails"}}]))
    assert [r["id"] for r in result.output("t")] == list(range(12))


@pytest.mark.parametrize("retry,field", [
    ({"maxRetries": -1}, "config.retryPerRecord.maxRetries"),
    ({"maxRetries": 2, "backoff": "LINEAR"}, "config.retryPerRecord.backoff"),
    ({"maxRetries": 2, "retryDelay": 5}, "config.retryPerRecord"),
])
def test_it_rejects_a_bad_retry_config(flaky, retry, field):
    d = {"steps": [{"key": "t", "type": "TRANSFORM", "config": {"operators": [], "retryPerRecord": retry}}]}
    assert field in [p.field for p in problems_of(d)]

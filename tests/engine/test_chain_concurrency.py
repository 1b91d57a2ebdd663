import time

from pipelines.errors import RecordError
from pipelines.operators.base import record_operator
from pipelines.operators.chain import OperatorChain


def test_it_processes_records_of_a_concurrent_operator_in_parallel_in_input_order(registries):
    @record_operator("slowIo", name="Slow", category="custom", description="waits", schema={"type": "object"},
                     concurrency=4, builtin=False)
    def build(args, ctx):
        def fn(record):
            time.sleep(0.1)
            if record["n"] == 3:
                raise RecordError("three is bad")
            return None if record["n"] == 5 else {**record, "done": True}

        return fn

    chain = OperatorChain([{"op": "slowIo"}, {"op": "set", "args": {"path": "after", "value": 1}}])
    started = time.monotonic()
    result = chain.apply([{"n": i} for i in range(8)])
    elapsed = time.monotonic() - started
    assert elapsed < 0.5, f"8 records x 0.1 s took {elapsed:.2f} s with 4 threads"
    assert [r["n"] for r in result.records] == [0, 1, 2, 4, 6, 7]
    assert all(r["done"] and r["after"] == 1 for r in result.records)
    assert [(f.record, f.message, f.position) for f in result.failures] == [({"n": 3}, "three is bad", 3)]
    assert result.dropped == 1 and result.positions == [0, 1, 2, 4, 6, 7]


def test_it_runs_the_image_operators_concurrently():
    from pipelines.registry import operators

    assert operators.get("imageResize").impl.concurrency > 1
    assert operators.get("imageConvert").impl.concurrency > 1
    assert operators.get("trim").impl.concurrency == 1

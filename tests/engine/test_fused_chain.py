"""The fused loop of a chain of per-record operators: which operator failed (read from the traceback),
drops, input positions, dead letters as the records entered, and failOnError, each with a real chain."""

import pytest

from pipelines.errors import RecordError
from pipelines.operators.base import record_operator
from pipelines.operators.chain import OperatorChain, OperatorFailed, copy_record


@pytest.fixture
def picky(registries):
    @record_operator("picky", name="Picky", category="custom", description="fails or drops by field",
                     builtin=False, schema={"type": "object"})
    def build(args, ctx):
        def fn(record):
            if record.get("fail") == ctx.op_index:
                raise RecordError(f"operator {ctx.op_index} refuses record {record['id']}")
            if record.get("drop") == ctx.op_index:
                return None
            record.setdefault("seen", []).append(ctx.op_index)
            return record

        return fn


def test_it_names_the_operator_that_failed_and_keeps_the_record_as_it_entered(picky):
    chain = OperatorChain([{"op": "picky"}] * 4)
    batch = [{"id": 0}, {"id": 1, "fail": 2}, {"id": 2, "drop": 1}, {"id": 3, "fail": 0}, {"id": 4}]
    result = chain.apply(batch)
    assert [(f.op_index, f.position, f.record, f.message) for f in result.failures] == [
        (2, 1, {"id": 1, "fail": 2}, "operator 2 refuses record 1"),
        (0, 3, {"id": 3, "fail": 0}, "operator 0 refuses record 3"),
    ]
    assert result.failures[0].record is batch[1]  # the input record itself, untouched
    assert result.dropped == 1
    assert [r["id"] for r in result.records] == [0, 4] and result.positions == [0, 4]
    assert result.records[0]["seen"] == [0, 1, 2, 3]
    assert batch[0] == {"id": 0}  # inputs are never changed


def test_it_fails_the_step_when_a_fail_on_error_operator_fails(picky):
    chain = OperatorChain([{"op": "picky"}, {"op": "picky", "args": {"failOnError": True}}])
    with pytest.raises(OperatorFailed, match=r"operator 1 \('picky'\) failed: operator 1 refuses record 7"):
        chain.apply([{"id": 6}, {"id": 7, "fail": 1}])


def test_it_copies_nested_records_deeply_and_flat_ones_as_they_are():
    nested = {"a": {"b": [1, {"c": 2}]}, "d": "x"}
    copied = copy_record(nested)
    assert copied == nested and copied["a"] is not nested["a"] and copied["a"]["b"][1] is not nested["a"]["b"][1]
    flat = {"a": 1, "b": "x", "c": None, "d": 1.5, "e": True}
    assert copy_record(flat) == flat and copy_record(flat) is not flat

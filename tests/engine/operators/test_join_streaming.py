"""multiJoin at scale: the left side streams batch by batch, the right side is hashed once, memory is bounded
by a budget checked when the definition is saved, and the output has no default ceiling."""

import pytest

import pipelines.operators  # noqa: F401  (registers the built-in operators)
from pipelines.definition import parse
from pipelines.errors import DefinitionError
from pipelines.operators.base import OperatorContext
from pipelines.operators.chain import OperatorChain, OperatorFailed
from runs.engine.context import RunOptions
from runs.engine.executor import execute
from runs.engine.store import InMemoryStore

PRICES = [{"sku": "A", "price": 1}, {"sku": "B", "price": 2}, {"sku": "C", "price": 3}, {"sku": "A", "price": 9}]


def chain(join_type, **extra):
    calls = []

    def outputs(key):
        calls.append(key)
        return PRICES

    ops = [{"op": "multiJoin", "args": {"leftKey": "sku", "rightKey": "sku", "type": join_type, "prefix": "p",
                                        "rightDataPath": "$.steps.prices.output", **extra}}]
    return OperatorChain(ops, context_for=lambda i: OperatorContext(op_index=i, step_outputs=outputs)), calls


@pytest.mark.parametrize("join_type", ["INNER", "LEFT", "RIGHT", "FULL"])
def test_it_gives_the_same_rows_batch_by_batch_as_in_one_batch(join_type):
    left = [{"id": 1, "sku": "B"}, {"id": 2, "sku": "Z"}, {"id": 3, "sku": "A"}, {"id": 4, "sku": None, "x": 1}]
    whole, _ = chain(join_type)
    expected = whole.apply_all([dict(r) for r in left]).records

    streamed, calls = chain(join_type)
    out = []
    for record in left:  # one record a batch
        out.extend(streamed.apply([record]).records)
    out.extend(streamed.finish().records)
    assert out == expected
    # The right side is read twice for the whole step (its field names, then its rows to hash), not per batch.
    assert calls == ["prices", "prices"]
    if join_type in ("RIGHT", "FULL"):
        # C matched no batch: it comes once, at the end, with every left field name seen in any batch null.
        assert out[-1] == {"id": None, "sku": None, "x": None, "p_sku": "C", "p_price": 3}
        assert sum(1 for r in out if r["p_sku"] == "A") == 2  # A matched in the third batch only


def test_it_never_changes_its_input_and_shares_nothing_with_it():
    left = [{"id": 1, "sku": "A", "tags": ["x"]}]
    join, _ = chain("INNER")
    out = join.apply(left).records
    assert len(out) == 2
    out[0]["tags"].append("y")
    out[1]["p_price"] = 0
    assert left == [{"id": 1, "sku": "A", "tags": ["x"]}]
    assert out[1]["tags"] == ["x"]
    assert PRICES[3] == {"sku": "A", "price": 9}


def test_it_has_no_default_output_ceiling():
    right = [{"k": n} for n in range(10_000)]
    ops = [{"op": "multiJoin", "args": {"leftKey": "k", "rightKey": "k", "rightData": right, "type": "FULL"}}]
    out = OperatorChain(ops).apply_all([{"k": -1}, {"k": -2}]).records
    assert len(out) == 10_002  # the plugin's default ceiling is 10,000


def test_it_keeps_an_explicit_ceiling_across_batches():
    join, _ = chain("LEFT", maxOutputRecords=3)
    join.apply([{"sku": "B"}, {"sku": "Z"}])
    with pytest.raises(OperatorFailed, match=r"exceeds maxOutputRecords \(3\)"):
        join.apply([{"sku": "A"}])  # two rows for A: the fourth row is one too many


def test_it_fails_when_the_right_side_is_over_its_budget():
    big = [{"sku": f"S{n}", "text": "x" * 1000} for n in range(2_000)]  # about 2 MiB
    ops = [{"op": "multiJoin", "args": {"leftKey": "sku", "rightKey": "sku", "rightDataPath": "$.steps.big.output",
                                        "memoryBudgetMb": 1}}]
    join = OperatorChain(ops, context_for=lambda i: OperatorContext(step_outputs=lambda key: big))
    with pytest.raises(OperatorFailed, match=r"step 'big' output\) needs more than its memory budget of 1 MiB"):
        join.apply([{"sku": "S1"}])


def pipeline(args: dict) -> dict:
    return {
        "version": 1,
        "steps": [
            {"key": "orders", "type": "EXTRACT", "adapterCode": "inMemory",
             "config": {"data": [{"id": 1, "sku": "A"}, {"id": 2, "sku": "Z"}, {"id": 3, "sku": "B"}]}},
            {"key": "prices", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": PRICES}},
            {"key": "join", "type": "TRANSFORM", "config": {"operators": [
                {"op": "multiJoin", "args": {"leftKey": "sku", "rightKey": "sku",
                                             "rightDataPath": "$.steps.prices.output", "prefix": "p", **args}},
                {"op": "set", "args": {"path": "joined", "value": True}},
            ]}},
        ],
        "edges": [{"from": "orders", "to": "join"}, {"from": "prices", "to": "join", "dependencyOnly": True}],
        "context": {"throughput": {"batchSize": 1}},
    }


def test_it_streams_through_a_transform_step_and_finishes_through_the_rest_of_the_chain():
    result = execute(parse(pipeline({"type": "FULL"})), InMemoryStore(), RunOptions(keep_outputs=True))
    assert result.status == "COMPLETED", result.error
    out = result.output("join")
    assert [(r["id"], r["p_price"]) for r in out] == [(1, 1), (1, 9), (2, None), (3, 2), (None, 3)]
    assert all(r["joined"] is True for r in out)  # the unmatched right row went through `set` too
    assert result.steps["join"].counts.records_in == 3
    assert result.steps["join"].counts.records_out == 5


@pytest.mark.parametrize("args, where, message", [
    ({"maxOutputRecords": 100_001}, "maxOutputRecords", "maxOutputRecords must be an integer between 1 and 100000"),
    ({"memoryBudgetMb": 65}, "memoryBudgetMb", "memoryBudgetMb must be an integer from 1 to 64"),
    ({"memoryBudgetMb": 0.5}, "memoryBudgetMb", "memoryBudgetMb must be an integer from 1 to 64"),
    ({"type": "SIDEWAYS"}, "type", "type must be INNER, LEFT, RIGHT, or FULL"),
    ({"rightData": []}, "rightDataPath", "either rightData or rightDataPath, not both"),
    ({"leftKey": ["sku", "id"]}, "rightKey", "same number of paths"),
])
def test_it_refuses_a_bad_config_when_the_definition_is_saved(settings, args, where, message):
    settings.DATAHUB_JOIN_MEMORY_MB = 64
    with pytest.raises(DefinitionError) as info:
        parse(pipeline(args))
    text = str(info.value)
    assert "step 'join'" in text and f"config.operators[0].args.{where}" in text and message in text


def test_it_accepts_a_budget_up_to_the_servers_limit(settings):
    settings.DATAHUB_JOIN_MEMORY_MB = 64
    definition = parse(pipeline({"memoryBudgetMb": 64}))
    result = execute(definition, InMemoryStore(), RunOptions(keep_outputs=True))
    assert result.status == "COMPLETED", result.error


def test_it_keeps_keys_type_strict_on_flat_records():
    left = [{"k": 1}, {"k": "1"}, {"k": True}, {"k": 1.0}, {"k": None}, {"k": float("nan")}, {}]
    right = [{"k": "1", "m": "s"}, {"k": 1, "m": "n"}, {"k": True, "m": "b"}, {"k": 1, "m": "n2"}]
    ops = [{"op": "multiJoin", "args": {"leftKey": "k", "rightKey": "k", "rightData": right, "type": "INNER",
                                        "select": ["m"]}}]
    out = OperatorChain(ops).apply_all(left).records
    assert [r["m"] for r in out] == ["n", "n2", "s", "b", "n", "n2"]


def test_it_stops_reading_the_right_side_once_it_is_over_its_budget():
    read = []

    def endless(key):
        for n in range(1_000_000):  # about 1 GiB if it were all read
            read.append(n)
            yield {"sku": f"S{n}", "text": "x" * 1000}

    ops = [{"op": "multiJoin", "args": {"leftKey": "sku", "rightKey": "sku", "rightDataPath": "$.steps.big.output",
                                        "select": ["text"], "memoryBudgetMb": 1}}]
    join = OperatorChain(ops, context_for=lambda i: OperatorContext(step_outputs=endless))
    with pytest.raises(OperatorFailed, match="needs more than its memory budget of 1 MiB"):
        join.apply([{"sku": "S1"}])
    assert len(read) <= 2_000  # a thousand rows at a time: it stopped in the first thousands

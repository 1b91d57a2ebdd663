"""How a chain copies the records it is given: shallowly (``dict.copy()``) when every operator is declared to
change only the record's top level, deeply otherwise. Either way the input batch is never changed and a
dead letter is the record as it entered the step; and every declared operator keeps its declaration."""

import copy

import pytest

from pipelines.definition import parse
from pipelines.errors import RecordError
from pipelines.operators.base import OperatorContext, batch_operator, record_operator, top_level_only
from pipelines.operators.chain import OperatorChain
from pipelines.registry import operators as operator_registry
from runs.engine.context import RunOptions
from runs.engine.executor import execute
from runs.engine.store import InMemoryStore
from tests.engine.test_fused_chain import CORPUS, INLINED


def nested_batch():
    return [{"id": i, "s": f"  s{i}  ", "price": "12.50", "cat": "x", "fail": i == 2,
             "meta": {"tags": ["a"], "seen": {"n": i}}, "list": [1, [2]]} for i in range(4)]


@pytest.fixture
def strict(registries):
    """A top-level-only operator that fails the records marked ``fail`` (after the others changed them)."""

    @record_operator("strict", name="Strict", category="custom", description="fails marked records",
                     builtin=False, schema={"type": "object"})
    def build(args, ctx):
        def fn(record):
            if record.get("fail"):
                raise RecordError(f"record {record['id']} is marked")
            record["checked"] = True
            return record

        return top_level_only(fn)


@pytest.fixture
def nested_appender(registries):
    """A batch operator changing a nested list in place, as any undeclared operator may."""

    @batch_operator("appendTag", name="Append tag", category="custom", description="meta.tags += 'b'",
                    builtin=False, schema={"type": "object"})
    def apply(records, args, ctx):
        for record in records:
            record["meta"]["tags"].append("b")
        return records


FLAT = [{"op": "trim", "args": {"path": "s"}}, {"op": "toNumber", "args": {"source": "price"}},
        {"op": "rename", "args": {"from": "cat", "to": "category"}}, {"op": "set", "args": {"path": "k", "value": 1}}]
NESTED_SET = {"op": "set", "args": {"path": "meta.seen.by", "value": "chain"}}


def test_a_chain_of_top_level_operators_copies_shallowly_and_keeps_dead_letters_as_they_entered(strict):
    chain = OperatorChain([*FLAT, {"op": "strict"}])
    assert "r = r.copy()" in chain._fused_loop_source() and "r = copy_record(r)" not in chain._fused_loop_source()
    batch = nested_batch()
    entered = copy.deepcopy(batch)
    result = chain.apply(batch)
    assert batch == entered
    [failure] = result.failures
    assert failure.record is batch[2] and failure.record == entered[2] and failure.op == "strict"
    assert [r["s"] for r in result.records] == ["s0", "s1", "s3"] and result.records[0]["price"] == 12.5
    assert result.records[0]["meta"] is batch[0]["meta"]  # shared, not copied: nothing changes it


def test_a_chain_with_an_operator_changing_nested_values_copies_deeply(strict):
    chain = OperatorChain([FLAT[0], NESTED_SET, {"op": "strict"}])
    assert "r = copy_record(r)" in chain._fused_loop_source() and "r.copy()" not in chain._fused_loop_source()
    batch = nested_batch()
    entered = copy.deepcopy(batch)
    result = chain.apply(batch)
    assert batch == entered
    [failure] = result.failures
    assert failure.record is batch[2] and failure.record == entered[2]
    assert result.records[0]["meta"]["seen"] == {"n": 0, "by": "chain"} and result.records[0]["meta"] is not batch[0]["meta"]


@pytest.mark.parametrize("after", [[NESTED_SET], [{"op": "appendTag"}], [{"op": "appendTag"}, NESTED_SET]],
                         ids=["nested set", "batch operator", "batch operator then nested set"])
def test_records_copied_shallowly_are_copied_deeply_before_an_operator_that_may_change_nested_values(
        strict, nested_appender, after):
    chain = OperatorChain([*FLAT, {"op": "strict"}, *after])
    batch = nested_batch()
    entered = copy.deepcopy(batch)
    result = chain.apply(batch)
    assert batch == entered
    assert [f.record for f in result.failures] == [entered[2]] and result.failures[0].record is batch[2]
    assert all(r["meta"] is not b["meta"] for r, b in zip(result.records, batch, strict=False))


def test_steps_sharing_their_input_leave_it_and_their_dead_letters_as_they_entered(probes, strict):
    records = nested_batch()
    definition = parse({"version": 1, "steps": [
        {"key": "src", "type": "EXTRACT", "adapterCode": "probe", "config": {"records": records}},
        {"key": "flat", "type": "TRANSFORM", "config": {"operators": [*FLAT, {"op": "strict"}]}},
        {"key": "deep", "type": "TRANSFORM", "config": {"operators": [FLAT[0], NESTED_SET, {"op": "strict"}]}},
        {"key": "same", "type": "TRANSFORM", "config": {"operators": [{"op": "set", "args": {"path": "z", "value": 0}}]}},
    ], "edges": [{"from": "src", "to": "flat"}, {"from": "src", "to": "deep"}, {"from": "src", "to": "same"}]})
    store = InMemoryStore()
    result = execute(definition, store, RunOptions(keep_outputs=True))
    assert result.status == "COMPLETED", result.error
    assert sorted((e.step_key, e.record["id"]) for e in store.record_errors()) == [("deep", 2), ("flat", 2)]
    assert all(e.record == records[2] for e in store.record_errors())
    # Three branches were given the same record objects (held in memory): none saw another's changes.
    assert list(result.outputs["src"][None].records()) == records
    assert list(result.outputs["same"][None].records()) == [{**r, "z": 0} for r in records]


# Every operator that declares itself top-level-only on plain keys, with args reading and writing them.
DECLARED = INLINED + [
    [{"op": "replace", "args": {"path": "a", "search": "1", "replacement": "2", "all": True}}],
    [{"op": "toString", "args": {"source": "a"}}],
    [{"op": "truncate", "args": {"source": "a", "length": 2, "suffix": "."}}],
    [{"op": "stripHtml", "args": {"source": "b", "target": "t"}}],
    [{"op": "parseNumber", "args": {"source": "a", "locale": "de-DE"}}],
    [{"op": "formatNumber", "args": {"source": "a", "target": "f"}}],
    [{"op": "slugify", "args": {"source": "a", "target": "s", "separator": "x"}}],
]


@pytest.mark.parametrize("operators", DECLARED, ids=lambda ops: ops[0]["op"])
def test_every_declared_operator_changes_only_the_top_level(operators):
    item = operators[0]
    fn = operator_registry.get(item["op"]).impl.build(dict(item["args"]), OperatorContext())
    assert getattr(fn, "top_level_only", False), f"{item['op']} on plain keys is not declared top-level-only"
    nested_args = {k: f"n.{v}" if k in ("path", "target", "to") else v for k, v in item["args"].items()}
    if not {"target", "path", "to"} & set(nested_args):
        nested_args["target"] = "n.out"
    nested = operator_registry.get(item["op"]).impl.build(nested_args, OperatorContext())
    assert not getattr(nested, "top_level_only", False), f"{item['op']} writing a dotted path is declared top-level-only"
    records = [{**r, "n": {"k": [1, {"d": 2}]}, "l": [[1], {"e": 3}]} for r in CORPUS]
    nested = copy.deepcopy([{k: v for k, v in r.items() if type(v) in (list, dict)} for r in records])
    for record in records:
        try:
            fn(dict(record))
        except Exception:  # noqa: S110  (a record the operator refuses; its nested values must still be intact)
            pass
    assert [{k: v for k, v in r.items() if type(v) in (list, dict)} for r in records] == nested

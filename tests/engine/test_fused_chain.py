"""The fused loop of a chain of per-record operators: which operator failed (read from the traceback),
drops, input positions, dead letters as the records entered, and failOnError, each with a real chain."""

import random

import pytest

from pipelines import js
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


# -- inline forms: the compiled loop must do exactly what the operators' functions do -----------------

VALUES = [1e308, -1e308, 2.675, 0.125, 2**53 + 1, -0.0, "  a b  ", "\u00a0x\u2003", "", "Ünïcödé", "1,2,,3", "12.50", " 7 ", "abc", "1e3", "0x10", None, 0, 1, -2.5,
          1.0, 2**60, True, False, [1, "a"], {"n": 1},
          # strings toNumber reads without a call where float() reads them as parseFloat does, and those it must not
          " 12", "Infinity", "-Infinity", "12abc", "-0", "1_000", "+inf", "nan", "1e400", "-1e400", "\u0661\u0662",
          "1\u0661", "\u00a012", " \x1c12", "12\x1c", "9007199254740993", "9007199254740993.0", "1e16", ".", "-.5e-3",
          "\t7\n", "+.5", "1.", "0012", "1e", "--1"]
CORPUS = [{"id": i, "a": v, "b": w} for i, v in enumerate(VALUES) for w in (VALUES[(i * 7) % len(VALUES)], "x")]
CORPUS += [{"id": "no-a", "b": "only b"}, {"id": "empty"}]

INLINED = [
    [{"op": "trim", "args": {"path": "a"}}],
    [{"op": "trim", "args": {"path": "a", "mode": "start"}}],
    [{"op": "trim", "args": {"path": "a", "mode": "end"}}],
    [{"op": "uppercase", "args": {"path": "a"}}],
    [{"op": "lowercase", "args": {"path": "b"}}],
    [{"op": "split", "args": {"source": "a", "target": "parts", "delimiter": ","}}],
    [{"op": "concat", "args": {"sources": ["a", "b", "missing"], "target": "ab", "separator": "|"}}],
    [{"op": "set", "args": {"path": "a", "value": 3}}],
    [{"op": "rename", "args": {"from": "a", "to": "c"}}],
    [{"op": "toNumber", "args": {"source": "a", "default": -1}}],
    [{"op": "toNumber", "args": {"source": "a", "target": "n"}}],
    [{"op": "math", "args": {"operation": "multiply", "source": "a", "operand": "1.19", "target": "g"}}],
    [{"op": "math", "args": {"operation": "add", "source": "a", "operand": 2, "decimals": 1, "target": "a"}}],
    [{"op": "round", "args": {"source": "a", "decimals": 2}}],
    [{"op": "round", "args": {"source": "a", "decimals": 1}}],
    [{"op": "toNumber", "args": {"source": "b", "target": "n", "default": 0}}],
    [{"op": "math", "args": {"operation": "divide", "source": "a", "operand": "3", "target": "q"}}],
    [{"op": "math", "args": {"operation": "subtract", "source": "a", "operand": 0.5, "target": "a"}}],
    [{"op": "slugify", "args": {"source": "a", "target": "slug"}}],
    [{"op": "slugify", "args": {"source": "b", "target": "b", "separator": "_"}}],
]


@pytest.mark.parametrize("operators", INLINED, ids=lambda ops: ops[0]["op"])
def test_the_inline_form_does_what_the_function_does(operators):
    compiled = OperatorChain(operators)
    assert "f0(" not in compiled._fused_loop_source(), "the operator was not inlined"
    by_inline = compiled.apply(CORPUS)
    by_call = OperatorChain(operators, inline=False).apply(CORPUS)
    assert by_inline.records == by_call.records
    assert [type(v) for r in by_inline.records for v in r.values()] == [
        type(v) for r in by_call.records for v in r.values()]
    assert [(f.position, f.message) for f in by_inline.failures] == [(f.position, f.message) for f in by_call.failures]


def test_to_number_written_in_place_reads_strings_as_parse_float_does():
    rng = random.Random(15)
    texts = ["".join(rng.choice("0123456789.+-eE_ x\t\u00a0\u0661") for _ in range(rng.randint(0, 7)))
             for _ in range(5000)]
    chain = OperatorChain([{"op": "toNumber", "args": {"source": "a", "default": -99.5}}])
    assert "parse_float(v)" in chain._fused_loop_source() and "to_float(v)" in chain._fused_loop_source()
    got = [r["a"] for r in chain.apply([{"a": t} for t in texts]).records]
    expected = [js.parse_float(t) for t in texts]
    assert [(t, g, type(g)) for t, g in zip(texts, got, strict=True)] == [
        (t, -99.5 if e is None else e, float if e is None else type(e)) for t, e in zip(texts, expected, strict=True)]


def test_a_failure_after_inlined_operators_names_its_operator(picky):
    chain = OperatorChain([{"op": "trim", "args": {"path": "s"}},
                           {"op": "concat", "args": {"sources": ["s", "t"], "target": "st"}},
                           {"op": "picky"},
                           {"op": "rename", "args": {"from": "st", "to": "u"}},
                           {"op": "picky"}])
    result = chain.apply([{"id": 1, "s": " x ", "t": "y", "fail": 4}, {"id": 2, "s": 1, "fail": 2},
                          {"id": 3, "s": "z"}])
    assert [(f.op_index, f.op, f.record["id"]) for f in result.failures] == [(4, "picky", 1), (2, "picky", 2)]
    assert result.records == [{"id": 3, "s": "z", "u": "z", "seen": [2, 4]}]


def test_definition_text_never_becomes_code():
    field = "x')\nraise SystemExit(3)\n#"
    chain = OperatorChain([{"op": "set", "args": {"path": field, "value": "v')\nraise SystemExit"}},
                           {"op": "rename", "args": {"from": field, "to": "{r}"}}])
    assert chain.apply([{"id": 1}]).records == [{"id": 1, "{r}": "v')\nraise SystemExit"}]
    assert "SystemExit" not in chain._fused_loop_source()

"""deduplicateRecords: one record per type-strict scalar key, with FIRST / LAST / LOWEST / HIGHEST."""

import pytest

import pipelines.operators  # noqa: F401  (registers the built-in operators)
from pipelines.errors import ConfigError
from pipelines.operators.chain import OperatorChain, OperatorFailed
from pipelines.registry import operators as registry

ROWS = [
    {"sku": "A", "src": "a1", "p": 2},
    {"sku": "B", "src": "b1", "p": 5},
    {"sku": "A", "src": "a2", "p": 1},
    {"sku": "B", "src": "b2", "p": 9},
    {"sku": "A", "src": "a3", "p": 1},
]


def dedup(**args):
    return [{"op": "deduplicateRecords", "args": args}]


@pytest.mark.parametrize(
    "keep, expected",
    [("FIRST", ["a1", "b1"]), ("LAST", ["a3", "b2"]), ("LOWEST", ["a2", "b1"]), ("HIGHEST", ["a1", "b2"])],
)
def test_it_keeps_one_record_per_key_in_first_seen_order(apply_ops, keep, expected):
    result = apply_ops(dedup(key="sku", keep=keep, priority="p"), ROWS)
    assert [r["src"] for r in result.records] == expected
    assert result.dropped == 3


def test_it_keeps_first_by_default_and_ties_go_to_the_earlier_record(apply_ops):
    assert [r["src"] for r in apply_ops(dedup(key="sku"), ROWS).records] == ["a1", "b1"]
    lowest = apply_ops(dedup(key="sku", keep="LOWEST", priority="p"), ROWS).records
    assert lowest[0]["src"] == "a2"  # a3 has the same priority 1 and comes later


def test_it_keeps_keys_type_strict_and_invalid_keys_distinct(apply_ops):
    rows = [
        {"k": 1},
        {"k": True},
        {"k": "1"},
        {"k": 1.0},
        {"k": None},
        {"k": None},
        {},
        {},
        {"k": [1]},
        {"k": [1]},
        {"k": ""},
        {"k": ""},
    ]
    out = apply_ops(dedup(key="k"), rows).records
    assert out == [
        {"k": 1},
        {"k": True},
        {"k": "1"},
        {"k": None},
        {"k": None},
        {},
        {},
        {"k": [1]},
        {"k": [1]},
        {"k": ""},
    ]


def test_it_deduplicates_on_nested_and_composite_keys(apply_ops):
    rows = [
        {"o": {"id": 1}, "line": 1},
        {"o": {"id": 1}, "line": 2},
        {"o": {"id": 1}, "line": 1, "dup": True},
    ]
    assert len(apply_ops(dedup(key="o.id"), rows).records) == 1
    out = apply_ops(dedup(key=["o.id", "line"], keep="LAST"), rows).records
    assert out == [{"o": {"id": 1}, "line": 1, "dup": True}, {"o": {"id": 1}, "line": 2}]


def test_it_needs_all_records():
    assert registry.get("deduplicateRecords").impl.needs_all_records is True
    assert OperatorChain(dedup(key="sku")).needs_all_records is True


@pytest.mark.parametrize(
    "args, message",
    [
        ({"key": ""}, "deduplicateRecords key is required"),
        ({"key": "   "}, "deduplicateRecords key is required"),
        ({}, "deduplicateRecords key is required"),
        ({"key": "sku", "keep": "HIGHEST"}, "deduplicateRecords priority is required for HIGHEST"),
        ({"key": "__proto__"}, "forbidden"),
    ],
)
def test_it_refuses_impossible_config_even_without_duplicates(apply_ops, args, message):
    with pytest.raises(OperatorFailed) as info:
        apply_ops(dedup(**args), [{"sku": "only"}])
    assert message in str(info.value)


def test_it_refuses_an_unknown_strategy_in_the_schema():
    with pytest.raises(ConfigError, match="must be one of FIRST, LAST, LOWEST, HIGHEST"):
        OperatorChain(dedup(key="sku", keep="MIDDLE"))


@pytest.mark.parametrize("bad", ["2", None, True, [1]])
def test_it_fails_on_a_non_numeric_priority_of_a_duplicate(apply_ops, bad):
    rows = [{"sku": "A", "p": 1}, {"sku": "A", "p": bad}]
    with pytest.raises(OperatorFailed, match="deduplicateRecords priority values must be finite numbers"):
        apply_ops(dedup(key="sku", keep="HIGHEST", priority="p"), rows)


def test_it_ignores_priorities_of_records_without_duplicates(apply_ops):
    rows = [{"sku": "A", "p": "x"}, {"sku": "B"}]
    assert apply_ops(dedup(key="sku", keep="LOWEST", priority="p"), rows).records == rows


def test_it_does_not_add_fields_or_change_its_input(apply_ops):
    rows = [{"sku": "A", "n": {"x": 1}}, {"sku": "A", "n": {"x": 2}}]
    out = apply_ops(dedup(key="sku", keep="LAST"), rows).records
    assert out == [{"sku": "A", "n": {"x": 2}}]
    out[0]["n"]["x"] = 3
    assert rows[1] == {"sku": "A", "n": {"x": 2}}


def test_it_handles_a_large_batch_in_one_pass(apply_ops):
    rows = [{"k": i % 1000, "i": i} for i in range(100_000)]
    out = apply_ops(dedup(key="k", keep="LAST"), rows).records
    assert len(out) == 1000
    assert out[0] == {"k": 0, "i": 99_000}

"""The plugin's own operator examples (shared/compat/plugin-examples 01, 02, 03, 12) give the same output here.

Each example's inMemory extract rows (``data``, or ``records``) go through the operators of every TRANSFORM
step in order, up to the step named by ``expectOutputOf``, and the result is compared with ``expected``:
list order matters, key order does not, numbers compare by value (20 == 20.0, -0 == 0) with a 1e-9
tolerance for the non-integer dateDiff results. An example that also uses an operator from another
category that is not registered yet is skipped, naming that operator.
"""

import json
import math

import pytest

import pipelines.operators  # noqa: F401  (registers the built-in operators)
from pipelines.operators.chain import OperatorChain
from pipelines.registry import operators as operator_registry
from tests.fixtures import PLUGIN_EXAMPLES as EXAMPLES

CASES = [
    "01-string-operators.json",
    "02-numeric-operators.json",
    "03-date-operators-without-now.json",
    "12-null-edge-cases.json",
]


def _same(actual, expected) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(actual) is type(expected) and actual == expected
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(expected, dict) and isinstance(actual, dict):
        return actual.keys() == expected.keys() and all(_same(actual[k], expected[k]) for k in expected)
    if isinstance(expected, list) and isinstance(actual, list):
        return len(actual) == len(expected) and all(map(_same, actual, expected))
    return type(actual) is type(expected) and actual == expected


def _run(example: dict) -> list:
    steps = example["definition"]["steps"]
    extract = next(s for s in steps if s["type"] == "EXTRACT" and s.get("adapterCode") == "inMemory")
    config = extract["config"]
    records = config["data"] if "data" in config else config["records"]
    for step in steps:
        if step["type"] != "TRANSFORM":
            continue
        items = step["config"]["operators"]
        missing = [item["op"] for item in items if item["op"] not in operator_registry]
        if missing:
            pytest.skip(f"operator(s) not registered yet: {', '.join(sorted(set(missing)))}")
        result = OperatorChain(items).apply(records)
        assert result.failures == []
        records = result.records
        if step["key"] == example["expectOutputOf"]:
            return records
    raise AssertionError(f"no TRANSFORM step '{example['expectOutputOf']}'")


@pytest.mark.parametrize("name", CASES)
def test_it_reproduces_the_plugin_example(name):
    if not (EXAMPLES / name).exists():
        pytest.skip(f"compat example {EXAMPLES / name} is not available here")
    example = json.loads((EXAMPLES / name).read_text())
    actual = _run(example)
    expected = example["expected"]
    assert len(actual) == len(expected)
    for index, (got, want) in enumerate(zip(actual, expected, strict=True)):
        assert _same(got, want), f"record {index}:\n got  {got}\n want {want}"


def test_it_compares_numbers_by_value_but_not_bools():
    assert _same({"a": [20.0, -0.0]}, {"a": [20, 0]})
    assert not _same(True, 1)
    assert not _same({"a": 1}, {"a": 1, "b": None})

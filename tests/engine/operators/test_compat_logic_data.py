"""The plugin's own example pipelines (shared/compat/plugin-examples) give the same output here.

Each example's inMemory rows go through its TRANSFORM steps, in order, up to ``expectOutputOf``; the result
must equal ``expected`` (dict equality: key order does not matter, 20 == 20.0).
"""

import json

import pytest

import pipelines.operators  # noqa: F401  (registers the built-in operators)
from pipelines.operators.chain import OperatorChain
from pipelines.registry import operators as operator_registry
from tests.fixtures import PLUGIN_EXAMPLES as EXAMPLES

CASES = [
    "04-logic-operators.json",
    "05-json-operators.json",
    "06-data-operators-without-uuid.json",
    "11-validation-operators.json",
    "12-null-edge-cases.json",
    "13-delta-filter-first-run.json",
]


def run_example(example: dict) -> list[dict]:
    steps = example["definition"]["steps"]
    records: list[dict] = []
    for step in steps:
        if step["type"] == "EXTRACT":
            assert step["adapterCode"] == "inMemory"
            config = step["config"]
            records = config.get("data", config.get("records", []))
        elif step["type"] == "TRANSFORM":
            items = step["config"]["operators"]
            missing = sorted({i["op"] for i in items if i["op"] not in operator_registry})
            if missing:
                pytest.skip(f"operators not registered yet: {', '.join(missing)}")
            records = OperatorChain(items).apply_all(records).records
        if step["key"] == example["expectOutputOf"]:
            return records
    raise AssertionError("expectOutputOf names no step")


@pytest.mark.parametrize("name", CASES)
def test_it_reproduces_the_plugin_example(name):
    path = EXAMPLES / name
    if not path.exists():
        pytest.skip(f"{path} is not available")
    example = json.loads(path.read_text())
    assert run_example(example) == example["expected"]


def test_it_emits_nothing_on_a_second_identical_delta_run():
    path = EXAMPLES / "13-delta-filter-first-run.json"
    if not path.exists():
        pytest.skip(f"{path} is not available")
    example = json.loads(path.read_text())
    rows = example["definition"]["steps"][1]["config"]["records"]
    items = example["definition"]["steps"][2]["config"]["operators"]
    from pipelines.operators.base import OperatorContext

    checkpoint: dict = {}

    def context(i):
        return OperatorContext(op_index=i, checkpoint=checkpoint)

    assert OperatorChain(items, context_for=context).apply(rows).records == example["expected"]
    assert OperatorChain(items, context_for=context).apply(rows).records == []

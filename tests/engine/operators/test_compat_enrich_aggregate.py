"""The plugin's enrichment, aggregation, expand, multiJoin and deduplicateRecords cases give the same output.

Each case (shared/compat/plugin-examples 07-10, 14-44) takes its inMemory rows (``data`` or ``records``)
through its TRANSFORM steps' operators, in order, up to ``expectOutputOf``. The output must equal
``expected`` (dict equality: key order does not matter, 20 == 20.0); with ``expectError``, building or
applying the chain must fail with a message that contains it.
"""

import json

import pytest

import pipelines.operators  # noqa: F401  (registers the built-in operators)
from pipelines.errors import ConfigError
from pipelines.operators.chain import OperatorChain, OperatorFailed
from pipelines.registry import operators as operator_registry
from tests.fixtures import PLUGIN_EXAMPLES as EXAMPLES

CASES = (
    sorted(
        p.name
        for p in EXAMPLES.glob("*.json")
        if p.name[:2].isdigit() and (7 <= int(p.name[:2]) <= 10 or 14 <= int(p.name[:2]) <= 44)
    )
    if EXAMPLES.exists()
    else []
)


def run_example(example: dict) -> list[dict]:
    records: list[dict] = []
    for step in example["definition"]["steps"]:
        if step["type"] == "EXTRACT":
            assert step["adapterCode"] == "inMemory"
            config = step["config"]
            records = config.get("data", config.get("records", []))
        elif step["type"] == "TRANSFORM":
            items = step["config"]["operators"]
            missing = sorted({i["op"] for i in items if i["op"] not in operator_registry})
            if missing:
                pytest.skip(f"operators not registered yet: {', '.join(missing)}")
            result = OperatorChain(items).apply_all(records)
            assert result.failures == []
            records = result.records
        if step["key"] == example["expectOutputOf"]:
            return records
    raise AssertionError("expectOutputOf names no step")


def test_it_finds_every_case():
    if not EXAMPLES.exists():
        pytest.skip(f"{EXAMPLES} is not available")
    assert len(CASES) == 35


@pytest.mark.parametrize("name", CASES)
def test_it_reproduces_the_plugin_case(name):
    example = json.loads((EXAMPLES / name).read_text())
    expected_error = example.get("expectError")
    if expected_error:
        with pytest.raises((ConfigError, OperatorFailed)) as info:
            run_example(example)
        assert expected_error in str(info.value)
    else:
        assert run_example(example) == example["expected"]

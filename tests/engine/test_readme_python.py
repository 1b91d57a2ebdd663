"""The README's Python examples run as shown."""

import re
from pathlib import Path

from pipelines.definition import parse
from runs.engine.context import RunOptions
from runs.engine.executor import execute
from runs.engine.store import InMemoryStore

README = Path(__file__).resolve().parents[2] / "README.md"


def block(marker: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    [found] = [b for b in blocks if marker in b]
    return found


def test_the_dsl_example_builds_a_definition_that_runs():
    scope: dict = {}
    exec(block("create_pipeline()"), scope)  # noqa: S102  (our own README, not user input)
    result = execute(parse(scope["definition"]), InMemoryStore(), RunOptions(keep_outputs=True))
    assert result.status == "COMPLETED"
    assert result.output("keep") == [{"sku": "A-1", "price": 9.9}]


def test_the_custom_operator_example_registers_an_operator_that_runs(registries):
    exec(block("register_operator("), {})  # noqa: S102
    d = {"steps": [{"key": "s", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": [{"net": 10}]}},
                   {"key": "t", "type": "TRANSFORM", "config": {"operators": [{"op": "addVat", "args": {"rate": 0.1}}]}}]}
    result = execute(parse(d), InMemoryStore(), RunOptions(keep_outputs=True))
    assert result.output("t") == [{"net": 10, "gross": 11.0}]

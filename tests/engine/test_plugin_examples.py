"""Every example and spec case the plugin ships (shared/compat/plugin-examples) runs here unchanged.

Each file holds a plugin definition, the step whose output is checked, and the expected records or the
error the plugin raises. They run through the real parser and executor, exactly as a user's run would.
"""

import json

import pytest

from pipelines.definition import parse
from pipelines.errors import DefinitionError
from runs.engine.context import RunOptions
from runs.engine.executor import execute
from runs.engine.store import InMemoryStore
from tests.fixtures import PLUGIN_EXAMPLES as EXAMPLES

FILES = sorted(EXAMPLES.glob("*.json"))


def test_it_finds_the_plugin_examples():
    assert len(FILES) >= 44, f"expected the plugin's examples in {EXAMPLES}"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_it_reproduces_the_plugin_example(path):
    case = json.loads(path.read_text())
    step = case["expectOutputOf"]
    try:
        definition = parse(case["definition"])
    except DefinitionError as exc:
        # Rejecting a bad config up front is acceptable for error cases, with the plugin's message.
        assert case.get("expectError"), f"valid example rejected: {exc}"
        assert case["expectError"] in str(exc)
        return
    result = execute(definition, InMemoryStore(), RunOptions(keep_outputs=True))
    if case.get("expectError"):
        assert result.status == "FAILED"
        assert result.steps[step].status == "FAILED"
        assert case["expectError"] in result.steps[step].error
        return
    assert result.status == "COMPLETED", result.error
    assert result.output(step) == case["expected"]

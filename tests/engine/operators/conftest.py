import pytest

from pipelines.operators.chain import OperatorChain

# The shared helpers assert too: rewrite them as pytest rewrites the test modules, for the same messages.
pytest.register_assert_rewrite("tests.engine.operators.helpers")


@pytest.fixture
def apply_ops():
    """apply_ops([{"op": ..., "args": {...}}, ...], records) -> ChainResult (records, failures, dropped)."""

    def run(items, records, **kwargs):
        return OperatorChain(items, **kwargs).apply_all(records)

    return run

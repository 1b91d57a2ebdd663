import pytest

from pipelines.operators.chain import OperatorChain


@pytest.fixture
def apply_ops():
    """apply_ops([{"op": ..., "args": {...}}, ...], records) -> ChainResult (records, failures, dropped)."""

    def run(items, records, **kwargs):
        return OperatorChain(items, **kwargs).apply(records)

    return run

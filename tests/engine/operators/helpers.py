"""Helpers of the operator tests that take one operator and one record."""

import pytest

from pipelines.errors import ConfigError
from pipelines.operators.chain import OperatorChain


def refused(op, args) -> str:
    """The field path and message of the ConfigError that building ``op`` with ``args`` raises."""
    with pytest.raises(ConfigError) as caught:
        OperatorChain([{"op": op, "args": args}])
    return f"{caught.value.field}: {caught.value}"


def one(apply_ops, op, args, record):
    """The one record that ``op`` makes of ``record``, which must not fail."""
    result = apply_ops([{"op": op, "args": args}], [record])
    assert result.failures == []
    assert len(result.records) == 1
    return result.records[0]

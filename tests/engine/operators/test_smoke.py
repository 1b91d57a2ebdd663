from pipelines.operators.chain import OperatorChain


def test_it_applies_an_empty_chain_unchanged():
    records = [{"a": 1}]
    assert OperatorChain([]).apply(records).records == [{"a": 1}]

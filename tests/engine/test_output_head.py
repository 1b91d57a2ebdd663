"""An output no step reads holds only its head (RunOptions.output_head): counted whole, never spilled, kept in
full when keep_outputs asks for it or a hook after the step reads it."""

from pipelines.definition import parse
from runs.engine.buffers import HeadBuffer, RecordBuffer
from runs.engine.context import RunOptions
from runs.engine.executor import _unread_outputs, execute
from runs.engine.handlers import run_chain  # noqa: F401  (registers the step types)
from runs.engine.run_state import Plan
from runs.engine.store import InMemoryStore

N = 5000


def definition(**extra):
    return parse({"version": 1, "steps": [
        {"key": "src", "type": "EXTRACT", "adapterCode": "inMemory",
         "config": {"data": [{"id": i, "pad": "x" * 20} for i in range(N)]}},
        {"key": "upper", "type": "TRANSFORM", "config": {"operators": [{"op": "uppercase", "args": {"path": "pad"}}]}},
    ], **extra})


def run(d, **options):
    store = InMemoryStore()
    result = execute(d, store, RunOptions(spill_records=100, **options))
    assert result.status == "COMPLETED", result.error
    return result, store


def test_an_unread_output_holds_its_head_counts_everything_and_never_spills():
    result, store = run(definition(), output_head=10)
    buf = result.outputs["upper"][None]
    assert isinstance(buf, HeadBuffer) and not buf.spilled
    assert len(buf) == N and result.counts["upper"].records_out == N
    assert buf.to_list() == [{"id": i, "pad": "X" * 20} for i in range(10)]
    assert "src" not in result.outputs  # read by its successor, closed after it
    result.close()


def test_without_a_head_nothing_of_an_unread_output_is_held_or_returned():
    result, _ = run(definition())
    assert result.outputs == {} and result.counts["upper"].records_out == N


def test_keep_outputs_and_hooks_after_the_step_keep_it_whole():
    result, _ = run(definition(), output_head=10, keep_outputs=frozenset({"upper"}))
    buf = result.outputs["upper"][None]
    assert type(buf) is RecordBuffer and buf.spilled and len(buf.to_list()) == N
    result.close()
    # A hook after the step may carry its records: the step's output stays whole for it.
    logged = definition(hooks={"AFTER_TRANSFORM": [{"type": "LOG"}]})
    assert _unread_outputs(Plan.of(logged), RunOptions(output_head=10)) == frozenset()
    assert _unread_outputs(Plan.of(definition()), RunOptions(output_head=10)) == {"upper"}


def test_a_head_buffer_keeps_the_first_records_across_batches():
    buf = HeadBuffer(5)
    for start in (0, 3, 6):
        buf.append([{"n": n} for n in range(start, start + 3)])
    assert len(buf) == 9 and [r["n"] for r in buf.to_list()] == [0, 1, 2, 3, 4]
    assert buf.head(3) == [{"n": 0}, {"n": 1}, {"n": 2}]


def test_an_output_read_by_path_over_a_dependency_only_edge_stays_whole():
    """multiJoin reads its right side through rightDataPath ($.steps.<key>.output) over a dependency-only edge:
    that output must reach it whole, not as the run's 100-record sample (the join matched only the right
    records within the head, and every later left record came out unjoined)."""
    right = [{"sku": f"S{i}", "price": i} for i in range(N)]
    d = parse({"version": 1, "steps": [
        {"key": "orders", "type": "EXTRACT", "adapterCode": "inMemory",
         "config": {"data": [{"sku": f"S{i}"} for i in range(N - 1, -1, -1)]}},
        {"key": "prices", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": right}},
        {"key": "join", "type": "TRANSFORM", "config": {"operators": [{"op": "multiJoin", "args": {
            "leftKey": "sku", "rightKey": "sku", "rightDataPath": "$.steps.prices.output", "type": "LEFT",
            "prefix": "r_"}}]}},
    ], "edges": [{"from": "orders", "to": "join"}, {"from": "prices", "to": "join", "dependencyOnly": True}]})
    assert _unread_outputs(Plan.of(d), RunOptions(output_head=100)) == {"join"}
    result, _ = run(d, output_head=100)
    head = result.outputs["join"][None].to_list()
    assert head[0] == {"sku": f"S{N - 1}", "r_sku": f"S{N - 1}", "r_price": N - 1}
    assert all(r["r_price"] == int(r["sku"][1:]) for r in head)
    result.close()

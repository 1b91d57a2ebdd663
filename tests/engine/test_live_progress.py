"""Live progress (issue 15 goal 6): a running step reports its counters about once a second, so a long step
does not show In 0 / Out 0 until it ends."""

import time

import pytest

from pipelines import registry
from pipelines.adapters.base import Extractor, Writer, WriteResult
from pipelines.definition import parse
from runs.engine.context import RunOptions
from runs.engine.events import StepFinished, StepProgress, StepStarted
from runs.engine.executor import PROGRESS_SECONDS, execute
from runs.engine.store import InMemoryStore


class TimedStore(InMemoryStore):
    """Notes when each event arrived."""

    def __init__(self):
        super().__init__()
        self.at: list[float] = []

    def emit(self, event):
        self.at.append(time.monotonic())
        super().emit(event)

    def progress(self, key):
        return [(t, e) for t, e in zip(self.at, self.events, strict=True)
                if isinstance(e, StepProgress) and e.step_key == key]


class SlowWriter(Writer):
    """Loads a batch in ``pause`` seconds; records with ``bad`` fail."""

    def write(self, batch):
        time.sleep(self.config["pause"])
        return WriteResult(written=len(batch), failed=[(r, "bad record") for r in batch if r.get("bad")])


class DripExtractor(Extractor):
    """``batches`` batches of ``size`` records, one every ``pause`` seconds."""

    def batches(self):
        n = 0
        for _ in range(self.config["batches"]):
            time.sleep(self.config["pause"])
            yield [{"n": (n := n + 1)} for _ in range(self.config["size"])]


class SlowFileExport(Writer):
    """Takes ``pause`` seconds a batch and publishes nothing before finish(): it may read a stream."""

    publishes_at_finish = True

    def write(self, batch):
        time.sleep(self.config["pause"])
        return WriteResult(written=len(batch))


@pytest.fixture
def slow_adapters():
    snap = registry.snapshot_all()
    registry.loaders.register("slowLoad", SlowWriter, schema={"type": "object"})
    registry.extractors.register("drip", DripExtractor, schema={"type": "object"})
    registry.exporters.register("slowFile", SlowFileExport, schema={"type": "object"})
    yield
    registry.restore_all(snap)


def test_a_slow_step_reports_growing_counters_about_once_a_second(slow_adapters):
    records = [{"id": i, "bad": i % 10 == 0} for i in range(2500)]
    definition = parse({"steps": [
        {"key": "src", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": records}},
        # 25 batches of 100 at 0.14 s each: about 3.5 s.
        {"key": "load", "type": "LOAD", "adapterCode": "slowLoad", "config": {"pause": 0.14},
         "throughput": {"batchSize": 100}},
    ]})
    store = TimedStore()
    result = execute(definition, store, RunOptions())
    assert result.status == "COMPLETED"

    reports = store.progress("load")
    assert len(reports) >= 2, reports
    started = next(t for t, e in zip(store.at, store.events, strict=True)
                   if isinstance(e, StepStarted) and e.step_key == "load")
    ended_index = next(i for i, e in enumerate(store.events) if isinstance(e, StepFinished) and e.step_key == "load")
    # Every report came while the step ran, the first after about a second of it.
    assert all(store.events.index(e) < ended_index for _, e in reports)
    assert reports[0][0] - started >= PROGRESS_SECONDS * 0.95
    # At most about one a second.
    gaps = [b[0] - a[0] for a, b in zip(reports, reports[1:], strict=False)]
    assert all(gap >= PROGRESS_SECONDS * 0.95 for gap in gaps), gaps
    counts = [e.counts for _, e in reports]
    assert all(a.records_in < b.records_in for a, b in zip(counts, counts[1:], strict=False)), counts
    assert all(a.records_out <= b.records_out and a.errors <= b.errors for a, b in zip(counts, counts[1:], strict=False))
    assert 0 < counts[0].records_in < 2500 and counts[0].errors > 0
    assert all(e.expected == 2500 and e.attempt == 1 for _, e in reports)
    first = reports[0][1]
    assert first.rate == pytest.approx(first.counts.records_in * 1000 / first.elapsed_ms)
    # The end has the final counts; the quick extract reported nothing but its end.
    final = store.finished()["load"].counts
    assert (final.records_in, final.records_out, final.errors) == (2500, 2250, 250)
    assert counts[-1].records_in <= final.records_in
    assert not store.progress("src")


def test_an_extract_reports_what_it_put_out_with_no_total(slow_adapters):
    definition = parse({"steps": [
        {"key": "src", "type": "EXTRACT", "adapterCode": "drip", "config": {"batches": 12, "size": 50, "pause": 0.2}},
    ]})
    store = TimedStore()
    execute(definition, store, RunOptions())
    reports = [e for _, e in store.progress("src")]
    assert len(reports) >= 1
    assert all(e.counts.records_in == 0 and 0 < e.counts.records_out <= 600 and e.expected is None for e in reports)
    assert all(e.rate and e.rate > 0 for e in reports)
    assert store.finished()["src"].counts.records_out == 600


def test_a_streamed_step_has_a_total_only_once_its_producer_ended(slow_adapters):
    # The export reads the extract's batches while they come (runs.engine.streams): 8 x 0.3 s of extract,
    # the export taking 0.45 s a batch, so it goes on for a while after the extract has ended.
    definition = parse({"steps": [
        {"key": "src", "type": "EXTRACT", "adapterCode": "drip", "config": {"batches": 8, "size": 100, "pause": 0.3}},
        {"key": "out", "type": "EXPORT", "adapterCode": "slowFile", "config": {"pause": 0.45},
         "throughput": {"batchSize": 100}},
    ]})
    store = TimedStore()
    result = execute(definition, store, RunOptions())
    assert result.status == "COMPLETED", result.error
    src_end = next(i for i, e in enumerate(store.events) if isinstance(e, StepFinished) and e.step_key == "src")
    out_start = next(i for i, e in enumerate(store.events) if isinstance(e, StepStarted) and e.step_key == "out")
    assert out_start < src_end  # it streamed
    reports = [(store.events.index(e), e) for _, e in store.progress("out")]
    while_producing = [e for i, e in reports if i < src_end]
    after = [e for i, e in reports if i > src_end]
    assert while_producing and after, reports
    assert all(e.expected is None for e in while_producing)  # the total is not known yet: no ETA
    assert all(e.expected == 800 for e in after)
    assert all(0 < e.counts.records_in <= 800 for _, e in reports)

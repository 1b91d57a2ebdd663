import time

import pytest

from pipelines import registry
from pipelines.adapters.base import Extractor, Writer, WriteResult
from pipelines.errors import StepError
from pipelines.plugins import load_plugins

load_plugins(["runs.engine.handlers"], entry_point_group=None)


@pytest.fixture
def registries():
    """Register test-only plugins freely; everything is put back after the test."""
    snap = registry.snapshot_all()
    yield registry
    registry.restore_all(snap)


class ProbeExtractor(Extractor):
    """Test extractor: sleeps, fails (a number of times), then yields its records."""

    calls: dict[str, int] = {}

    def batches(self):
        key = self.config.get("id", self.ctx.step_key)
        ProbeExtractor.calls[key] = ProbeExtractor.calls.get(key, 0) + 1
        deadline = time.monotonic() + self.config.get("sleep", 0)
        while time.monotonic() < deadline:
            if self.ctx.cancelled.is_set():
                return
            time.sleep(0.01)
        fails = self.config.get("failTimes", 0)
        if self.config.get("fail") or ProbeExtractor.calls[key] <= fails:
            raise StepError(f"probe {key} failed", retryable=self.config.get("retryable", True))
        yield [dict(r) for r in self.config.get("records", [{"n": 1}])]


class FailingWriter(Writer):
    """Test loader: fails every record whose `bad` field is true."""

    def write(self, batch):
        failed = [(r, "bad record") for r in batch if r.get("bad")]
        return WriteResult(written=len(batch) - len(failed), failed=failed)


@pytest.fixture
def probes(registries):
    ProbeExtractor.calls = {}
    registry.extractors.register("probe", ProbeExtractor, schema={"type": "object"})
    registry.loaders.register("failing", FailingWriter, schema={"type": "object"})
    return ProbeExtractor

"""Adapters that need nothing outside the pipeline: inline records, generated records, a records sink.
[pure]"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Iterator

from pipelines.adapters.base import Extractor, Writer, WriteResult
from pipelines.errors import ConfigError
from pipelines.records import Batch, chunked, deep_copy
from pipelines.registry import extractors, sinks


@extractors.register(
    "inMemory",
    name="Inline records",
    category="inline",
    builtin=True,
    description="Records written into the step config (`data`; `records` is accepted too).",
    schema={
        "type": "object",
        "properties": {
            "data": {
                "description": "The records: a list of objects, or one object.",
                "type": ["array", "object"],
                "x-widget": "records",  # the editor's grid of rows and columns, over the JSON
            },
            "records": {"description": "Same as data (older plugin examples use this name).",
                        "type": ["array", "object"], "deprecated": True},
        },
        "additionalProperties": False,
    },
)
class InMemoryExtractor(Extractor):
    def batches(self) -> Iterator[Batch]:
        if "data" in self.config and "records" in self.config:
            raise ConfigError("give either data or records, not both", field="data")
        data = self.config.get("data", self.config.get("records", []))
        if isinstance(data, dict):
            data = [data]
        for i, item in enumerate(data):
            if not isinstance(item, dict):
                raise ConfigError(f"data[{i}] must be an object, got {type(item).__name__}", field=f"data.{i}")
        records = (deep_copy(r) for r in data)
        if self.ctx.record_limit is not None:
            records = (r for n, r in zip(range(self.ctx.record_limit), records, strict=False))
        yield from chunked(records, self.ctx.batch_size)


_MACRO = re.compile(r"^(uuid|timestamp|isoDate|index|random:(\d+)|seq:(\d+))$")
_PLACEHOLDER = re.compile(r"\{\{(index|count|total)\}\}")


@extractors.register(
    "generator",
    name="Generated records",
    category="inline",
    builtin=True,
    description="Synthetic records from a template, for tests and demos.",
    schema={
        "type": "object",
        "properties": {
            "count": {"type": "integer", "minimum": 0, "maximum": 100_000_000, "default": 10,
                      "description": "How many records to generate."},
            "template": {
                "type": "object",
                "description": "Field -> value. String values may be macros: uuid, timestamp, isoDate, index, "
                "random:N (0..N-1), seq:N (N, N+1, ...); {{index}} and {{count}} are replaced inside strings.",
            },
            "seed": {"type": "integer", "description": "Seed for random:N, for repeatable data."},
        },
        "additionalProperties": False,
    },
)
class GeneratorExtractor(Extractor):
    def batches(self) -> Iterator[Batch]:
        count = int(self.config.get("count", 10))
        if self.ctx.record_limit is not None:
            count = min(count, self.ctx.record_limit)
        template = self.config.get("template") or {}
        rng = random.Random(self.config.get("seed"))
        now = self.ctx.now()
        fields = [(k, self._compile(v, rng, now, count)) for k, v in template.items()]
        size = self.ctx.batch_size
        for start in range(0, count, size):
            if self.ctx.cancelled.is_set():
                return
            yield [
                {**{k: make(i) for k, make in fields}, "_index": i}
                for i in range(start, min(start + size, count))
            ]

    @staticmethod
    def _compile(value, rng, now, count):
        if not isinstance(value, str):
            return lambda i, v=value: deep_copy(v)
        m = _MACRO.match(value)
        if m:
            name = m.group(1)
            if name == "uuid":
                return lambda i: str(uuid.UUID(int=rng.getrandbits(128), version=4))
            if name == "timestamp":
                stamp = int(now.timestamp() * 1000)
                return lambda i: stamp
            if name == "isoDate":
                iso = now.isoformat().replace("+00:00", "Z")
                return lambda i: iso
            if name == "index":
                return lambda i: i
            if m.group(2):
                n = int(m.group(2))
                return lambda i: rng.randrange(max(n, 1))
            start = int(m.group(3))
            return lambda i: start + i
        if _PLACEHOLDER.search(value):
            return lambda i: _PLACEHOLDER.sub(lambda mm: str(i if mm.group(1) == "index" else count), value)
        return lambda i: value


@sinks.register(
    "records",
    name="Keep records",
    category="inline",
    builtin=True,
    description="Keeps the records it receives as the step's output, for previews and tests.",
    schema={"type": "object", "properties": {}, "additionalProperties": False},
)
class RecordsSink(Writer):
    def write(self, batch: Batch) -> WriteResult:
        return WriteResult(written=len(batch), output=batch)

"""Step outputs that stay bounded in memory. [pure]

A step writes its output into a :class:`RecordBuffer` batch by batch. Up to ``spill_records`` records
stay in memory; past that the buffer moves everything to an anonymous temporary file (one JSON array per
batch and line, through orjson: one call per batch, not per record) and reads it back batch by batch, so a million-row extract -> transform -> load holds about one
batch per step in memory however large the input. A buffer may be read many times (fan-out to several
successors) and is released by ``close``.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterable, Iterator
from typing import IO

import orjson

from pipelines.records import Batch, Record

DEFAULT_SPILL_RECORDS = 50_000


class RecordBuffer:
    def __init__(self, spill_records: int = DEFAULT_SPILL_RECORDS):
        self.spill_records = spill_records
        self._batches: list[Batch] = []
        self._file: IO[bytes] | None = None
        self._count = 0
        self._lock = threading.Lock()
        self._closed = False

    def __len__(self) -> int:
        return self._count

    @property
    def spilled(self) -> bool:
        return self._file is not None

    def append(self, batch: Batch) -> None:
        if not batch:
            return
        with self._lock:
            self._count += len(batch)
            if self._file is None and self._count <= self.spill_records:
                self._batches.append(batch)
                return
            if self._file is None:
                self._file = tempfile.TemporaryFile(prefix="datahub-", suffix=".ndjson")
                for held in self._batches:
                    self._write(held)
                self._batches = []
            self._write(batch)

    def extend(self, records: Iterable[Record], batch_size: int = 1000) -> None:
        batch: Batch = []
        for r in records:
            batch.append(r)
            if len(batch) >= batch_size:
                self.append(batch)
                batch = []
        self.append(batch)

    def _write(self, batch: Batch) -> None:
        assert self._file is not None
        self._file.seek(0, 2)
        self._file.write(orjson.dumps(batch, option=orjson.OPT_NON_STR_KEYS) + b"\n")

    def batches(self, size: int | None = None) -> Iterator[Batch]:
        """The records in order, as batches of ``size`` (as written when ``size`` is None)."""
        if self._file is None:
            if size is None:
                yield from list(self._batches)
                return
            pending: Batch = []
            for batch in list(self._batches):
                pending.extend(batch)
                while len(pending) >= size:
                    yield pending[:size]
                    pending = pending[size:]
            if pending:
                yield pending
            return
        size = size or 1000
        with self._lock:
            self._file.flush()
            fd = self._file.fileno()
            end = self._file.tell()
        # pread keeps no shared file offset, so several successors can read at once while nobody writes.
        offset = 0
        rest = b""
        pending: Batch = []
        while offset < end:
            chunk = os.pread(fd, min(1 << 22, end - offset), offset)
            if not chunk:
                break
            offset += len(chunk)
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            for line in lines:
                if not line:
                    continue
                pending.extend(orjson.loads(line))
                while len(pending) >= size:
                    yield pending[:size]
                    pending = pending[size:]
        if rest:
            pending.extend(orjson.loads(rest))
        while pending:
            yield pending[:size]
            pending = pending[size:]

    def records(self) -> Iterator[Record]:
        for batch in self.batches():
            yield from batch

    def to_list(self) -> Batch:
        return [r for b in self.batches() for r in b]

    def head(self, n: int) -> Batch:
        out: Batch = []
        for batch in self.batches():
            out.extend(batch[: n - len(out)])
            if len(out) >= n:
                break
        return out

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._batches = []
            if self._file is not None:
                self._file.close()
                self._file = None


def buffer_of(records: Iterable[Record], spill_records: int = DEFAULT_SPILL_RECORDS) -> RecordBuffer:
    buf = RecordBuffer(spill_records)
    buf.extend(records)
    return buf

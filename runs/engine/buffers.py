"""Step outputs that stay bounded in memory. [pure]

A step writes its output into a :class:`RecordBuffer` batch by batch. Up to ``spill_records`` records
stay in memory; past that the buffer moves everything to an anonymous temporary file (one JSON array per
batch, or per LINE_RECORDS of a larger batch, and line, through orjson: one call per line, not per record)
and reads it back batch by batch, so a million-row extract -> transform -> load holds about one batch per
step in memory however large the input. Every path here is linear in the records (:func:`rebatch`). A buffer may be read many times (fan-out to several
successors) and is released by ``close``.
"""

from __future__ import annotations

import io
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator
from typing import IO

from pipelines.records import Batch, Record, dumps, loads

DEFAULT_SPILL_RECORDS = 50_000
LINE_RECORDS = 10_000
READ_CHUNK_BYTES = 1 << 22


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
        for line in spill_lines(batch):
            self._file.write(line)

    def batches(self, size: int | None = None) -> Iterator[Batch]:
        """The records in order, as batches of ``size`` (as written when ``size`` is None)."""
        if self._file is None:
            if size is None:
                yield from list(self._batches)
                return
            yield from rebatch(list(self._batches), size)
            return
        yield from rebatch(self._file_batches(), size or 1000)

    def _file_batches(self) -> Iterator[Batch]:
        """The spilled batches as written, one JSON array per line, read in 4 MiB chunks."""
        with self._lock:
            self._file.flush()
            fd = self._file.fileno()
            end = self._file.tell()
        yield from read_lines(fd, end)

    def spill_file(self) -> tuple[int, int] | None:
        """(descriptor, length in bytes) of a spilled buffer's file, flushed, for a reader that keeps its own
        offsets (:func:`read_lines`; a worker process handed the descriptor); None while the buffer is held
        in memory. The descriptor stays the buffer's, valid until :meth:`close`; for a finished buffer."""
        with self._lock:
            if self._file is None:
                return None
            self._file.flush()
            fd = self._file.fileno()
            return fd, os.fstat(fd).st_size

    @classmethod
    def adopt(cls, file: IO[bytes], count: int, spill_records: int = DEFAULT_SPILL_RECORDS) -> RecordBuffer:
        """A spilled buffer over ``file``, which holds ``count`` records written as this module writes them
        (JSON lines): a worker process's output, taken over without reading it. The buffer owns the file."""
        buf = cls(spill_records)
        file.seek(0, 2)
        buf._file = file
        buf._count = count
        return buf

    def open_lines(self) -> IO[bytes]:
        """A new file object (the caller closes it) reading the records as JSON lines, one array per batch
        (the spill format). A spilled buffer hands out its own file's bytes: nothing is parsed, serialized
        or copied to memory. For a finished buffer (nothing is appended while it is read)."""
        if self._file is None:
            return io.BytesIO(b"".join(dumps(b) + b"\n" for b in list(self._batches)))
        with self._lock:
            self._file.flush()
            raw = os.fdopen(os.dup(self._file.fileno()), "rb")
        raw.seek(0)  # the offset is shared with the buffer, which reads with pread and seeks before writing
        return raw

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


class HeadBuffer(RecordBuffer):
    """An output no step reads: its first ``keep`` records are held (what the run's output sample shows), the
    rest counted and dropped. Its length is every record put into it; reading it gives the first ``keep``. A
    large final output so costs neither memory nor a spill file that nothing would read back."""

    def __init__(self, keep: int):
        super().__init__()
        self.keep = keep
        self._held = 0

    @classmethod
    def holding(cls, keep: int, head: Batch, count: int) -> HeadBuffer:
        """The head a worker process kept of an output of ``count`` records (runs.engine.processes)."""
        buf = cls(keep)
        buf.append(head)
        buf._count = count
        return buf

    def append(self, batch: Batch) -> None:
        if not batch:
            return
        with self._lock:
            self._count += len(batch)
            room = self.keep - self._held
            if room > 0:
                part = batch if len(batch) <= room else batch[:room]
                self._batches.append(part)
                self._held += len(part)


def spill_lines(batch: Batch) -> Iterator[bytes]:
    """A batch as spill-file lines (a JSON array and a newline each). A whole output appended as one batch
    (a join, an aggregate) comes as lines of at most LINE_RECORDS, so a reader holds one line's records at
    a time, not the whole output."""
    if len(batch) <= LINE_RECORDS:
        yield dumps(batch) + b"\n"
        return
    for start in range(0, len(batch), LINE_RECORDS):
        yield dumps(batch[start:start + LINE_RECORDS]) + b"\n"


def read_lines(fd: int, end: int) -> Iterator[Batch]:
    """The batches of a spill file (one JSON array per line) up to byte ``end``, read in 4 MiB chunks with
    pread, which keeps no shared file offset: several readers (successors, worker processes holding the
    same descriptor) can read at once while nobody writes."""

    def chunks() -> Iterator[bytes]:
        offset = 0
        while offset < end:
            chunk = os.pread(fd, min(READ_CHUNK_BYTES, end - offset), offset)
            if not chunk:
                return
            offset += len(chunk)
            yield chunk

    for line in split_lines(chunks(), tail=True):
        if line:
            yield loads(line)


def split_lines(chunks: Iterable[bytes], *, tail: bool) -> Iterator[bytes]:
    """The whole lines of a stream of byte chunks, without their newlines; with ``tail``, what follows the
    last newline too (a file's last line may have none). A line may span many chunks: its pieces are joined
    once its end arrives (growing one bytes object chunk by chunk is quadratic)."""
    pieces: list[bytes] = []
    for chunk in chunks:
        pieces.append(chunk)
        if b"\n" not in chunk:
            continue
        lines = b"".join(pieces).split(b"\n")
        pieces = [lines.pop()]
        yield from lines
    if tail and (rest := b"".join(pieces)):
        yield rest


def rebatch(batches: Iterable[Batch], size: int) -> Iterator[Batch]:
    """The records of ``batches`` in order, as lists of ``size`` (the last one shorter), in linear time.

    A batch of the right size passes through as it is; a larger one is cut into slices (each record is
    copied into exactly one slice, never shifted again), and short ones are gathered.
    """
    if size < 1:
        raise ValueError("batch size must be at least 1")
    pending: Batch = []
    for batch in batches:
        n = len(batch)
        start = 0
        if pending:
            start = size - len(pending)
            pending.extend(batch[:start])
            if len(pending) < size:
                continue
            yield pending
            pending = []
        elif n == size:
            yield batch
            continue
        while n - start >= size:
            yield batch[start:start + size]
            start += size
        if start < n:
            pending = batch[start:] if start else list(batch)
    if pending:
        yield pending


def buffer_of(records: Iterable[Record], spill_records: int = DEFAULT_SPILL_RECORDS) -> RecordBuffer:
    buf = RecordBuffer(spill_records)
    buf.extend(records)
    return buf

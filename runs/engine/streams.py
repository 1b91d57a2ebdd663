"""A step's main output handed to its one consumer while the step still runs. [pure]

A :class:`Stream` is what a streaming producer writes into instead of a :class:`RecordBuffer`, and what
its single consumer reads while the producer runs (see docs/streaming.md for which steps stream). What
it guarantees:

* **Order and completeness.** The consumer reads every batch once, in the order written, then the end.
  If the producer fails, is cancelled or times out (:meth:`fail`), the consumer's next read raises
  :class:`UpstreamFailed`: it never mistakes a broken stream for a short one.
* **Bounded memory, in bytes.** Batches waiting for the consumer are held up to ``budget_bytes``
  (:func:`estimate_bytes`). Past that, while the consumer reads, the producer waits (back-pressure);
  while no consumer reads yet (it has not started), the waiting batches are spilled to a temporary
  file, which the consumer reads first when it starts.
* **Hand-off, not a copy.** A batch the consumer has taken is dropped: the records cross from one step
  to the next in memory, without the spill round trip a finished buffer costs. When the output must
  also survive the hand-off (a durable run saves it, ``keep_outputs`` shows it), ``keep=True`` writes
  every batch into a :class:`RecordBuffer` as well, which every later reader gets.
* **A consumer that leaves** (it failed or was stopped) does not block the producer: what the producer
  writes afterwards goes to the kept copy only.
"""

from __future__ import annotations

import io
import sys
import threading
from collections import deque
from collections.abc import Iterator
from typing import IO

from pipelines.errors import StepCancelled, StepError
from pipelines.records import Batch, dumps
from runs.engine.buffers import DEFAULT_SPILL_RECORDS, RecordBuffer, rebatch

DEFAULT_STREAM_BYTES = 16 << 20
# How often a waiting producer or consumer looks at its cancel flag (seconds).
POLL_SECONDS = 0.05

_OPEN, _ENDED, _FAILED = "open", "ended", "failed"
_NO_READER, _READING, _LEFT = "none", "reading", "left"


class UpstreamFailed(StepError):
    """The step feeding this one through a stream failed or was stopped before the end of its output."""

    def __init__(self, message: str):
        super().__init__(message, retryable=False)


def estimate_bytes(batch: Batch) -> int:
    """What a batch holds in memory, estimated from three of its records (first, middle, last): the
    record's dict and its values, one level into nested lists and dicts. Cheap enough per batch; the
    budget is an estimate, not an exact bound."""
    n = len(batch)
    if not n:
        return 0
    sample = (batch[0], batch[n // 2], batch[-1])
    return int(sum(_record_bytes(r) for r in sample) * n / 3)


def _record_bytes(record) -> int:
    size = sys.getsizeof
    if not isinstance(record, dict):
        return size(record)
    total = size(record)
    for value in record.values():
        total += size(value)
        if isinstance(value, dict):
            total += sum(size(v) for v in value.values())
        elif isinstance(value, list):
            total += sum(size(v) for v in value)
    return total


class Stream:
    def __init__(
        self,
        budget_bytes: int = DEFAULT_STREAM_BYTES,
        *,
        keep: bool = False,
        spill_records: int = DEFAULT_SPILL_RECORDS,
        producer_cancelled: threading.Event | None = None,
        name: str = "",
    ):
        self.budget_bytes = budget_bytes
        self.name = name
        self.kept = RecordBuffer(spill_records) if keep else None
        self._producer_cancelled = producer_cancelled
        self._cond = threading.Condition()
        self._queue: deque[tuple[Batch, int]] = deque()
        self._queued_bytes = 0
        self._overflow: RecordBuffer | None = None  # spilled while no consumer read
        self._count = 0
        self._state = _OPEN
        self._error = ""
        self._reader = _NO_READER
        # Figures for tests and benches: the most bytes queued at once, batches spilled, producer waits.
        self.peak_bytes = 0
        self.spilled_batches = 0
        self.waits = 0

    # --- the producer's side ------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._count

    def append(self, batch: Batch) -> None:
        if not batch:
            return
        size = estimate_bytes(batch)
        with self._cond:
            if self._state != _OPEN:
                raise StepCancelled(f"the output stream was closed: {self._error or self._state}")
            self._count += len(batch)
        if self.kept is not None:
            self.kept.append(batch)
        with self._cond:
            while self._reader == _READING and self._queue and self._queued_bytes + size > self.budget_bytes:
                self.waits += 1
                self._cond.wait(POLL_SECONDS)
                if self._producer_cancelled is not None and self._producer_cancelled.is_set():
                    raise StepCancelled()
                if self._state != _OPEN:
                    raise StepCancelled(f"the output stream was closed: {self._error or self._state}")
            if self._reader == _LEFT:
                return  # nobody reads any more; the kept copy (if any) has it
            if self._reader == _NO_READER and self._queue and self._queued_bytes + size > self.budget_bytes:
                self._spill_queue()
            self._queue.append((batch, size))
            self._queued_bytes += size
            self.peak_bytes = max(self.peak_bytes, self._queued_bytes)
            self._cond.notify_all()

    def _spill_queue(self) -> None:
        if self._overflow is None:
            self._overflow = RecordBuffer(spill_records=0)  # straight to its file
        while self._queue:
            batch, _ = self._queue.popleft()
            self._overflow.append(batch)
            self.spilled_batches += 1
        self._queued_bytes = 0

    def end(self) -> None:
        """The producer wrote everything (and its outputs are saved, when they must be)."""
        with self._cond:
            if self._state == _OPEN:
                self._state = _ENDED
            self._cond.notify_all()

    def fail(self, message: str) -> None:
        """The producer failed, was stopped or timed out: the consumer must not take what it got for all."""
        with self._cond:
            if self._state == _OPEN:
                self._state, self._error = _FAILED, message
                self._drop_unread()
            self._cond.notify_all()

    @property
    def failed(self) -> bool:
        return self._state == _FAILED

    # --- the consumer's side ------------------------------------------------------------------------

    def reader(self, cancelled: threading.Event | None = None) -> StreamReader:
        """The consumer's input: it counts as reading from now on (the executor calls this as it launches
        the consumer; a consumer that stops before reading is told by :meth:`leave`)."""
        return StreamReader(self, cancelled)

    def consume(self, cancelled: threading.Event | None = None) -> Iterator[Batch]:
        """The batches as written, once, while they are produced (the consumer counts as reading from
        this call on, so the producer waits for it rather than spill). Raises :class:`UpstreamFailed` when the
        producer fails, :class:`StepCancelled` when ``cancelled`` is set while waiting."""
        with self._cond:
            if self._reader != _NO_READER:
                raise RuntimeError(f"the output of step '{self.name}' is read by one consumer, once")
            self._reader = _READING
            overflow, self._overflow = self._overflow, None  # frozen: nothing spills once reading
        return self._read(overflow, cancelled)

    def _read(self, overflow: RecordBuffer | None, cancelled: threading.Event | None) -> Iterator[Batch]:
        finished = False
        try:
            if overflow is not None:
                for batch in overflow.batches():
                    self._raise_if_failed()
                    yield batch
                overflow.close()
            while True:
                with self._cond:
                    while not self._queue and self._state == _OPEN and self._reader != _LEFT:
                        self._cond.wait(POLL_SECONDS)
                        if cancelled is not None and cancelled.is_set():
                            raise StepCancelled()
                    self._raise_if_failed()
                    if self._reader == _LEFT:  # the consumer gave up (the worker process it fed failed)
                        raise StepCancelled("the step stopped reading its input")
                    if not self._queue:
                        finished = True
                        return
                    batch, size = self._queue.popleft()
                    self._queued_bytes -= size
                    self._cond.notify_all()
                yield batch
        finally:
            if overflow is not None:
                overflow.close()
            if not finished:
                self.leave()

    def _raise_if_failed(self) -> None:
        if self._state == _FAILED:
            raise UpstreamFailed(f"step '{self.name}' did not complete: {self._error}")

    def leave(self) -> None:
        """The consumer stops reading (it failed or was stopped): the producer is not held back by it."""
        with self._cond:
            if self._reader != _LEFT:
                self._reader = _LEFT
                self._drop_unread()
            self._cond.notify_all()

    def _drop_unread(self) -> None:
        self._queue.clear()
        self._queued_bytes = 0
        if self._overflow is not None:
            self._overflow.close()
            self._overflow = None

    # --- read like a finished RecordBuffer (persist, keep_outputs, a consumer that starts late) -------

    @property
    def spilled(self) -> bool:
        return self.kept.spilled if self.kept is not None else self._overflow is not None

    def batches(self, size: int | None = None) -> Iterator[Batch]:
        """The kept copy (``keep=True``; complete once the producer ended). Without one, the batches no
        consumer has taken (a reader of an unconsumed output), once."""
        if self.kept is None and self._reader == _NO_READER:
            yield from (rebatch(self.consume(), size) if size else self.consume())
            return
        if self.kept is None:
            raise RuntimeError(f"the output of step '{self.name}' was handed over to its consumer and not kept")
        yield from self.kept.batches(size)

    def records(self):
        for batch in self.batches():
            yield from batch

    def to_list(self) -> Batch:
        return [r for b in self.batches() for r in b]

    def head(self, n: int) -> Batch:
        if self.kept is not None:
            return self.kept.head(n)
        out: Batch = []
        for batch in self._unread():
            out.extend(batch[: n - len(out)])
            if len(out) >= n:
                break
        return out

    def open_lines(self) -> IO[bytes]:
        if self.kept is not None:
            return self.kept.open_lines()
        return io.BytesIO(b"".join(dumps(b) + b"\n" for b in self._unread()))

    def _unread(self) -> Iterator[Batch]:
        """What no consumer has taken yet, without taking it (a paused run saving its outputs)."""
        with self._cond:
            overflow, queued = self._overflow, [b for b, _ in self._queue]
        if overflow is not None:
            yield from overflow.batches()
        yield from queued

    def close(self) -> None:
        with self._cond:
            if self._state == _OPEN:
                self._state, self._error = _FAILED, "closed"
            self._reader = _LEFT
            self._drop_unread()
            self._cond.notify_all()
        if self.kept is not None:
            self.kept.close()



def cut(batches: Iterator[Batch], size: int) -> Iterator[Batch]:
    """Batches of at most ``size``: a larger one is sliced, a shorter one passes on at once (a consumer
    must not wait for more records to fill a batch its producer has not written yet)."""
    for batch in batches:
        if len(batch) <= size:
            yield batch
        else:
            yield from (batch[i:i + size] for i in range(0, len(batch), size))


class StreamReader:
    """What a streamed consumer gets as its one input buffer (:class:`runs.engine.context.StepInput`)."""

    def __init__(self, stream: Stream, cancelled: threading.Event | None):
        self.stream = stream
        # Reading from now on: the producer waits for this consumer (not spills) while it starts up.
        self._batches = stream.consume(cancelled)

    def __len__(self) -> int:
        return len(self.stream)  # so far

    def batches(self, size: int | None = None) -> Iterator[Batch]:
        yield from (cut(self._batches, size) if size else self._batches)

    def records(self):
        for batch in self.batches():
            yield from batch

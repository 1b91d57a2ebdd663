"""A worker process fed while its input is produced (see :mod:`runs.engine.processes`). [pure]

A TRANSFORM that may go to a worker process reads its producer's output as a stream, like any streamed
consumer (:mod:`runs.engine.stream_plan`): it starts with its producer and takes no slot of
``maxConcurrentSteps`` of its own while the producer runs, so the child computes on another core while
the parent still extracts (waiting for the whole input kept one core idle while the parent's threads
extracted: about a fifth of the goal-8 bench's wall time).

Whether the step goes to a worker process depends on its input's size, which a stream does not know
before it ends: :func:`read_ahead` takes batches off the stream until it holds ``process_min_records``
records (the most a finished buffer holds in memory before it spills) or the stream ends. The records
read ahead go to the step first, wherever it runs (:class:`ReadAhead`).

In a worker process, the step's input is a pipe that :class:`Feed` writes from a thread of its own as the
producer produces: each batch as one JSON line (the spill format), then :data:`END_LINE`. The child reads
to that line (:func:`runs.engine.process_child.read_pipe`); a pipe that closes without it is a broken
input, which the child never takes for a short one. Every line also goes to a file (the tee): a step the
child gives back (an operator reaches for what only the parent holds) runs again in a thread from its
first record, reading the tee, then the rest of the stream (:meth:`Feed.replay`).
"""

from __future__ import annotations

import fcntl
import itertools
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator

from pipelines.errors import StepError
from pipelines.records import Batch
from runs.engine.buffers import RecordBuffer, spill_lines
from runs.engine.context import StepInput
from runs.engine.streams import StreamReader, cut

END_LINE = b"end\n"  # not a JSON array: no batch line can look like it
PIPE_BYTES = 1 << 20


class ReadAhead:
    """A streamed input whose first batches were taken already: those, then the rest of the stream."""

    def __init__(self, reader: StreamReader, rest: Iterator[Batch], first: Iterable[Batch], ended: bool,
                 owned: RecordBuffer | None = None):
        self.reader, self.rest, self.first, self.ended = reader, rest, first, ended
        self._owned = owned  # the tee read back, closed once read

    def __len__(self) -> int:
        return len(self.reader)  # the stream's records so far: all of them once it ended

    def batches(self, size: int | None = None) -> Iterator[Batch]:
        first, self.first = self.first, ()
        try:
            for batch in first:
                yield from cut([batch], size) if size else (batch,)
        finally:
            if self._owned is not None:
                self._owned.close()
        # A for, not ``yield from``: a reader that stops early (the feed, told to stop) leaves the rest of
        # the stream to the next reader instead of closing it.
        for batch in self.rest:
            yield from cut([batch], size) if size else (batch,)

    def records(self) -> Iterator:
        for batch in self.batches():
            yield from batch


def read_ahead(inputs: StepInput, limit: int) -> ReadAhead | None:
    """Reads a streamed input (the step's one buffer, a StreamReader) until it holds ``limit`` records or
    ends; the step's input becomes the :class:`ReadAhead`. None (nothing read) for any other input."""
    if len(inputs.buffers) != 1 or not isinstance(inputs.buffers[0], StreamReader):
        return None
    reader = inputs.buffers[0]
    rest = reader.batches()
    held: list[Batch] = []
    count = 0
    ended = True
    for batch in rest:
        held.append(batch)
        count += len(batch)
        if count >= limit:
            ended = False
            break
    ahead = ReadAhead(reader, rest, held, ended)
    inputs.buffers = [ahead]
    return ahead


class Feed:
    """Writes a read-ahead input into the pipe a worker process reads, and into the tee, in a thread."""

    def __init__(self, source: ReadAhead, name: str):
        self.source = source
        read_fd, write_fd = os.pipe()
        try:  # room for several batches: the thread writes without waiting for the child at every line
            fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        except (AttributeError, OSError):  # not Linux, or over /proc/sys/fs/pipe-max-size
            pass
        self.read_fd = read_fd  # handed to the child; closed here once the child has its copy
        self._pipe = os.fdopen(write_fd, "wb")
        self._tee = tempfile.TemporaryFile(prefix="datahub-", suffix=".ndjson")
        self._teed = 0
        self._unsent: list[Batch] = []  # taken from the stream, not in the tee (it did not serialize)
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"datahub-feed-{name}", daemon=True)

    def child_has_it(self) -> None:
        os.close(self.read_fd)  # the child is the pipe's only reader: if it dies, a write fails at once

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            for batch in self.source.batches():
                try:
                    line = b"".join(spill_lines(batch))  # whole before any of it is teed or sent
                except TypeError as exc:
                    self._unsent.append(batch)
                    raise StepError(f"a record of the step's input is not JSON ({exc}): the worker process "
                                    "running the step reads JSON", retryable=False) from exc
                self._tee.write(line)
                self._teed += len(batch)
                if self._stop.is_set():
                    return
                self._pipe.write(line)
            self._pipe.write(END_LINE)
        except BrokenPipeError:
            pass  # the child ended (done early, failed or killed): the step's thread says why
        except BaseException as exc:  # the producer failed, the step was cancelled, a record is not JSON
            self.error = exc
        finally:
            try:
                self._pipe.close()
            except OSError:  # a broken pipe flushing the last line
                pass

    def stop(self) -> None:
        """Ends the thread: it stops at its next batch, or as soon as the stream fails or is left."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def abandon(self) -> None:
        """The step failed or stopped: the thread ends now, without waiting for the producer's next batch."""
        if self._thread.is_alive():
            self.source.reader.stream.leave()
            self.stop()

    def replay(self) -> ReadAhead:
        """After :meth:`stop`: the whole input again for a thread, the records already sent (the tee) first."""
        self._tee.flush()
        sent = RecordBuffer.adopt(self._tee, self._teed)
        self._tee = None
        first = itertools.chain(sent.batches(), self._unsent)
        return ReadAhead(self.source.reader, self.source.rest, first, self.source.ended, owned=sent)

    def close(self) -> None:
        """After the thread ended (or never started: the write end is still open then)."""
        try:
            self._pipe.close()
        except OSError:  # a broken pipe flushing what a thread that never ran could not have written
            pass
        if self._tee is not None:
            self._tee.close()

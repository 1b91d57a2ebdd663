"""The child's side of a step in a worker process (see :mod:`runs.engine.processes`). [pure]

What the parent hands over (:class:`Job`, file descriptors that multiprocessing duplicates into the child),
what the child does with it (:func:`child_main`: run the step's handler over its input files, write the
output file, report progress, send back counts, errors and the outcome), and how an exception crosses back
(:func:`portable`, :func:`rebuild`). The child imports nothing of the parent's side.
"""

from __future__ import annotations

import gc
import os
import pickle
import signal
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing import reduction

from pipelines.definition import Definition, StepSpec
from pipelines.errors import StepError
from pipelines.records import Batch, Record, loads
from pipelines.registry import operators as operator_registry
from runs.engine.buffers import READ_CHUNK_BYTES, RecordBuffer, read_lines, rebatch, split_lines
from runs.engine.context import RunOptions, StepContext, StepInput
from runs.engine.process_feed import END_LINE

_END = END_LINE.rstrip(b"\n")
PROGRESS_SECONDS = 1.0  # how often a child reports its records in, out and failed (the run's live counters)
YOUNG_COLLECTION_EVERY = 20_000  # allocations between the child's young-generation collections


def pickled(value) -> bytes | None:
    try:
        return pickle.dumps(value)
    except Exception:  # PicklingError, AttributeError ("Can't pickle local object"), TypeError
        return None


class NeedsParent(BaseException):
    """Raised in a child when an operator reaches for what only the parent holds. A BaseException, so that
    no per-record ``except Exception`` takes it for one record's failure."""


class ParentOnly:
    """Stands in the child for the run's HTTP client, storage, secrets, connections or clock."""

    def __init__(self, what: str):
        self._what = what

    def __getattr__(self, name: str):
        if name.startswith("__"):  # probes (copy, pickle, hasattr of protocols) are not uses
            raise AttributeError(name)
        raise NeedsParent(self._what)

    def __call__(self, *args, **kwargs):
        raise NeedsParent(self._what)


@dataclass
class Job:
    """What a child is given (pickled into it when it starts)."""

    handler: type  # the StepHandler class the child runs the step with (imported there by name)
    step: StepSpec
    batch_size: int
    options: dict
    checkpoint: dict
    attempt: int
    parent_only: dict  # option name -> what it is, for options the child gets a stand-in for
    custom: list[bytes]  # pickled registry entries of the custom operators the step uses
    # (descriptor, bytes, records) per input, in edge order; (pipe, None, None): runs.engine.process_feed
    inputs: list[tuple[Fd, int | None, int | None]]
    output: Fd | None  # the file the parent adopts as the step's output; None when no step reads it
    errors: Fd
    output_head: int | None = None  # no step reads the output: the child keeps this many records, counts all


class Fd:
    """A file descriptor that multiprocessing duplicates into the child when the job is pickled."""

    def __init__(self, fd: int):
        self.fd = fd

    def __reduce__(self):
        return rebuild_fd, (reduction.DupFd(self.fd),)


def rebuild_fd(dup) -> Fd:
    return Fd(dup.detach())



class _FileInput:
    """One input of the step in the child (duck-types a RecordBuffer): a spill file read with pread, or
    (``end`` None) the pipe the parent writes while the step's producer runs (runs.engine.process_feed)."""

    def __init__(self, fd: int, end: int | None, count: int | None):
        self.fd, self.end, self.count = fd, end, count

    def __len__(self) -> int:
        return self.count or 0  # a pipe's count is known at its end only; the child does not ask for it

    def batches(self, size: int | None = None) -> Iterator[Batch]:
        lines = read_pipe(self.fd) if self.end is None else read_lines(self.fd, self.end)
        yield from rebatch(lines, size or 1000)

    def records(self) -> Iterator[Record]:
        for batch in self.batches():
            yield from batch


def read_pipe(fd: int) -> Iterator[Batch]:
    """The batches the parent writes into the pipe (one JSON array per line) up to its end line. A pipe that
    closes before that line broke off (the producer failed, the step was stopped): never a short input."""
    for line in split_lines(iter(lambda: os.read(fd, READ_CHUNK_BYTES), b""), tail=False):
        if line == _END:
            return
        yield loads(line)
    raise StepError("the step's input broke off before its end", retryable=True)


def _exit_with_parent(conn) -> None:
    """Ends the child when the parent closes the pipe or dies: the child never outlives its run."""
    try:
        conn.recv_bytes()
    except (EOFError, OSError):
        pass
    os._exit(3)


def child_main(conn, job: Job) -> None:
    # A Ctrl-C is the parent's to handle (it stops the child); SIGTERM is how the parent stops it, even
    # when the parent ignores SIGTERM itself (manage.py worker's processes do, and forks inherit that).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    threading.Thread(target=_exit_with_parent, args=(conn,), daemon=True).start()
    try:
        from pipelines.plugins import load_plugins

        load_plugins(entry_point_group=None)
        for data in job.custom:
            operator_registry.add(pickle.loads(data), replace=True)
    except BaseException as exc:
        conn.send(("unavailable", f"a custom operator does not load in a worker process: {type(exc).__name__}: {exc}"))
        return
    # What the child inherited from the fork server (modules, code) and was just given lives as long as the
    # child: frozen out of the collector, whose full passes then walk only the step's own objects and never
    # write into the pages shared with the server (copy-on-write). The chain ran about 20 % slower without.
    gc.freeze()
    # Every record is a new container: at the default 700 allocations between young collections, a chain
    # spends about 5 % of its time in them. A child is short-lived and its records hold no cycles; the
    # rarer collections still reclaim what does (a failed record's exception and traceback).
    gc.set_threshold(YOUNG_COLLECTION_EVERY, *gc.get_threshold()[1:])
    conn.send(("ready",))
    output = os.fdopen(job.output.fd, "rb+") if job.output is not None else None
    ctx = _child_context(job, output)
    inputs = StepInput([_FileInput(fd.fd, end, count) for fd, end, count in job.inputs])
    sending = threading.Lock()
    done = threading.Event()
    threading.Thread(target=_report_progress, args=(conn, sending, done, inputs, ctx), daemon=True).start()
    message: tuple
    try:
        outcome = job.handler().run(job.step, inputs, ctx)
        summary = {"records_in": outcome.records_in, "records_out": outcome.records_out, "dropped": outcome.dropped}
        if output is not None:
            output.flush()
        else:  # the head the run's output sample shows goes back with the counts: nothing to write
            summary["head"] = outcome.outputs[None].to_list()
            if pickled(summary["head"]) is None:  # a thread's head holds any value; the pipe cannot
                raise NeedsParent("puts out values that do not pickle")
        message = ("done", summary, None)
    except NeedsParent as exc:
        message = ("needs-parent", {}, str(exc))
    except BaseException as exc:
        message = ("failed", {}, portable(exc))
    done.set()
    if message[0] != "needs-parent":
        with os.fdopen(job.errors.fd, "wb") as f:
            pickle.dump((ctx.errors, ctx.attempts, ctx.error_count), f, protocol=pickle.HIGHEST_PROTOCOL)
        message[1].update(warnings=ctx.warnings, checkpoint=ctx.checkpoint)
    message[1]["cpu"] = sum(os.times()[:2])
    with sending:
        conn.send(message)


def _report_progress(conn, sending: threading.Lock, done: threading.Event, inputs: StepInput, ctx) -> None:
    """Sends the step's records in, out and failed every PROGRESS_SECONDS until the step ends."""
    while not done.wait(PROGRESS_SECONDS):
        out = ctx.output
        with sending:
            if done.is_set():
                return
            conn.send(("progress", inputs.consumed, len(out) if out is not None else 0, ctx.error_count))


def _child_context(job: Job, output) -> StepContext:
    """The step's context in the child: its main output is the parent's output file, or, when no step reads
    it, a head like the one a thread would hold."""
    stand_ins = {name: ParentOnly(what) for name, what in job.parent_only.items()}
    step_outputs = stand_ins.pop("step_outputs", None)
    options = RunOptions(**job.options, **stand_ins)
    definition = Definition(steps=(job.step,), context={"throughput": {"batchSize": job.batch_size}})
    ctx = StepContext(step=job.step, definition=definition, options=options, checkpoint=job.checkpoint,
                      attempt=job.attempt, step_outputs=step_outputs)
    if output is not None:
        ctx.output = RecordBuffer.adopt(output, 0, options.spill_records)
    else:
        ctx.output_head = job.output_head
    return ctx


def portable(exc: BaseException) -> tuple:
    """What the parent needs to raise ``exc`` again (:func:`_rebuild`): its class, args and attributes, and
    the child's traceback, which goes with it as a note (the executor logs it for unexpected errors)."""
    note = "in the worker process:\n" + "".join(traceback.format_exception(exc))
    portable = (type(exc), exc.args, dict(getattr(exc, "__dict__", {})), note)
    if pickled(portable) is None:
        portable = (None, (f"{type(exc).__name__}: {exc}",), {}, note)
    return portable


def rebuild(portable: tuple) -> BaseException:
    """The child's exception, made without calling its ``__init__`` (whose arguments need not be its
    ``args``: OperatorFailed); a StepError with the message a thread's failure shows when it could not
    be sent."""
    cls, args, state, note = portable
    if cls is None:
        exc: BaseException = StepError(args[0], retryable=True)
    else:
        exc = cls.__new__(cls, *args)
        exc.args = args
        exc.__dict__.update(state)
    exc.__notes__ = [note]
    return exc

"""CPU-heavy TRANSFORM steps in worker processes, so parallel branches use every core. [pure]

Steps run in threads of one interpreter, which share one lock (the GIL): four CPU-bound branches run no
faster in parallel than one after another. A TRANSFORM step whose operators are plain computation runs
instead in a worker process of its own, fed through the spill files the buffers already write:

* its input buffers' files are handed to the child as descriptors (a buffer held in memory is written to
  a temporary file first); the child reads them with pread, so successors and other children may read
  the same file at once. A step that streams from its producer is fed through a pipe instead, while the
  producer runs (:mod:`runs.engine.process_feed`);
* the child runs the step exactly as a thread would (the same :class:`runs.engine.handlers.TransformHandler`,
  per-record retry and all), writing its output as JSON lines into a temporary file the parent created;
  the parent adopts that file as the step's output buffer without reading it
  (:meth:`runs.engine.buffers.RecordBuffer.adopt`). An output no step reads stays in the child but for
  its head (``RunOptions.output_head``), which comes back with the counts;
* record errors and retried attempts (each record as it entered the step) go to a second file, pickled;
  counts, warnings and the operators' checkpoint come back over the pipe; an exception comes back as
  itself when it pickles, else as a StepError with the same message.

When (:func:`why_not`, all must hold): ``processes`` is not "off" in the run options (setting
``DATAHUB_STEP_PROCESSES``) nor in ``context.parallelExecution.processes``; parallel execution is on with
``maxConcurrentSteps`` of at least 2 (only then can another step compete for the interpreter); the machine
has at least 2 CPUs; the input holds at least ``process_min_records`` records (setting
``DATAHUB_STEP_PROCESS_MIN_RECORDS``, 50,000: below that a process start and the JSON round trip of a
buffer held in memory cost more than they save); and every operator can run in a child (:data:`PARENT_ONLY`,
and a custom operator whose registration pickles, i.e. whose function is importable by name).

Falling back to a thread (:class:`Unavailable`, raised before the step has any effect): an operator
registered with a lambda or a local function (it cannot be pickled); a custom operator's module that does
not import in a clean interpreter (it needs Django, say); input records that are not JSON. An operator that
reaches, in the child, for what only the parent holds (the run's HTTP client, storage, secrets,
connections, other steps' outputs, a run clock that does not pickle) raises ``NeedsParent`` there
(:mod:`runs.engine.process_child`, the child's side); the child's work is thrown away and the step runs
again in a thread, from its start.

Cancellation, timeouts, drains: the step's thread in the parent waits on the child and, as soon as the
step is told to stop (``ctx.cancelled``, which the executor sets for a cancel, a timeout, FAIL_FAST or a
drain), terminates it (SIGTERM, then SIGKILL) and waits for it to end. A child whose parent dies sees its
pipe close and exits: no process outlives its run.

Why ``forkserver``: forking the worker itself would copy a process with threads (other steps, the
heartbeat, Django's database connections) whose locks may be held mid-operation, and the child would share
the parent's database sockets. ``spawn`` is safe but pays an interpreter start and the engine's imports
for every step (2.3 s a child on the 2-CPU machine at load 13). The fork server is a clean single-threaded
interpreter, started once per worker process with the engine preloaded (4.3 s there, once); each step's
child is a fork of it (17 ms there), which is both safe and cheap. Where there is no fork server (not
POSIX), ``spawn``. As with any multiprocessing start method but fork, the parent's main script is imported
in each child under the name ``__mp_main__``: a script that runs pipelines guards its top level with
``if __name__ == "__main__":`` (manage.py, pytest and the bench scripts do).

Live progress: the child reports its records in, out and failed about once a second; the parent shows
them as the step's live counters (``inputs.consumed``, ``ctx.output``, ``ctx.error_count``).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import tempfile
import threading
from multiprocessing.connection import wait
from typing import Any

from pipelines.definition import Definition, StepSpec
from pipelines.errors import StepCancelled, StepError
from pipelines.records import dumps
from pipelines.registry import Registry
from pipelines.registry import operators as operator_registry
from runs.engine.buffers import HeadBuffer, RecordBuffer
from runs.engine.context import RunOptions, StepContext, StepInput, StepOutcome
from runs.engine.process_child import Fd, Job, child_main, pickled, rebuild
from runs.engine.process_feed import Feed, ReadAhead

log = logging.getLogger(__name__)

# Built-in operators that need what only the parent process holds: they keep their step in a thread.
PARENT_ONLY: dict[str, str] = {
    "httpLookup": "makes HTTP requests with the run's client",
    "multiJoin": "reads another step's output",
    "imageResize": "reads and writes the run's file storage",
    "imageConvert": "reads and writes the run's file storage",
    "pdfGenerate": "reads and writes the run's file storage",
}
PROCESS_MODES = ("auto", "off")
# Modules the fork server imports once, so that each child starts with the engine loaded.
PRELOAD = ["pipelines.operators", "runs.engine.handlers", "runs.engine.process_child"]
STOP_GRACE_SECONDS = 2.0
DEAD_JOIN_SECONDS = 10.0
POLL_SECONDS = 0.05

_live: set[int] = set()
_live_lock = threading.Lock()
_child_cpu = [0.0]  # CPU seconds the children of this process spent (they are the fork server's to reap)
_context_lock = threading.Lock()
_context: Any = None


class Unavailable(Exception):
    """The step cannot run in a worker process; nothing has happened yet: run it in a thread."""


def live_pids() -> set[int]:
    """The worker processes running now (for tests and for an operator's curiosity)."""
    with _live_lock:
        return set(_live)


def child_cpu_seconds() -> float:
    """CPU time (user + system) the worker processes started from this process have reported so far: the
    operating system counts it for the fork server, not for this process (benchmarks add it)."""
    with _live_lock:
        return _child_cpu[0]


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# --- deciding ---------------------------------------------------------------------------------------


def why_not(step: StepSpec, inputs: StepInput, ctx: StepContext, items: list,
            registry: Registry = operator_registry) -> str | None:
    """None when the step should run in a worker process; else the reason it runs in a thread."""
    options = ctx.options
    reason = why_not_any_input(step, ctx.definition, options, items, registry)
    if reason is not None:
        return reason
    if len(inputs) < options.process_min_records:
        return f"input of {len(inputs)} records, under {options.process_min_records}"
    if not all(hasattr(buf, "spill_file") or isinstance(buf, ReadAhead) for buf in inputs.buffers):
        return "an input is not a finished record buffer nor a stream read ahead"
    if getattr(ctx, "output", None) is not None:
        return "the step streams its output into its consumer"
    return None


def why_not_any_input(step: StepSpec, definition: Definition, options: RunOptions, items: list,
                      registry: Registry = operator_registry) -> str | None:
    """The reasons a step runs in a thread whatever its input; None: a large enough input goes to a worker
    process (such a step writes no stream: runs.engine.stream_plan; it may read one: runs.engine.process_feed)."""
    parallel = definition.parallel
    if options.processes == "off" or parallel.processes == "off":
        return "worker processes are switched off"
    if not (parallel.enabled and definition.graph_mode and parallel.max_concurrent_steps >= 2):
        return "parallel execution is off: no other step competes for the interpreter"
    if cpu_count() < 2:
        return "one CPU"
    for index, item in enumerate(items):
        code = item.get("op") if isinstance(item, dict) else None
        if code not in registry:
            return f"operator {index} is not registered"  # the thread reports it as a config error
        if code in PARENT_ONLY:
            return f"operator {index} ('{code}') {PARENT_ONLY[code]}"
        if not _reaches_child(registry.get(code)):
            return f"operator {index} ('{code}') cannot be sent to a worker process: its function is not " \
                   "importable by name (a lambda or a local function)"
    return None


def _reaches_child(entry) -> bool:
    """Whether the child will know the operator: its registration pickles (by reference: the child imports
    the module that defines it and registers it again), or it is one of pipelines' own, which the child
    imports anyway (``first`` and ``last`` are built by a local factory and do not pickle)."""
    if pickled(entry) is not None:
        return True
    spec = entry.impl
    functions = [f for f in (spec.build, spec.apply, spec.each, spec.finish) if f is not None]
    return entry.builtin and all(getattr(f, "__module__", "").startswith("pipelines.operators") for f in functions)


# --- the parent's side ---------------------------------------------------------------------------------


def _mp_context():
    global _context
    with _context_lock:
        if _context is None:
            if "forkserver" in multiprocessing.get_all_start_methods():
                _context = multiprocessing.get_context("forkserver")
                _context.set_forkserver_preload(PRELOAD)
            else:
                _context = multiprocessing.get_context("spawn")
        return _context


def run_step(handler: type, step: StepSpec, inputs: StepInput, ctx: StepContext, items: list) -> StepOutcome:
    """Run ``handler`` over the step in a worker process; the outcome and the record errors land in ``ctx``
    as a thread's would. Raises :class:`Unavailable` (nothing done) when it cannot."""
    opened: list = []
    # An output no step reads stays in the child but for its head (HeadBuffer), which comes back with the
    # counts: the child neither serializes nor writes it, as a thread would not.
    output = tempfile.TemporaryFile(prefix="datahub-", suffix=".ndjson") if ctx.output_head is None else None
    errors = tempfile.TemporaryFile(prefix="datahub-errors-")
    proc = conn = None
    adopted = replayed = False
    progress = _Progress(inputs, ctx)
    # A streamed input (read ahead: runs.engine.process_feed) goes to the child through a pipe, as produced.
    feed = Feed(inputs.buffers[0], step.key) if isinstance(inputs.buffers[0], ReadAhead) else None
    try:
        job = _job(handler, step, inputs, ctx, items, opened, output, errors, feed)
        mp = _mp_context()
        conn, child_conn = mp.Pipe()
        process = mp.Process(target=child_main, args=(child_conn, job), name=f"datahub-step-{step.key}", daemon=True)
        try:
            process.start()
        except Exception as exc:  # the fork server cannot start, too many descriptors...
            raise Unavailable(f"the worker process could not start: {exc}") from exc
        finally:
            child_conn.close()
            if feed is not None:
                feed.child_has_it()
        proc = process  # started: from here on it is stopped and waited for, whatever happens
        with _live_lock:
            _live.add(proc.pid)
        try:
            first = _receive(proc, conn, ctx, progress)
        except StepError as exc:
            if isinstance(exc, StepCancelled):
                raise
            raise Unavailable(str(exc)) from exc
        if first[0] == "unavailable":
            raise Unavailable(first[1])
        if feed is not None:  # only now: a child that could not load its operators leaves the stream untouched
            feed.start()
        kind, summary, exc = _receive(proc, conn, ctx, progress)
        with _live_lock:
            _child_cpu[0] += summary.get("cpu", 0.0)
        if kind == "needs-parent":
            if feed is not None:  # the thread reads what the child was sent, then the rest of the stream
                feed.stop()
                inputs.buffers = [feed.replay()]
                replayed = True
            raise Unavailable(f"an operator {exc} in the worker process")
        # What broke the child's input (the producer failed, a record is not JSON), when something did: the
        # child itself only saw its pipe close early. Set before that close, so known by now.
        broken = feed.error if feed is not None else None
        progress.reset()
        _take_errors(errors, ctx)
        ctx.warnings.extend(summary["warnings"][: max(0, 1000 - len(ctx.warnings))])
        ctx.checkpoint.clear()
        ctx.checkpoint.update(summary["checkpoint"])
        if kind == "failed":
            raise broken or rebuild(exc)
        proc.join(STOP_GRACE_SECONDS)  # it has said all; let it end on its own
        if output is None:
            main = HeadBuffer.holding(ctx.output_head, summary["head"], summary["records_out"])
        else:
            main = RecordBuffer.adopt(output, summary["records_out"], ctx.options.spill_records)
        outcome = StepOutcome({None: main}, summary["records_in"], summary["records_out"], summary["dropped"])
        ctx.output = main
        inputs.consumed = summary["records_in"]
        adopted = True
        return outcome
    finally:
        if not adopted:
            progress.reset()
        if proc is not None:
            _stop(proc)
        if conn is not None:
            conn.close()
        for f in opened:
            f.close()
        errors.close()
        if not adopted and output is not None:
            output.close()
        if feed is not None:
            if not replayed:
                feed.abandon()
            feed.close()


def _job(handler, step, inputs, ctx, items, opened: list, output, errors, feed: Feed | None) -> Job:
    options: RunOptions = ctx.options
    plain = {"dry_run": options.dry_run, "record_limit": options.record_limit, "pipeline_code": options.pipeline_code,
             "run_id": options.run_id, "spill_records": options.spill_records,
             "max_record_errors": options.max_record_errors, "processes": "off"}
    parent_only = {}
    for name, what in (("http", "makes HTTP requests"), ("storage", "reads or writes the run's storage"),
                       ("secret", "reads a secret"), ("connection", "reads a connection")):
        if getattr(options, name) is not None:
            parent_only[name] = what
    if pickled(options.now) is not None:
        plain["now"] = options.now
    else:
        parent_only["now"] = "reads the run's clock"
    if ctx.step_outputs is not None:
        parent_only["step_outputs"] = "reads another step's output"
    # Every registration that pickles is sent, plugins' too (a plugin's decorator may call its operators
    # built in): the child registers them again over what it imported itself.
    registrations = [pickled(operator_registry.get(item["op"])) for item in items]
    custom = [data for data in registrations if data is not None]
    sources = []
    for buf in inputs.buffers:
        if feed is not None:
            sources.append((Fd(feed.read_fd), None, None))
            continue
        spilled = buf.spill_file()
        if spilled is None:  # held in memory: written out once, in the spill format
            f = tempfile.TemporaryFile(prefix="datahub-", suffix=".ndjson")
            opened.append(f)
            try:
                for batch in buf.batches():
                    f.write(dumps(batch) + b"\n")
            except TypeError as exc:
                raise Unavailable(f"an input record is not JSON ({exc})") from exc
            f.flush()
            spilled = (f.fileno(), f.tell())
        sources.append((Fd(spilled[0]), spilled[1], len(buf)))
    job = Job(handler, step, ctx.batch_size, plain, dict(ctx.checkpoint), ctx.attempt, parent_only, custom,
              sources, Fd(output.fileno()) if output is not None else None, Fd(errors.fileno()), ctx.output_head)
    if pickled({**plain, "checkpoint": job.checkpoint, "step": step}) is None:
        raise Unavailable("the step's settings cannot be sent to a worker process")
    return job


class _Progress:
    """The child's counters shown as the step's live ones (the executor reads ``inputs.consumed``,
    ``len(ctx.output)`` and ``ctx.error_count``), taken back before the step's real outcome lands."""

    def __init__(self, inputs: StepInput, ctx: StepContext):
        self.inputs, self.ctx = inputs, ctx
        self.consumed, self.errors = getattr(inputs, "consumed", 0), ctx.error_count

    def update(self, consumed: int, produced: int, errors: int) -> None:
        self.inputs.consumed = self.consumed + consumed
        self.ctx.output = _Count(produced)
        self.ctx.error_count = self.errors + errors

    def reset(self) -> None:
        self.inputs.consumed = self.consumed
        if isinstance(self.ctx.output, _Count):
            self.ctx.output = None
        self.ctx.error_count = self.errors


class _Count:
    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n


def _receive(proc, conn, ctx: StepContext, progress: _Progress) -> tuple:
    """The child's next message but progress; stops the child when the step is told to stop or the child
    dies."""
    while True:
        if ctx.cancelled.is_set():
            _stop(proc)
            raise StepCancelled()
        ready = wait([conn, proc.sentinel], timeout=POLL_SECONDS)
        if conn in ready:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                pass  # the child ended without a word: reported below
            else:
                if message[0] != "progress":
                    return message
                progress.update(*message[1:])
                continue
        elif proc.sentinel not in ready:
            continue
        proc.join(DEAD_JOIN_SECONDS)  # it is gone; its exit status comes through the fork server
        raise StepError(f"the worker process running the step ended unexpectedly (exit code {proc.exitcode})",
                        retryable=True)


def _stop(proc) -> None:
    """Terminate the child if it still runs, and wait for it: no process is left behind."""
    try:
        if proc.is_alive():
            proc.terminate()
            proc.join(STOP_GRACE_SECONDS)
            if proc.is_alive():
                proc.kill()
        proc.join()
    finally:
        with _live_lock:
            _live.discard(proc.pid)


def _take_errors(errors, ctx: StepContext) -> None:
    errors.seek(0)
    try:
        failed, attempts, count = pickle.load(errors)
    except EOFError:  # the child wrote none (it failed before the step ran)
        return
    ctx.errors.extend(failed[: max(0, ctx.options.max_record_errors - len(ctx.errors))])
    ctx.attempts.extend(attempts[: max(0, ctx.options.max_record_errors - len(ctx.attempts))])
    ctx.error_count += count

"""The graph executor: runs a definition's steps in dependency order, in parallel when asked. [pure]

One engine serves both modes: without edges the steps form a chain in list order; with edges the graph
decides. The main thread owns all state and all events; every step attempt runs in a thread of its own
and reports back through a queue, so the main thread can enforce ``timeoutMs``, honour cancellation and
write heartbeats while steps work.

Scheduling states per step: PENDING → RUNNING → COMPLETED | FAILED | PAUSED, or SKIPPED / CANCELLED
without running. A step is *ready* when every input has ended. Whether it then runs depends on the
error policy (``context.parallelExecution.errorPolicy``; without parallel execution it is FAIL_FAST):

* FAIL_FAST: after the first failure no step starts; steps in flight are told to stop (``cancelled``)
  and their results are recorded; every step not started ends SKIPPED; the run ends FAILED.
* CONTINUE: steps downstream of a failure are SKIPPED; every other step runs; the run ends FAILED.
* BEST_EFFORT: a step runs when at least one of its data inputs succeeded (failed inputs add no
  records), and is SKIPPED when none did. The run ends COMPLETED, with the failures in its error
  summary, unless no step other than TRIGGERs completed, in which case it ends FAILED.

A step with ``continueOnError`` that fails counts as having succeeded with no output: its successors run
and the run is not failed by it. A ``disabled`` step is SKIPPED and passes its input through unchanged.
A failed attempt is retried ``retries`` times after ``retryDelayMs`` unless the error says it is not
retryable (a config error). A step PAUSED (a gate) holds its successors back; the run ends PAUSED.

Durable runs (``RunOptions.persist``, ``RunOptions.drain``): a completed step's outputs that a later step
reads are saved, in the step's thread, before the step is reported COMPLETED; a run resumed elsewhere
reads them instead of running the step again. When the worker drains, no step starts any more; the run
ends ``HANDED_BACK`` as soon as the steps in flight end, or at the drain deadline with those still in
flight interrupted (they run again from their start on the next worker). When the store's heartbeat says
another worker owns the run now, the run ends ``LOST`` at once and nothing more is written.

Hooks (``definition.hooks``, see :mod:`pipelines.hooks`): SCRIPT actions run inside the step's thread,
batch by batch, over its input (BEFORE_) and its outputs (AFTER_); every other action becomes a
:class:`HookFired` event, emitted from the main thread like every event, for the store to carry out.

Why one module of this size: the scheduling loop, its worker threads and the run state it changes are one
algorithm with one invariant (which step may start, what a failure or a cancel stops); the step handlers,
contexts, buffers, retries, events and stores already live in their own runs/engine modules, and splitting the
loop would spread that invariant over files.
"""

from __future__ import annotations

import copy
import logging
import queue
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field

from pipelines import graph, hooks
from pipelines.definition import Definition
from pipelines.errors import ConfigError, DatahubError, StepCancelled, StepError
from pipelines.operators.chain import OperatorFailed
from pipelines.records import deep_copy
from pipelines.registry import Registry
from pipelines.registry import step_types as default_step_types
from runs.engine.buffers import RecordBuffer
from runs.engine.context import RunOptions, StepContext, StepInput, StepOutcome
from runs.engine.events import (
    HookFired,
    RunFinished,
    RunPaused,
    RunStarted,
    StepCounts,
    StepFinished,
    StepInterrupted,
    StepRetrying,
    StepStarted,
)
from runs.engine.store import RedactingStore, RunStore

log = logging.getLogger(__name__)

ENDED = frozenset({"COMPLETED", "FAILED", "SKIPPED", "CANCELLED"})
# Run outcomes besides the run statuses: the run goes on elsewhere, or was taken over by another worker.
HANDED_BACK, LOST = "HANDED_BACK", "LOST"
NO_COUNTS = StepCounts()


@dataclass
class RunResult:
    status: str
    error: str | None
    steps: dict[str, StepFinished]
    outputs: dict[str, dict[str | None, RecordBuffer]] = field(default_factory=dict)
    # Every step's status at the end (also those that ended in an earlier part of the run), and which
    # steps' outputs may feed successors: what a resume needs besides the outputs.
    statuses: dict[str, str] = field(default_factory=dict)
    usable: frozenset[str] = frozenset()
    counts: dict[str, StepCounts] = field(default_factory=dict)
    # Steps that paused in this part of the run, with what they said about it.
    pauses: dict[str, dict] = field(default_factory=dict)
    # Steps whose outputs were saved by ``RunOptions.persist`` ({key: {branch or "_main": name}}).
    saved: dict[str, dict] = field(default_factory=dict)

    def output(self, key: str, branch: str | None = None) -> list:
        bufs = self.outputs.get(key) or {}
        buf = bufs.get(branch)
        return buf.to_list() if buf is not None else []

    def close(self) -> None:
        for bufs in self.outputs.values():
            for buf in bufs.values():
                buf.close()


@dataclass
class _Attempt:
    key: str
    number: int
    started: float
    deadline: float | None
    ctx: StepContext
    saved: dict | None = None  # set by the step's thread once its outputs are saved


def execute(
    definition: Definition,
    store: RunStore,
    options: RunOptions | None = None,
    *,
    step_types: Registry = default_step_types,
) -> RunResult:
    return _Execution(definition, store, options or RunOptions(), step_types).run()


class _Execution:
    def __init__(self, definition: Definition, store: RunStore, options: RunOptions, step_types: Registry):
        self.d = definition
        self.store = store if options.redactor is None else RedactingStore(store, options.redactor)
        self.options = options
        self.step_types = step_types
        self.inputs = graph.inputs(definition)
        self.successors = graph.successors(definition)
        self.order = [s.key for s in definition.steps]
        self.position = {k: n for n, k in enumerate(self.order)}
        self.steps = {s.key: s for s in definition.steps}
        parallel = definition.parallel
        self.parallel = parallel.enabled and definition.graph_mode
        self.max_in_flight = parallel.max_concurrent_steps if self.parallel else 1
        self.policy = parallel.error_policy if self.parallel else "FAIL_FAST"
        self.hooks = hooks.parse(definition.extra.get("hooks"))

        self.status: dict[str, str] = {k: "PENDING" for k in self.order}
        # Steps whose outputs successors may use: COMPLETED, disabled, or failed with continueOnError.
        self.usable: set[str] = set()
        self.outputs: dict[str, dict[str | None, RecordBuffer]] = {}
        self.finished: dict[str, StepFinished] = {}
        self.consumers_left = {k: len(v) for k, v in self.successors.items()}
        self.failures: list[tuple[str, str]] = []
        self.stop_starting = False
        self.cancelled = threading.Event()
        self.results: queue.Queue = queue.Queue()
        self.in_flight: dict[str, _Attempt] = {}
        self.retry_at: dict[str, tuple[float, int]] = {}
        self.attempts: dict[str, int] = {}
        self.started_at: dict[str, float] = {}
        self.last_heartbeat = 0.0
        self._candidates: set[str] = set()
        self.pauses: dict[str, dict] = {}
        self.counts: dict[str, StepCounts] = {
            k: p.counts for k, p in options.previous.items() if p.counts is not None
        }
        # Steps whose outputs another step reads (as data or through step_outputs): only these are saved.
        self.read_by_others = {i.source for ins in self.inputs.values() for i in ins}
        self.saved: dict[str, dict] = {}
        self.handing_back = False
        self.lost = False

    # --- the loop ---------------------------------------------------------------------------------

    def run(self) -> RunResult:
        self.store.emit(RunStarted(tuple(self.order)))
        if not self.options.previous:  # a paused run that continues has started already
            self._fire("PIPELINE_STARTED", None, seedStep=self.options.seed_step)
        for key, prev in self.options.previous.items():
            if key in self.status:
                self.status[key] = prev.status
                self.outputs[key] = dict(prev.outputs)
                if prev.usable:
                    self.usable.add(key)
        seed = self.options.seed_step
        if seed is not None:
            if seed not in self.status:
                raise ConfigError(f"cannot seed unknown step '{seed}'")
            reached = graph.descendants(self.d, seed) | {seed}
            for key in self.order:
                if key not in reached and self.status[key] == "PENDING":
                    self.usable.add(key)  # contributes no records, blocks nobody
                    self.outputs[key] = {}
                    self._end(key, "SKIPPED", error=f"not part of this run (it starts at step '{seed}')",
                              outputs=self._nothing_saved())
        self._candidates.update(k for k in self.order if self.status[k] == "PENDING")
        while True:
            self._beat()
            if self.lost:
                break
            self._check_drain()
            if not self.cancelled.is_set() and self.store.cancel_requested():
                self.cancelled.set()
                self.stop_starting = True
                for attempt in self.in_flight.values():
                    attempt.ctx.cancelled.set()
            if not self.cancelled.is_set():
                self._settle_skips()
            if not self.stop_starting:
                self._start_ready()
            if not self.in_flight and not self._retry_pending():
                if self.stop_starting or not self._anything_ready():
                    break
            self._wait()
        return self._finish()

    def _beat(self) -> None:
        now = time.monotonic()
        if now - self.last_heartbeat >= self.options.heartbeat_seconds:
            self.last_heartbeat = now
            if self.store.heartbeat() is False:
                # Another worker owns the run (this one was silent too long): stop, write nothing more.
                log.warning("run %s: another worker has taken the run over; stopping", self.options.run_id)
                self.lost = True
                self.stop_starting = True
                for attempt in self.in_flight.values():
                    attempt.ctx.cancelled.set()
                self.in_flight.clear()

    def _check_drain(self) -> None:
        if self.options.drain is None or self.cancelled.is_set():
            return
        hand_back_at = self.options.drain()
        if hand_back_at is None:
            return
        if not self.handing_back:
            self.handing_back = True
            self.stop_starting = True
        if self.in_flight and time.time() >= hand_back_at:
            for key, attempt in list(self.in_flight.items()):
                attempt.ctx.cancelled.set()  # the thread cannot be killed; its late result is ignored
                del self.in_flight[key]
                self.status[key] = "PENDING"
                self.store.emit(StepInterrupted(key, "the worker stopped (drain window over) while the step ran; "
                                                     "it runs again from its start on the next worker"))

    def _retry_pending(self) -> bool:
        return bool(self.retry_at) and not self.stop_starting

    def _anything_ready(self) -> bool:
        return any(self._readiness(k) == "run" for k in self._candidates if self.status[k] == "PENDING")

    def _wait(self) -> None:
        now = time.monotonic()
        timeout = 0.25
        for attempt in self.in_flight.values():
            if attempt.deadline is not None:
                timeout = min(timeout, max(0.0, attempt.deadline - now))
        for when, _ in self.retry_at.values():
            timeout = min(timeout, max(0.0, when - now))
        try:
            item = self.results.get(timeout=timeout)
        except queue.Empty:
            item = None
        while item is not None:
            self._on_result(*item)
            try:
                item = self.results.get_nowait()
            except queue.Empty:
                item = None
        now = time.monotonic()
        for key, attempt in list(self.in_flight.items()):
            if attempt.deadline is not None and now >= attempt.deadline:
                # The thread cannot be killed; it is told to stop and its late result is ignored.
                del self.in_flight[key]
                ms = self.steps[key].timeout_ms
                self._on_attempt_failed(key, attempt, f"timed out after {ms} ms", retryable=True)
                attempt.ctx.cancelled.set()

    # --- deciding what runs -------------------------------------------------------------------------

    def _readiness(self, key: str) -> str:
        """'wait', 'run' or 'skip:<reason>' for a PENDING step."""
        if key in self.in_flight or key in self.retry_at:
            return "wait"
        ins = self.inputs[key]
        if any(self.status[i.source] not in ENDED for i in ins):
            return "wait"
        bad = [i.source for i in ins if i.source not in self.usable]
        if not bad:
            return "run"
        reason = f"skipped: upstream step '{bad[0]}' did not complete"
        if self.policy == "BEST_EFFORT":
            data_ins = [i for i in ins if not i.dependency_only]
            if any(i.source in self.usable for i in data_ins) or (not data_ins and len(bad) < len(ins)):
                return "run"
        return "skip:" + reason

    # Only *candidates* are examined: PENDING steps none of whose inputs was still open when they were
    # last looked at. A step becomes a candidate when one of its inputs ends, so each loop costs what
    # changed, not the size of the graph (a 200-step chain: O(steps), not O(steps²)).

    def _sorted_candidates(self) -> list[str]:
        return sorted(self._candidates, key=self.position.__getitem__)

    def _settle_skips(self) -> None:
        changed = True
        while changed:
            changed = False
            for key in self._sorted_candidates():
                if self.status[key] != "PENDING":
                    self._candidates.discard(key)
                    continue
                state = self._readiness(key)
                if state.startswith("skip:"):
                    self._candidates.discard(key)
                    self._end(key, "SKIPPED", error=state[5:])
                    changed = True
                elif state == "run" and self.steps[key].disabled:
                    self._candidates.discard(key)
                    self._pass_through_disabled(key)
                    changed = True
                elif state == "wait" and key not in self.retry_at:
                    self._candidates.discard(key)  # an input is still open; its end brings this back

    def _start_ready(self) -> None:
        now = time.monotonic()
        for key, (when, number) in sorted(self.retry_at.items(), key=lambda kv: self.position[kv[0]]):
            if len(self.in_flight) >= self.max_in_flight:
                return
            if now >= when:
                del self.retry_at[key]
                self._launch(key, number)
        for key in self._sorted_candidates():
            if len(self.in_flight) >= self.max_in_flight:
                return
            if self.status[key] == "PENDING" and self._readiness(key) == "run":
                self._candidates.discard(key)
                self._launch(key, 1)

    def _pass_through_disabled(self, key: str) -> None:
        buffers = self._input_buffers(key)
        merged = RecordBuffer(self.options.spill_records)
        for buf in buffers:
            for batch in buf.batches():
                merged.append(batch)
        self.outputs[key] = {None: merged}
        for branch in self.steps[key].branches + [graph.DEFAULT_BRANCH]:
            self.outputs[key][branch] = merged
        self.usable.add(key)
        n = len(merged)
        saved = None
        if self.options.persist is not None:
            saved = self.options.persist(key, {None: merged}) if key in self.read_by_others else {}
        self._end(key, "SKIPPED", counts=StepCounts(n, n), error="disabled: input passed through", outputs=saved)
        self._release_inputs(key)

    # --- running one attempt --------------------------------------------------------------------

    def _input_buffers(self, key: str) -> list[RecordBuffer]:
        if key == self.options.seed_step and self.options.seed_records is not None:
            return [self.options.seed_records]
        buffers = []
        for i in self.inputs[key]:
            if i.dependency_only or i.source not in self.usable:
                continue
            outs = self.outputs.get(i.source) or {}
            buf = outs.get(i.branch) if i.branch is not None else outs.get(None)
            if buf is not None:
                buffers.append(buf)
        return buffers

    def _step_output_reader(self, key: str):
        allowed = {i.source for i in self.inputs[key]}

        def read(other: str) -> Iterator:
            if other not in allowed:
                raise ConfigError(f"step '{key}' may only read the output of steps it depends on, not '{other}'")
            buf = (self.outputs.get(other) or {}).get(None)
            return buf.records() if buf is not None else iter(())  # batch by batch, never one whole list

        return read

    def _launch(self, key: str, number: int) -> None:
        step = self.steps[key]
        handler = self.step_types.get(step.type).impl
        ctx = StepContext(
            step=step,
            definition=self.d,
            options=self.options,
            checkpoint=self.store.load_checkpoint(key),
            attempt=number,
            step_outputs=self._step_output_reader(key),
            run_stats=self._stats,
        )
        if self.cancelled.is_set():
            ctx.cancelled.set()
        buffers = self._input_buffers(key)
        inputs = StepInput(buffers)
        before, after = hooks.step_stages(step.type)
        if number == 1 and before:
            self._fire(before, key, records=lambda n: _head(buffers, n), recordCount=len(inputs))
        now = time.monotonic()
        deadline = now + step.timeout_ms / 1000 if step.timeout_ms else None
        attempt = _Attempt(key, number, now, deadline, ctx)
        self.in_flight[key] = attempt
        self.attempts[key] = number
        self.started_at.setdefault(key, now)
        self.status[key] = "RUNNING"
        self.store.emit(StepStarted(key, number))

        def body():
            scripted = None
            try:
                if before and self.hooks.scripts(before):
                    scripted = self._run_scripts(before, list(buffers), ctx)
                    outcome = handler.run(step, StepInput([scripted]), ctx)
                else:
                    outcome = handler.run(step, inputs, ctx)
                if after and self.hooks.scripts(after) and not outcome.paused:
                    self._script_outputs(after, outcome, ctx)
                if self.options.persist is not None and not outcome.paused and not ctx.cancelled.is_set():
                    attempt.saved = (self.options.persist(key, outcome.outputs)
                                     if key in self.read_by_others else {})
                self.results.put((key, attempt, outcome, None))
            except BaseException as exc:  # reported to the main thread, never lost
                self.results.put((key, attempt, None, exc))
            finally:
                if scripted is not None:
                    scripted.close()

        target = self.options.thread_wrapper(body) if self.options.thread_wrapper else body
        threading.Thread(target=target, name=f"datahub-step-{key}", daemon=True).start()

    def _on_result(self, key: str, attempt: _Attempt, outcome: StepOutcome | None, exc: BaseException | None):
        if self.in_flight.get(key) is not attempt:
            if outcome is not None:  # a late result of an attempt that timed out: discard its buffers
                for buf in outcome.outputs.values():
                    buf.close()
            return
        del self.in_flight[key]
        if exc is not None:
            message, retryable = _describe(exc)
            if not isinstance(exc, DatahubError | OperatorFailed):
                log.error("step %s failed unexpectedly\n%s", key, "".join(traceback.format_exception(exc)))
            self._on_attempt_failed(key, attempt, message, retryable=retryable)
            return
        assert outcome is not None
        ctx = attempt.ctx
        for event in (*ctx.attempts, *ctx.errors):
            self.store.emit(event)
        counts = StepCounts(outcome.records_in, outcome.records_out, ctx.error_count, outcome.dropped)
        self.outputs[key] = outcome.outputs
        if outcome.paused:
            self._end(key, "PAUSED", counts=counts, attempt=attempt, checkpoint=ctx.checkpoint)
            self.pauses[key] = dict(outcome.pause_info)
            self.store.emit(RunPaused(key, outcome.records_in, dict(outcome.pause_info)))
            return
        if self.cancelled.is_set() and ctx.cancelled.is_set():
            self._end(key, "CANCELLED", counts=counts, attempt=attempt, error="cancelled")
            return
        self._fire_dead_letters(key, ctx)
        _, after = hooks.step_stages(self.steps[key].type)
        if after:
            main = outcome.outputs.get(None)
            self._fire(after, key, records=lambda n: main.head(n) if main is not None else [],
                       recordCount=len(main) if main is not None else 0)
        self.usable.add(key)
        self._end(key, "COMPLETED", counts=counts, attempt=attempt, checkpoint=ctx.checkpoint, outputs=attempt.saved)
        self._release_inputs(key)

    def _on_attempt_failed(self, key: str, attempt: _Attempt, message: str, *, retryable: bool) -> None:
        step = self.steps[key]
        ctx = attempt.ctx
        if retryable and attempt.number <= step.retries and not self.cancelled.is_set():
            delay = step.retry_delay_ms
            self.store.emit(StepRetrying(key, attempt.number, message, delay))
            self._fire("ON_RETRY", key, attempt=attempt.number, error=message, delayMs=delay)
            self.retry_at[key] = (time.monotonic() + delay / 1000, attempt.number + 1)
            self.status[key] = "PENDING"
            return
        for event in (*ctx.attempts, *ctx.errors):
            self.store.emit(event)
        counts = StepCounts(errors=ctx.error_count)
        if ctx.cancelled.is_set():
            # Told to stop (cancel, or FAIL_FAST after another step failed): not a failure of its own.
            self._end(key, "CANCELLED", counts=counts, attempt=attempt, error=f"stopped: {message}")
            return
        self._fire_dead_letters(key, ctx)
        self._fire("ON_ERROR", key, error=message, attempts=attempt.number, continueOnError=step.continue_on_error)
        if step.continue_on_error:
            self.usable.add(key)
            self.outputs[key] = {}
            self._end(key, "FAILED", counts=counts, attempt=attempt, error=message + " (continueOnError)",
                      outputs=self._nothing_saved())
            self._release_inputs(key)
            return
        self.failures.append((key, message))
        self._end(key, "FAILED", counts=counts, attempt=attempt, error=message)
        if self.policy == "FAIL_FAST":
            self.stop_starting = True
            for other in self.in_flight.values():
                other.ctx.cancelled.set()

    def _nothing_saved(self) -> dict:
        """The saved outputs of a usable step without records: nothing to read back, saving or not."""
        return {}

    def _end(self, key, status, *, counts=NO_COUNTS, attempt=None, error=None, checkpoint=None, outputs=None) -> None:
        self.status[key] = status
        started = self.started_at.get(key)
        duration = int((time.monotonic() - started) * 1000) if started is not None else 0
        warnings = tuple(attempt.ctx.warnings[:100]) if attempt else ()
        event = StepFinished(
            key,
            status,
            counts,
            duration,
            self.attempts.get(key, 0),
            error,
            warnings,
            copy.deepcopy(checkpoint) if checkpoint is not None and status == "COMPLETED" else None,
            outputs,
        )
        if outputs is not None:
            self.saved[key] = outputs
        self.finished[key] = event
        self.counts[key] = counts
        if status in ENDED:
            self._candidates.update(self.successors.get(key, ()))
        self.store.emit(event)

    def _release_inputs(self, key: str) -> None:
        """Close predecessors' buffers once every successor has read them (bounded memory)."""
        keep = self.options.keep_outputs
        for source in {i.source for i in self.inputs[key]}:
            self.consumers_left[source] -= 1
            if self.consumers_left[source] <= 0 and not (keep is True or (keep and source in keep)):
                for buf in {id(b): b for b in (self.outputs.get(source) or {}).values()}.values():
                    buf.close()
                self.outputs.pop(source, None)

    # --- the end ------------------------------------------------------------------------------------

    def _finish(self) -> RunResult:
        if self.lost:
            self._close_outputs(keep_all=False)
            return RunResult(LOST, "another worker took the run over", dict(self.finished))
        paused = [k for k in self.order if self.status[k] == "PAUSED"]
        if self.handing_back and self._goes_on(paused):
            self.store.emit(RunFinished(HANDED_BACK, None))
            return RunResult(HANDED_BACK, None, dict(self.finished), self.outputs, dict(self.status),
                             frozenset(self.usable), dict(self.counts), dict(self.pauses), dict(self.saved))
        # Anything left PENDING never ran: skipped after a failure, cancelled, or waiting behind a gate.
        for key in self.order:
            if self.status[key] != "PENDING":
                continue
            if self.cancelled.is_set():
                self._end(key, "CANCELLED", error="cancelled before it started")
            elif self.failures and not paused:
                first = self.failures[0][0]
                self._end(key, "SKIPPED", error=f"not run: step '{first}' failed")
        status, error = self._run_status(paused)
        if error and self.options.redactor is not None:  # the result's error too, not only the event's
            error = self.options.redactor.scrub(error)
        if status in ("COMPLETED", "FAILED"):
            steps = {k: {"status": self.status[k], "recordsIn": c.records_in, "recordsOut": c.records_out,
                         "errors": c.errors} for k, c in self.counts.items()}
            self._fire(f"PIPELINE_{status}", None, status=status, error=error, steps=steps)
        self.store.emit(RunFinished(status, error))
        kept = self._close_outputs(keep_all=bool(paused))
        return RunResult(status, error, dict(self.finished), kept, dict(self.status), frozenset(self.usable),
                         dict(self.counts), dict(self.pauses), dict(self.saved))

    def _goes_on(self, paused: list[str]) -> bool:
        """Whether a run that stopped starting steps because its worker drains still has steps to run
        (else it ended anyway: completed, paused, or failed under FAIL_FAST)."""
        if self.failures and self.policy == "FAIL_FAST":
            return False
        return any(s == "PENDING" for s in self.status.values())

    def _close_outputs(self, *, keep_all: bool) -> dict:
        keep = self.options.keep_outputs
        kept = {}
        for key, outs in self.outputs.items():
            if keep is True or (keep and key in keep) or keep_all:
                kept[key] = outs
            else:
                for buf in {id(b): b for b in outs.values()}.values():
                    buf.close()
        return kept

    # --- hooks ------------------------------------------------------------------------------------

    def _fire(self, stage: str, step_key: str | None, records=None, **info) -> None:
        """Emit one HookFired per non-record action at ``stage``. ``records(n)`` gives the first n records
        for the actions whose payload carries records (never more than their maxRecords)."""
        actions = self.hooks.others(stage)
        if not actions:
            return
        base = {"stage": stage, "pipelineCode": self.options.pipeline_code, "runId": self.options.run_id,
                "stepKey": step_key, "dryRun": self.options.dry_run, **info}
        for action in actions:
            payload = dict(base)
            if records is not None and action.type in hooks.DEFAULT_MAX_RECORDS:
                # A copy: later steps may change their input records in place.
                payload["records"] = deep_copy(records(action.max_records)) if action.max_records else []
                payload["truncated"] = len(payload["records"]) < int(info.get("recordCount") or 0)
            self.store.emit(HookFired(stage, step_key, action.as_dict(), payload))

    def _fire_dead_letters(self, key: str, ctx: StepContext) -> None:
        if ctx.error_count and self.hooks.others("ON_DEAD_LETTER"):
            kept = ctx.errors
            self._fire("ON_DEAD_LETTER", key, records=lambda n: [e.record for e in kept[:n]],
                       recordCount=ctx.error_count, errors=[e.message for e in kept[:20]])

    def _script_context(self, ctx: StepContext):
        def make(stage: str, batch_index: int) -> hooks.ScriptContext:
            o = self.options
            return hooks.ScriptContext(o.pipeline_code, o.run_id, ctx.step.key, stage, o.dry_run, batch_index, ctx.warn)

        return make

    def _run_scripts(self, stage: str, buffers: list[RecordBuffer], ctx: StepContext) -> RecordBuffer:
        """The records of ``buffers`` after the stage's SCRIPT actions, batch by batch (runs in the step's
        thread; the new buffer spills like any output, so memory stays bounded)."""
        out = ctx.new_buffer()
        batches = (b for buf in buffers for b in buf.batches(ctx.batch_size))
        try:
            for batch in hooks.apply_scripts(self.hooks.scripts(stage), batches,
                                             context=self._script_context(ctx), warn=ctx.warn):
                if ctx.cancelled.is_set():
                    raise StepCancelled()
                out.append(batch)
        except BaseException:
            out.close()
            raise
        return out

    def _script_outputs(self, stage: str, outcome: StepOutcome, ctx: StepContext) -> None:
        """Replace each output buffer (a buffer shared by several branches once) by its scripted copy."""
        originals = {id(buf): buf for buf in outcome.outputs.values()}
        done: dict[int, RecordBuffer] = {}
        try:
            for old_id, buf in originals.items():
                done[old_id] = self._run_scripts(stage, [buf], ctx)
        except BaseException:
            for buf in (*originals.values(), *done.values()):
                buf.close()
            raise
        for branch, buf in list(outcome.outputs.items()):
            outcome.outputs[branch] = done[id(buf)]
        for buf in originals.values():
            buf.close()
        main = outcome.outputs.get(None)
        if main is not None:
            outcome.records_out = len(main)

    def _stats(self) -> dict:
        """Records extracted and record errors of the steps ended so far (a THRESHOLD gate's inputs).
        Called from step threads; reads a dict the main thread only ever adds to."""
        counts = dict(self.counts)
        extracted = sum(c.records_out for k, c in counts.items() if self.steps[k].type == "EXTRACT")
        return {"extracted": extracted, "errors": sum(c.errors for c in counts.values())}

    def _run_status(self, paused: list[str]) -> tuple[str, str | None]:
        summary = "; ".join(f'step "{k}" failed: {m}' for k, m in self.failures) or None
        if self.cancelled.is_set():
            return "CANCELLED", "cancelled by request"
        if paused:
            return "PAUSED", None
        if not self.failures:
            return "COMPLETED", None
        if self.policy == "BEST_EFFORT":
            completed = [k for k in self.order if self.status[k] == "COMPLETED" and self.steps[k].type != "TRIGGER"]
            return ("COMPLETED", summary) if completed else ("FAILED", summary)
        return "FAILED", summary


def _head(buffers: list[RecordBuffer], n: int) -> list:
    out: list = []
    for buf in buffers:
        if len(out) >= n:
            break
        out.extend(buf.head(n - len(out)))
    return out


def _describe(exc: BaseException) -> tuple[str, bool]:
    """A one-line message for the user and whether trying again may help."""
    if isinstance(exc, ConfigError):
        where = f"{exc.field}: " if exc.field else ""
        return f"{where}{exc}", False
    if isinstance(exc, OperatorFailed):
        return str(exc), False
    if isinstance(exc, StepError):
        return str(exc), exc.retryable
    if isinstance(exc, DatahubError):
        return str(exc), bool(getattr(exc, "retryable", True))
    return f"{type(exc).__name__}: {exc}", True

"""The graph executor: runs a definition's steps in dependency order, in parallel when asked. [pure]

One engine serves both modes: without edges the steps form a chain in list order; with edges the graph
decides. The main thread owns all state and all events; every step attempt runs in a thread of its own
and reports back through a queue, so the main thread can enforce ``timeoutMs``, honour cancellation and
write heartbeats while steps work.

What the scheduler reads is apart from what it changes (both in :mod:`runs.engine.run_state`): the
:class:`Plan` (steps, order, edges, error policy; never changes during a run) and the :class:`RunState` (a
:class:`StepState` per step: status, attempt, counts, outputs, why it was skipped; the steps in flight and
waiting to retry; the failures).
Statuses are the enums of :mod:`runs.engine.status`, which the models' choices are built from.

Scheduling states per step: PENDING → RUNNING → COMPLETED | FAILED | PAUSED, or SKIPPED / CANCELLED
without running (a SKIPPED step carries a structured :class:`Skip`: upstream failed, after a failure,
not seeded, disabled). A step is *ready* when every input has ended. Whether it then runs depends on the
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

Why one module of this size: the scheduling loop, its worker threads and the changes it makes to the run
state are one algorithm with one invariant (which step may start, what a failure or a cancel stops); the run
state's data, the step handlers, contexts, buffers, streams, retries, events and stores already live in their
own runs/engine modules, and splitting the loop would spread that invariant over files.
"""

from __future__ import annotations

import copy
import logging
import queue
import threading
import time
import traceback
from collections.abc import Iterator

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
    StepProgress,
    StepRetrying,
    StepStarted,
)
from runs.engine.run_state import NO_COUNTS, Attempt, Plan, Readiness, RunResult, RunState, StepState
from runs.engine.status import Handover, RunStatus, Skip, SkipCause, StepStatus
from runs.engine.store import RedactingStore, RunStore
from runs.engine.stream_plan import streamed_inputs
from runs.engine.streams import Stream

log = logging.getLogger(__name__)

# A running step's counters are reported at most this often (one row update per step and second).
PROGRESS_SECONDS = 1.0
PENDING, RUNNING, PAUSED = StepStatus.PENDING, StepStatus.RUNNING, StepStatus.PAUSED
COMPLETED, FAILED, SKIPPED, CANCELLED = StepStatus.COMPLETED, StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.CANCELLED


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
        self.plan = plan = Plan.of(definition)
        self.store = store if options.redactor is None else RedactingStore(store, options.redactor)
        self.options = options
        self.step_types = step_types
        self.state = RunState({k: StepState(consumers_left=len(plan.successors[k])) for k in plan.order})
        self.results: queue.Queue = queue.Queue()
        # Streaming (runs.engine.stream_plan): {consumer: producer}, fixed for the run; its reverse; and the
        # Stream of each producer launched in this run.
        self.stream_into = streamed_inputs(definition, plan.inputs, plan.successors, step_types, plan.hooks,
                                           options)
        self.stream_out = {p: c for c, p in self.stream_into.items()}
        self.streams: dict[str, Stream] = {}
        self.unread = _unread_outputs(plan, options)

    # --- the loop ---------------------------------------------------------------------------------

    def run(self) -> RunResult:
        plan, state, steps = self.plan, self.state, self.state.steps
        self.store.emit(RunStarted(plan.order))
        if not self.options.previous:  # a paused run that continues has started already
            self._fire("PIPELINE_STARTED", None, seedStep=self.options.seed_step)
        for key, prev in self.options.previous.items():
            if key in steps:
                s = steps[key]
                s.status = StepStatus(prev.status)
                s.outputs = dict(prev.outputs)
                s.usable = prev.usable
                s.counts = prev.counts
        seed = self.options.seed_step
        if seed is not None:
            if seed not in steps:
                raise ConfigError(f"cannot seed unknown step '{seed}'")
            reached = graph.descendants(plan.definition, seed) | {seed}
            for key in plan.order:
                if key not in reached and steps[key].status is PENDING:
                    steps[key].usable = True  # contributes no records, blocks nobody
                    steps[key].outputs = {}
                    self._end(key, SKIPPED, skip=Skip(SkipCause.NOT_SEEDED, seed), outputs={})
        state.candidates.update(k for k in plan.order if steps[k].status is PENDING)
        while True:
            self._beat()
            if state.lost:
                break
            self._check_drain()
            if not state.cancelled.is_set() and self.store.cancel_requested():
                state.cancelled.set()
                state.stop_starting = True
                for attempt in state.in_flight.values():
                    attempt.ctx.cancelled.set()
            if not state.cancelled.is_set():
                self._settle_skips()
            if not state.stop_starting:
                self._start_ready()
            if not state.in_flight and not self._retry_pending():
                if state.stop_starting or not self._anything_ready():
                    break
            self._wait()
            self._report_progress()
        return self._finish()

    def _beat(self) -> None:
        state = self.state
        now = time.monotonic()
        if now - state.last_heartbeat >= self.options.heartbeat_seconds:
            state.last_heartbeat = now
            if self.store.heartbeat() is False:
                # Another worker owns the run (this one was silent too long): stop, write nothing more.
                log.warning("run %s: another worker has taken the run over; stopping", self.options.run_id)
                state.lost = True
                state.stop_starting = True
                for key, attempt in state.in_flight.items():
                    attempt.ctx.cancelled.set()
                    self._break_stream(key, "another worker took the run over")
                state.in_flight.clear()

    def _check_drain(self) -> None:
        state = self.state
        if self.options.drain is None or state.cancelled.is_set():
            return
        hand_back_at = self.options.drain()
        if hand_back_at is None:
            return
        if not state.handing_back:
            state.handing_back = True
            state.stop_starting = True
        if state.in_flight and time.time() >= hand_back_at:
            for key, attempt in list(state.in_flight.items()):
                attempt.ctx.cancelled.set()  # the thread cannot be killed; its late result is ignored
                del state.in_flight[key]
                self._break_stream(key, "interrupted: the worker stopped")
                state.steps[key].status = PENDING
                self.store.emit(StepInterrupted(key, "the worker stopped (drain window over) while the step ran; "
                                                     "it runs again from its start on the next worker"))

    def _retry_pending(self) -> bool:
        return bool(self.state.retry_at) and not self.state.stop_starting

    def _anything_ready(self) -> bool:
        steps = self.state.steps
        return any(self._readiness(k) is Readiness.RUN for k in self.state.candidates if steps[k].status is PENDING)

    def _wait(self) -> None:
        state = self.state
        now = time.monotonic()
        timeout = 0.25
        for attempt in state.in_flight.values():
            if attempt.deadline is not None:
                timeout = min(timeout, max(0.0, attempt.deadline - now))
        for when, _ in state.retry_at.values():
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
        for key, attempt in list(state.in_flight.items()):
            if attempt.deadline is not None and now >= attempt.deadline:
                # The thread cannot be killed; it is told to stop and its late result is ignored.
                del state.in_flight[key]
                ms = self.plan.specs[key].timeout_ms
                self._on_attempt_failed(key, attempt, f"timed out after {ms} ms", retryable=True)
                attempt.ctx.cancelled.set()

    def _report_progress(self) -> None:
        """A StepProgress for each step in flight whose counters moved, at most every PROGRESS_SECONDS per
        step: a step shorter than that reports none (its StepFinished says it all)."""
        now = time.monotonic()
        for key, attempt in self.state.in_flight.items():
            if now - attempt.progress_at < PROGRESS_SECONDS:
                continue
            attempt.progress_at = now
            counts = attempt.live_counts()
            if counts == attempt.reported:
                continue
            attempt.reported = counts
            elapsed = int((now - attempt.started) * 1000)
            self.store.emit(StepProgress(key, attempt.number, counts, elapsed, self._expected_input(key, attempt)))

    def _expected_input(self, key: str, attempt: Attempt) -> int | None:
        """How many records the step reads in all, when that is known: it reads records (an extract
        usually reads none) and every step feeding it has ended (its buffers grow no more); else None."""
        if key == self.options.seed_step and self.options.seed_records is not None:
            return len(attempt.input)
        steps = self.state.steps
        data = [i.source for i in self.plan.inputs[key] if not i.dependency_only]
        if not data or not all(steps[source].status.ended for source in data):
            return None
        return len(attempt.input)

    # --- deciding what runs -------------------------------------------------------------------------

    def _readiness(self, key: str) -> Readiness | Skip:
        """Whether a PENDING step waits, runs, or is skipped (and why)."""
        state = self.state
        if key in state.in_flight or key in state.retry_at:
            return Readiness.WAIT
        if self._rides_along(key):
            return Readiness.RUN
        steps = state.steps
        ins = self.plan.inputs[key]
        if any(not steps[i.source].status.ended for i in ins):
            return Readiness.WAIT
        bad = [i.source for i in ins if not steps[i.source].usable]
        if not bad:
            return Readiness.RUN
        if self.plan.policy == "BEST_EFFORT":
            data_ins = [i for i in ins if not i.dependency_only]
            if any(steps[i.source].usable for i in data_ins) or (not data_ins and len(bad) < len(ins)):
                return Readiness.RUN
        return Skip(SkipCause.UPSTREAM, bad[0])

    # Only *candidates* are examined: PENDING steps none of whose inputs was still open when they were
    # last looked at. A step becomes a candidate when one of its inputs ends, so each loop costs what
    # changed, not the size of the graph (a 200-step chain: O(steps), not O(steps²)).

    def _sorted_candidates(self) -> list[str]:
        return sorted(self.state.candidates, key=self.plan.position.__getitem__)

    def _settle_skips(self) -> None:
        state = self.state
        changed = True
        while changed:
            changed = False
            for key in self._sorted_candidates():
                if state.steps[key].status is not PENDING:
                    state.candidates.discard(key)
                    continue
                readiness = self._readiness(key)
                if isinstance(readiness, Skip):
                    state.candidates.discard(key)
                    self._end(key, SKIPPED, skip=readiness)
                    changed = True
                elif readiness is Readiness.RUN and self.plan.specs[key].disabled:
                    state.candidates.discard(key)
                    self._pass_through_disabled(key)
                    changed = True
                elif readiness is Readiness.WAIT and key not in state.retry_at:
                    state.candidates.discard(key)  # an input is still open; its end brings this back

    def _rides_along(self, key: str) -> bool:
        """A streamed consumer whose producer runs now: it starts at once and takes no slot of
        ``maxConcurrentSteps`` of its own (producer and consumer are one pipe)."""
        source = self.stream_into.get(key)
        return source is not None and source in self.state.in_flight and source in self.streams

    def _slots_taken(self) -> int:
        in_flight = self.state.in_flight
        return sum(1 for k in in_flight if self.stream_into.get(k) not in in_flight)

    def _start_ready(self) -> None:
        state = self.state
        now = time.monotonic()
        for key, (when, number) in sorted(state.retry_at.items(), key=lambda kv: self.plan.position[kv[0]]):
            if self._slots_taken() >= self.plan.max_in_flight:
                return
            if now >= when:
                del state.retry_at[key]
                self._launch_pipe(key, number)
        for key in self._sorted_candidates():
            if self._slots_taken() >= self.plan.max_in_flight and not self._rides_along(key):
                continue
            if state.steps[key].status is PENDING and self._readiness(key) is Readiness.RUN:
                state.candidates.discard(key)
                self._launch_pipe(key, 1)

    def _launch_pipe(self, key: str, number: int) -> None:
        """Launch a step and the consumers it streams into (and theirs), all reading before any writes."""
        steps = self.state.steps
        threads = [self._launch(key, number)]
        follower = self.stream_out.get(key)
        while follower is not None and steps[follower].status is PENDING and self._readiness(follower) is Readiness.RUN:
            self.state.candidates.discard(follower)
            threads.append(self._launch(follower, 1))
            follower = self.stream_out.get(follower)
        for thread in threads:
            thread.start()

    def _pass_through_disabled(self, key: str) -> None:
        buffers = self._input_buffers(key)
        merged = RecordBuffer(self.options.spill_records)
        for buf in buffers:
            for batch in buf.batches():
                merged.append(batch)
        s = self.state.steps[key]
        s.outputs = {None: merged}
        for branch in self.plan.specs[key].branches + [graph.DEFAULT_BRANCH]:
            s.outputs[branch] = merged
        s.usable = True
        n = len(merged)
        saved = None
        if self.options.persist is not None:
            saved = self.options.persist(key, {None: merged}) if key in self.plan.read_by_others else {}
        self._end(key, SKIPPED, counts=StepCounts(n, n), skip=Skip(SkipCause.DISABLED), outputs=saved)
        self._release_inputs(key)

    # --- running one attempt --------------------------------------------------------------------

    def _input_buffers(self, key: str) -> list[RecordBuffer]:
        if key == self.options.seed_step and self.options.seed_records is not None:
            return [self.options.seed_records]
        steps = self.state.steps
        buffers = []
        for i in self.plan.inputs[key]:
            if i.dependency_only or not steps[i.source].usable:
                continue
            outs = steps[i.source].outputs or {}
            buf = outs.get(i.branch) if i.branch is not None else outs.get(None)
            if buf is not None:
                buffers.append(buf)
        return buffers

    def _step_output_reader(self, key: str):
        allowed = {i.source for i in self.plan.inputs[key]}
        steps = self.state.steps

        def read(other: str) -> Iterator:
            if other not in allowed:
                raise ConfigError(f"step '{key}' may only read the output of steps it depends on, not '{other}'")
            buf = (steps[other].outputs or {}).get(None)
            return buf.records() if buf is not None else iter(())  # batch by batch, never one whole list

        return read

    def _launch(self, key: str, number: int) -> threading.Thread:
        """Set up an attempt; the caller starts the thread it returns."""
        state = self.state
        step = self.plan.specs[key]
        handler = self.step_types.get(step.type).impl
        ctx = StepContext(
            step=step,
            definition=self.plan.definition,
            options=self.options,
            checkpoint=self.store.load_checkpoint(key),
            attempt=number,
            step_outputs=self._step_output_reader(key),
            run_stats=self._stats,
        )
        if state.cancelled.is_set():
            ctx.cancelled.set()
        if key in self.unread:
            ctx.output_head = self.options.output_head
        stream = self._open_stream(key, ctx)
        source = self.stream_into.get(key)
        if source in self.streams:  # reads its producer's stream, live or (started late) ended
            buffers = [self.streams[source].reader(ctx.cancelled)]
        else:
            buffers = self._input_buffers(key)
        inputs = StepInput(buffers)
        before, after = hooks.step_stages(step.type)
        if number == 1 and before:
            self._fire(before, key, records=lambda n: _head(buffers, n), recordCount=len(inputs))
        now = time.monotonic()
        deadline = now + step.timeout_ms / 1000 if step.timeout_ms else None
        attempt = Attempt(key, number, now, deadline, ctx, inputs, progress_at=now)
        state.in_flight[key] = attempt
        s = state.steps[key]
        s.attempt = number
        if s.started is None:
            s.started = now
        s.status = RUNNING
        self.store.emit(StepStarted(key, number))
        scripts = self.plan.hooks.scripts

        def body():
            scripted = None
            try:
                if before and scripts(before):
                    scripted = self._run_scripts(before, list(buffers), ctx)
                    attempt.input = StepInput([scripted])
                    outcome = handler.run(step, attempt.input, ctx)
                else:
                    outcome = handler.run(step, inputs, ctx)
                if after and scripts(after) and not outcome.paused:
                    self._script_outputs(after, outcome, ctx)
                if stream is not None:
                    _into_stream(outcome, stream)
                if self.options.persist is not None and not outcome.paused and not ctx.cancelled.is_set():
                    attempt.saved = (self.options.persist(key, outcome.outputs)
                                     if key in self.plan.read_by_others else {})
                self.results.put((key, attempt, outcome, None))
                if stream is not None:  # after the result: the main thread sees the producer end first
                    stream.end()
            except BaseException as exc:  # reported to the main thread, never lost
                self.results.put((key, attempt, None, exc))
                if stream is not None:
                    stream.fail(_describe(exc)[0])
            finally:
                if scripted is not None:
                    scripted.close()

        target = self.options.thread_wrapper(body) if self.options.thread_wrapper else body
        return threading.Thread(target=target, name=f"datahub-step-{key}", daemon=True)

    def _on_result(self, key: str, attempt: Attempt, outcome: StepOutcome | None, exc: BaseException | None):
        state = self.state
        if state.in_flight.get(key) is not attempt:
            if outcome is not None:  # a late result of an attempt that timed out: discard its buffers
                for buf in outcome.outputs.values():
                    buf.close()
            return
        del state.in_flight[key]
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
        s = state.steps[key]
        s.outputs = outcome.outputs
        if outcome.paused:
            self._end(key, PAUSED, counts=counts, attempt=attempt, checkpoint=ctx.checkpoint)
            s.pause = dict(outcome.pause_info)
            self.store.emit(RunPaused(key, outcome.records_in, dict(outcome.pause_info)))
            return
        if state.cancelled.is_set() and ctx.cancelled.is_set():
            self._end(key, CANCELLED, counts=counts, attempt=attempt, error="cancelled")
            return
        self._fire_dead_letters(key, ctx)
        _, after = hooks.step_stages(self.plan.specs[key].type)
        if after:
            main = outcome.outputs.get(None)
            self._fire(after, key, records=lambda n: main.head(n) if main is not None else [],
                       recordCount=len(main) if main is not None else 0)
        s.usable = True
        self._end(key, COMPLETED, counts=counts, attempt=attempt, checkpoint=ctx.checkpoint, outputs=attempt.saved)
        self._release_inputs(key)

    def _on_attempt_failed(self, key: str, attempt: Attempt, message: str, *, retryable: bool) -> None:
        state = self.state
        step = self.plan.specs[key]
        ctx = attempt.ctx
        self._break_stream(key, message)
        upstream = self.streams.get(self.stream_into.get(key))
        if upstream is not None:
            upstream.leave()  # its producer must not wait for a consumer that stopped (a timeout, say)
        if retryable and attempt.number <= step.retries and not state.cancelled.is_set():
            delay = step.retry_delay_ms
            self.store.emit(StepRetrying(key, attempt.number, message, delay))
            self._fire("ON_RETRY", key, attempt=attempt.number, error=message, delayMs=delay)
            state.retry_at[key] = (time.monotonic() + delay / 1000, attempt.number + 1)
            state.steps[key].status = PENDING
            return
        for event in (*ctx.attempts, *ctx.errors):
            self.store.emit(event)
        counts = StepCounts(errors=ctx.error_count)
        if upstream is not None and upstream.failed and not state.cancelled.is_set():
            # Its producer failed while streaming into it: it ends as a consumer that waited would.
            self._end(key, SKIPPED, counts=counts, attempt=attempt, skip=Skip(SkipCause.UPSTREAM, self.stream_into[key]))
            return
        if ctx.cancelled.is_set():
            # Told to stop (cancel, or FAIL_FAST after another step failed): not a failure of its own.
            self._end(key, CANCELLED, counts=counts, attempt=attempt, error=f"stopped: {message}")
            return
        self._fire_dead_letters(key, ctx)
        self._fire("ON_ERROR", key, error=message, attempts=attempt.number, continueOnError=step.continue_on_error)
        if step.continue_on_error:
            s = state.steps[key]
            s.usable = True
            s.outputs = {}
            # A usable step without records: nothing to read back, saving or not.
            self._end(key, FAILED, counts=counts, attempt=attempt, error=message + " (continueOnError)", outputs={})
            self._release_inputs(key)
            return
        state.failures.append((key, message))
        self._end(key, FAILED, counts=counts, attempt=attempt, error=message)
        if self.plan.policy == "FAIL_FAST":
            state.stop_starting = True
            for other_key, other in state.in_flight.items():
                other.ctx.cancelled.set()
                # Now, not when its thread notices: its consumer then ends SKIPPED, whichever reports first.
                self._break_stream(other_key, f"stopped: step '{key}' failed")

    def _open_stream(self, key: str, ctx: StepContext) -> Stream | None:
        """The Stream a producer writes its main output into (its consumer reads it while it runs)."""
        if key not in self.stream_out:
            return None
        keep = self.options.keep_outputs
        # A durable run saves the output, and keep_outputs shows it: then it is kept besides the hand-off.
        kept = self.options.persist is not None or keep is True or bool(keep and key in keep)
        stream = Stream(self.options.stream_memory_bytes, keep=kept, spill_records=self.options.spill_records,
                        producer_cancelled=ctx.cancelled, name=key)
        self.streams[key] = ctx.output = stream
        self.state.candidates.add(self.stream_out[key])
        return stream

    def _break_stream(self, key: str, message: str) -> None:
        """A producer ended without completing: its consumer must see a broken stream, not a short one."""
        stream = self.streams.get(key)
        if stream is not None:
            stream.fail(message)
            stream.close()

    def _end(self, key: str, status: StepStatus, *, counts: StepCounts = NO_COUNTS, attempt: Attempt | None = None,
             error: str | None = None, skip: Skip | None = None, checkpoint: dict | None = None,
             outputs: dict | None = None) -> None:
        s = self.state.steps[key]
        s.status = status
        s.skip = skip
        if skip is not None:
            error = skip.message
        duration = int((time.monotonic() - s.started) * 1000) if s.started is not None else 0
        warnings = tuple(attempt.ctx.warnings[:100]) if attempt else ()
        event = StepFinished(
            key,
            status,
            counts,
            duration,
            s.attempt,
            error,
            warnings,
            copy.deepcopy(checkpoint) if checkpoint is not None and status is COMPLETED else None,
            outputs,
        )
        if outputs is not None:
            s.saved = outputs
        s.finished = event
        s.counts = counts
        if status.ended:
            self.state.candidates.update(self.plan.successors.get(key, ()))
        self.store.emit(event)

    def _release_inputs(self, key: str) -> None:
        """Close predecessors' buffers once every successor has read them (bounded memory)."""
        keep = self.options.keep_outputs
        steps = self.state.steps
        for source in {i.source for i in self.plan.inputs[key]}:
            s = steps[source]
            s.consumers_left -= 1
            if s.consumers_left <= 0 and not (keep is True or (keep and source in keep)):
                for buf in {id(b): b for b in (s.outputs or {}).values()}.values():
                    buf.close()
                s.outputs = None

    # --- the end ------------------------------------------------------------------------------------

    def _finish(self) -> RunResult:
        state, steps = self.state, self.state.steps
        if state.lost:
            self._close_outputs(keep_all=False)
            return RunResult(Handover.LOST, "another worker took the run over", self._finished())
        paused = [k for k in self.plan.order if steps[k].status is PAUSED]
        if state.handing_back and self._goes_on():
            self.store.emit(RunFinished(Handover.HANDED_BACK, None))
            outputs = {k: s.outputs for k, s in steps.items() if s.outputs is not None}
            return self._result(Handover.HANDED_BACK, None, outputs)
        # Anything left PENDING never ran: skipped after a failure, cancelled, or waiting behind a gate.
        for key in self.plan.order:
            if steps[key].status is not PENDING:
                continue
            if state.cancelled.is_set():
                self._end(key, CANCELLED, error="cancelled before it started")
            elif state.failures and not paused:
                self._end(key, SKIPPED, skip=Skip(SkipCause.AFTER_FAILURE, state.failures[0][0]))
        status, error = self._run_status(paused)
        if error and self.options.redactor is not None:  # the result's error too, not only the event's
            error = self.options.redactor.scrub(error)
        if status in (RunStatus.COMPLETED, RunStatus.FAILED):
            summary = {k: {"status": s.status, "recordsIn": s.counts.records_in, "recordsOut": s.counts.records_out,
                           "errors": s.counts.errors} for k, s in steps.items() if s.counts is not None}
            self._fire(f"PIPELINE_{status}", None, status=status, error=error, steps=summary)
        self.store.emit(RunFinished(status, error))
        return self._result(status, error, self._close_outputs(keep_all=bool(paused)))

    def _finished(self) -> dict[str, StepFinished]:
        return {k: s.finished for k, s in self.state.steps.items() if s.finished is not None}

    def _result(self, status: RunStatus | Handover, error: str | None, outputs: dict) -> RunResult:
        steps = self.state.steps
        return RunResult(
            status, error, self._finished(), outputs,
            statuses={k: s.status for k, s in steps.items()},
            usable=frozenset(k for k, s in steps.items() if s.usable),
            counts={k: s.counts for k, s in steps.items() if s.counts is not None},
            pauses={k: s.pause for k, s in steps.items() if s.pause is not None},
            saved={k: s.saved for k, s in steps.items() if s.saved is not None},
        )

    def _goes_on(self) -> bool:
        """Whether a run that stopped starting steps because its worker drains still has steps to run
        (else it ended anyway: completed, paused, or failed under FAIL_FAST)."""
        if self.state.failures and self.plan.policy == "FAIL_FAST":
            return False
        return any(s.status is PENDING for s in self.state.steps.values())

    def _close_outputs(self, *, keep_all: bool) -> dict:
        keep = self.options.keep_outputs
        kept = {}
        for key, s in self.state.steps.items():
            if s.outputs is None:
                continue
            if keep is True or (keep and key in keep) or keep_all or (key in self.unread and self.options.output_head):
                kept[key] = s.outputs
            else:
                for buf in {id(b): b for b in s.outputs.values()}.values():
                    buf.close()
        return kept

    # --- hooks ------------------------------------------------------------------------------------

    def _fire(self, stage: str, step_key: str | None, records=None, **info) -> None:
        """Emit one HookFired per non-record action at ``stage``. ``records(n)`` gives the first n records
        for the actions whose payload carries records (never more than their maxRecords)."""
        actions = self.plan.hooks.others(stage)
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
        if ctx.error_count and self.plan.hooks.others("ON_DEAD_LETTER"):
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
            for batch in hooks.apply_scripts(self.plan.hooks.scripts(stage), batches,
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
        Called from step threads; reads counts the main thread sets once per step and never changes."""
        ended = [(self.plan.specs[k], s.counts) for k, s in self.state.steps.items() if s.counts is not None]
        extracted = sum(c.records_out for spec, c in ended if spec.type == "EXTRACT")
        return {"extracted": extracted, "errors": sum(c.errors for _, c in ended)}

    def _run_status(self, paused: list[str]) -> tuple[RunStatus, str | None]:
        state = self.state
        summary = "; ".join(f'step "{k}" failed: {m}' for k, m in state.failures) or None
        if state.cancelled.is_set():
            return RunStatus.CANCELLED, "cancelled by request"
        if paused:
            return RunStatus.PAUSED, None
        if not state.failures:
            return RunStatus.COMPLETED, None
        if self.plan.policy == "BEST_EFFORT":
            specs = self.plan.specs
            completed = [k for k, s in state.steps.items() if s.status is COMPLETED and specs[k].type != "TRIGGER"]
            return (RunStatus.COMPLETED, summary) if completed else (RunStatus.FAILED, summary)
        return RunStatus.FAILED, summary


def _unread_outputs(plan: Plan, options: RunOptions) -> frozenset[str]:
    """The steps whose main output only the run's result may show: no step depends on it (a dependency-only
    edge carries no records in, but the step after it may read the output by path, as multiJoin's
    ``rightDataPath: $.steps.<key>.output`` does through ``step_outputs``), ``keep_outputs`` does not ask for
    all of it, and no hook after the step reads it (a SCRIPT action, or an action whose payload carries
    records). Their outputs hold only a head."""
    keep = options.keep_outputs
    if keep is True:
        return frozenset()
    unread = set()
    for key in plan.order:
        after = hooks.step_stages(plan.specs[key].type)[1]
        if key in plan.read_by_others or (keep and key in keep) or (
                after and (plan.hooks.scripts(after) or plan.hooks.others(after))):
            continue
        unread.add(key)
    return frozenset(unread)


def _head(buffers: list[RecordBuffer], n: int) -> list:
    out: list = []
    for buf in buffers:
        if len(out) >= n:
            break
        out.extend(buf.head(n - len(out)))
    return out


def _into_stream(outcome: StepOutcome, stream: Stream) -> None:
    """A producer whose handler wrote its main output elsewhere (a worker process's file) hands it on now."""
    main = outcome.outputs.get(None)
    if main is stream:
        return
    if main is not None:
        for batch in main.batches():
            stream.append(batch)
        main.close()
    for branch, buf in list(outcome.outputs.items()):
        if buf is main:
            outcome.outputs[branch] = stream


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

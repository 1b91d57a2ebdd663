"""Which steps read their predecessor's output while it is produced, decided once per run. [pure]

A consumer streams from its producer only where nothing observable changes but the timing; everything
else waits for its inputs to end, as before. The rules, and why each holds (docs/streaming.md says the same
for users):

* The consumer has exactly one input, a data edge from the main output of the producer, and the producer
  feeds no other step. Fan-in (BEST_EFFORT adds the inputs that succeeded, in edge order), fan-out (every
  reader sees the whole output), ROUTE branches and dependency-only edges keep waiting.
* The producer has no ``retries`` and no ``continueOnError``: a retried producer would send its records
  again, and a failed one that continues must count as "no output", not as the half it streamed. Nor a
  ``timeoutMs``: held back by a slow consumer, its timer would count the consumer's time.
* The consumer has no ``retries`` (a second attempt needs the whole input again) and no ``timeoutMs``
  (its timer would count the time it spends waiting for its producer).
* The producer cannot go to a worker process (runs.engine.processes: a large TRANSFORM under parallel
  execution; the child writes a whole file the parent adopts when it ends). A consumer that can is fed
  while its producer runs (runs.engine.process_feed).
* Both handlers say they can: the producer writes its main output through ``ctx.new_output()``, the
  consumer reads its input batch by batch, and has no effect outside the run before it ends (a file export
  publishes in ``finish()``; a LOAD or a REST export writes per batch, so it waits: a producer failing half
  way must leave nothing written).
* The definition does not turn streaming off (``context.streaming.enabled: false``).
* No hook action runs at the producer's AFTER_ stage or the consumer's BEFORE_ stage (they read or
  rewrite the whole output), the consumer reads no step's output by path (``$.steps.``), is not disabled
  and is not the seeded step.
"""

from __future__ import annotations

import json

from pipelines import hooks as hooks_module
from pipelines.definition import Definition
from pipelines.registry import Registry
from runs.engine.context import RunOptions


def streamed_inputs(
    definition: Definition,
    inputs: dict,
    successors: dict,
    step_types: Registry,
    hooks: hooks_module.Hooks,
    options: RunOptions,
) -> dict[str, str]:
    """{consumer key: producer key} for every consumer that reads its producer's output while it runs."""
    plan: dict[str, str] = {}
    if not definition.streaming:
        return plan
    steps = {s.key: s for s in definition.steps}
    for key, step in steps.items():
        ins = inputs.get(key) or []
        if len(ins) != 1 or ins[0].dependency_only or ins[0].branch is not None:
            continue
        source = ins[0].source
        producer = steps[source]
        if list(successors.get(source) or ()) != [key] or key == options.seed_step:
            continue
        if producer.retries or producer.continue_on_error or producer.timeout_ms or producer.disabled:
            continue
        if step.retries or step.timeout_ms or step.disabled:
            continue
        if not _handlers_stream(step_types, producer, step, definition, options):
            continue
        if _has_actions(hooks, hooks_module.step_stages(producer.type)[1]):
            continue
        if _has_actions(hooks, hooks_module.step_stages(step.type)[0]):
            continue
        if "$.steps." in json.dumps(dict(step.config), default=str):
            continue
        plan[key] = source
    return plan


def _has_actions(hooks: hooks_module.Hooks, stage: str | None) -> bool:
    return stage is not None and bool(hooks.scripts(stage) or hooks.others(stage))


def _handlers_stream(step_types: Registry, producer, consumer, definition: Definition, options: RunOptions) -> bool:
    try:
        produces = step_types.get(producer.type).impl
        if not getattr(produces, "streams_output", False):
            return False
        if hasattr(produces, "may_run_elsewhere") and produces.may_run_elsewhere(producer, definition, options):
            return False
        handler = step_types.get(consumer.type).impl
        return bool(hasattr(handler, "streams_input") and handler.streams_input(consumer, definition, options))
    except Exception:  # an unknown type or adapter: the step fails when it runs, with its own message
        return False

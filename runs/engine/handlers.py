"""The built-in step types, registered into ``pipelines.registry.step_types``. [pure]

Each handler reads its input in batches and writes its output into buffers, so memory stays bounded
(see :mod:`runs.engine.buffers`). Handlers check ``ctx.cancelled`` between batches and raise
:class:`StepCancelled` when told to stop.

Dry runs: LOAD, EXPORT, FEED and SINK write nothing; each passes on, as its output, what it would have
written. Everything before them runs for real, so the outputs shown in a preview are the real ones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pipelines import registry
from pipelines.definition import StepSpec
from pipelines.errors import ConfigError, StepCancelled
from pipelines.operators.chain import OperatorChain
from pipelines.records import Record
from runs.consumers.config import MESSAGE_PROPERTIES
from runs.engine import process_feed, processes
from runs.engine.context import StepContext, StepHandler, StepInput, StepOutcome
from runs.engine.file_trigger import FILE_TRIGGER_PROPERTIES
from runs.engine.retry import RETRY_SCHEMA, RetryPolicy, apply_with_retry, retry_problems
from runs.engine.triggers import trigger_problems
from runs.engine.validate import compile_rules
from runs.engine.webhook_jwt import JWT_PROPERTIES
from runs.model_events.config import EVENT_PROPERTIES

log = logging.getLogger(__name__)

_PASS = {"type": "object"}


def _check_cancel(ctx: StepContext) -> None:
    if ctx.cancelled.is_set():
        raise StepCancelled()


class TriggerHandler(StepHandler):
    """Start node: passes seed records (a webhook's body) through; a manual run has none."""

    def run(self, step, inputs, ctx):
        out = ctx.new_output()
        for batch in inputs.batches(ctx.batch_size):
            out.append(batch)
        return StepOutcome({None: out}, len(out), len(out))


class ExtractHandler(StepHandler):
    streams_output = True

    def run(self, step, inputs, ctx):
        cls = registry.extractors.get(step.adapter_code).impl
        out = ctx.new_output()
        adapter_ctx = ctx.adapter_context()
        adapter_ctx.upstream = lambda: inputs.batches(ctx.batch_size)
        extractor = cls(dict(step.config), adapter_ctx)
        limit = ctx.options.record_limit
        try:
            for batch in extractor.batches():
                _check_cancel(ctx)
                if limit is not None and len(out) + len(batch) > limit:
                    batch = batch[: max(0, limit - len(out))]
                out.append(batch)
                if limit is not None and len(out) >= limit:
                    break
        finally:
            extractor.close()
        return StepOutcome({None: out}, 0, len(out))


def operator_items(step: StepSpec) -> list[dict]:
    """A TRANSFORM step's operators: ``config.operators``, or the one operator named by adapterCode."""
    if step.adapter_code is not None:
        return [{"op": step.adapter_code, "args": dict(step.config)}]
    items = step.config.get("operators")
    if not isinstance(items, list):
        raise ConfigError("a TRANSFORM step needs config.operators, a list of {op, args}", field="operators")
    return items


class TransformHandler(StepHandler):
    streams_output = True

    def streams_input(self, step, definition, options):
        # In a worker process too: the parent feeds the child as the producer produces (runs.engine.process_feed).
        return True

    def may_run_elsewhere(self, step, definition, options) -> bool:
        """Whether a large enough input sends the step to a worker process (runs.engine.processes), which
        writes a whole file the parent adopts when it ends: such a step writes no stream."""
        try:
            return processes.why_not_any_input(step, definition, options, operator_items(step)) is None
        except ConfigError:
            return False  # reported when the step runs

    def run(self, step, inputs, ctx):
        policy = None if step.adapter_code else RetryPolicy.from_config(step.config.get("retryPerRecord"))
        if policy is not None:
            for field_path, message in retry_problems(dict(step.config)):
                raise ConfigError(message, field=field_path)

        def context_for(index: int):
            context = ctx.operator_context(index)
            context.retrying_records = policy is not None
            return context

        items = operator_items(step)
        if processes.why_not_any_input(step, ctx.definition, ctx.options, items) is None:
            # A streamed input is read until its size decides where the step runs.
            process_feed.read_ahead(inputs, ctx.options.process_min_records)
        if processes.why_not(step, inputs, ctx, items) is None:  # CPU-heavy, large, parallel: another core
            try:
                return processes.run_step(TransformHandler, step, inputs, ctx, items)
            except processes.Unavailable as exc:
                log.info("step %s runs in a thread, not a worker process: %s", step.key, exc)
        chain = OperatorChain(items, context_for=context_for)
        return run_chain(chain, inputs, ctx, policy)


def run_chain(chain: OperatorChain, inputs: StepInput, ctx: StepContext, policy: RetryPolicy | None = None
              ) -> StepOutcome:
    out = ctx.new_output()
    seen = dropped = 0
    batches = [inputs.all_records()] if chain.needs_all_records else inputs.batches(ctx.batch_size)
    for batch in batches:
        _check_cancel(ctx)
        seen += len(batch)
        if policy is None:
            result, attempts = chain.apply(batch), {}
        else:
            result, attempts = apply_with_retry(chain, batch, policy, on_attempt=ctx.record_attempt,
                                                cancelled=ctx.cancelled.is_set)
        for failure in result.failures:
            ctx.record_error(failure.record, failure.message, attempts.get(failure.position, 1),
                             op=failure.op, opIndex=failure.op_index)
        dropped += result.dropped
        out.append(result.records)
    if chain.finishes:  # a streaming batch operator (multiJoin RIGHT/FULL) has rows left at the end
        _check_cancel(ctx)
        result = chain.finish()
        for failure in result.failures:
            ctx.record_error(failure.record, failure.message, op=failure.op, opIndex=failure.op_index)
        dropped += result.dropped
        out.append(result.records)
    return StepOutcome({None: out}, seen, len(out), dropped)


class ValidateHandler(StepHandler):
    """Field rules. ACCUMULATE (default): invalid records go to the record errors, valid ones pass.
    FAIL_FAST: the first invalid record is recorded and fails the step (nothing is passed on)."""

    streams_output = True

    def streams_input(self, step, definition, options):
        return True

    def run(self, step, inputs, ctx):
        check = compile_rules(step.config)
        fail_fast = step.config.get("errorHandlingMode", "ACCUMULATE") == "FAIL_FAST"
        out = ctx.new_output()
        seen = 0
        for batch in inputs.batches(ctx.batch_size):
            _check_cancel(ctx)
            valid = []
            for record in batch:
                seen += 1
                problems = check(record)
                if not problems:
                    valid.append(record)
                    continue
                ctx.record_error(record, "; ".join(problems))
                if fail_fast:
                    raise ConfigError(f"record {seen} is invalid: {'; '.join(problems)} (errorHandlingMode FAIL_FAST)")
            out.append(valid)
        return StepOutcome({None: out}, seen, len(out))


def enrich_items(step: StepSpec) -> list[dict]:
    """An ENRICH step as operators. STATIC: `defaults` fill missing fields, `set` overwrites (the `enrich`
    operator); HTTP: the `httpLookup` operator with the rest of the config as its args."""
    config = dict(step.config)
    source = config.pop("sourceType", "STATIC")
    if source == "HTTP":
        return [{"op": "httpLookup", "args": config}]
    return [{"op": "enrich", "args": {k: v for k, v in config.items() if k in ("set", "defaults")}}]


class EnrichHandler(StepHandler):
    streams_output = True

    def streams_input(self, step, definition, options):
        return True

    def run(self, step, inputs, ctx):
        chain = OperatorChain(enrich_items(step), context_for=ctx.operator_context)
        return run_chain(chain, inputs, ctx)


def route_branches(step: StepSpec) -> list[tuple[str, Callable[[Record], bool]]]:
    """A ROUTE step's branches as (name, test), in order; a bad condition is a ConfigError at its field."""
    from pipelines.conditions import compile_conditions

    branches = []
    for i, b in enumerate(step.config.get("branches") or []):
        try:
            branches.append((b["name"], compile_conditions(b.get("when") or [])))
        except ConfigError as exc:
            raise ConfigError(str(exc), field=f"branches.{i}.when" + (f".{exc.field}" if exc.field else "")) from None
    return branches


def routed(branches: list[tuple[str, Callable[[Record], bool]]], record: Record) -> list[str]:
    """The branches ``record`` goes to: every one whose conditions hold, else ``default``."""
    return [name for name, test in branches if test(record)] or ["default"]


class RouteHandler(StepHandler):
    """Each record goes to every branch whose conditions all hold, or to `default` when none does.
    The main output (an edge without branch) is the input, each record once."""

    def run(self, step, inputs, ctx):
        branches = route_branches(step)
        outs = {name: ctx.new_buffer() for name, _ in branches}
        outs["default"] = ctx.new_buffer()
        everything = ctx.new_output()
        seen = 0
        for batch in inputs.batches(ctx.batch_size):
            _check_cancel(ctx)
            seen += len(batch)
            by_branch: dict[str, list] = {name: [] for name in outs}
            for record in batch:
                for name in routed(branches, record):
                    by_branch[name].append(record)
            for name, records in by_branch.items():
                outs[name].append(records)
            everything.append(batch)
        return StepOutcome({None: everything, **outs}, seen, seen)


class WriteHandler(StepHandler):
    """LOAD, EXPORT, FEED and SINK: a writer adapter. LOAD passes on what it loaded."""

    streams_output = True

    def streams_input(self, step, definition, options):
        # Only a writer that publishes nothing before finish() (a file export): one that writes per batch
        # would leave half an input written when its producer fails.
        cls = registry.ADAPTER_REGISTRY_BY_STEP_TYPE[step.type].get(step.adapter_code).impl
        return bool(getattr(cls, "publishes_at_finish", False))

    def run(self, step, inputs, ctx):
        reg = registry.ADAPTER_REGISTRY_BY_STEP_TYPE[step.type]
        cls = reg.get(step.adapter_code).impl
        out = ctx.new_output()
        seen = 0
        if ctx.options.dry_run:
            for batch in inputs.batches(ctx.batch_size):
                seen += len(batch)
                out.append(batch)
            ctx.warn(f"dry run: {seen} records not written by {step.adapter_code}")
            return StepOutcome({None: out}, seen, len(out))
        writer = cls(dict(step.config), ctx.adapter_context())
        try:
            for batch in inputs.batches(ctx.batch_size):
                _check_cancel(ctx)
                seen += len(batch)
                result = writer.write(batch)
                failed_ids = set()
                for record, message in result.failed:
                    failed_ids.add(id(record))
                    ctx.record_error(record, message)
                if result.output is not None:
                    out.append(result.output)
                elif step.type == "LOAD":
                    out.append([r for r in batch if id(r) not in failed_ids])
            writer.finish()
        finally:
            writer.close()
        return StepOutcome({None: out}, seen, len(out))


TRIGGER_SCHEMA = {
    "type": "object",
    "properties": {
        "type": {"enum": ["MANUAL", "SCHEDULE", "WEBHOOK", "EVENT", "FILE", "MESSAGE"],
                 "description": "What starts the pipeline.", "default": "MANUAL"},
        "cron": {"type": "string", "description": "SCHEDULE: a 5-field cron expression."},
        "intervalSec": {"type": "integer", "minimum": 1, "description": "SCHEDULE: run every N seconds."},
        "timezone": {"type": "string", "description": "SCHEDULE: IANA time zone of the cron expression."},
        "catchUp": {"enum": ["ALL", "LAST", "NONE"], "default": "LAST",
                    "description": "SCHEDULE: after downtime, run every missed occurrence (at most 10), the "
                    "last one only, or none."},
        "authentication": {"enum": ["NONE", "API_KEY", "HMAC", "BASIC", "JWT"],
                           "description": "WEBHOOK: how a delivery proves who sent it (required; NONE only "
                           "when written explicitly)."},
        "apiKeySecretCode": {"type": "string", "description": "WEBHOOK API_KEY: the secret holding the key."},
        "apiKeyHeaderName": {"type": "string", "default": "x-api-key",
                             "description": "WEBHOOK API_KEY: the header carrying the key."},
        "apiKeyPrefix": {"type": "string", "description": "WEBHOOK API_KEY: a prefix before the key, e.g. 'Bearer '."},
        "secretCode": {"type": "string", "description": "WEBHOOK HMAC: the secret the signature is made with."},
        "hmacHeaderName": {"type": "string", "default": "x-datahub-signature",
                           "description": "WEBHOOK HMAC: the header carrying sha256=<hex> of the raw body."},
        "hmacAlgorithm": {"enum": ["SHA256", "SHA512"], "default": "SHA256",
                          "description": "WEBHOOK HMAC: the hash."},
        "basicSecretCode": {"type": "string", "description": "WEBHOOK BASIC: the secret holding user:password."},
        **JWT_PROPERTIES,
        "requireIdempotencyKey": {"type": "boolean", "default": False,
                                  "description": "WEBHOOK: refuse deliveries without an idempotency key."},
        "idempotencyKeyHeader": {"type": "string", "default": "X-Idempotency-Key",
                                 "description": "WEBHOOK: the header carrying the idempotency key."},
        "idempotencyTtlSec": {"type": "integer", "minimum": 1,
                              "description": "WEBHOOK: how long a key is remembered."},
        "rateLimit": {"type": "integer", "minimum": 0, "default": 100,
                      "description": "WEBHOOK: deliveries per window per client address to this trigger "
                      "(0: unlimited); beyond it 429 with Retry-After."},
        "rateLimitWindow": {"type": "integer", "minimum": 1, "default": 60,
                            "description": "WEBHOOK: the rate-limit window in seconds."},
        **MESSAGE_PROPERTIES,
        **FILE_TRIGGER_PROPERTIES,
        # MESSAGE and FILE triggers both name a connection: one property, both meanings.
        "connectionCode": {"type": "string", "minLength": 1,
                           "description": f"{MESSAGE_PROPERTIES['connectionCode']['description']} "
                           f"{FILE_TRIGGER_PROPERTIES['connectionCode']['description']}"},
        **EVENT_PROPERTIES,
    },
    "additionalProperties": False,
}
TRANSFORM_SCHEMA = {
    "type": "object",
    "properties": {
        "operators": {"type": "array", "description": "The operators, applied in order.",
                      "items": {"type": "object"}},
        "retryPerRecord": RETRY_SCHEMA,
    },
}
VALIDATE_SCHEMA = {
    "type": "object",
    "properties": {
        "errorHandlingMode": {"enum": ["ACCUMULATE", "FAIL_FAST"], "default": "ACCUMULATE",
                              "description": "ACCUMULATE records every invalid record and passes the valid "
                              "ones; FAIL_FAST fails the step at the first invalid record."},
        "fields": {"type": "object", "description": "Field path -> rules ({required, type, min, max, ...})."},
        "rules": {"type": "array", "description": "Rules, each with a `field`.", "items": {
            # The properties make the editor's form a row per rule; unknown keys are left to
            # validate_problems, so the editor says what the run would ("unknown rule key(s) ...").
            "type": "object",
            "properties": {
                "field": {"type": "string", "description": "The field path the rule checks."},
                "required": {"type": "boolean"},
                "type": {"enum": ["string", "number", "integer", "boolean", "object", "array"]},
                "min": {"type": "number"},
                "max": {"type": "number"},
                "minLength": {"type": "integer", "minimum": 0},
                "maxLength": {"type": "integer", "minimum": 0},
                "pattern": {"type": "string", "description": "A regular expression a string must match."},
                "enum": {"type": "array", "description": "The allowed values."},
                "format": {"enum": ["email", "url", "uuid", "date"]},
                "message": {"type": "string", "description": "Replaces the generated text."},
            },
            "required": ["field"],
        }},
    },
    "additionalProperties": False,
}
ENRICH_SCHEMA = {
    "type": "object",
    "properties": {
        "sourceType": {"enum": ["STATIC", "HTTP"], "default": "STATIC",
                       "description": "STATIC sets values; HTTP looks each record up over HTTP (httpLookup)."},
        "defaults": {"type": "object", "description": "STATIC: values for fields that are missing or null."},
        "set": {"type": "object", "description": "STATIC: values that overwrite fields."},
    },
}
ROUTE_SCHEMA = {
    "type": "object",
    "properties": {
        "branches": {
            "type": "array",
            "minItems": 1,
            "description": "Named branches; a record goes to each branch whose conditions all hold, to "
            "`default` when none does.",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "when": {"type": "array", "items": {"type": "object"}},
                },
                "required": ["name"],
            },
        },
    },
    "required": ["branches"],
    "additionalProperties": False,
}

STEP_TYPES = (
    ("TRIGGER", TriggerHandler(), TRIGGER_SCHEMA, "Starts a pipeline: manual, schedule, webhook, ..."),
    ("EXTRACT", ExtractHandler(), _PASS, "Reads records with an extractor."),
    ("TRANSFORM", TransformHandler(), TRANSFORM_SCHEMA, "Applies operators to records."),
    ("VALIDATE", ValidateHandler(), VALIDATE_SCHEMA, "Checks records against field rules."),
    ("ENRICH", EnrichHandler(), ENRICH_SCHEMA, "Adds data to records: static values or an HTTP lookup."),
    ("ROUTE", RouteHandler(), ROUTE_SCHEMA, "Sends records down named branches by conditions."),
    ("LOAD", WriteHandler(), _PASS, "Writes records into a target with a loader."),
    ("EXPORT", WriteHandler(), _PASS, "Writes records to a file or endpoint."),
    ("FEED", WriteHandler(), _PASS, "Writes a product feed."),
    ("SINK", WriteHandler(), _PASS, "Pushes records to a queue, index or webhook."),
)

def validate_problems(config: dict) -> list[tuple[str, str]]:
    """What compile_rules refuses when the run reaches the step, with the same messages, but every rule's
    problem at once (the run stops at the first), each at the path of the rule's field in the form."""
    fields, listed = config.get("fields") or {}, config.get("rules") or []
    if not isinstance(fields, dict) or not isinstance(listed, list) or not (fields or listed):
        try:
            compile_rules(config)
        except ConfigError as exc:
            return [(exc.field or "", str(exc))]
        return []
    out = []
    for name, rule in fields.items():
        try:
            compile_rules({"fields": {name: rule}})
        except ConfigError as exc:
            out.append((exc.field or f"fields.{name}", str(exc)))
    for i, rule in enumerate(listed):
        try:
            compile_rules({"rules": [rule]})
        except ConfigError as exc:
            name = rule.get("field") if isinstance(rule, dict) else None
            where = exc.field or ""
            prefix = f"fields.{name}"
            where = f"rules.{i}" + (where[len(prefix):] if name is not None and where.startswith(prefix) else "")
            out.append((where, str(exc)))
    return out


def route_problems(config: dict) -> list[tuple[str, str]]:
    """What RouteHandler refuses when it compiles the branches' conditions, every condition at once."""
    from pipelines.conditions import compile_conditions

    out = []
    for i, branch in enumerate(config.get("branches") or []):
        when = branch.get("when") or [] if isinstance(branch, dict) else []
        for j, cond in enumerate(when if isinstance(when, list) else [when]):
            try:
                compile_conditions([cond])
            except ConfigError as exc:
                rest = (exc.field or "").removeprefix("[0]")
                out.append((f"branches.{i}.when.{j}{rest}", str(exc)))
    return out


# Checks beyond the JSON schema, run when a definition is validated: (field, message) per problem.
STEP_CHECKS = {"TRIGGER": trigger_problems, "TRANSFORM": retry_problems, "VALIDATE": validate_problems,
               "ROUTE": route_problems}

for _code, _handler, _schema, _description in STEP_TYPES:
    registry.step_types.register(
        _code, _handler, name=_code.title(), category="step", description=_description, schema=_schema, builtin=True,
        check=STEP_CHECKS.get(_code),
    )

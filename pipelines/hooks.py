"""Pipeline hooks: what ``definition.hooks`` asks to happen at each stage of a run. [pure]

``hooks`` is the plugin's ``{STAGE: [action, ...]}``. Stages:

* ``BEFORE_<TYPE>`` / ``AFTER_<TYPE>`` for the nine step types EXTRACT, TRANSFORM, VALIDATE, ENRICH, ROUTE,
  LOAD, EXPORT, FEED and SINK (18 stages): before a step of that type starts its first attempt, and after
  it COMPLETED.
* ``ON_RETRY`` (an attempt failed and will be tried again), ``ON_ERROR`` (a step failed for good, also with
  continueOnError), ``ON_DEAD_LETTER`` (a step ended with failed records), ``PIPELINE_STARTED`` (not again
  when a paused run continues), ``PIPELINE_COMPLETED`` and ``PIPELINE_FAILED`` (a paused or cancelled run
  fires neither).

Actions (``type``), each may have a ``name``:

* ``SCRIPT {name, args, failOnError=true}``: a Python function registered in ``pipelines.registry.scripts``
  called as ``fn(records, context, args)``; it returns the new records (or None after changing them in
  place). Only at the 18 step stages, where it changes the records: BEFORE_ stages the step's input,
  AFTER_ stages its outputs, batch by batch inside the step's thread. A script that raises fails the step
  (``failOnError: false``: the batch goes on unchanged and the step gets a warning).
* ``WEBHOOK {url, headers, headerSecretCodes, secretCode, signatureHeader, retryConfig, timeoutMs}``,
  ``LOG {level, message}``, ``EMAIL {to, subject, body}`` and ``TRIGGER_PIPELINE {pipelineCode, triggerKey}``
  change nothing in the run: the executor emits a :class:`~runs.engine.events.HookFired` event and the
  store carries them out (``runs.hooks``). They never fail a run. ``maxRecords`` bounds how many records a
  WEBHOOK or TRIGGER_PIPELINE payload carries (the count is always complete).

The plugin's ``INTERCEPTOR`` (inline JavaScript) and ``EMIT`` (Vendure events) have no equivalent here and
are refused with a hint; ``failOnError`` on a non-SCRIPT action is accepted and ignored (they never fail).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipelines import registry
from pipelines.errors import ConfigError, Problem, StepError, UnknownCode
from pipelines.http_policy import check_headers
from pipelines.records import Batch, deep_copy

STEP_STAGE_TYPES = ("EXTRACT", "TRANSFORM", "VALIDATE", "ENRICH", "ROUTE", "LOAD", "EXPORT", "FEED", "SINK")
STEP_STAGES = tuple(f"{when}_{t}" for when in ("BEFORE", "AFTER") for t in STEP_STAGE_TYPES)
RUN_STAGES = ("ON_ERROR", "ON_RETRY", "ON_DEAD_LETTER", "PIPELINE_STARTED", "PIPELINE_COMPLETED",
              "PIPELINE_FAILED")
STAGES = STEP_STAGES + RUN_STAGES
ACTION_TYPES = ("WEBHOOK", "LOG", "TRIGGER_PIPELINE", "EMAIL", "SCRIPT")
# Plugin action types with no equivalent here, and what to use instead.
_UNSUPPORTED = {
    "INTERCEPTOR": "inline JavaScript does not run here; register a Python function in "
                   "pipelines.registry.scripts and use a SCRIPT action",
    "EMIT": "there are no Vendure domain events here; use WEBHOOK or TRIGGER_PIPELINE",
}
LOG_LEVELS = ("DEBUG", "INFO", "WARN", "WARNING", "ERROR")
DEFAULT_MAX_RECORDS = {"WEBHOOK": 100, "TRIGGER_PIPELINE": 10_000}
MAX_RECORDS_LIMIT = 100_000

_COMMON = {
    "type": {"enum": list(ACTION_TYPES)},
    "name": {"type": "string", "maxLength": 200, "description": "Shown in logs and delivery lists."},
    "failOnError": {"type": "boolean", "description": "SCRIPT only: a failing script fails the step "
                    "(default true); other actions never fail a run."},
}
_MAX_RECORDS = {"type": "integer", "minimum": 0, "maximum": MAX_RECORDS_LIMIT,
                "description": "At most this many records go in the payload (the count is complete)."}
ACTION_SCHEMAS: dict[str, dict] = {
    "WEBHOOK": {
        "type": "object",
        "properties": {
            **_COMMON,
            "url": {"type": "string", "pattern": "^https?://", "description": "Where the JSON payload is POSTed."},
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "headerSecretCodes": {"type": "object", "additionalProperties": {"type": "string", "minLength": 1},
                                  "description": "Header name -> secret code whose value is sent in it."},
            "secretCode": {"type": "string", "minLength": 1,
                           "description": "Secret that signs the body: sha256=<hex HMAC-SHA256> in signatureHeader."},
            "signatureHeader": {"type": "string", "minLength": 1, "default": "X-DataHub-Signature"},
            "timeoutMs": {"type": "integer", "minimum": 100, "maximum": 120_000, "default": 10_000},
            "maxRecords": _MAX_RECORDS,
            "retryConfig": {
                "type": "object",
                "properties": {
                    "maxAttempts": {"type": "integer", "minimum": 1, "maximum": 20, "default": 5},
                    "initialDelayMs": {"type": "integer", "minimum": 0, "maximum": 86_400_000, "default": 1000},
                    "maxDelayMs": {"type": "integer", "minimum": 0, "maximum": 86_400_000, "default": 300_000},
                    "backoffMultiplier": {"type": "number", "minimum": 1, "maximum": 10, "default": 2},
                },
                "additionalProperties": False,
            },
        },
        "required": ["type", "url"],
        "additionalProperties": False,
    },
    "LOG": {
        "type": "object",
        "properties": {
            **_COMMON,
            "level": {"enum": list(LOG_LEVELS), "default": "INFO"},
            "message": {"type": "string", "description": "May use ${pipelineCode}, ${runId}, ${stage}, "
                        "${stepKey}, ${recordCount}, ${error}, ${status}."},
        },
        "required": ["type"],
        "additionalProperties": False,
    },
    "TRIGGER_PIPELINE": {
        "type": "object",
        "properties": {
            **_COMMON,
            "pipelineCode": {"type": "string", "minLength": 1},
            "triggerKey": {"type": "string", "minLength": 1,
                           "description": "The TRIGGER step of that pipeline the records go into (default: its "
                           "first TRIGGER step)."},
            "maxRecords": _MAX_RECORDS,
        },
        "required": ["type", "pipelineCode"],
        "additionalProperties": False,
    },
    "EMAIL": {
        "type": "object",
        "properties": {
            **_COMMON,
            "to": {"oneOf": [{"type": "string", "minLength": 3},
                             {"type": "array", "items": {"type": "string", "minLength": 3}, "minItems": 1}]},
            "subject": {"type": "string"},
            "body": {"type": "string"},
        },
        "required": ["type", "to"],
        "additionalProperties": False,
    },
    "SCRIPT": {
        "type": "object",
        "properties": {
            **_COMMON,
            "name": {"type": "string", "minLength": 1, "description": "A function in pipelines.registry.scripts."},
            "args": {"type": "object"},
        },
        "required": ["type", "name"],
        "additionalProperties": False,
    },
}


@dataclass(frozen=True)
class Action:
    stage: str
    index: int
    type: str
    config: Mapping[str, Any]

    @property
    def label(self) -> str:
        """``WEBHOOK 'notify shop'`` or ``LOG #2``; a SCRIPT's name is its function's."""
        name = self.config.get("name")
        return f"{self.type} '{name}'" if name else f"{self.type} #{self.index + 1}"

    @property
    def max_records(self) -> int:
        return int(self.config.get("maxRecords", DEFAULT_MAX_RECORDS.get(self.type, 0)))

    def as_dict(self) -> dict:
        return dict(self.config)


@dataclass(frozen=True)
class Hooks:
    by_stage: Mapping[str, tuple[Action, ...]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return any(self.by_stage.values())

    def scripts(self, stage: str) -> tuple[Action, ...]:
        return tuple(a for a in self.by_stage.get(stage, ()) if a.type == "SCRIPT")

    def others(self, stage: str) -> tuple[Action, ...]:
        """The actions the store carries out (everything but SCRIPT)."""
        return tuple(a for a in self.by_stage.get(stage, ()) if a.type != "SCRIPT")


NO_HOOKS = Hooks()


def problems(raw: Any, *, scripts: registry.Registry | None = None) -> list[Problem]:
    """Every problem of a ``hooks`` value, with its field path (``hooks.AFTER_LOAD[0].url``)."""
    out: list[Problem] = []
    _build(raw, out, scripts if scripts is not None else registry.scripts)
    return out


def parse(raw: Any, *, scripts: registry.Registry | None = None) -> Hooks:
    """The hooks of a definition (``definition.extra.get("hooks")``), or ConfigError naming every problem."""
    found: list[Problem] = []
    hooks = _build(raw, found, scripts if scripts is not None else registry.scripts)
    if found:
        raise ConfigError("; ".join(f"{p.field}: {p.message}" for p in found), field="hooks")
    return hooks


def _build(raw: Any, found: list[Problem], scripts: registry.Registry) -> Hooks:
    if raw is None:
        return NO_HOOKS
    if not isinstance(raw, dict):
        found.append(Problem("must be an object {STAGE: [action, ...]}", field="hooks"))
        return NO_HOOKS
    by_stage: dict[str, tuple[Action, ...]] = {}
    for stage, items in raw.items():
        where = f"hooks.{stage}"
        if stage not in STAGES:
            hint = UnknownCode("hook stage", str(stage), list(STAGES)).message
            found.append(Problem(hint, field=where, code="unknown_stage"))
            continue
        if items is None:
            continue
        if isinstance(items, dict):  # one action instead of a list
            items = [items]
        if not isinstance(items, list):
            found.append(Problem("must be a list of actions", field=where))
            continue
        actions = []
        for i, item in enumerate(items):
            action = _build_action(stage, i, item, f"{where}[{i}]", found, scripts)
            if action is not None:
                actions.append(action)
        by_stage[stage] = tuple(actions)
    return Hooks(by_stage)


def _build_action(stage, index, item, where, found, scripts) -> Action | None:
    if not isinstance(item, dict):
        found.append(Problem("an action must be an object with a type", field=where))
        return None
    kind = item.get("type")
    if kind in _UNSUPPORTED:
        found.append(Problem(f"{kind} is not supported: {_UNSUPPORTED[kind]}", field=f"{where}.type",
                             code="unsupported"))
        return None
    if kind not in ACTION_SCHEMAS:
        hint = UnknownCode("hook action", str(kind), list(ACTION_TYPES)).message
        found.append(Problem(f"{hint} (one of {', '.join(ACTION_TYPES)})", field=f"{where}.type",
                             code="unknown_action"))
        return None
    before = len(found)
    for path, message in registry.schema_problems(ACTION_SCHEMAS[kind], item):
        found.append(Problem(message, field=where + (f".{path}" if path else "")))
    if kind == "WEBHOOK":  # the one credential-header rule of outbound HTTP (pipelines.http_policy)
        try:
            check_headers(item.get("headers"), f"{where}.headers", secret_hint="headerSecretCodes")
        except ConfigError as exc:
            found.append(Problem(str(exc), field=exc.field))
    if kind == "SCRIPT":
        if stage not in STEP_STAGES:
            found.append(Problem("SCRIPT actions change records, so they run only at the BEFORE_/AFTER_ "
                                 "step stages", field=f"{where}.type"))
        elif isinstance(item.get("name"), str) and item["name"] not in scripts:
            found.append(Problem(UnknownCode("script", item["name"], scripts.codes()).message,
                                 field=f"{where}.name", code="unknown_script"))
    if len(found) > before:
        return None
    return Action(stage, index, kind, copy.deepcopy(item))


# --- stages of a step ---------------------------------------------------------------------------


def step_stages(step_type: str) -> tuple[str | None, str | None]:
    """(BEFORE_x, AFTER_x) of a step type, or (None, None) for TRIGGER and GATE steps."""
    if step_type not in STEP_STAGE_TYPES:
        return None, None
    return f"BEFORE_{step_type}", f"AFTER_{step_type}"


# --- SCRIPT actions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ScriptContext:
    """What a script is told besides its records and args."""

    pipeline_code: str
    run_id: Any
    step_key: str
    stage: str
    dry_run: bool
    batch_index: int
    warn: Callable[[str], None]


ScriptFn = Callable[[Batch, ScriptContext, dict], Batch | None]


def apply_scripts(actions: Iterable[Action], batches: Iterable[Batch], *, context: Callable[[str, int], ScriptContext],
                  warn: Callable[[str], None], scripts: registry.Registry | None = None):
    """Yield each batch after every script of ``actions`` changed it, in order. A script that raises
    fails the step (StepError) unless its ``failOnError`` is false: then the batch goes on as it was
    before that script, and the step gets a warning."""
    reg = scripts if scripts is not None else registry.scripts
    chain = [(a, reg.get(a.config["name"]).impl) for a in actions]
    for n, batch in enumerate(batches):
        for action, fn in chain:
            fail = action.config.get("failOnError", True)
            # With failOnError off the script gets a copy, so a half-done change cannot leak on.
            given = batch if fail else deep_copy(batch)
            try:
                result = fn(given, context(action.stage, n), dict(action.config.get("args") or {}))
                if result is None:
                    result = given
                if not isinstance(result, list) or not all(isinstance(r, dict) for r in result):
                    raise TypeError(f"it returned {type(result).__name__}, not a list of records (dicts)")
            except Exception as exc:
                message = f"hook {action.stage} {action.label} failed: {type(exc).__name__}: {exc}"
                if fail:
                    raise StepError(message, retryable=True) from exc
                warn(message + " (failOnError false: the batch went on unchanged)")
                continue
            batch = result
        yield batch


# --- payloads -----------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


def render(template: str, payload: Mapping[str, Any]) -> str:
    """``${name}`` replaced by the payload's value; unknown names stay as written."""

    def value(m: re.Match) -> str:
        v = payload.get(m.group(1))
        return m.group(0) if v is None and m.group(1) not in payload else str(v)

    return _PLACEHOLDER.sub(value, template)

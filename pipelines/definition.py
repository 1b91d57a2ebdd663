"""Parse, validate and serialize pipeline definitions. [pure]

The definition is the plugin's JSON, ``{"version": 1, "steps": [...], "edges": [...], "context": {...}}``
(camelCase keys), as frozen dataclasses for the engine (snake_case attributes). This module is the only
place the two spellings meet.

``parse`` collects *every* problem before it raises, each naming its step and field, so a person fixing a
definition sees them all at once. ``to_dict`` is the exact inverse of ``parse`` for a normalized
definition: optional step fields are written only when they differ from their defaults.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipelines import graph, hooks, registry
from pipelines.errors import ConfigError, DefinitionError, Problem, UnknownCode
from pipelines.operators.base import OperatorContext
from pipelines.operators.chain import check_operator
from pipelines.registry import operators as operator_registry

STEP_TYPES = (
    "TRIGGER",
    "EXTRACT",
    "TRANSFORM",
    "VALIDATE",
    "ENRICH",
    "ROUTE",
    "LOAD",
    "EXPORT",
    "FEED",
    "SINK",
    "GATE",
)
# Step types whose work is done by an adapter named in adapterCode.
ADAPTER_REQUIRED = frozenset({"EXTRACT", "LOAD", "EXPORT", "FEED", "SINK"})
ERROR_POLICIES = ("FAIL_FAST", "CONTINUE", "BEST_EFFORT")
MAX_CONCURRENT_STEPS = 16
KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")

# Plugin step fields we keep verbatim so that a definition exported from the plugin round-trips.
_STEP_PASSTHROUGH = ("throughput", "context", "schemaRef", "async", "description")
_STEP_KEYS = {
    "key",
    "type",
    "adapterCode",
    "name",
    "config",
    "disabled",
    "retries",
    "retryDelayMs",
    "timeoutMs",
    "continueOnError",
    *_STEP_PASSTHROUGH,
}
_EDGE_KEYS = {"from", "to", "branch", "dependencyOnly"}
_TOP_KEYS = {"version", "code", "name", "description", "steps", "edges", "context"}
# Top-level plugin keys kept verbatim (hooks are wired by a later issue; capabilities/dependsOn are data).
_TOP_PASSTHROUGH = ("hooks", "capabilities", "dependsOn", "trigger", "triggers")

# How much a run writes to its log (runs.run_logs), least to most: errors only, the run's start and end,
# each step too, and every record failure and hook. context.logLevel sets it per pipeline.
RUN_LOG_LEVELS = ("ERROR", "PIPELINE", "STEP", "DEBUG")

CONTEXT_SCHEMA: dict = {
    "type": "object",
    "properties": {
        "logLevel": {"enum": list(RUN_LOG_LEVELS)},
        "parallelExecution": {
            "type": "object",
            "properties": {
                "enabled": {"type": "boolean"},
                "maxConcurrentSteps": {"type": "integer", "minimum": 1, "maximum": MAX_CONCURRENT_STEPS},
                "errorPolicy": {"enum": list(ERROR_POLICIES)},
                # CPU-heavy TRANSFORM steps in worker processes (runs.engine.processes); "off": threads only.
                "processes": {"enum": ["auto", "off"]},
            },
            "additionalProperties": False,
        },
        "errorHandling": {
            "type": "object",
            "properties": {
                "maxRetries": {"type": "integer", "minimum": 0, "maximum": 100},
                "retryDelayMs": {"type": "integer", "minimum": 0},
                "maxRetryDelayMs": {"type": "integer", "minimum": 0},
                "backoffMultiplier": {"type": "number", "minimum": 1, "maximum": 10},
                "deadLetterQueue": {"type": "boolean"},
                "errorThresholdPercent": {"type": "number", "minimum": 0, "maximum": 100},
            },
        },
        "checkpointing": {"type": "object", "properties": {"enabled": {"type": "boolean"}}},
        "streaming": {"type": "object", "additionalProperties": False, "properties": {"enabled": {
            "type": "boolean", "description": "Steps read their predecessor's batches as they are produced, "
            "where safe (docs/streaming.md); false: every step waits for its inputs to end."}}},
        "throughput": {
            "type": "object",
            "properties": {
                "batchSize": {"type": "integer", "minimum": 1, "maximum": 100_000},
                "rateLimitRps": {"type": "number", "exclusiveMinimum": 0},
                "concurrency": {"type": "integer", "minimum": 1, "maximum": 16},
            },
        },
        "allowConcurrentRuns": {"type": "boolean"},
    },
}


@dataclass(frozen=True)
class StepSpec:
    key: str
    type: str
    config: Mapping[str, Any] = field(default_factory=dict)
    adapter_code: str | None = None
    name: str | None = None
    disabled: bool = False
    retries: int = 0
    retry_delay_ms: int = 0
    timeout_ms: int | None = None
    continue_on_error: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"key": self.key, "type": self.type}
        if self.adapter_code is not None:
            out["adapterCode"] = self.adapter_code
        if self.name is not None:
            out["name"] = self.name
        out["config"] = dict(self.config)
        if self.disabled:
            out["disabled"] = True
        if self.retries:
            out["retries"] = self.retries
        if self.retry_delay_ms:
            out["retryDelayMs"] = self.retry_delay_ms
        if self.timeout_ms is not None:
            out["timeoutMs"] = self.timeout_ms
        if self.continue_on_error:
            out["continueOnError"] = True
        out.update(self.extra)
        return out

    @property
    def branches(self) -> list[str]:
        """The names of a ROUTE step's branches (in order)."""
        items = self.config.get("branches") if self.type == "ROUTE" else None
        if not isinstance(items, list):
            return []
        return [b["name"] for b in items if isinstance(b, dict) and isinstance(b.get("name"), str)]


@dataclass(frozen=True)
class EdgeSpec:
    from_key: str
    to_key: str
    branch: str | None = None
    dependency_only: bool = False

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"from": self.from_key, "to": self.to_key}
        if self.branch is not None:
            out["branch"] = self.branch
        if self.dependency_only:
            out["dependencyOnly"] = True
        return out


@dataclass(frozen=True)
class ParallelSettings:
    enabled: bool = False
    max_concurrent_steps: int = 4
    error_policy: str = "FAIL_FAST"
    processes: str = "auto"


@dataclass(frozen=True)
class Definition:
    steps: tuple[StepSpec, ...]
    edges: tuple[EdgeSpec, ...] = ()
    context: Mapping[str, Any] = field(default_factory=dict)
    version: int = 1
    code: str | None = None
    name: str | None = None
    description: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def graph_mode(self) -> bool:
        """Edges present: run as a graph; none: steps run in list order (the plugin's rule)."""
        return bool(self.edges)

    @property
    def parallel(self) -> ParallelSettings:
        p = self.context.get("parallelExecution") or {}
        return ParallelSettings(
            enabled=bool(p.get("enabled", False)),
            max_concurrent_steps=int(p.get("maxConcurrentSteps", 4)),
            error_policy=str(p.get("errorPolicy", "FAIL_FAST")),
            processes=str(p.get("processes", "auto")),
        )

    @property
    def streaming(self) -> bool:
        return (self.context.get("streaming") or {}).get("enabled", True) is not False

    @property
    def batch_size(self) -> int:
        return int((self.context.get("throughput") or {}).get("batchSize", 1000))

    def step(self, key: str) -> StepSpec:
        for s in self.steps:
            if s.key == key:
                return s
        raise KeyError(key)

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"version": self.version}
        if self.code is not None:
            out["code"] = self.code
        if self.name is not None:
            out["name"] = self.name
        if self.description is not None:
            out["description"] = self.description
        out["steps"] = [s.to_dict() for s in self.steps]
        out["edges"] = [e.to_dict() for e in self.edges]
        out["context"] = dict(self.context)
        out.update(self.extra)
        return out


def parse(data: Any, *, check_plugins: bool = True) -> Definition:
    """The Definition for ``data``, or DefinitionError listing every problem found.

    ``check_plugins=False`` checks only the shape and the graph (used where the registries may not be
    loaded); the executor always parses with plugins checked.
    """
    problems: list[Problem] = []
    definition = _build(data, problems)
    if definition is not None:
        # Every problem at once: a duplicate key must not hide a misspelt operator. The graph is checked
        # only when every step could be read and its key is its own (a step left out would make its edges
        # look unknown; two steps with one key would look like a cycle).
        keys = [s.key for s in definition.steps]
        if len(keys) == len(data.get("steps") or ()) and len(set(keys)) == len(keys):
            problems.extend(graph.problems(definition))
        if check_plugins:
            for step in definition.steps:
                problems.extend(check_step_config(step))
            if "hooks" in definition.extra:
                problems.extend(hooks.problems(definition.extra["hooks"]))
    if problems:
        raise DefinitionError(problems)
    assert definition is not None
    return definition


def problems_of(data: Any) -> list[Problem]:
    """Every problem of ``data`` as a list (empty when valid), for forms and the API's validate call."""
    try:
        parse(data)
    except DefinitionError as exc:
        return exc.problems
    return []


def _build(data: Any, problems: list[Problem]) -> Definition | None:
    if not isinstance(data, dict):
        problems.append(Problem("a pipeline definition must be a JSON object", field=""))
        return None
    for key in sorted(set(data) - _TOP_KEYS - set(_TOP_PASSTHROUGH)):
        problems.append(Problem(f"unknown top-level key '{key}'", field=key, code="unknown_field"))
    version = data.get("version", 1)
    if version != 1 or isinstance(version, bool):
        problems.append(Problem("version must be 1", field="version"))
    for text_key in ("code", "name", "description"):
        if data.get(text_key) is not None and not isinstance(data[text_key], str):
            problems.append(Problem("must be a string", field=text_key))
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        problems.append(Problem("a pipeline needs a non-empty list of steps", field="steps"))
        raw_steps = []
    raw_edges = data.get("edges", [])
    if raw_edges is None:
        raw_edges = []
    if not isinstance(raw_edges, list):
        problems.append(Problem("must be a list of {from, to} objects", field="edges"))
        raw_edges = []
    context = data.get("context", {})
    if context is None:
        context = {}
    if not isinstance(context, dict):
        problems.append(Problem("must be an object", field="context"))
        context = {}
    for where, message in registry.schema_problems(CONTEXT_SCHEMA, context):
        problems.append(Problem(message, field="context" + (f".{where}" if where else "")))

    steps: list[StepSpec] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_steps):
        step = _build_step(raw, i, problems)
        if step is None:
            continue
        if step.key in seen:
            problems.append(Problem(f"duplicate step key '{step.key}'", step=step.key, field="key",
                                    code="duplicate_key"))
        seen.add(step.key)
        steps.append(step)

    edges: list[EdgeSpec] = []
    for i, raw in enumerate(raw_edges):
        edge = _build_edge(raw, i, problems)
        if edge is not None:
            edges.append(edge)

    return Definition(
        steps=tuple(steps),
        edges=tuple(edges),
        context=context,
        version=1,
        code=data.get("code"),
        name=data.get("name"),
        description=data.get("description"),
        extra={k: data[k] for k in _TOP_PASSTHROUGH if k in data},
    )


def _build_step(raw: Any, index: int, problems: list[Problem]) -> StepSpec | None:
    where = f"steps[{index}]"
    if not isinstance(raw, dict):
        problems.append(Problem("a step must be an object", field=where))
        return None
    key = raw.get("key")
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        problems.append(
            Problem("a step key is required: letters, digits, '_', '-' or '.', at most 100 characters",
                    field=f"{where}.key", code="invalid_key")
        )
        return None
    bad = len(problems)

    def problem(message: str, fld: str, code: str = "invalid") -> None:
        problems.append(Problem(message, step=key, field=fld, code=code))

    for unknown in sorted(set(raw) - _STEP_KEYS):
        problem(f"unknown step field '{unknown}'", unknown, "unknown_field")
    step_type = raw.get("type")
    if step_type not in STEP_TYPES:
        hint = UnknownCode("step type", str(step_type), list(STEP_TYPES)).message
        problem(f"{hint} (one of {', '.join(STEP_TYPES)})", "type", "unknown_type")
    adapter = raw.get("adapterCode")
    if adapter is not None and not isinstance(adapter, str):
        problem("must be a string", "adapterCode")
    config = raw.get("config", {})
    if config is None:
        config = {}
    if not isinstance(config, dict):
        problem("must be an object", "config")
        config = {}
    for flag in ("disabled", "continueOnError"):
        if flag in raw and not isinstance(raw[flag], bool):
            problem("must be true or false", flag)
    for number, minimum, maximum in (("retries", 0, 100), ("retryDelayMs", 0, 3_600_000),
                                     ("timeoutMs", 1, 86_400_000)):
        value = raw.get(number)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not minimum <= value <= maximum):
            problem(f"must be a whole number from {minimum} to {maximum}", number)
    if raw.get("name") is not None and not isinstance(raw.get("name"), str):
        problem("must be a string", "name")
    if len(problems) > bad:
        return None
    return StepSpec(
        key=key,
        type=step_type,
        config=config,
        adapter_code=adapter,
        name=raw.get("name"),
        disabled=bool(raw.get("disabled", False)),
        retries=int(raw.get("retries") or 0),
        retry_delay_ms=int(raw.get("retryDelayMs") or 0),
        timeout_ms=raw.get("timeoutMs"),
        continue_on_error=bool(raw.get("continueOnError", False)),
        extra={k: raw[k] for k in _STEP_PASSTHROUGH if k in raw},
    )


def _build_edge(raw: Any, index: int, problems: list[Problem]) -> EdgeSpec | None:
    where = f"edges[{index}]"
    if not isinstance(raw, dict):
        problems.append(Problem("an edge must be an object like {\"from\": \"a\", \"to\": \"b\"}", field=where))
        return None
    ok = True
    for unknown in sorted(set(raw) - _EDGE_KEYS):
        problems.append(Problem(f"unknown edge field '{unknown}'", field=f"{where}.{unknown}"))
        ok = False
    for end in ("from", "to"):
        if not isinstance(raw.get(end), str) or not raw.get(end):
            problems.append(Problem("is required (a step key)", field=f"{where}.{end}"))
            ok = False
    if raw.get("branch") is not None and not isinstance(raw.get("branch"), str):
        problems.append(Problem("must be a string", field=f"{where}.branch"))
        ok = False
    if "dependencyOnly" in raw and not isinstance(raw["dependencyOnly"], bool):
        problems.append(Problem("must be true or false", field=f"{where}.dependencyOnly"))
        ok = False
    if not ok:
        return None
    return EdgeSpec(raw["from"], raw["to"], raw.get("branch"), bool(raw.get("dependencyOnly", False)))


def check_step_config(step: StepSpec) -> list[Problem]:
    """Problems of one step's adapterCode and config against the registries."""
    problems: list[Problem] = []

    def add(message: str, fld: str, code: str = "invalid_config") -> None:
        problems.append(Problem(message, step=step.key, field=fld, code=code))

    if step.type not in registry.step_types:
        add(f"step type {step.type} is not available: no handler is registered for it", "type",
            "unavailable_type")
        return problems
    type_entry = registry.step_types.get(step.type)
    adapter_registry = registry.ADAPTER_REGISTRY_BY_STEP_TYPE.get(step.type)

    if step.adapter_code is None and step.type in ADAPTER_REQUIRED:
        known = ", ".join(adapter_registry.codes()[:12]) if adapter_registry else ""
        add(f"{step.type} steps need an adapterCode (for example {known})", "adapterCode", "required")
        return problems

    if step.adapter_code is not None:
        if adapter_registry is None:
            add(f"{step.type} steps take no adapterCode", "adapterCode")
            return problems
        try:
            entry = adapter_registry.get(step.adapter_code)
        except UnknownCode as exc:
            add(exc.message, "adapterCode", "unknown_adapter")
            return problems
        for where, message in entry.config_problems(dict(step.config)):
            add(message, "config" + (f".{where}" if where else ""))
        return problems

    if step.type == "TRANSFORM":
        operators = step.config.get("operators")
        if not isinstance(operators, list):
            add("a TRANSFORM step needs config.operators, a list of {op, args}", "config.operators")
            return problems
        for i, item in enumerate(operators):
            found = check_operator(item, i)
            for where, message in found:
                add(message, f"config.{where}")
            if not found:
                for where, message in static_operator_problems(item, i):
                    add(message, f"config.{where}")

    schema_found = type_entry.config_problems(dict(step.config))
    for where, message in schema_found:
        add(message, "config" + (f".{where}" if where else ""))
    check = type_entry.meta.get("check")
    if check is not None:
        # Every problem at once: the type's own check runs even when the schema found some. It may assume
        # its schema holds, so then it may fail, and what it finds at a field the schema named is left out.
        try:
            found = check(dict(step.config))
        except Exception:  # noqa: BLE001 - only when the schema problems above are already reported
            if not schema_found:
                raise
            found = []
        named = {where for where, _ in schema_found}
        for where, message in found:
            if not schema_found or where not in named:
                add(message, f"config.{where}")
    return problems


def static_operator_problems(item: dict, index: int) -> list[tuple[str, str]]:
    """What building an operator from its static args refuses (an unsafe regex, a condition that can never
    match, an unknown locale...), found when the definition is validated rather than when the run reaches
    the step. Record operators are built as the run builds them; a pure batch operator is applied to no
    records, which checks its args without touching data. Impure ones (httpLookup, custom plugins) need
    the run's context and are checked when the step starts.
    """
    spec = operator_registry.get(item["op"]).impl
    args = dict(item.get("args") or {})
    ctx = OperatorContext(op_index=index)
    try:
        if spec.per_record:
            spec.build(args, ctx)
        elif spec.pure and spec.apply is not None and spec.references is None:
            spec.apply([], args, ctx)
    except ConfigError as exc:
        return [(f"operators[{index}].args" + (f".{exc.field}" if exc.field else ""), str(exc))]
    return []


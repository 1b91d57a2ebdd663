"""The Python DSL: build a pipeline definition in code. [pure]

    from pipelines.dsl import branch, conditions, create_pipeline, operators

    definition = (
        create_pipeline()
        .code("product-sync")
        .name("Product sync")
        .parallel(max_concurrent_steps=4, error_policy="BEST_EFFORT")
        .extract("products", "httpApi", url="https://example.com/products", data_path="items")
        .transform("clean", operators=[operators.trim(path="name"), operators.to_number(source="price")])
        .route("by-price", branches=[branch("cheap", conditions.lt("price", 10))])
        .load("save", "restPost", endpoint="https://example.com/in")
        .edge("products", "clean")
        .edge("clean", "by-price")
        .edge("by-price", "save", branch="cheap")
        .build()
    )

``build()`` gives the definition dict, the same JSON the API carries and the plugin's DSL writes.

Python is snake_case and definitions are camelCase: keyword arguments become camelCase keys
(``data_path`` -> ``dataPath``, ``from_`` -> ``from``), but only the keyword names themselves. Values are
kept exactly as given, dicts included, because they are often user data (records, field maps, headers)
whose keys must not change. A key that does not convert cleanly can be given verbatim with ``config={...}``.

Why one module of this size: it is one public surface read as one page (the builder, the operator and
condition helpers, branches); its parts only make sense together.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Self

from pipelines import registry
from pipelines.definition import ERROR_POLICIES, MAX_CONCURRENT_STEPS, RUN_LOG_LEVELS, parse
from pipelines.errors import UnknownCode

__all__ = [
    "PipelineBuilder",
    "UnknownOperator",
    "branch",
    "conditions",
    "create_pipeline",
    "operators",
]


def camel(name: str) -> str:
    """``data_path`` -> ``dataPath``; ``from_`` -> ``from`` (the trailing ``_`` dodges a Python keyword)."""
    if name.endswith("_") and not name.endswith("__"):
        name = name[:-1]
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def snake(code: str) -> str:
    """``multiJoin`` -> ``multi_join``: the Python spelling of an operator code."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", code).lower()


def _camel_keys(kwargs: Mapping[str, Any], raw: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Keyword arguments as a camelCase dict (values deep-copied, never converted), plus ``raw`` verbatim."""
    out: dict[str, Any] = copy.deepcopy(dict(raw)) if raw else {}
    for name, value in kwargs.items():
        key = camel(name)
        if key in out:
            raise ValueError(f"'{key}' is given twice (as {name}= and in config= or another spelling)")
        out[key] = copy.deepcopy(value)
    return out


# ---------------------------------------------------------------------------------------------------------
# The pipeline builder
# ---------------------------------------------------------------------------------------------------------

# Step fields set by keyword on every step method, in StepSpec.to_dict's order, with the default that
# to_dict leaves out (so that a built definition is already normalized: parse(d).to_dict() == d).
_STEP_OPTIONS: tuple[tuple[str, str, Any], ...] = (
    ("disabled", "disabled", False),
    ("retries", "retries", 0),
    ("retry_delay_ms", "retryDelayMs", 0),
    ("timeout_ms", "timeoutMs", None),
    ("continue_on_error", "continueOnError", False),
)
_STEP_FIELDS = {json for _, json, _ in _STEP_OPTIONS}


def _is_default(value: Any, default: Any) -> bool:
    # `type(...) is` keeps False apart from 0, so retries=False still reaches parse() and is refused.
    return value is None or (value == default and type(value) is type(default))


class PipelineBuilder:
    """Builds one definition. Every method but :meth:`build` returns the builder, so calls chain.

    Step methods take the step's key first, then (EXTRACT, LOAD, EXPORT, FEED, SINK) the adapter code,
    then keyword arguments: ``name``, ``disabled``, ``retries``, ``retry_delay_ms``, ``timeout_ms`` and
    ``continue_on_error`` are fields of the step; every other keyword goes into the step's ``config``.
    Use ``config={...}`` for config keys named like a step field (``name``) or not spelled in camelCase.

    Problems of the whole (no steps, a duplicate key, an edge to a missing step, a cycle) are found by
    :meth:`build`, all at once, as :class:`pipelines.errors.DefinitionError`.
    """

    def __init__(self) -> None:
        self._code: str | None = None
        self._name: str | None = None
        self._description: str | None = None
        self._steps: list[dict[str, Any]] = []
        self._edges: list[dict[str, Any]] = []
        self._context: dict[str, Any] = {}

    # -- the pipeline --------------------------------------------------------------------------------

    def code(self, code: str) -> Self:
        self._code = code
        return self

    def name(self, name: str) -> Self:
        self._name = name
        return self

    def description(self, description: str) -> Self:
        self._description = description
        return self

    def context(self, values: Mapping[str, Any]) -> Self:
        """Merge ``values`` (camelCase, as in the JSON) into the context; nested objects merge too."""
        _merge(self._context, copy.deepcopy(dict(values)))
        return self

    def parallel(self, max_concurrent_steps: int = 4, error_policy: str = "FAIL_FAST") -> Self:
        """Run independent steps at the same time, at most ``max_concurrent_steps`` (1..16) at once.

        ``error_policy``: FAIL_FAST stops the run at the first failed step; CONTINUE lets the steps that
        do not depend on the failed one finish, then fails the run; BEST_EFFORT does the same but the run
        completes.
        """
        if (
            isinstance(max_concurrent_steps, bool)
            or not isinstance(max_concurrent_steps, int)
            or not 1 <= max_concurrent_steps <= MAX_CONCURRENT_STEPS
        ):
            raise ValueError(
                f"max_concurrent_steps must be a whole number from 1 to {MAX_CONCURRENT_STEPS}, "
                f"got {max_concurrent_steps!r}"
            )
        if error_policy not in ERROR_POLICIES:
            raise ValueError(f"error_policy must be one of {', '.join(ERROR_POLICIES)}, got {error_policy!r}")
        self._context["parallelExecution"] = {
            "enabled": True,
            "maxConcurrentSteps": max_concurrent_steps,
            "errorPolicy": error_policy,
        }
        return self

    def error_handling(
        self,
        *,
        max_retries: int | None = None,
        retry_delay_ms: int | None = None,
        max_retry_delay_ms: int | None = None,
        backoff_multiplier: float | None = None,
        dead_letter_queue: bool | None = None,
        error_threshold_percent: float | None = None,
    ) -> Self:
        """Set ``context.errorHandling``; arguments left out (None) keep what was set before."""
        return self._context_section(
            "errorHandling",
            maxRetries=max_retries,
            retryDelayMs=retry_delay_ms,
            maxRetryDelayMs=max_retry_delay_ms,
            backoffMultiplier=backoff_multiplier,
            deadLetterQueue=dead_letter_queue,
            errorThresholdPercent=error_threshold_percent,
        )

    def throughput(
        self,
        *,
        batch_size: int | None = None,
        rate_limit_rps: float | None = None,
        concurrency: int | None = None,
    ) -> Self:
        """Set ``context.throughput``; arguments left out (None) keep what was set before."""
        return self._context_section(
            "throughput", batchSize=batch_size, rateLimitRps=rate_limit_rps, concurrency=concurrency
        )

    def log_level(self, level: str) -> Self:
        """How much its runs write to their log: ERROR, PIPELINE, STEP or DEBUG (``context.logLevel``;
        without it the hub's level applies)."""
        if level not in RUN_LOG_LEVELS:
            raise ValueError(f"level must be one of {', '.join(RUN_LOG_LEVELS)}, got {level!r}")
        self._context["logLevel"] = level
        return self

    def _context_section(self, section: str, **values: Any) -> Self:
        _merge(self._context.setdefault(section, {}), {k: v for k, v in values.items() if v is not None})
        return self

    # -- steps ---------------------------------------------------------------------------------------

    def step(
        self,
        type: str,
        key: str,
        adapter_code: str | None = None,
        /,
        *,
        config: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Self:
        """Add a step of any type; the typed methods below all come here. (The first three are
        positional-only so that a config key may be called ``type``, as TRIGGER's is.)"""
        name = options.pop("name", None)
        fields = {json: options.pop(py, default) for py, json, default in _STEP_OPTIONS}
        for option in options:
            if camel(option) in _STEP_FIELDS:
                py = next(p for p, j, _ in _STEP_OPTIONS if j == camel(option))
                raise ValueError(
                    f"step '{key}': {option} is a step field, set with {py}=; to put '{camel(option)}' "
                    f"into config instead, pass config={{'{camel(option)}': ...}}"
                )
        step: dict[str, Any] = {"key": key, "type": type}
        if adapter_code is not None:
            step["adapterCode"] = adapter_code
        if name is not None:
            step["name"] = name
        step["config"] = _camel_keys(options, config)
        for (_, json, default), value in zip(_STEP_OPTIONS, fields.values(), strict=True):
            if not _is_default(value, default):
                step[json] = value
        self._steps.append(step)
        return self

    def trigger(self, key: str = "trigger", type: str = "MANUAL", **config: Any) -> Self:
        """What starts the pipeline: MANUAL, SCHEDULE (``cron=``, ``interval_sec=``), WEBHOOK, EVENT, ..."""
        return self.step("TRIGGER", key, type=type, **config)

    def extract(self, key: str, adapter_code: str, **config: Any) -> Self:
        return self.step("EXTRACT", key, adapter_code, **config)

    def transform(self, key: str, operators: Iterable[dict], **config: Any) -> Self:
        """Apply ``operators`` (built with :data:`operators`, or ``{op, args}`` dicts) in order."""
        items = list(operators)
        for i, item in enumerate(items):
            if not isinstance(item, dict) or "op" not in item:
                raise TypeError(
                    f"step '{key}': operators[{i}] must be an {{op, args}} dict such as "
                    f"operators.trim(path='name'), got {item!r}"
                )
        return self.step("TRANSFORM", key, operators=items, **config)

    def validate(self, key: str, **config: Any) -> Self:
        """Field rules: ``fields={"sku": {"required": True}}`` or ``rules=[...]``."""
        return self.step("VALIDATE", key, **config)

    def enrich(self, key: str, **config: Any) -> Self:
        """``source_type="STATIC"`` with ``defaults={...}`` / ``set={...}``, or ``"HTTP"``."""
        return self.step("ENRICH", key, **config)

    def route(self, key: str, branches: Iterable[dict], **config: Any) -> Self:
        """Named branches, each ``{"name", "when": [conditions]}`` (see :func:`branch`); edges pick one
        with ``branch=``, and records that match no branch go to the branch ``default``."""
        return self.step("ROUTE", key, branches=list(branches), **config)

    def load(self, key: str, adapter_code: str, **config: Any) -> Self:
        return self.step("LOAD", key, adapter_code, **config)

    def export(self, key: str, adapter_code: str, **config: Any) -> Self:
        return self.step("EXPORT", key, adapter_code, **config)

    def feed(self, key: str, adapter_code: str, **config: Any) -> Self:
        return self.step("FEED", key, adapter_code, **config)

    def sink(self, key: str, adapter_code: str, **config: Any) -> Self:
        return self.step("SINK", key, adapter_code, **config)

    def gate(self, key: str, approval_type: str = "MANUAL", **config: Any) -> Self:
        """Pause the run for approval: MANUAL, THRESHOLD (``error_threshold_percent=``) or TIMEOUT
        (``timeout_seconds=``); ``notify_webhook=``, ``notify_email=``, ``preview_count=``."""
        return self.step("GATE", key, approval_type=approval_type, **config)

    def edge(
        self, from_key: str, to_key: str, branch: str | None = None, dependency_only: bool = False
    ) -> Self:
        """``to_key`` runs after ``from_key`` and gets its records (of one ROUTE ``branch``, if given);
        with ``dependency_only`` it only waits for it. Without any edge, steps run in the order added."""
        edge: dict[str, Any] = {"from": from_key, "to": to_key}
        if branch is not None:
            edge["branch"] = branch
        if dependency_only is not False:
            edge["dependencyOnly"] = dependency_only
        self._edges.append(edge)
        return self

    # -- the result ----------------------------------------------------------------------------------

    def build(self, validate: bool = False) -> dict[str, Any]:
        """The definition dict; raises DefinitionError listing every problem.

        Always checked: the shape, unique keys, edges between existing steps, no cycle. With
        ``validate=True`` also each step's adapter code and config and each operator's args against the
        registries (the check a run makes), so the plugins must be loaded.
        """
        definition: dict[str, Any] = {"version": 1}
        for field, value in (("code", self._code), ("name", self._name), ("description", self._description)):
            if value is not None:
                definition[field] = value
        definition["steps"] = copy.deepcopy(self._steps)
        definition["edges"] = copy.deepcopy(self._edges)
        definition["context"] = copy.deepcopy(self._context)
        parse(definition, check_plugins=validate)
        return definition


def create_pipeline() -> PipelineBuilder:
    return PipelineBuilder()


def _merge(target: dict[str, Any], values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


# ---------------------------------------------------------------------------------------------------------
# Operators
# ---------------------------------------------------------------------------------------------------------


class UnknownOperator(UnknownCode, AttributeError):
    """No operator has this Python name or code. Also an AttributeError, so ``hasattr`` stays honest."""

    @property
    def suggestion(self) -> str | None:
        """The nearest operator code, comparing the camelCase form of what was typed."""
        typed = camel(self.code)
        close = difflib.get_close_matches(typed, self.known, n=1, cutoff=0.6)
        if close:
            return close[0]
        return {k.lower(): k for k in self.known}.get(typed.lower())

    @property
    def message(self) -> str:
        text = f"unknown operator '{self.code}'"
        if self.suggestion:
            text += f"; did you mean '{self.suggestion}' (operators.{snake(self.suggestion)})?"
        return text


def operator_code(name: str) -> str:
    """The registered code for a Python name (``multi_join`` -> ``multiJoin``) or an exact code."""
    if name in registry.operators:
        return name
    bare = name[:-1] if name.endswith("_") else name
    by_snake = {snake(code): code for code in registry.operators.codes()}
    if bare in by_snake:
        return by_snake[bare]
    raise UnknownOperator("operator", name, registry.operators.codes())


class Operators:
    """``operators.<name>(**args)`` -> ``{"op": code, "args": {...}}``, one name per registered operator.

    The names are not listed here: they come from ``pipelines.registry.operators`` when they are looked
    up, because the registry is the explicit table of what exists (built-ins and plugins alike), and a
    second list here would drift from it. ``operators.to_number`` is the operator ``toNumber``; the exact
    code works too (``operators.toNumber``), and :meth:`custom` takes any code, even one that is not a
    Python name. Arguments are snake_case keywords (``right_data_path`` -> ``rightDataPath``, ``from_``
    -> ``from``) and are checked against the operator's schema right away (ValueError naming the field).

    The methods below (``when``, ``filter``, ``custom``) take precedence over a registered code of the
    same name.
    """

    def __getattr__(self, name: str) -> Callable[..., dict[str, Any]]:
        if name.startswith("_"):  # dunders and private probes (copy, pickle, pytest) are not operators
            raise AttributeError(name)
        code = operator_code(name)

        def build(**args: Any) -> dict[str, Any]:
            return self.custom(code, **args)

        build.__name__ = name
        build.__doc__ = registry.operators.get(code).description
        return build

    def __dir__(self) -> list[str]:
        names = {snake(code) for code in registry.operators.codes()}
        return sorted(set(super().__dir__()) | {n for n in names if n.isidentifier()})

    def custom(self, code: str, /, *, config: Mapping[str, Any] | None = None, **args: Any) -> dict[str, Any]:
        """The operator registered under exactly ``code`` (a plugin's, say); ``config=`` adds raw args."""
        entry = registry.operators.get(code)
        built = _camel_keys(args, config)
        problems = entry.config_problems(built)
        if problems:
            details = "; ".join(f"field '{where}': {msg}" if where else msg for where, msg in problems)
            raise ValueError(f"operator '{code}': {details}")
        return {"op": code, "args": built}

    def when(self, conditions: dict | Iterable[dict], /, action: str = "keep", **args: Any) -> dict[str, Any]:
        """Keep (``action="keep"``) or drop (``"drop"``) the records for which every condition holds."""
        return self.custom("when", conditions=_condition_list(conditions), action=action, **args)

    def filter(self, conditions: dict | Iterable[dict], /, **args: Any) -> dict[str, Any]:
        """Keep only the records for which every condition holds (``when`` with ``action="keep"``)."""
        return self.when(conditions, action="keep", **args)


operators = Operators()


# ---------------------------------------------------------------------------------------------------------
# Conditions and route branches
# ---------------------------------------------------------------------------------------------------------


def _condition(field: str, cmp: str, *value: Any) -> dict[str, Any]:
    if not isinstance(field, str) or not field:
        raise ValueError(f"a condition needs a field path, got {field!r}")
    out: dict[str, Any] = {"field": field, "cmp": cmp}
    if value:
        out["value"] = copy.deepcopy(value[0])
    return out


def _values(cmp: str, values: Iterable[Any]) -> list[Any]:
    if isinstance(values, str | bytes | Mapping) or not isinstance(values, Iterable):
        raise TypeError(f"{cmp} needs a list of values, got {values!r}")
    return list(values)


class Conditions:
    """``{field, cmp, value}`` tests for ``operators.when``/``filter`` and route branches.

    The meanings are those of :mod:`pipelines.conditions`: a missing field reads as null; ``exists`` is
    "not null and not missing" (so ``not_null`` is ``exists``), ``not_exists`` and ``is_null`` its opposite;
    ``eq``/``ne`` are strict; ``gt``..``lte`` compare numbers; ``regex`` is JavaScript syntax and
    ``matches`` a glob (``*``, ``?``). Unlike the plugin's DSL, ``not_exists`` emits ``notExists``.
    """

    @staticmethod
    def eq(field: str, value: Any) -> dict[str, Any]:
        return _condition(field, "eq", value)

    @staticmethod
    def ne(field: str, value: Any) -> dict[str, Any]:
        return _condition(field, "ne", value)

    @staticmethod
    def gt(field: str, value: float) -> dict[str, Any]:
        return _condition(field, "gt", value)

    @staticmethod
    def gte(field: str, value: float) -> dict[str, Any]:
        return _condition(field, "gte", value)

    @staticmethod
    def lt(field: str, value: float) -> dict[str, Any]:
        return _condition(field, "lt", value)

    @staticmethod
    def lte(field: str, value: float) -> dict[str, Any]:
        return _condition(field, "lte", value)

    @staticmethod
    def in_(field: str, values: Iterable[Any]) -> dict[str, Any]:
        return _condition(field, "in", _values("in_", values))

    @staticmethod
    def not_in(field: str, values: Iterable[Any]) -> dict[str, Any]:
        return _condition(field, "notIn", _values("not_in", values))

    @staticmethod
    def contains(field: str, text: str) -> dict[str, Any]:
        return _condition(field, "contains", text)

    @staticmethod
    def not_contains(field: str, text: str) -> dict[str, Any]:
        return _condition(field, "notContains", text)

    @staticmethod
    def starts_with(field: str, text: str) -> dict[str, Any]:
        return _condition(field, "startsWith", text)

    @staticmethod
    def ends_with(field: str, text: str) -> dict[str, Any]:
        return _condition(field, "endsWith", text)

    @staticmethod
    def regex(field: str, pattern: str) -> dict[str, Any]:
        return _condition(field, "regex", pattern)

    @staticmethod
    def matches(field: str, glob: str) -> dict[str, Any]:
        return _condition(field, "matches", glob)

    @staticmethod
    def exists(field: str) -> dict[str, Any]:
        return _condition(field, "exists")

    @staticmethod
    def not_exists(field: str) -> dict[str, Any]:
        return _condition(field, "notExists")

    @staticmethod
    def is_null(field: str) -> dict[str, Any]:
        return _condition(field, "isNull")

    @staticmethod
    def not_null(field: str) -> dict[str, Any]:
        return _condition(field, "exists")

    @staticmethod
    def is_empty(field: str) -> dict[str, Any]:
        return _condition(field, "isEmpty")

    @staticmethod
    def is_not_empty(field: str) -> dict[str, Any]:
        return _condition(field, "isNotEmpty")


conditions = Conditions()


def _condition_list(items: dict | Iterable[Any]) -> list[dict[str, Any]]:
    """One condition, or a list of them (nested lists are flattened), as a list."""
    if isinstance(items, Mapping):
        return [copy.deepcopy(dict(items))]
    if isinstance(items, str | bytes) or not isinstance(items, Iterable):
        raise TypeError(f"expected a condition like conditions.eq('sku', 'A1') or a list, got {items!r}")
    return [condition for item in items for condition in _condition_list(item)]


def branch(name: str, *when: dict | Iterable[dict]) -> dict[str, Any]:
    """A ROUTE branch: records for which every condition holds go to edges with ``branch=name``."""
    return {"name": name, "when": _condition_list(when)}

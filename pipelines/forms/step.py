"""The form of one step card in the editor: its key and name, its adapter or operator chain, the config form
generated from the adapter's (or step type's) schema, and the advanced settings every step has."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pipelines import registry
from pipelines.definition import ADAPTER_REQUIRED
from pipelines.errors import Problem
from pipelines.forms.fields import Field, operator_fields, schema_fields
from pipelines.forms.problems import attach, problem_path
from pipelines.forms.reading import read_operators, read_schema
from pipelines.forms.values import EXTRA, Errors

META_SCHEMA = {
    "type": "object",
    "properties": {
        "key": {"type": "string", "description": "Unique in the pipeline: letters, digits, '-', '_' and '.'."},
        "name": {"type": "string", "description": "A label for people; the key is used when empty."},
    },
}
ADVANCED_SCHEMA = {
    "type": "object",
    "properties": {
        "disabled": {"type": "boolean", "description": "Skip this step; its input passes through unchanged."},
        "continueOnError": {"type": "boolean",
                            "description": "If the step fails, the run goes on; successors get no records from it."},
        "retries": {"type": "integer", "minimum": 0, "maximum": 100, "default": 0,
                    "description": "How many times a failed step is tried again."},
        "retryDelayMs": {"type": "integer", "minimum": 0, "default": 0, "description": "Wait between tries."},
        "timeoutMs": {"type": "integer", "minimum": 1,
                      "description": "An attempt that takes longer fails. Empty: no limit."},
    },
}


def adapter_registry(step_type: str):
    if step_type == "TRANSFORM":
        return registry.operators
    return registry.ADAPTER_REGISTRY_BY_STEP_TYPE.get(step_type)


def config_schema(step_type: str, adapter_code: str | None) -> dict:
    reg = adapter_registry(step_type)
    if reg is not None and adapter_code:
        return dict(reg.get(adapter_code).schema) if adapter_code in reg else {"type": "object"}
    if step_type in registry.step_types:
        return dict(registry.step_types.get(step_type).schema)
    return {"type": "object"}


def adapter_choices(step_type: str) -> list:
    reg = adapter_registry(step_type)
    if reg is None:
        return []
    groups: dict[str, list] = {}
    for entry in reg:
        groups.setdefault(entry.category.title(), []).append((entry.code, entry.name if entry.name != entry.code
                                                              else entry.code))
    return sorted(groups.items())


@dataclass
class StepForm:
    """The form of one step: what it shows, and the step it read back from a POST."""

    step: dict
    is_new: bool = False
    original_key: str | None = None
    errors: list[str] = field(default_factory=list)
    field_errors: dict[str, list[str]] = field(default_factory=dict)
    saved: bool = False
    open: bool = False

    def __post_init__(self):
        self.original_key = self.original_key or self.step.get("key")
        self._build()

    @property
    def type(self) -> str:
        return self.step.get("type", "")

    @property
    def adapter_code(self) -> str | None:
        code = self.step.get("adapterCode")
        return code if isinstance(code, str) and code else None

    @property
    def entry(self):
        reg = adapter_registry(self.type)
        if reg is not None and self.adapter_code in reg:
            return reg.get(self.adapter_code)
        if self.type in registry.step_types and not self.adapter_code:
            return registry.step_types.get(self.type)
        return None

    @property
    def operator_chain(self) -> bool:
        return self.type == "TRANSFORM" and not self.adapter_code

    def _build(self) -> None:
        step = self.step
        self.meta = schema_fields(META_SCHEMA, step, "", extras=False)
        self.adapter: Field | None = None
        if self.type in ADAPTER_REQUIRED or (self.type == "TRANSFORM" and self.adapter_code):
            choices = adapter_choices(self.type)
            code = self.adapter_code or ""
            known = {c for _, group in choices for c, _ in group}
            if code and code not in known:
                choices = [("Unknown", [(code, f"{code} (not installed)")]), *choices]
            if self.type == "TRANSFORM":
                choices = [("", [("", "— operator chain —")]), *choices]
            self.adapter = Field(name="adapterCode", label="Adapter" if self.type != "TRANSFORM" else "Operator",
                                 kind="select", value=code, required=self.type != "TRANSFORM", choices=choices,
                                 grouped=True, refresh=True)
            if self.entry is not None:
                self.adapter.help = self.entry.description
        config = step.get("config", {})
        schema = config_schema(self.type, self.adapter_code)
        if self.operator_chain:
            self.operators: Field | None = operator_fields((config or {}).get("operators", []), "config.operators")
            self.config = schema_fields(schema, config, "config", skip=("operators",))
        else:
            self.operators = None
            self.config = schema_fields(schema, config, "config")
        self.advanced = schema_fields(ADVANCED_SCHEMA, step, "", extras=False)
        groups = [self.meta, [self.adapter] if self.adapter else [], [self.operators] if self.operators else [],
                  self.config, self.advanced]
        self.all_fields = [f for g in groups for f in g]
        rest = attach(self.all_fields, self.field_errors)
        self.errors = [*self.errors, *rest]
        self.advanced_open = any(f.all_errors for f in self.advanced) or any(
            step.get(k) for k in ("disabled", "continueOnError", "retries", "retryDelayMs", "timeoutMs"))

    @property
    def has_errors(self) -> bool:
        return bool(self.errors or any(f.all_errors for f in self.all_fields))

    @property
    def html_id(self) -> str:
        return "new-step" if self.is_new else "step-" + re.sub(r"[^A-Za-z0-9_-]", "-", self.original_key or "")


def read_step(post, step_type: str) -> tuple[dict, Errors]:
    """The step a step form describes (best effort, Raw where unreadable) and the errors of reading it."""
    errors = Errors()
    step: dict[str, Any] = {"type": step_type}
    step.update(read_schema(META_SCHEMA, post, "", errors))
    adapter = post.get("adapterCode", "")
    if adapter:
        step["adapterCode"] = adapter
    if step_type == "TRANSFORM" and not adapter:
        config = read_schema(config_schema(step_type, None), post, "config", errors, skip=("operators",))
        config = {"operators": read_operators(post, "config.operators", errors), **config}
    else:
        config = read_schema(config_schema(step_type, adapter or None), post, "config", errors)
    step["config"] = config
    step.update(read_schema(ADVANCED_SCHEMA, post, "", errors))
    step.pop(EXTRA, None)
    return step, errors


def step_problems(problems: list[Problem], key: str | None) -> tuple[dict[str, list[str]], list[str]]:
    """Split problems into those at a field of step ``key`` and the rest (other steps, edges, the whole)."""
    fields: dict[str, list[str]] = {}
    rest: list[str] = []
    for p in problems:
        if p.step == key or (p.step is None and (p.field or "").startswith(("steps[", "key"))):
            path, message = problem_path(p)
            if re.match(r"^steps\.\d+\.?", path):
                path = re.sub(r"^steps\.\d+\.?", "", path)
            if path in ("", "edges"):
                rest.append(message if path == "" else f"{message}")
            else:
                fields.setdefault(path, []).append(message)
        else:
            rest.append(str(p))
    return fields, rest


def new_step(step_type: str, *, adapter: str | None = None, op: str | None = None, key: str) -> dict:
    step: dict[str, Any] = {"key": key, "type": step_type, "config": {}}
    if step_type == "TRANSFORM":
        step["config"] = {"operators": [{"op": op, "args": {}}] if op else []}
    elif adapter:
        step["adapterCode"] = adapter
    if step_type == "ROUTE":
        step["config"] = {"branches": [{"name": ""}]}
    return step

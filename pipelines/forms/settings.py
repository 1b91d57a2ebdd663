"""The editor's settings panel: the pipeline's name, description and run context (a generated form)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from pipelines.definition import CONTEXT_SCHEMA
from pipelines.errors import Problem
from pipelines.forms.fields import Field, schema_fields
from pipelines.forms.problems import attach, problem_path, walk
from pipelines.forms.reading import read_schema
from pipelines.forms.values import Errors


def _with_defaults(schema: dict, defaults: dict) -> dict:
    """A copy of ``schema`` with ``default`` set where the engine has one the schema does not state."""
    out = copy.deepcopy(schema)
    for dotted, value in defaults.items():
        node = out
        for part in dotted.split("."):
            node = node["properties"][part]
        node.setdefault("default", value)
    return out


# The engine's defaults (pipelines.definition.Definition), shown as placeholders and select labels.
SETTINGS_CONTEXT_SCHEMA = _with_defaults({
    **CONTEXT_SCHEMA,
    "properties": {k: v for k, v in CONTEXT_SCHEMA["properties"].items() if k != "allowConcurrentRuns"},
}, {"parallelExecution.maxConcurrentSteps": 4, "parallelExecution.errorPolicy": "FAIL_FAST",
    "throughput.batchSize": 1000})
PARALLEL_HELP = {
    "enabled": "Run steps that do not depend on each other at the same time.",
    "maxConcurrentSteps": "At most this many steps run at once (1 to 16).",
    "errorPolicy": "FAIL_FAST stops at the first failure; CONTINUE runs every step not downstream of a "
                   "failure; BEST_EFFORT runs a step when any of its inputs succeeded.",
}


@dataclass
class SettingsForm:
    name: str
    description: str
    context: dict
    allow_concurrent_runs: bool = False
    field_errors: dict[str, list[str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    saved: bool = False

    def __post_init__(self):
        self.fields = schema_fields(
            {"properties": {"name": {"type": "string"}, "description": {"type": "string"}}},
            {"name": self.name, "description": self.description}, "", extras=False)
        self.context_fields = schema_fields(SETTINGS_CONTEXT_SCHEMA, self.context, "context")
        for f in walk(self.context_fields):
            if isinstance(f, Field) and f.name.startswith("context.parallelExecution."):
                f.help = PARALLEL_HELP.get(f.name.rpartition(".")[2], f.help)
                if f.name.endswith(".enabled"):
                    f.switch = True
                    f.label = "Parallel execution"
            if isinstance(f, Field) and f.name == "context.parallelExecution":
                f.open = True
        rest = attach(self.fields + self.context_fields, self.field_errors)
        self.errors = [*self.errors, *rest]

    @property
    def parallel_on(self) -> bool:
        p = self.context.get("parallelExecution") if isinstance(self.context, dict) else None
        return bool(isinstance(p, dict) and p.get("enabled") is True)


def read_settings(post) -> tuple[dict, Errors]:
    errors = Errors()
    values = read_schema({"properties": {"name": {"type": "string"}, "description": {"type": "string"}}},
                         post, "", errors)
    context = read_schema(SETTINGS_CONTEXT_SCHEMA, post, "context", errors)
    return {"name": values.get("name", ""), "description": values.get("description", ""),
            "context": context, "allow_concurrent_runs": post.get("allow_concurrent_runs") in ("1", "on")}, errors


def settings_problems(problems: list[Problem]) -> tuple[dict[str, list[str]], list[str]]:
    fields: dict[str, list[str]] = {}
    rest: list[str] = []
    for p in problems:
        path, message = problem_path(p)
        if p.step is None and (path.startswith("context") or path in ("name", "description")):
            fields.setdefault(path, []).append(message)
        else:
            rest.append(str(p))
    return fields, rest

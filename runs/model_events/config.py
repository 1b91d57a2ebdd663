"""The EVENT trigger's config: its keys in the TRIGGER schema and the check run when a definition is
saved. [pure at import: Django is imported inside :func:`event_problems`, which needs the app registry]

``{"type": "EVENT", "models": ["shop.Order"], "operations": ["created", "updated", "deleted"],
"debounceMs": 2000, "maxWaitMs": 60000, "maxEvents": 1000}``

Only models listed in ``settings.DATAHUB_EVENT_MODELS`` (``app_label.Model`` or ``app_label.*``) may be
subscribed to. Datahub's own run machinery (the ``runs`` and ``django_q`` apps) and ``pipelines.Secret``
never may: a run writes rows there, so a subscription would start runs from runs.
"""

from __future__ import annotations

from dataclasses import dataclass

OPERATIONS = ("created", "updated", "deleted")
REFUSED_APPS = frozenset({"runs", "django_q"})
REFUSED_MODELS = frozenset({"pipelines.secret"})
MAX_EVENTS = 10_000
MAX_WAIT_MS = 3_600_000

EVENT_PROPERTIES = {
    "models": {"type": "array", "minItems": 1, "uniqueItems": True,
               "items": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$"},
               "description": "EVENT: the models whose changes start the pipeline (app_label.Model, each listed "
               "in DATAHUB_EVENT_MODELS)."},
    "operations": {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"enum": list(OPERATIONS)},
                   "description": "EVENT: which changes count (default all three)."},
    "debounceMs": {"type": "integer", "minimum": 0, "maximum": MAX_WAIT_MS, "default": 2000,
                   "description": "EVENT: start the run once no further event came for this long; the events "
                   "meanwhile join the same run."},
    "maxWaitMs": {"type": "integer", "minimum": 0, "maximum": MAX_WAIT_MS, "default": 60_000,
                  "description": "EVENT: start the run at the latest this long after its first event, "
                  "however busy the model."},
    "maxEvents": {"type": "integer", "minimum": 1, "maximum": MAX_EVENTS, "default": 1000,
                  "description": "EVENT: start the run at once when this many events wait; more go to the "
                  "next run."},
}


@dataclass(frozen=True)
class EventSettings:
    models: tuple[str, ...]  # lower-case labels
    operations: tuple[str, ...]
    debounce_ms: int
    max_wait_ms: int
    max_events: int

    @classmethod
    def of(cls, config: dict) -> EventSettings:
        """The config with its defaults (call after :func:`event_problems` found nothing)."""
        return cls(
            models=tuple(sorted({str(m).lower() for m in config.get("models") or []})),
            operations=tuple(o for o in OPERATIONS if o in (config.get("operations") or OPERATIONS)),
            debounce_ms=config.get("debounceMs", 2000),
            max_wait_ms=config.get("maxWaitMs", 60_000),
            max_events=config.get("maxEvents", 1000),
        )


def allowed(label_lower: str, allow_list) -> bool:
    """Whether ``app_label.model`` (lower case) may be subscribed to under ``allow_list``."""
    app = label_lower.split(".")[0]
    if app in REFUSED_APPS or label_lower in REFUSED_MODELS:
        return False
    listed = {str(a).lower() for a in allow_list or ()}
    return label_lower in listed or f"{app}.*" in listed


def event_problems(config: dict) -> list[tuple[str, str]]:
    """(field, message) for an EVENT trigger's config; empty when it can be subscribed."""
    from django.apps import apps
    from django.conf import settings

    from pipelines.adapters.sqlconn import nearest

    allow_list = list(getattr(settings, "DATAHUB_EVENT_MODELS", None) or [])
    labels = config.get("models")
    if not isinstance(labels, list) or not labels:
        return [("models", "an EVENT trigger needs models: a list of app_label.Model")]
    problems = []
    for i, label in enumerate(labels):
        where = f"models[{i}]"
        try:
            model = apps.get_model(str(label))
        except (LookupError, ValueError):
            known = [m._meta.label for m in apps.get_models() if allowed(m._meta.label_lower, allow_list)]
            hint = nearest(str(label), known)
            problems.append((where, f"no model '{label}'" + (f"; did you mean '{hint}'?" if hint else "")))
            continue
        key = model._meta.label_lower
        if key.split(".")[0] in REFUSED_APPS or key in REFUSED_MODELS:
            problems.append((where, f"model '{model._meta.label}' cannot be subscribed to (Datahub writes it "
                             "itself, or it holds secrets)"))
        elif not allowed(key, allow_list):
            listed = ", ".join(allow_list) if allow_list else "it is empty"
            problems.append((where, f"model '{model._meta.label}' is not in DATAHUB_EVENT_MODELS ({listed}); add "
                             f"'{model._meta.label}' or '{model._meta.app_label}.*' to allow it"))
    if config.get("operations") == []:
        problems.append(("operations", "operations must name at least one of " + ", ".join(OPERATIONS)))
    debounce, wait = config.get("debounceMs", 2000), config.get("maxWaitMs", 60_000)
    if isinstance(debounce, int) and isinstance(wait, int) and debounce > wait:
        problems.append(("debounceMs", f"debounceMs ({debounce}) must not exceed maxWaitMs ({wait})"))
    return problems

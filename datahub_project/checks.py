"""System checks that catch configuration which would break runs in production."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.compatibility)
def check_task_timeouts(app_configs, **kwargs):
    errors = []
    q = getattr(settings, "Q_CLUSTER", {})
    timeout, retry = q.get("timeout"), q.get("retry")
    if timeout is None or retry is None or timeout >= retry:
        errors.append(Error(
            f"Q_CLUSTER timeout ({timeout}) must be set and below retry ({retry})",
            hint="Otherwise django-q2 delivers a long run a second time while it still runs. "
            "Set DATAHUB_TASK_TIMEOUT below DATAHUB_TASK_RETRY.",
            id="datahub.E001",
        ))
    if q.get("max_attempts") != 1:
        errors.append(Error(
            "Q_CLUSTER max_attempts must be 1: a run is resumed or failed by Datahub itself, never re-delivered",
            id="datahub.E002",
        ))
    return errors


@register(Tags.compatibility)
def check_registries(app_configs, **kwargs):
    from pipelines import registry

    errors = []
    for kind in ("operator", "extractor", "step type"):
        if not len(registry.ALL[kind]):
            errors.append(Error(f"no {kind} is registered", hint="Check DATAHUB_PLUGIN_MODULES.", id="datahub.E003"))
    return errors

"""The consumers that exist, and starting and stopping them (the Queues page and ``manage.py consumers``).

A consumer exists for every MESSAGE trigger of a pipeline's current revision; its row is made the first
time anyone looks (a page, the CLI, a consume process) and deleted, with its message keys, when the
trigger is gone from the current revision. Starting and stopping only set what is wanted (``desired``);
the consume process that owns the consumer follows within a tick (2 s).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import TextField
from django.db.models.functions import Cast
from django.utils import timezone

from pipelines import access
from pipelines.errors import DatahubError
from pipelines.models import Pipeline
from runs.consumers.config import message_problems
from runs.consumers.models import Consumer, ConsumerState

RUNNING, STOPPED = "RUNNING", "STOPPED"
MAX_ID = 2**63 - 1  # larger ids cannot be in the table (and would overflow the query)


@dataclass
class Configured:
    consumer: Consumer
    config: dict
    pipeline_enabled: bool
    trigger_enabled: bool
    problems: list[tuple[str, str]]

    @property
    def can_run(self) -> bool:
        return self.pipeline_enabled and self.trigger_enabled and not self.problems

    @property
    def why_not(self) -> str:
        if not self.pipeline_enabled:
            return "the pipeline is disabled"
        if not self.trigger_enabled:
            return "the trigger step is disabled"
        if self.problems:
            return "; ".join(f"{f}: {m}" for f, m in self.problems)
        return ""

    @property
    def shown_state(self) -> str:
        """What the Queues page says: the owner's report, unless its lease lapsed (no consume process)."""
        c = self.consumer
        if c.owner and c.heartbeat_at and c.heartbeat_at >= timezone.now() - lease():
            return "STOPPING" if c.desired == STOPPED else c.state
        return "NOT RUNNING" if c.desired == RUNNING and self.can_run else ConsumerState.STOPPED

    @property
    def state_class(self) -> str:
        """The badge's CSS class for ``shown_state``."""
        return {"RUNNING": "s-running", "STARTING": "s-pending", "STOPPING": "s-pending", "FAILING": "s-failed",
                "NOT RUNNING": "s-paused"}.get(self.shown_state, "s-disabled")


def lease():
    return timedelta(seconds=settings.DATAHUB_CONSUMER_LEASE_SECONDS)


def message_triggers(pipeline: Pipeline) -> list[dict]:
    revision = pipeline.current_revision
    steps = (revision.definition.get("steps") or []) if revision is not None else []
    return [s for s in steps if s.get("type") == "TRIGGER"
            and str((s.get("config") or {}).get("type", "")).upper() == "MESSAGE"]


def configured_consumers(pipeline_codes: list[str] | None = None) -> list[Configured]:
    """Every MESSAGE trigger of the current revisions, each with its Consumer row (made when missing)."""
    # Only definitions that mention MESSAGE are read (a text search the database does on every backend), so
    # a page that polls this stays cheap however many other pipelines there are.
    pipelines = (Pipeline.objects.select_related("current_revision").order_by("code")
                 .annotate(definition_text=Cast("current_revision__definition", TextField()))
                 .filter(definition_text__contains='"MESSAGE"'))
    if pipeline_codes:
        pipelines = pipelines.filter(code__in=pipeline_codes)
    found: list[Configured] = []
    for pipeline in pipelines:
        for step in message_triggers(pipeline):
            config = step.get("config") or {}
            defaults = {"queue_type": str(config.get("queueType") or "")[:20],
                        "queue_name": str(config.get("queueName") or "")[:255]}
            consumer, created = Consumer.objects.select_related("pipeline").get_or_create(
                pipeline=pipeline, trigger_key=step["key"], defaults=defaults)
            if not created and any(getattr(consumer, k) != v for k, v in defaults.items()):
                Consumer.objects.filter(pk=consumer.pk).update(**defaults)
                for k, v in defaults.items():
                    setattr(consumer, k, v)
            found.append(Configured(consumer, config, pipeline.enabled, not step.get("disabled"),
                                    message_problems(config)))
    if not pipeline_codes:
        Consumer.objects.exclude(pk__in=[c.consumer.pk for c in found]).delete()
    return found


def visible_to(user, found: list[Configured]) -> list[Configured]:
    """The consumers of ``found`` whose pipeline ``user`` may use (pipelines.access: owners and teams)."""
    if getattr(user, "is_superuser", False):
        return found
    allowed = set(access.visible(user, Pipeline.objects.filter(
        pk__in={c.consumer.pipeline_id for c in found})).values_list("pk", flat=True))
    return [c for c in found if c.consumer.pipeline_id in allowed]


def one_for(user, pk: int) -> Configured | None:
    """Consumer ``pk`` as the Queues page and the APIs show it, or None when there is none, its trigger is
    gone from the current revision, or its pipeline is not ``user``'s to use (the same answer: no leak)."""
    consumer = Consumer.objects.select_related("pipeline").filter(pk=pk).first() if 0 < pk <= MAX_ID else None
    if consumer is None:
        return None
    found = [c for c in configured_consumers([consumer.pipeline.code]) if c.consumer.pk == pk]
    found = visible_to(user, found)
    return found[0] if found else None


def find(name: str) -> Configured:
    """The consumer ``PIPELINE`` (its only MESSAGE trigger) or ``PIPELINE/TRIGGER``; DatahubError naming what exists."""
    code, _, key = name.partition("/")
    matches = [c for c in configured_consumers([code]) if not key or c.consumer.trigger_key == key]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise DatahubError(f"there is no MESSAGE trigger '{name}' (a consumer is PIPELINE or PIPELINE/TRIGGER)")
    keys = ", ".join(f"{code}/{c.consumer.trigger_key}" for c in matches)
    raise DatahubError(f"pipeline '{code}' has several MESSAGE triggers: name one of {keys}")


def set_desired(consumer: Consumer, desired: str) -> None:
    Consumer.objects.filter(pk=consumer.pk).update(desired=desired)
    consumer.desired = desired

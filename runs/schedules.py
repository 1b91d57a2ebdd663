"""SCHEDULE triggers, run by django-q2's scheduler, and what happens after downtime.

A TRIGGER step ``{"type": "TRIGGER", "config": {"type": "SCHEDULE", "cron": "0 6 * * *", "timezone":
"Europe/Berlin", "catchUp": "LAST"}}`` (or ``"intervalSec": 900`` instead of ``cron``) gets one django-q2
``Schedule`` calling ``runs.tasks.run_scheduled(pipeline_id, trigger_key)``. The schedule follows the
pipeline: :func:`sync_pipeline` runs after every save of a pipeline or a revision (and after ``migrate``);
it creates, changes or removes the schedules so they match the current revision's enabled SCHEDULE
triggers of an enabled pipeline. A scheduled run is a plain run of the whole pipeline (trigger
``schedule``); in a pipeline with several enabled triggers it is seeded at its own trigger, so only that
trigger and what follows it run (the rest is SKIPPED). When the pipeline already has an active run it is
skipped and logged (under ``ALL`` it waits).

Rules:

* ``cron``: five fields (minute precision), in ``timezone`` (an IANA name; default the server's
  ``TIME_ZONE``). ``intervalSec``: every N seconds counted from when the schedule was made; the scheduler
  looks about every 30 s, so shorter intervals are not kept exactly.
* Each trigger remembers up to when its occurrences are handled (:class:`~runs.models.ScheduleState`). A
  tick moves that mark with a conditional UPDATE, so an occurrence fires once however many ticks arrive.
* An occurrence at most :data:`GRACE` old is *on time*. Older ones were *missed* (the workers or the
  scheduler were down). django-q2's own ``catch_up`` is off; the missed-run policy ``catchUp`` decides:

  - ``LAST`` (default): one run, however many were missed.
  - ``NONE``: no run for missed occurrences; an on-time one still runs.
  - ``ALL``: one run per missed occurrence, at most :data:`CATCH_UP_CAP` (the most recent ones), started
    one after another (the next when the previous run ends), never at once.

* Time when the trigger did not exist, or it or its pipeline was disabled, is never caught up: a new,
  re-enabled or changed schedule (other cron, interval or timezone) counts from the moment it is saved.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from pipelines.errors import DatahubError
from pipelines.models import Pipeline
from runs.engine.triggers import CATCH_UP_POLICIES, schedule_problems
from runs.models import ACTIVE_STATUSES, ScheduleState
from runs.pipeline_followers import TriggerSchedules, current_definition

log = logging.getLogger(__name__)

FUNC = "runs.tasks.run_scheduled"
POLICIES = CATCH_UP_POLICIES
DEFAULT_POLICY = "LAST"
CATCH_UP_CAP = 10
# The scheduler looks every ~30 s and a task may wait in the queue a little: this late is still on time.
GRACE = timedelta(seconds=90)


@dataclass(frozen=True)
class Spec:
    key: str
    cron: str | None
    interval_sec: int | None
    timezone: str
    catch_up: str

    @property
    def signature(self) -> dict:
        """What, when changed, makes the schedule count afresh (the policy is not part of it)."""
        return {"cron": self.cron, "intervalSec": self.interval_sec, "timezone": self.timezone}

    def occurrences(self, anchor: datetime, after: datetime, until: datetime, limit: int) -> list[datetime]:
        """The ``limit`` most recent occurrences in (after, until], oldest first."""
        if limit <= 0 or until <= after:
            return []
        if self.interval_sec:
            step = self.interval_sec
            lo = max(1, math.floor((after - anchor).total_seconds() / step) + 1)
            hi = math.floor((until - anchor).total_seconds() / step)
            return [anchor + timedelta(seconds=k * step) for k in range(max(lo, hi - limit + 1), hi + 1)]
        zone = ZoneInfo(self.timezone)
        # From just after `until`, so an occurrence exactly at `until` counts; backwards, so a year of
        # downtime costs `limit` steps, not half a million.
        it = croniter(self.cron, (until + timedelta(seconds=1)).astimezone(zone))
        found: list[datetime] = []
        while len(found) < limit:
            t = it.get_prev(datetime)
            if t <= after:
                break
            found.append(t.astimezone(until.tzinfo))
        return found[::-1]

    def next_after(self, anchor: datetime, after: datetime) -> datetime:
        if self.interval_sec:
            k = max(0, math.floor((after - anchor).total_seconds() / self.interval_sec)) + 1
            return anchor + timedelta(seconds=k * self.interval_sec)
        zone = ZoneInfo(self.timezone)
        return croniter(self.cron, after.astimezone(zone)).get_next(datetime).astimezone(after.tzinfo)


def specs_of(definition: dict) -> tuple[list[Spec], list[str]]:
    """The enabled SCHEDULE triggers of a definition, and a message for each one that cannot be scheduled."""
    specs, problems = [], []
    for step in definition.get("steps") or []:
        if not isinstance(step, dict) or step.get("type") != "TRIGGER" or step.get("disabled"):
            continue
        config = step.get("config") or {}
        if str(config.get("type", "")).upper() != "SCHEDULE":
            continue
        key = step.get("key")
        found = schedule_problems(config, default_timezone=settings.TIME_ZONE)
        if found:
            problems.append(f"step '{key}': {found[0][1]}")
            continue
        cron, interval = config.get("cron"), config.get("intervalSec")
        tz = config.get("timezone") or settings.TIME_ZONE
        policy = str(config.get("catchUp") or DEFAULT_POLICY).upper()
        specs.append(Spec(key, " ".join(cron.split()) if cron else None, interval, tz, policy))
    return specs, problems


SCHEDULES = TriggerSchedules(FUNC)


# --- keeping schedules in step with pipelines -----------------------------------------------------


def sync_pipeline(pipeline_id: int) -> list[str]:
    """Make the pipeline's django-q2 schedules match its current revision; returns the problems found."""
    from django_q.models import Schedule

    with transaction.atomic():
        pipeline, definition = current_definition(pipeline_id)
        specs, problems = specs_of(definition) if definition is not None else ([], [])
        for message in problems:
            log.warning("pipeline %s: %s; it is not scheduled", pipeline.code, message)
        states = {s.trigger_key: s for s in ScheduleState.objects.filter(pipeline_id=pipeline_id)}
        now = timezone.now()
        renewed = {}  # trigger key -> its state, for the triggers that count afresh from now
        for spec in specs:
            state = states.get(spec.key)
            if state is None or state.spec != spec.signature:
                renewed[spec.key], _ = ScheduleState.objects.update_or_create(
                    pipeline_id=pipeline_id, trigger_key=spec.key,
                    defaults={"spec": spec.signature, "anchor": now, "handled_until": now, "backlog": 0},
                )
        kept = SCHEDULES.reconcile(pipeline_id, {
            spec.key: {
                "name": f"{pipeline.code} / {spec.key}"[:100],
                "schedule_type": Schedule.MINUTES if spec.interval_sec else Schedule.CRON,
                "minutes": max(1, spec.interval_sec // 60) if spec.interval_sec else None,
                "cron": spec.cron,
                "repeats": -1,
                "intended_date_kwarg": "planned",
            } for spec in specs})
        for spec in specs:
            schedule, created = kept[spec.key]
            if created or spec.key in renewed:
                # Saving a CRON schedule computes next_run in the server's zone; ours knows the trigger's.
                anchor = (renewed.get(spec.key) or states[spec.key]).anchor
                Schedule.objects.filter(pk=schedule.pk).update(next_run=spec.next_after(anchor, now))
        ScheduleState.objects.filter(pipeline_id=pipeline_id).exclude(trigger_key__in=[s.key for s in specs]).delete()
    return problems


def sync_all() -> None:
    for pk in Pipeline.objects.values_list("pk", flat=True):
        sync_pipeline(pk)


# --- firing ----------------------------------------------------------------------------------------


def fire(pipeline_id: int, trigger_key: str, planned: str | None = None, *, now: datetime | None = None) -> str:
    """One scheduler tick for one trigger: start what the occurrences since the last tick call for."""
    now = now or timezone.now()
    pipeline = Pipeline.objects.select_related("current_revision").filter(pk=pipeline_id).first()
    spec = None
    if pipeline is not None and pipeline.enabled and pipeline.current_revision is not None:
        spec = next((s for s in specs_of(pipeline.current_revision.definition)[0] if s.key == trigger_key), None)
    state = ScheduleState.objects.filter(pipeline_id=pipeline_id, trigger_key=trigger_key).first()
    if spec is None or state is None or state.spec != spec.signature:
        sync_pipeline(pipeline_id)  # a stale schedule: the sync removes or renews it
        log.info("schedule %s/%s is no longer as planned; re-synced, nothing started", pipeline_id, trigger_key)
        return "re-synced"
    due = spec.occurrences(state.anchor, state.handled_until, now, CATCH_UP_CAP + 1)
    _plan_next(pipeline_id, spec, state, now)
    if not due:
        return "nothing due"
    if not ScheduleState.objects.filter(pk=state.pk, handled_until=state.handled_until).update(handled_until=due[-1]):
        return "already handled"  # another tick took this window
    on_time = now - due[-1] <= GRACE
    missed = due[:-1] if on_time else due
    if spec.catch_up == "ALL":
        owed = min(len(due), CATCH_UP_CAP)
    elif spec.catch_up == "LAST":
        owed = 1
    else:
        owed = 1 if on_time else 0
    if missed:
        more = "+" if len(due) > CATCH_UP_CAP else ""
        log.warning("pipeline %s trigger %s: %s%s occurrence(s) missed since %s; catchUp %s: %s run(s)",
                    pipeline.code, trigger_key, len(missed), more, missed[0].isoformat(), spec.catch_up, owed)
    if owed == 0:
        return f"missed {len(missed)}: no run (catchUp NONE)"
    if spec.catch_up == "ALL":
        ScheduleState.objects.filter(pk=state.pk).update(backlog=F("backlog") + owed)
        ScheduleState.objects.filter(pk=state.pk, backlog__gt=CATCH_UP_CAP).update(backlog=CATCH_UP_CAP)
        started = drain(pipeline_id)
        return f"{owed} run(s) owed, {started} started"
    run = _start(pipeline, trigger_key)
    return f"started run {run.pk}" if run else "skipped: a run is active"


def drain(pipeline_id: int) -> int:
    """Start one run owed under catchUp ALL, unless the pipeline is busy; the rest wait for it to end."""
    pipeline = Pipeline.objects.filter(pk=pipeline_id, enabled=True).first()
    if pipeline is None:
        return 0
    for state in ScheduleState.objects.filter(pipeline_id=pipeline_id, backlog__gt=0):
        if pipeline.runs.filter(status__in=ACTIVE_STATUSES, dry_run=False).exists():
            return 0
        if not ScheduleState.objects.filter(pk=state.pk, backlog=state.backlog).update(backlog=F("backlog") - 1):
            continue  # somebody else took it
        if _start(pipeline, state.trigger_key) is None:
            ScheduleState.objects.filter(pk=state.pk).update(backlog=F("backlog") + 1)
            return 0
        return 1
    return 0


def on_run_ended(sender, run, **kwargs) -> None:
    """``run_ended`` receiver: the next catch-up run, if some are owed."""
    if ScheduleState.objects.filter(pipeline_id=run.pipeline_id, backlog__gt=0).exists():
        drain(run.pipeline_id)


def _start(pipeline: Pipeline, trigger_key: str):
    from runs import services

    try:
        return services.start_run(pipeline, trigger="schedule",
                                  seed_step=services.seed_for_trigger(_definition(pipeline), trigger_key))
    except DatahubError as exc:
        log.info("scheduled run of %s skipped: %s", pipeline.code, exc)
        return None


def _definition(pipeline: Pipeline) -> dict:
    return pipeline.current_revision.definition if pipeline.current_revision is not None else {}


def _plan_next(pipeline_id: int, spec: Spec, state: ScheduleState, now: datetime) -> None:
    """Point the django-q2 schedule at the trigger's true next occurrence (django-q2 computes crons in
    the server's zone and intervals in whole minutes). The scheduler saves its own guess before this
    task runs; a tick that finds nothing due is then harmless."""
    SCHEDULES.of(pipeline_id).filter(args=SCHEDULES.args(pipeline_id, spec.key)).update(
        next_run=spec.next_after(state.anchor, now))

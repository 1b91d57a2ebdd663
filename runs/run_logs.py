"""A run's log: structured lines (time, level, step, message, data) written from the executor's events.

:class:`RunLogger` sits in :class:`runs.store.DjangoRunStore`: every event the executor emits may become
lines, kept when their verbosity is within the run's log level, and written in bulk with the failed
records (at each step's end, at the run's end, and every :data:`FLUSH_EVERY` lines). The events reach the
store already scrubbed of credentials (``runs.engine.store.RedactingStore``), so the lines are too.

The log level is the pipeline's ``context.logLevel``, else the hub's (``DATAHUB_RUN_LOG_LEVEL`` or the
settings page). Levels, least to most said (:data:`pipelines.definition.RUN_LOG_LEVELS`):

- ERROR: a step or the run failed.
- PIPELINE: and the run's start, pause and end, and steps' warnings.
- STEP: and each step's start, retries and end with its counts and duration.
- DEBUG: and every hook fired and failed or retried record (at most :data:`RECORD_LINES` per step, then
  one line saying how many more there were; the records themselves are in the run's record errors).

Each line also has a display level: ERROR, WARNING, INFO or DEBUG (the explorer filters on it).
"""

from __future__ import annotations

from collections import Counter

from django.utils import timezone

from pipelines import access, hub_settings
from pipelines.definition import RUN_LOG_LEVELS
from runs.engine.events import (
    Event,
    HookFired,
    RecordFailed,
    RecordRetried,
    RunFinished,
    RunPaused,
    RunStarted,
    StepFinished,
    StepRetrying,
    StepStarted,
)
from runs.engine.status import RunStatus, StepStatus
from runs.models import Run, RunLog

LEVELS = ("ERROR", "WARNING", "INFO", "DEBUG")
FLUSH_EVERY = 500
RECORD_LINES = 100
_RANK = {name: n for n, name in enumerate(RUN_LOG_LEVELS)}


def level_of(run: Run) -> str:
    """The run's log level: its revision's ``context.logLevel``, else the hub's."""
    wanted = ((run.revision.definition or {}).get("context") or {}).get("logLevel")
    return wanted if wanted in _RANK else hub_settings.value("runLogLevel")


def lines_for(event: Event) -> list[tuple[str, str, str, str, dict]]:
    """(verbosity, level, step key, message, data) of the lines an event makes."""
    if isinstance(event, RunStarted):
        return [("PIPELINE", "INFO", "", f"run started with {len(event.step_keys)} steps",
                 {"steps": list(event.step_keys)})]
    if isinstance(event, StepStarted):
        return [("STEP", "INFO", event.step_key, f"step started (attempt {event.attempt})",
                 {"attempt": event.attempt})]
    if isinstance(event, StepRetrying):
        return [("STEP", "WARNING", event.step_key,
                 f"attempt {event.attempt} failed, retrying in {event.delay_ms} ms: {event.error}",
                 {"attempt": event.attempt, "delayMs": event.delay_ms})]
    if isinstance(event, StepFinished):
        c = event.counts
        data = {"status": event.status, "recordsIn": c.records_in, "recordsOut": c.records_out,
                "errors": c.errors, "dropped": c.dropped, "durationMs": event.duration_ms, "attempts": event.attempts}
        if event.status is StepStatus.FAILED:
            out = [("ERROR", "ERROR", event.step_key, f"step failed after {event.duration_ms:,} ms: {event.error}", data)]
        else:
            out = [("STEP", "INFO", event.step_key,
                    f"step {event.status.lower()}: {c.records_in:,} in, {c.records_out:,} out, {c.errors:,} errors "
                    f"in {event.duration_ms:,} ms", data)]
        out += [("PIPELINE", "WARNING", event.step_key, warning, {}) for warning in event.warnings]
        return out
    if isinstance(event, RecordFailed):
        return [("DEBUG", "WARNING", event.step_key, f"record failed: {event.message}", {"attempts": event.attempts})]
    if isinstance(event, RecordRetried):
        return [("DEBUG", "DEBUG", event.step_key, f"record attempt {event.attempt} failed: {event.error}",
                 {"attempt": event.attempt})]
    if isinstance(event, RunPaused):
        return [("PIPELINE", "INFO", event.step_key, f"run paused at step {event.step_key}: {event.records:,} "
                 "records wait", {"records": event.records})]
    if isinstance(event, HookFired):
        return [("DEBUG", "DEBUG", event.step_key or "", f"hook {event.stage}: {event.action.get('type', '?')}",
                 {"stage": event.stage})]
    if isinstance(event, RunFinished):
        if event.status is RunStatus.FAILED:
            return [("ERROR", "ERROR", "", f"run failed: {event.error or 'see the steps'}", {"status": event.status})]
        if event.status is RunStatus.PAUSED:
            return []
        return [("PIPELINE", "INFO", "", f"run {event.status.lower()}" + (f": {event.error}" if event.error else ""),
                 {"status": event.status})]
    return []


class RunLogger:
    """Collects a run's log lines and writes them in bulk. Used from the executor's main thread only."""

    def __init__(self, run: Run):
        self.run = run
        self.rank = _RANK[level_of(run)]
        self._lines: list[RunLog] = []
        self._record_lines: Counter[str] = Counter()

    def record(self, event: Event, now=None) -> None:
        now = now or timezone.now()
        for verbosity, level, step_key, message, data in lines_for(event):
            if _RANK[verbosity] > self.rank:
                continue
            if isinstance(event, RecordFailed | RecordRetried):
                self._record_lines[step_key] += 1
                if self._record_lines[step_key] > RECORD_LINES:
                    continue
            self._lines.append(RunLog(run_id=self.run.pk, step_key=step_key, level=level, message=message[:5000],
                                      data=data, created_at=now))
        if isinstance(event, StepFinished):
            self._note_skipped(event.step_key, now)
        if len(self._lines) >= FLUSH_EVERY:
            self.flush()

    def _note_skipped(self, step_key: str, now) -> None:
        more = self._record_lines.pop(step_key, 0) - RECORD_LINES
        if more > 0:
            self._lines.append(RunLog(run_id=self.run.pk, step_key=step_key, level="DEBUG", created_at=now,
                                      message=f"{more:,} more record lines not logged (see the record errors)",
                                      data={"notLogged": more}))

    def flush(self) -> None:
        if self._lines:
            RunLog.objects.bulk_create(self._lines)
            self._lines = []


def select(user, *, pipeline: str = "", run: int | None = None, step: str = "", level: str = "", q: str = "",
           since=None, until=None):
    """Log lines ``user`` may see (of pipelines they may use), newest first, filtered as the explorer and
    the API filter them (``level``: that level and the more severe ones). Empty filters select all."""
    lines = access.visible(user, RunLog.objects.select_related("run__pipeline"), via="run__pipeline").order_by("-id")
    if pipeline:
        lines = lines.filter(run__pipeline__code=pipeline)
    if run:
        lines = lines.filter(run_id=run)
    if step:
        lines = lines.filter(step_key=step)
    if level:
        lines = lines.filter(level__in=LEVELS[: LEVELS.index(level) + 1])
    if q:
        lines = lines.filter(message__icontains=q)
    if since:
        lines = lines.filter(created_at__gte=since)
    if until:
        lines = lines.filter(created_at__lte=until)
    return lines

"""django-q2 entry points. They take ids, never objects (a task may run on another machine)."""

from __future__ import annotations

import logging

from runs import drain, services
from runs.models import Run, RunStatus

log = logging.getLogger(__name__)


def execute_run(run_id: int) -> str:
    """Execute a PENDING run; a duplicate delivery finds it claimed and does nothing. A worker that is
    draining starts nothing: it queues the task again for another worker."""
    if drain.draining():
        if Run.objects.filter(pk=run_id, status=RunStatus.PENDING).exists():
            services.enqueue(run_id)
        return "handed back"
    if not services.claim(run_id):
        log.info("run %s was already claimed; duplicate delivery ignored", run_id)
        return "skipped"
    run = Run.objects.select_related("pipeline", "revision").get(pk=run_id)
    return services.execute_claimed(run).run.status


def reap_stale_runs() -> int:
    """Every minute (the reaper schedule; `manage.py worker` also does it every few seconds): take back the
    runs whose worker died (resumed elsewhere, or failed past the resume limit), queue again the runs whose
    task was lost. Returns how many runs it took back."""
    failed = services.reap_stale_runs()
    services.requeue_lost_runs()
    return failed


def resume_run(run_id: int) -> str:
    """Continue a paused run whose gate was released; a duplicate delivery finds it claimed."""
    if drain.draining():
        if Run.objects.filter(pk=run_id, status=RunStatus.PAUSED).exists():
            services.enqueue_resume(run_id)
        return "handed back"
    if not services.claim_resume(run_id):
        log.info("run %s is not waiting to resume; duplicate delivery ignored", run_id)
        return "skipped"
    run = Run.objects.select_related("pipeline", "revision").get(pk=run_id)
    return services.execute_claimed(run).run.status


def run_scheduled(pipeline_id: int, trigger_key: str, planned: str | None = None) -> str:
    """A SCHEDULE trigger's tick (django-q2 passes the planned time); see runs.schedules for the rules."""
    from runs import schedules

    result = schedules.fire(pipeline_id, trigger_key, planned)
    log.info("schedule %s/%s (planned %s): %s", pipeline_id, trigger_key, planned, result)
    return result


def poll_file_trigger(pipeline_id: int, trigger_key: str) -> str:
    """A FILE trigger's poll (its schedule); see runs.file_triggers for the rules."""
    from runs import file_triggers

    result = file_triggers.poll(pipeline_id, trigger_key)
    log.info("files %s/%s: %s", pipeline_id, trigger_key, result)
    return str(result)

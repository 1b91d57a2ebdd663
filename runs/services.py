"""Starting, running and cancelling runs: the functions pages, the API, the CLI and tasks share.

Creating and queuing a run lives in :mod:`runs.launch` (re-exported here) so that hooks and CDC, which
start or queue runs while a run executes, need not import this module. The import direction within runs is
one way: services -> cdc -> store -> hooks -> launch -> models (``tests/runs/test_import_direction.py`` finds
any circle, function-local imports included)."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from audit.trail import record
from pipelines.definition import parse
from pipelines.errors import DatahubError
from runs import cdc, drain, output_sample, resume
from runs.engine.buffers import buffer_of
from runs.engine.context import RunOptions
from runs.engine.executor import RunResult, execute
from runs.engine.status import Handover
from runs.launch import RunConflict as RunConflict
from runs.launch import create_run as create_run
from runs.launch import enqueue
from runs.launch import replay_record_errors as replay_record_errors
from runs.launch import seed_for_trigger as seed_for_trigger
from runs.launch import start_run as start_run
from runs.models import Run, RunEvent, RunEventKind, RunStatus, StepStatus
from runs.signals import run_ended, step_paused
from runs.store import DjangoRunStore, close_connections_after

log = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def claim_resume(run_id: int) -> bool:
    """PAUSED -> RUNNING for exactly one caller, once a paused step was released (a gate approved)."""
    now = timezone.now()
    worker = worker_name()
    claimed = bool(
        Run.objects.filter(pk=run_id, status=RunStatus.PAUSED, resume_state__isnull=False).update(
            status=RunStatus.RUNNING, heartbeat_at=now, worker=worker, lease=uuid.uuid4().hex
        )
    )
    if claimed:
        RunEvent.objects.create(run_id=run_id, kind=RunEventKind.RESUMED, worker=worker,
                                detail="continued after a paused step was released")
    return claimed


def release_paused_step(run: Run, step_key: str) -> Run:
    """Mark a paused step completed (its held records go on) and hand the run to a worker to continue.

    While the run is RUNNING (continuing after another gate) or PENDING (handed back by a stopping worker)
    and the step is still paused in it, the release is queued on the run and applied the moment the run pauses again (see ``_pause``), so a
    person can decide any waiting gate at any time. Raises RunConflict when the run does not wait at that
    step; the row lock makes two releases of the same step impossible.
    """
    with transaction.atomic():
        locked = Run.objects.select_for_update().get(pk=run.pk)
        # RUNNING: continuing after another gate; PENDING: handed back by a stopping worker with the step
        # still paused in its state, to be taken up by another (runs.services._hand_back).
        if (locked.status in (RunStatus.RUNNING, RunStatus.PENDING)
                and locked.step_runs.filter(step_key=step_key, status=StepStatus.PAUSED).exists()):
            if step_key in locked.pending_releases:
                raise RunConflict(f"run {run.pk}: step '{step_key}' is released already")
            locked.pending_releases = [*locked.pending_releases, step_key]
            locked.save(update_fields=["pending_releases"])
            return locked
        if locked.status != RunStatus.PAUSED or not locked.resume_state:
            raise RunConflict(f"run {run.pk} is not paused (it is {locked.status})")
        try:
            locked.resume_state = resume.release(locked.resume_state, step_key)
        except (KeyError, ValueError) as exc:
            raise RunConflict(f"run {run.pk} is not waiting at step '{step_key}': {exc}") from None
        locked.save(update_fields=["resume_state"])
        locked.step_runs.filter(step_key=step_key).update(status=StepStatus.COMPLETED, finished_at=timezone.now())
        transaction.on_commit(lambda: enqueue_resume(locked.pk))
    return locked


class PauseNotSaved(Exception):
    """A ``step_paused`` listener could not save what the pause needs (a gate request): the pause is undone
    and the run fails with this reason rather than wait for something that will never come."""


def _pause(run: Run, manifest: dict, pauses: dict[str, dict]) -> None:
    """PAUSED and everything needed to continue, written together (so nobody sees a paused run without
    its state), with releases that arrived while the run was still running applied at once.

    The ``step_paused`` listeners run inside the same transaction: the gates app's request (and its timer)
    commits with the pause or not at all. A worker that dies at any point before the commit leaves the run
    RUNNING, as it was, for the dead-worker handling; never a PAUSED run without its gate request."""
    with transaction.atomic():
        locked = Run.objects.select_for_update().get(pk=run.pk)
        if locked.status != RunStatus.RUNNING or locked.lease != run.lease:
            log.warning("run %s was taken over (it is %s) before it could pause", run.pk, locked.status)
            return
        released = []
        for step_key in locked.pending_releases:
            if manifest["steps"].get(step_key, {}).get("status") == StepStatus.PAUSED:
                manifest = resume.release(manifest, step_key)
                released.append(step_key)
        Run.objects.filter(pk=run.pk).update(status=RunStatus.PAUSED, resume_state=manifest, pending_releases=[],
                                             heartbeat_at=timezone.now())
        if released:
            locked.step_runs.filter(step_key__in=released).update(status=StepStatus.COMPLETED, finished_at=timezone.now())
            transaction.on_commit(lambda: enqueue_resume(run.pk))
        paused = Run.objects.get(pk=run.pk)
        for step_key, info in pauses.items():
            try:
                step_paused.send(Run, run=paused, step_key=step_key, info=info)
            except Exception as exc:
                raise PauseNotSaved(f"the run paused at step '{step_key}', but what the pause needs could not "
                                    f"be saved: {type(exc).__name__}: {exc}") from exc


def enqueue_resume(run_id: int) -> None:
    from django_q.tasks import async_task

    async_task("runs.tasks.resume_run", run_id, task_name=f"resume-{run_id}", group="runs")


def claim(run_id: int) -> bool:
    """PENDING -> RUNNING for exactly one caller: the same task delivered twice executes once. A run
    handed back or taken back from a dead worker is PENDING again and claimed the same way."""
    now = timezone.now()
    worker = worker_name()
    claimed = bool(
        Run.objects.filter(pk=run_id, status=RunStatus.PENDING).update(
            status=RunStatus.RUNNING, started_at=Coalesce("started_at", Value(now)), heartbeat_at=now,
            worker=worker, lease=uuid.uuid4().hex
        )
    )
    if claimed:
        before = RunEvent.objects.filter(run_id=run_id).exists()
        RunEvent.objects.create(
            run_id=run_id, kind=RunEventKind.RESUMED if before else RunEventKind.STARTED, worker=worker,
            detail="resumed from its last completed step" if before else "")
    return claimed


def run_options(run: Run, *, keep_outputs=False) -> RunOptions:
    from django.core.files.storage import default_storage

    from pipelines.connections import resolve_connection
    from pipelines.http import HttpClient, HttpPolicy
    from pipelines.redaction import Redactor
    from pipelines.secrets import resolve_secret

    policy = HttpPolicy(allow=tuple(settings.DATAHUB_HTTP_ALLOW), max_bytes=settings.DATAHUB_HTTP_MAX_BYTES)
    # Learns every secret the run resolves and every credential it sends; whatever the run reports is
    # scrubbed of them (a server may echo them in an error body).
    redactor = Redactor()
    checkpointing = (run.revision.definition.get("context") or {}).get("checkpointing") or {}
    durable = checkpointing.get("enabled", True) is not False
    return RunOptions(
        dry_run=run.dry_run,
        record_limit=run.record_limit,
        keep_outputs=keep_outputs,
        output_head=output_sample.RECORDS,  # what no step reads is held only as far as the sample shows it
        spill_records=settings.DATAHUB_SPILL_RECORDS,
        stream_memory_bytes=settings.DATAHUB_STREAM_MEMORY_MB << 20,
        processes=settings.DATAHUB_STEP_PROCESSES,
        process_min_records=settings.DATAHUB_STEP_PROCESS_MIN_RECORDS,
        pipeline_code=run.pipeline.code,
        run_id=run.pk,
        http=HttpClient(policy, redactor=redactor),
        storage=default_storage,
        secret=redactor.watch(resolve_secret),
        connection=resolve_connection,
        thread_wrapper=close_connections_after,
        seed_step=run.seed_step or None,
        seed_records=buffer_of(run.seed_records or []) if run.seed_step else None,
        redactor=redactor,
        persist=(lambda key, outputs: resume.persist(run.pk, key, outputs)) if durable else None,
        drain=drain.deadline,
    )


@dataclass
class Outcome:
    run: Run
    result: RunResult | None


def execute_claimed(run: Run, *, keep_outputs=False) -> Outcome:
    """Execute a run this process has claimed (fresh or resumed); the run ends in a final status, or
    PAUSED with everything it needs to continue saved, whatever happens."""
    store = DjangoRunStore(run)
    try:
        definition = parse(run.revision.definition)
        finals = output_sample.final_outputs(definition)
        options = run_options(run, keep_outputs=output_sample.keep_also(keep_outputs, finals))
        if run.resume_state:
            options.previous = resume.previous_steps(run.resume_state, options.spill_records, beat=store.heartbeat)
        continuous = cdc.step_for(run, definition)
        if continuous is not None:  # polls until cancelled, one sub-run per batch
            options.persist = None  # a batch that did not complete is read again from the checkpoint
            return _announce(Outcome(_reload(run), cdc.run_continuous(run, definition, continuous, options)))
        result = execute(definition, store, options)
        _keep_sample(run, definition, result, finals, keep_outputs, options)
        if result.status == RunStatus.PAUSED:
            _pause(run, resume.save_state(run, result), result.pauses)
        elif result.status is Handover.HANDED_BACK:
            _hand_back(run, resume.save_state(run, result), result)
        elif result.status is not Handover.LOST:
            resume.delete_files(run)
            if run.resume_state:
                Run.objects.filter(pk=run.pk).update(resume_state=None)
    except DatahubError as exc:
        _fail(run, f"the pipeline cannot run: {exc}")
        return _announce(Outcome(_reload(run), None))
    except PauseNotSaved as exc:
        log.exception("run %s could not pause", run.pk)
        _fail(run, str(exc))
        return _announce(Outcome(_reload(run), None))
    except Exception as exc:  # the run must never stay RUNNING because of a bug
        log.exception("run %s crashed", run.pk)
        _fail(run, f"internal error: {type(exc).__name__}: {exc}")
        return _announce(Outcome(_reload(run), None))
    return _announce(Outcome(_reload(run), result))


def _keep_sample(run: Run, definition, result: RunResult, finals: dict, keep_outputs, options) -> None:
    """Save the first records of the run's final outputs with the run (runs.output_sample), then close
    the outputs kept only for that. A sample that cannot be taken is logged, never a failure of the run."""
    if result.status is Handover.LOST:
        output_sample.close_unwanted(result.outputs, finals, keep_outputs)
        return
    try:
        scrub = options.redactor.scrub_value if options.redactor is not None else None
        entries = output_sample.take(result.outputs, finals, scrub)
        if entries or run.output_sample is None:
            order = [s.key for s in definition.steps]
            Run.objects.filter(pk=run.pk).update(
                output_sample=output_sample.merged(run.output_sample, entries, order))
    except Exception:
        log.exception("run %s: the sample of its output records was not saved", run.pk)
    if result.status not in (RunStatus.PAUSED, Handover.HANDED_BACK):  # a pause keeps its outputs to resume
        output_sample.close_unwanted(result.outputs, finals, keep_outputs)


def _hand_back(run: Run, manifest: dict, result: RunResult) -> None:
    """The worker drains: the run goes back to PENDING with what it needs to continue, and is queued again
    for another worker (its completed steps do not run again). Conditional on this worker still owning it."""
    with transaction.atomic():
        moved = Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING, lease=run.lease).update(
            status=RunStatus.PENDING, resume_state=manifest, heartbeat_at=timezone.now(), worker="")
        if moved:
            RunEvent.objects.create(run=run, kind=RunEventKind.HANDED_BACK, worker=run.worker,
                                    detail="the worker was stopping; queued again to continue from its last "
                                           "completed step")
            transaction.on_commit(lambda: enqueue(run.pk))
            # A step that paused before the hand-back (a gate beside steps still running) gets its request
            # with the hand-back, as with a pause (see _pause), or neither is written.
            handed = Run.objects.get(pk=run.pk)
            for step_key, info in result.pauses.items():
                try:
                    step_paused.send(Run, run=handed, step_key=step_key, info=info)
                except Exception as exc:
                    raise PauseNotSaved(f"the run paused at step '{step_key}', but what the pause needs could "
                                        f"not be saved: {type(exc).__name__}: {exc}") from exc
    result.close()


def _announce(outcome: Outcome) -> Outcome:
    """Tell the other apps (notifications) that a run ended; a listener's failure is logged, never turned
    into a failure of the run. (A pause is told inside its own transaction, by :func:`_pause`.)"""
    run = outcome.run
    if run.status in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED):
        for receiver, response in run_ended.send_robust(Run, run=run):
            if isinstance(response, Exception):
                log.error("run_ended listener %s failed for run %s: %r", receiver, run.pk, response)
    return outcome


def run_now(run: Run, *, keep_outputs=False) -> Outcome:
    """Claim and execute in this process (CLI --sync, previews, tests): the worker's own code path."""
    if not claim(run.pk):
        return Outcome(_reload(run), None)
    return execute_claimed(_reload(run), keep_outputs=keep_outputs)


def resume_now(run: Run, *, keep_outputs=False) -> Outcome:
    """Continue a released paused run in this process (the resume task's code path)."""
    if not claim_resume(run.pk):
        return Outcome(_reload(run), None)
    return execute_claimed(_reload(run), keep_outputs=keep_outputs)


def cancel_run(run: Run, reason: str = "cancelled by request") -> Run:
    """A PENDING or PAUSED run is cancelled at once; a RUNNING one when its executor next looks."""
    now = timezone.now()
    if Run.objects.filter(pk=run.pk, status__in=[RunStatus.PENDING, RunStatus.PAUSED]).update(
        status=RunStatus.CANCELLED, cancel_requested=True, finished_at=now, error=reason
    ):
        resume.delete_files(run)
        Run.objects.filter(pk=run.pk).update(resume_state=None)
        run.step_runs.filter(status__in=[StepStatus.PENDING, StepStatus.PAUSED]).update(status=StepStatus.CANCELLED)
    Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(cancel_requested=True)
    record("run.cancelled", f"run:{run.pk}", pipeline=run.pipeline.code, reason=reason[:300])
    return _reload(run)


def reap_stale_runs(max_silence_seconds: int | None = None) -> int:
    """Take back the RUNNING runs whose worker has not written a heartbeat for too long (it was killed, ran
    out of memory, lost its machine): each is queued again and resumed by any live worker from its last
    completed step, or FAILED with the reason once it was resumed ``DATAHUB_MAX_RESUMES`` times. Returns
    how many runs were taken back. Every change is a conditional UPDATE on the silent worker still owning
    the run, so two reapers at once (every worker sweeps) act once, and a worker that beats again keeps it."""
    limit = max_silence_seconds or settings.DATAHUB_HEARTBEAT_TIMEOUT
    cutoff = timezone.now() - timezone.timedelta(seconds=limit)
    count = 0
    for run in Run.objects.filter(status=RunStatus.RUNNING, heartbeat_at__lt=cutoff).select_related(
            "pipeline", "revision"):
        silent = (f"no heartbeat since {run.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC, limit {limit} s")
        owned = Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING, heartbeat_at__lt=cutoff, lease=run.lease)
        if run.resumes >= settings.DATAHUB_MAX_RESUMES:
            count += _give_up(run, owned, silent)
        else:
            count += _take_back(run, owned, silent)
    return count


def _take_back(run: Run, owned, silent: str) -> int:
    try:
        definition = parse(run.revision.definition)
        continuous = cdc.step_for(run, definition) is not None
    except DatahubError:
        definition, continuous = None, False
    # A continuous CDC run starts again from its committed checkpoint (the batch in flight is read again);
    # any other run from the steps whose outputs were saved.
    manifest = None if continuous or definition is None else resume.manifest_from_rows(run, definition)
    with transaction.atomic():
        if not owned.update(status=RunStatus.PENDING, resume_state=manifest, resumes=F("resumes") + 1,
                            heartbeat_at=timezone.now(), worker=""):
            return 0
        again = run.step_runs.exclude(status=StepStatus.PENDING)
        again = again.filter(status=StepStatus.RUNNING) if manifest is None else again.exclude(
            step_key__in=list(manifest["steps"]))
        again.update(status=StepStatus.PENDING, finished_at=None,
                     error=f"interrupted: worker {run.worker} stopped responding; runs again")
        RunEvent.objects.create(
            run=run, kind=RunEventKind.WORKER_LOST, worker=run.worker,
            detail=f"the worker stopped responding ({silent}); queued again to resume "
                   + ("from its committed checkpoint" if continuous else "from its last completed step")
                   + f" (resume {run.resumes + 1} of at most {settings.DATAHUB_MAX_RESUMES})")
        transaction.on_commit(lambda: enqueue(run.pk))
    log.warning("run %s: worker %s stopped responding; queued again to resume", run.pk, run.worker)
    return 1


def _give_up(run: Run, owned, silent: str) -> int:
    limit = settings.DATAHUB_MAX_RESUMES
    reason = (f"the worker stopped responding ({silent}) and the run had been resumed {run.resumes} times "
              f"already (limit DATAHUB_MAX_RESUMES={limit}); the run was marked failed")
    with transaction.atomic():
        if not owned.update(status=RunStatus.FAILED, finished_at=timezone.now(), error=reason):
            return 0
        run.step_runs.filter(status=StepStatus.RUNNING).update(status=StepStatus.FAILED,
                                                               error="the worker stopped responding")
        run.step_runs.filter(status__in=[StepStatus.PENDING, StepStatus.PAUSED]).update(
            status=StepStatus.SKIPPED, error="not run: the run failed because its worker stopped responding")
        RunEvent.objects.create(run=run, kind=RunEventKind.GAVE_UP, worker=run.worker, detail=reason)
    resume.delete_files(run)
    Run.objects.filter(pk=run.pk).update(resume_state=None)
    # A run that ended this way is still a run that ended: its failure notice goes out and a schedule's
    # catch-up continues (found by killing a worker: nothing was sent).
    _announce(Outcome(_reload(run), None))
    return 1


def requeue_lost_runs(max_wait_seconds: int | None = None) -> int:
    """Hand to the broker again the PENDING runs whose task was lost, when the broker's queue is empty.

    A task can be lost on its way to a worker: a cluster takes a few tasks ahead of its workers into its own
    memory (with Redis they are popped off the list), so a cluster killed then loses them, and their runs
    would stay PENDING (blocking their pipeline) for ever; the ORM broker delivers them again, but only
    after Q_CLUSTER's ``retry`` (70 minutes by default). Only with an empty queue: a run still PENDING
    then has no task waiting in the broker. It may still have one in a live cluster's memory (behind long
    runs); then whichever copy comes first executes it and the claim turns the other into a no-op. With
    the queue empty, each call adds at most one copy per run, and none while those wait in the queue.
    """
    from django_q.brokers import get_broker

    limit = max_wait_seconds or settings.DATAHUB_HEARTBEAT_TIMEOUT
    cutoff = timezone.now() - timezone.timedelta(seconds=limit)
    # PENDING since: its creation, or when a continuous run handed itself back (runs.cdc sets heartbeat_at).
    lost = list(Run.objects.filter(status=RunStatus.PENDING)
                .annotate(pending_since=Coalesce("heartbeat_at", "created_at")).filter(pending_since__lt=cutoff)
                .values_list("pk", flat=True))
    if not lost or get_broker().queue_size():
        return 0
    for run_id in lost:
        log.warning("run %s has waited more than %s s with an empty queue: its task was lost; queued again",
                    run_id, limit)
        enqueue(run_id)
    return len(lost)


def _fail(run: Run, message: str) -> None:
    from pipelines.redaction import scrub_everywhere

    Run.objects.filter(pk=run.pk).update(status=RunStatus.FAILED, error=scrub_everywhere(message),
                                         finished_at=timezone.now())
    # Its steps that were running stopped with it, and those that did not run will not: say so on each.
    run.step_runs.filter(status=StepStatus.RUNNING).update(status=StepStatus.FAILED,
                                                           error="stopped: the run failed (see the run's error)")
    run.step_runs.filter(status=StepStatus.PENDING).update(
        status=StepStatus.SKIPPED, error="not run: the run failed (see the run's error)")


def _reload(run: Run) -> Run:
    return Run.objects.select_related("pipeline", "revision").get(pk=run.pk)

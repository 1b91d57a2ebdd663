"""FILE triggers: a folder on a FOLDER, SFTP or FTP connection, polled; one run per new or changed file.

A TRIGGER step ``{"type": "FILE", "connectionCode": "partner-sftp", "path": "outgoing", "pattern": "*.csv"}``
(see runs.engine.file_trigger for every option) gets one django-q2 ``Schedule`` calling
``runs.tasks.poll_file_trigger(pipeline_id, trigger_key)`` every ``pollIntervalSec`` (whole minutes); the
schedules follow the pipeline as SCHEDULE triggers' do (saved, disabled, deleted). ``manage.py poll_files``
polls at once.

A poll lists the folder, and for each file at least ``minFileAgeSec`` old:

* a version (path + size + mtime, or path + SHA-256 under ``detectChangesBy: CHECKSUM``) never seen:
  a run seeded at the trigger with ``{"path", "name", "size", "mtime", "connectionCode"}`` (``checksum``
  too), and a :class:`~runs.models.SeenFile` row, in one transaction. The row's unique constraint is what
  guarantees one run per version: two polls racing both try, one insert fails and takes its run with it;
* seen, with its run still active: nothing (a worker killed mid-run leaves it active until the reaper
  fails it);
* seen, its run COMPLETED but the cursor not moved (the worker died between the two): moved now, no run;
* seen, its run FAILED: another run, claimed by a conditional UPDATE of the row, until ``maxAttempts``
  runs failed; then the version is given up (FAILED, with the last run's error) until the file changes;
* larger than ``DATAHUB_MAX_FILE_BYTES``: no run; the version is REFUSED with the reason.

The cursor moves (row DONE) only when the run succeeds: :func:`on_run_ended`. File runs may run at the
same time as each other and as other runs of the pipeline (each file is its own piece of work).
A file that cannot be listed (host unreachable, authentication failed, no such folder) starts nothing:
the poll returns and logs the reason, naming the connection, and tries again at the next interval.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db import IntegrityError, transaction
from django.db.models import F

from pipelines.connections import resolve_connection
from pipelines.errors import ConfigError, DatahubError
from pipelines.filestores import FileInfo, FileStore, FileStoreError, open_store
from pipelines.filestores.limits import human_size, max_file_bytes
from pipelines.models import Pipeline
from pipelines.secrets import resolve_secret
from runs import services
from runs.engine.file_trigger import FileWatch, file_trigger_problems, file_watch
from runs.models import ACTIVE_STATUSES, Run, RunStatus, SeenFile, SeenFileStatus
from runs.pipeline_followers import TriggerSchedules, current_definition

log = logging.getLogger(__name__)

FUNC = "runs.tasks.poll_file_trigger"
PATH_MAX = SeenFile._meta.get_field("path").max_length


# --- which triggers, and their schedules --------------------------------------------------------------


def watches_of(definition: dict) -> tuple[list[FileWatch], list[str]]:
    """The enabled FILE triggers of a definition, and a message for each one that cannot be watched."""
    watches, problems = [], []
    for step in definition.get("steps") or []:
        if not isinstance(step, dict) or step.get("type") != "TRIGGER" or step.get("disabled"):
            continue
        config = step.get("config") or {}
        if str(config.get("type", "")).upper() != "FILE":
            continue
        found = file_trigger_problems(config)
        if found:
            problems.append(f"step '{step.get('key')}': {found[0][1]}")
            continue
        watches.append(file_watch(step["key"], config))
    return watches, problems


SCHEDULES = TriggerSchedules(FUNC)


def sync_pipeline(pipeline_id: int) -> None:
    """Make the pipeline's poll schedules match its current revision's enabled FILE triggers."""
    from django_q.models import Schedule

    with transaction.atomic():
        pipeline, definition = current_definition(pipeline_id)
        watches: list[FileWatch] = []
        if definition is not None:
            watches, problems = watches_of(definition)
            for message in problems:
                log.warning("pipeline %s: %s; it is not watched", pipeline.code, message)
        SCHEDULES.reconcile(pipeline_id, {
            watch.key: {"name": f"{pipeline.code} / {watch.key} (files)"[:100], "schedule_type": Schedule.MINUTES,
                        "minutes": watch.poll_minutes, "repeats": -1}
            for watch in watches})


# --- polling -------------------------------------------------------------------------------------------


@dataclass
class PollResult:
    started: list[int] = field(default_factory=list)  # run ids
    retried: list[int] = field(default_factory=list)  # run ids, for files whose previous run failed
    settled: int = 0  # versions whose run had succeeded but whose cursor had not moved
    refused: list[str] = field(default_factory=list)  # messages
    error: str = ""

    def __str__(self) -> str:
        if self.error:
            return f"error: {self.error}"
        parts = [f"{len(self.started)} started", f"{len(self.retried)} retried"]
        if self.settled:
            parts.append(f"{self.settled} settled")
        if self.refused:
            parts.append(f"{len(self.refused)} refused")
        return ", ".join(parts)


@dataclass(frozen=True)
class Version:
    info: FileInfo
    fingerprint: str
    checksum: str | None = None

    def seed(self, connection_code: str) -> dict:
        record = {"path": self.info.path, "name": self.info.name, "size": self.info.size,
                  "mtime": self.info.modified, "connectionCode": connection_code}
        if self.checksum:
            record["checksum"] = self.checksum
        return record


def poll(pipeline_id: int, trigger_key: str, *, now: float | None = None) -> PollResult:
    """One look at a FILE trigger's folder: start, retry or settle what the files call for."""
    pipeline = Pipeline.objects.select_related("current_revision").filter(pk=pipeline_id).first()
    watch = None
    if pipeline is not None and pipeline.enabled and pipeline.current_revision is not None:
        watch = next((w for w in watches_of(pipeline.current_revision.definition)[0] if w.key == trigger_key), None)
    if watch is None:
        sync_pipeline(pipeline_id)  # a stale schedule: the sync removes it
        return PollResult(error=f"pipeline {pipeline_id} has no enabled FILE trigger '{trigger_key}'")
    now = time.time() if now is None else now
    result = PollResult()
    try:
        with open_store(watch.connection_code, resolve_connection, resolve_secret, field="connectionCode") as store:
            files = [f for f in store.list(watch.folder, watch.pattern, watch.recursive)
                     if now - f.mtime >= watch.min_age_sec]
            versions = _versions(store, files, watch, result)
    except (FileStoreError, ConfigError) as exc:
        result.error = f"pipeline '{pipeline.code}', trigger '{trigger_key}': {exc}"
        log.warning("FILE trigger poll failed: %s", result.error)
        return result
    seen = {(s.path, s.fingerprint): s for s in
            SeenFile.objects.filter(pipeline=pipeline, trigger_key=trigger_key,
                                    path__in=[v.info.path for v in versions]).select_related("run")}
    budget = watch.max_files
    for version in versions:
        if budget <= 0:
            break
        row = seen.get((version.info.path, version.fingerprint))
        if row is None:
            run_id = _start(pipeline, watch, version, result)
            if run_id is not None:
                result.started.append(run_id)
                budget -= 1
        elif row.status == SeenFileStatus.RUNNING:
            run_id = _settle(pipeline, watch, version, row, result)
            if run_id is not None:
                result.retried.append(run_id)
                budget -= 1
    if result.started or result.retried or result.refused:
        log.info("FILE trigger %s/%s: %s", pipeline.code, trigger_key, result)
    return result


def _versions(store: FileStore, files: list[FileInfo], watch: FileWatch, result: PollResult) -> list[Version]:
    limit = max_file_bytes()
    out = []
    for info in files:
        if info.size > limit or watch.detect_by == "MTIME":
            out.append(Version(info, f"{info.size}:{info.mtime:.6f}"))
            continue
        digest = hashlib.sha256()
        with store.open_read(info.path) as stream:
            while chunk := stream.read(64 * 1024):
                digest.update(chunk)
        out.append(Version(info, "sha256:" + digest.hexdigest(), digest.hexdigest()))
    return out


def _row_fields(version: Version) -> dict:
    return {"size": version.info.size, "modified_at": datetime.fromtimestamp(version.info.mtime, UTC)}


def _start(pipeline: Pipeline, watch: FileWatch, version: Version, result: PollResult) -> int | None:
    info = version.info
    limit = max_file_bytes()
    if len(info.path) > PATH_MAX:  # cannot be remembered, so it must not be run (it would run at every poll)
        reason = f"file '{info.path[:80]}...' has a path longer than {PATH_MAX} characters; not run"
        result.refused.append(reason)
        log.warning("FILE trigger %s/%s: %s", pipeline.code, watch.key, reason)
        return None
    if info.size > limit:
        reason = (f"file '{info.path}' on connection '{watch.connection_code}' is {info.size} bytes, larger than "
                  f"the limit of {human_size(limit)} (setting DATAHUB_MAX_FILE_BYTES); not run")
        try:
            with transaction.atomic():
                SeenFile.objects.create(pipeline=pipeline, trigger_key=watch.key, path=info.path,
                                        fingerprint=version.fingerprint, status=SeenFileStatus.REFUSED,
                                        error=reason, **_row_fields(version))
        except IntegrityError:
            return None
        result.refused.append(reason)
        log.warning("FILE trigger %s/%s: %s", pipeline.code, watch.key, reason)
        return None
    try:
        with transaction.atomic():
            run = services.start_run(pipeline, trigger="file", seed_step=watch.key,
                                     seed_records=[version.seed(watch.connection_code)], allow_concurrent=True)
            # The insert that makes this version seen; when another poll got here first it fails, and the
            # run above rolls back with it (its enqueue, an on_commit callback, never happens).
            SeenFile.objects.create(pipeline=pipeline, trigger_key=watch.key, path=info.path,
                                    fingerprint=version.fingerprint, run=run, attempts=1,
                                    **_row_fields(version))
    except IntegrityError:
        return None
    except DatahubError as exc:
        log.warning("FILE trigger %s/%s: no run for %s: %s", pipeline.code, watch.key, info.path, exc)
        return None
    return run.pk


def _settle(pipeline: Pipeline, watch: FileWatch, version: Version, row: SeenFile, result: PollResult) -> int | None:
    """A version whose run was started: move the cursor if the run succeeded, retry it if it failed."""
    run = row.run
    if run is not None and run.status in ACTIVE_STATUSES:
        return None
    if run is not None and run.status == RunStatus.COMPLETED:
        result.settled += SeenFile.objects.filter(pk=row.pk, status=SeenFileStatus.RUNNING).update(
            status=SeenFileStatus.DONE, error="")
        return None
    if run is not None and run.status == RunStatus.CANCELLED:
        _give_up(row, f"run {run.pk} was cancelled")
        return None
    reason = f"run {run.pk} failed: {run.error}" if run is not None else "its run was deleted"
    if row.attempts >= watch.max_attempts:
        _give_up(row, f"{reason} (attempt {row.attempts} of {watch.max_attempts}; given up)")
        return None
    try:
        with transaction.atomic():
            retry = services.start_run(pipeline, trigger="file", seed_step=watch.key,
                                       seed_records=[version.seed(watch.connection_code)], allow_concurrent=True)
            # Claimed by a conditional UPDATE: of two polls retrying the same failure one matches the row,
            # the other rolls its run back.
            claimed = SeenFile.objects.filter(pk=row.pk, status=SeenFileStatus.RUNNING, run_id=row.run_id,
                                              attempts=row.attempts).update(
                run=retry, attempts=F("attempts") + 1, error=reason[:2000])
            if not claimed:
                raise _Lost()
    except _Lost:
        return None
    except DatahubError as exc:
        log.warning("FILE trigger %s/%s: no retry for %s: %s", pipeline.code, watch.key, row.path, exc)
        return None
    return retry.pk


class _Lost(Exception):
    """Another poll retried this version first."""


def _give_up(row: SeenFile, reason: str) -> None:
    SeenFile.objects.filter(pk=row.pk, status=SeenFileStatus.RUNNING, run_id=row.run_id).update(
        status=SeenFileStatus.FAILED, error=reason[:2000])


# --- the cursor ------------------------------------------------------------------------------------------


def on_run_ended(sender, run: Run, **kwargs) -> None:
    """``run_ended`` receiver: a file's run succeeded, so the cursor moves past that version of the file.
    A failed run leaves it for the next poll to retry (and notes why)."""
    if run.trigger != "file":
        return
    if run.status == RunStatus.COMPLETED:
        SeenFile.objects.filter(run=run, status=SeenFileStatus.RUNNING).update(status=SeenFileStatus.DONE, error="")
    else:
        SeenFile.objects.filter(run=run, status=SeenFileStatus.RUNNING).update(
            error=f"run {run.pk} {run.status.lower()}: {run.error}"[:2000])

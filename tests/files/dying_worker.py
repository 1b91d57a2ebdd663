"""A worker that dies (SIGKILL, sent to itself) at a chosen point of a FILE trigger's work, run in a process
of its own by test_worker_killed.py: ``python manage.py shell -c "...main(phase, pipeline_id, run_id)"``."""

import os
import signal


def _die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)


def main(phase: str, pipeline_id: int, run_id: int | None = None) -> None:
    from pipelines.adapters import files
    from runs import file_triggers, services
    from runs.models import Run

    if phase == "after-run-created":  # the poll committed the run and its seen-file row, then nothing
        file_triggers.poll(pipeline_id, "files")
        _die()
    if phase == "after-run-completed":  # the run's COMPLETED is committed; the cursor's receiver never runs
        services._announce = _die
        services.run_now(Run.objects.get(pk=run_id))
    if phase == "mid-run":  # dies while its extractor reads the file: the run stays RUNNING
        files.CsvExtractor.read = _die
        services.run_now(Run.objects.get(pk=run_id))
    raise SystemExit(f"phase {phase} did not die")

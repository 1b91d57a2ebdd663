"""A real worker process killed at each point of a FILE trigger's work (after the run was created, after it
completed but before the cursor moved, in the middle of the run): the next poll starts no duplicate run,
and a file whose run died is run again exactly once."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from pipelines.services import save_definition
from runs import file_triggers, services
from runs.models import Run, RunStatus, SeenFile, SeenFileStatus
from tests.files.conftest import server_secrets, sftp_connection, upload
from tests.files.test_file_trigger import CSV, definition

pytestmark = pytest.mark.django_db(transaction=True)  # the worker process reads what the test committed
ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    if connection.vendor == "postgresql":
        return f"postgres://{s['USER']}:{s['PASSWORD'] or ''}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"
    pytest.skip(f"the worker process cannot be pointed at a {connection.vendor} test database")


def worker(phase: str, pipeline_id: int, run_id: int | None = None) -> None:
    """Run the dying worker and check that it really was killed (not that it finished or failed)."""
    env = {**os.environ, "DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE": "datahub_project.settings"}
    code = f"from tests.files.dying_worker import main; main({phase!r}, {pipeline_id}, {run_id})"
    done = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == -9, done.stdout + done.stderr


def test_a_worker_killed_at_any_point_causes_no_duplicate_run(sftp_server, save_connections):
    save_connections({"partner": sftp_connection(sftp_server)}, server_secrets(sftp=sftp_server))
    pipeline = save_definition(definition())
    upload(sftp_server, "sftp", "a.csv", CSV)

    worker("after-run-created", pipeline.pk)
    [run] = Run.objects.filter(pipeline=pipeline)
    assert run.status == RunStatus.PENDING and SeenFile.objects.get().run_id == run.pk
    assert file_triggers.poll(pipeline.pk, "files").started == []

    worker("after-run-completed", pipeline.pk, run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED and SeenFile.objects.get().status == SeenFileStatus.RUNNING
    result = file_triggers.poll(pipeline.pk, "files")
    assert (result.started, result.retried, result.settled) == ([], [], 1)
    assert SeenFile.objects.get().status == SeenFileStatus.DONE and Run.objects.count() == 1

    upload(sftp_server, "sftp", "b.csv", CSV)
    [second] = file_triggers.poll(pipeline.pk, "files").started
    worker("mid-run", pipeline.pk, second)
    assert Run.objects.get(pk=second).status == RunStatus.RUNNING
    assert file_triggers.poll(pipeline.pk, "files").started == []
    Run.objects.filter(pk=second).update(heartbeat_at=Run.objects.get(pk=second).heartbeat_at
                                         - services.timezone.timedelta(minutes=10))
    assert services.reap_stale_runs(60) == 1  # the reaper takes the dead worker's run back...
    assert Run.objects.get(pk=second).status == RunStatus.PENDING
    polled = file_triggers.poll(pipeline.pk, "files")
    assert polled.retried == polled.started == []  # ...to be resumed: no second run of the file
    assert services.run_now(Run.objects.get(pk=second)).run.status == RunStatus.COMPLETED
    settled = file_triggers.poll(pipeline.pk, "files")
    assert settled.started == settled.retried == []
    assert Run.objects.count() == 2
    assert dict(SeenFile.objects.values_list("path", "status")) == {"a.csv": "DONE", "b.csv": "DONE"}

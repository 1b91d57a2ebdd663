"""FILE triggers end to end: files uploaded over SFTP and FTP to real servers, polled, one run per new or
changed file seeded with it, the CSV extractor reading it from the same connection, and the cursor that
moves only after the run succeeded."""

import os
import time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django_q.models import Schedule

from pipelines.errors import DefinitionError
from pipelines.models import Pipeline
from pipelines.services import save_definition
from runs import file_triggers, services
from runs.models import Run, RunStatus, SeenFile, SeenFileStatus
from tests.files.conftest import ftp_connection, server_secrets, sftp_connection, upload

pytestmark = pytest.mark.django_db
# Tests that execute a run are transactional: its steps run in threads with database connections of their
# own, and its extractor reads the connection rows the test saved. The others need not pay for it.
executes_runs = pytest.mark.django_db(transaction=True)

CSV = b"sku,qty\nA-1,2\nB-2,5\n"


def definition(code="inbox", **trigger):
    return {
        "version": 1, "code": code, "name": code,
        "steps": [
            {"key": "files", "type": "TRIGGER", "config": {"type": "FILE", "connectionCode": "partner",
                                                            "pattern": "*.csv", "minFileAgeSec": 0, **trigger}},
            {"key": "read", "type": "EXTRACT", "adapterCode": "csv", "config": {"connectionCode": "partner"}},
            {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}},
        ],
    }


@pytest.fixture(params=["sftp", "ftp"])
def partner(request, save_connections):
    """A pipeline watching the 'partner' connection, on a real SFTP or FTP server: (kind, server, pipeline)."""
    kind = request.param
    server = request.getfixturevalue(f"{kind}_server")
    conn = sftp_connection(server) if kind == "sftp" else ftp_connection(server)
    save_connections({"partner": conn}, server_secrets(**{kind: server}))
    return kind, server


def poll(pipeline, key="files", **kw):
    return file_triggers.poll(pipeline.pk, key, **kw)


def execute(run_id):
    return services.run_now(Run.objects.get(pk=run_id), keep_outputs=True)


@executes_runs
def test_a_file_uploaded_to_the_server_starts_one_run_seeded_with_it_and_its_records(partner):
    kind, server = partner
    pipeline = save_definition(definition())
    upload(server, kind, "orders-1.csv", CSV)
    upload(server, kind, "notes.txt", b"not matched by *.csv")
    result = poll(pipeline)
    assert len(result.started) == 1 and not result.error
    run = Run.objects.get(pk=result.started[0])
    assert (run.trigger, run.seed_step, run.status) == ("file", "files", RunStatus.PENDING)
    [seed] = run.seed_records
    assert seed["path"] == "orders-1.csv" and seed["name"] == "orders-1.csv" and seed["size"] == len(CSV)
    assert seed["connectionCode"] == "partner" and seed["mtime"].startswith(time.strftime("%Y-", time.gmtime()))
    outcome = execute(run.pk)
    assert outcome.run.status == RunStatus.COMPLETED, outcome.run.error
    assert outcome.result.output("files") == [seed]
    assert outcome.result.output("out") == [{"sku": "A-1", "qty": "2"}, {"sku": "B-2", "qty": "5"}]
    row = SeenFile.objects.get(pipeline=pipeline)
    assert (row.path, row.status, row.run_id, row.attempts) == ("orders-1.csv", SeenFileStatus.DONE, run.pk, 1)


@executes_runs
def test_the_same_file_seen_again_starts_no_second_run(partner):
    kind, server = partner
    pipeline = save_definition(definition())
    upload(server, kind, "a.csv", CSV)
    first = poll(pipeline)
    assert len(first.started) == 1
    assert poll(pipeline).started == []  # its run not even started yet
    execute(first.started[0])
    again = poll(pipeline)
    assert again.started == [] and again.retried == []
    assert Run.objects.filter(pipeline=pipeline).count() == 1


@executes_runs
def test_a_changed_file_starts_a_new_run(partner):
    kind, server = partner
    pipeline = save_definition(definition())
    upload(server, kind, "a.csv", CSV)
    execute(poll(pipeline).started[0])
    upload(server, kind, "a.csv", CSV + b"C-3,1\n")
    [second] = poll(pipeline).started
    outcome = execute(second)
    assert outcome.run.seed_records[0]["size"] == len(CSV) + 6
    assert [r["sku"] for r in outcome.result.output("out")] == ["A-1", "B-2", "C-3"]
    assert list(SeenFile.objects.filter(pipeline=pipeline).values_list("status", flat=True)) == ["DONE", "DONE"]


def test_a_second_poll_racing_the_first_is_stopped_by_the_unique_constraint(sftp_server, save_connections):
    save_connections({"partner": sftp_connection(sftp_server)}, server_secrets(sftp=sftp_server))
    pipeline = save_definition(definition())
    upload(sftp_server, "sftp", "a.csv", CSV)
    [watch] = file_triggers.watches_of(pipeline.current_revision.definition)[0]
    version = file_triggers.Version(file_triggers.FileInfo("a.csv", len(CSV), 1_700_000_000.0), "fp-1")
    # Both polls found the file unseen (their reads came before either insert): the insert decides.
    assert file_triggers._start(pipeline, watch, version, file_triggers.PollResult()) is not None
    assert file_triggers._start(pipeline, watch, version, file_triggers.PollResult()) is None
    assert Run.objects.filter(pipeline=pipeline).count() == 1 and SeenFile.objects.count() == 1


@executes_runs
def test_a_worker_killed_between_run_creation_and_cursor_move_causes_no_duplicate(sftp_server, save_connections):
    from runs import signals

    save_connections({"partner": sftp_connection(sftp_server)}, server_secrets(sftp=sftp_server))
    pipeline = save_definition(definition())
    upload(sftp_server, "sftp", "a.csv", CSV)
    [run_id] = poll(pipeline).started
    # Killed before executing it: the run waits (PENDING, the reaper re-queues it); no second run.
    assert poll(pipeline).started == [] and Run.objects.count() == 1
    # Killed after the run committed COMPLETED but before the cursor moved (the run_ended receiver never
    # ran): the next poll finds the run succeeded and moves the cursor instead of starting another.
    signals.run_ended.disconnect(dispatch_uid="datahub-file-cursor")
    try:
        assert execute(run_id).run.status == RunStatus.COMPLETED
    finally:
        signals.run_ended.connect(file_triggers.on_run_ended, dispatch_uid="datahub-file-cursor")
    assert SeenFile.objects.get().status == SeenFileStatus.RUNNING
    result = poll(pipeline)
    assert (result.started, result.retried, result.settled) == ([], [], 1)
    assert SeenFile.objects.get().status == SeenFileStatus.DONE and Run.objects.count() == 1


@executes_runs
def test_a_run_whose_worker_died_mid_run_is_retried_once_after_the_reaper_failed_it(sftp_server, save_connections,
                                                                                    settings):
    settings.DATAHUB_MAX_RESUMES = 0  # the reaper fails it at once instead of resuming it (runs.services)
    save_connections({"partner": sftp_connection(sftp_server)}, server_secrets(sftp=sftp_server))
    pipeline = save_definition(definition())
    upload(sftp_server, "sftp", "a.csv", CSV)
    [run_id] = poll(pipeline).started
    assert services.claim(run_id)  # a worker took it, then died: RUNNING with a heartbeat going stale
    assert poll(pipeline).started == [] and poll(pipeline).retried == []
    Run.objects.filter(pk=run_id).update(heartbeat_at=Run.objects.get(pk=run_id).heartbeat_at - services.timezone
                                         .timedelta(hours=1))
    assert services.reap_stale_runs(60) == 1
    first, second = poll(pipeline), poll(pipeline)
    assert len(first.retried) == 1 and second.retried == [] and second.started == []
    assert execute(first.retried[0]).run.status == RunStatus.COMPLETED
    row = SeenFile.objects.get()
    assert (row.status, row.attempts, row.run_id) == (SeenFileStatus.DONE, 2, first.retried[0])


@executes_runs
def test_an_unreadable_file_fails_its_run_with_the_reason_is_retried_then_given_up(partner):
    kind, server = partner
    pipeline = save_definition(definition(maxAttempts=2))
    upload(server, kind, "bad.csv", b"sku,qty\nA-1,2\nB-2\n")
    [first] = poll(pipeline).started
    failed = execute(first).run
    assert failed.status == RunStatus.FAILED
    read = failed.step_runs.get(step_key="read")
    assert "line 3: expected 2 fields, got 1" in read.error and "bad.csv" in read.error
    assert "line 3" in SeenFile.objects.get().error
    [retry] = poll(pipeline).retried  # the cursor did not move: tried again
    assert execute(retry).run.status == RunStatus.FAILED
    gave_up = poll(pipeline)
    assert gave_up.started == gave_up.retried == []
    row = SeenFile.objects.get()
    assert row.status == SeenFileStatus.FAILED and "given up" in row.error and "line 3" in row.error
    assert poll(pipeline).retried == [] and Run.objects.count() == 2
    upload(server, kind, "bad.csv", CSV)  # fixed: a new version, a new run
    [fixed] = poll(pipeline).started
    assert execute(fixed).run.status == RunStatus.COMPLETED


def test_an_oversized_file_is_refused_without_a_run(partner, settings):
    kind, server = partner
    settings.DATAHUB_MAX_FILE_BYTES = 10
    pipeline = save_definition(definition())
    upload(server, kind, "big.csv", CSV)
    result = poll(pipeline)
    assert result.started == [] and len(result.refused) == 1
    assert "file 'big.csv' on connection 'partner' is 20 bytes, larger than the limit of 10 bytes" in result.refused[0]
    row = SeenFile.objects.get()
    assert row.status == SeenFileStatus.REFUSED and "DATAHUB_MAX_FILE_BYTES" in row.error
    assert poll(pipeline).refused == [] and Run.objects.count() == 0


def test_a_path_too_long_to_remember_is_refused_not_run_at_every_poll(tmp_path, settings, save_connections):
    settings.DATAHUB_FILE_ROOTS = [str(tmp_path)]
    save_connections({"partner": {"type": "FOLDER", "root": str(tmp_path)}}, {})
    pipeline = save_definition(definition(recursive=True))
    deep = tmp_path.joinpath(*["d" * 100] * 5)
    deep.mkdir(parents=True)
    (deep / "a.csv").write_bytes(CSV)
    (tmp_path / "b.csv").write_bytes(CSV)
    result = poll(pipeline)
    assert len(result.started) == 1 and "longer than 500 characters" in result.refused[0]
    assert Run.objects.get().seed_records[0]["path"] == "b.csv"


def test_bad_credentials_and_a_missing_folder_are_clear_errors_that_start_nothing(partner, save_connections):
    kind, server = partner
    pipeline = save_definition(definition(path="no-such-folder"))
    upload(server, kind, "a.csv", CSV)
    result = poll(pipeline)
    assert result.started == [] and "no-such-folder" in result.error
    assert result.error.startswith("pipeline 'inbox', trigger 'files': connection 'partner'")
    save_connections({}, {f"{kind}-password": "wrong"})
    pipeline = save_definition(definition())
    result = poll(pipeline)
    assert f"connection 'partner' ({kind.upper()} {server.user}@127.0.0.1:{server.port}): authentication failed" \
        in result.error
    assert Run.objects.count() == 0 and SeenFile.objects.count() == 0
    with pytest.raises(CommandError):
        call_command("poll_files", "inbox")


def test_a_file_younger_than_min_file_age_waits(sftp_server, save_connections):
    save_connections({"partner": sftp_connection(sftp_server)}, server_secrets(sftp=sftp_server))
    pipeline = save_definition(definition(minFileAgeSec=60))
    upload(sftp_server, "sftp", "a.csv", CSV)
    assert poll(pipeline).started == []
    assert len(poll(pipeline, now=time.time() + 61).started) == 1


@executes_runs
def test_checksum_detection_ignores_a_touched_file_and_sees_changed_content(tmp_path, settings, save_connections):
    root = tmp_path / "inbox"
    root.mkdir()
    settings.DATAHUB_FILE_ROOTS = [str(tmp_path)]
    save_connections({"partner": {"type": "FOLDER", "root": str(root)}}, {})
    pipeline = save_definition(definition(detectChangesBy="CHECKSUM", recursive=True))
    (root / "sub").mkdir()
    (root / "sub" / "a.csv").write_bytes(CSV)
    [run_id] = poll(pipeline).started
    assert Run.objects.get(pk=run_id).seed_records[0]["path"] == "sub/a.csv"
    assert len(Run.objects.get(pk=run_id).seed_records[0]["checksum"]) == 64
    execute(run_id)
    os.utime(root / "sub" / "a.csv", (1_800_000_000, 1_800_000_000))
    assert poll(pipeline).started == []
    (root / "sub" / "a.csv").write_bytes(CSV.replace(b"2", b"3"))  # same size, other content
    assert len(poll(pipeline).started) == 1


def test_the_trigger_config_is_checked_when_saved():
    missing = definition(path="../up")
    del missing["steps"][0]["config"]["connectionCode"]
    with pytest.raises(DefinitionError) as caught:
        save_definition(missing)
    problems = {p.field: p.message for p in caught.value.problems}
    assert problems["config.connectionCode"].startswith("a FILE trigger needs connectionCode")
    assert "without '..'" in problems["config.path"]
    with pytest.raises(DefinitionError) as caught:
        save_definition(definition(pollIntervalSec=5, detectChangesBy="HASH"))
    assert {p.field for p in caught.value.problems} == {"config.pollIntervalSec", "config.detectChangesBy"}


def test_its_poll_schedule_follows_the_pipeline(django_capture_on_commit_callbacks, sftp_server, save_connections):
    with django_capture_on_commit_callbacks(execute=True):
        pipeline = save_definition(definition(pollIntervalSec=150))
    schedule = Schedule.objects.get(func="runs.tasks.poll_file_trigger")
    assert (schedule.args, schedule.schedule_type, schedule.minutes) == (repr((pipeline.pk, "files")),
                                                                         Schedule.MINUTES, 3)
    with django_capture_on_commit_callbacks(execute=True):
        Pipeline.objects.filter(pk=pipeline.pk).first().save()
        pipeline.enabled = False
        pipeline.save()
    assert not Schedule.objects.filter(func="runs.tasks.poll_file_trigger").exists()
    # The task itself: a stale schedule of a disabled pipeline starts nothing.
    from runs.tasks import poll_file_trigger

    assert poll_file_trigger(pipeline.pk, "files").startswith("error: pipeline")
    # Enabled again it is polled again; deleted, its schedule goes with it (schedules do not cascade).
    with django_capture_on_commit_callbacks(execute=True):
        pipeline.enabled = True
        pipeline.save()
    assert Schedule.objects.filter(func="runs.tasks.poll_file_trigger").count() == 1
    Pipeline.objects.get(pk=pipeline.pk).delete()
    assert not Schedule.objects.filter(func="runs.tasks.poll_file_trigger").exists()


def test_poll_files_command_polls_every_file_trigger(ftp_server, save_connections):
    save_connections({"partner": ftp_connection(ftp_server)}, server_secrets(ftp=ftp_server))
    save_definition(definition())
    upload(ftp_server, "ftp", "a.csv", CSV)
    from io import StringIO

    out = StringIO()
    call_command("poll_files", stdout=out)
    assert out.getvalue().strip() == "inbox / files: 1 started, 0 retried"
    assert Run.objects.get().trigger == "file"

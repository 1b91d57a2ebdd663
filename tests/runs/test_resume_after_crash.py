"""A run whose worker died, in-process: the worker's death is an exception nothing in the run catches,
raised when a step starts (what the database holds then is what a SIGKILL leaves). The reaper takes the
run back; the next worker resumes it from its last completed step, reading the saved outputs back."""

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from pipelines.services import save_definition
from runs import services, tasks
from runs.engine.events import StepStarted
from runs.models import Run, RunStatus
from runs.signals import run_ended
from runs.store import DjangoRunStore

pytestmark = pytest.mark.django_db


class WorkerKilled(BaseException):
    """Not an Exception: nothing in the run catches it, as with a killed process."""


def definition(code="durable", **context):
    # These tests kill the worker between steps; streamed steps run together and have no boundary between
    # them to resume from (test_a_crash_inside_a_streamed_pipe_runs_the_pipe_again covers that case).
    context.setdefault("streaming", {"enabled": False})
    return {
        "version": 1, "code": code, "name": code,
        "steps": [
            {"key": "src", "type": "EXTRACT", "adapterCode": "inMemory",
             "config": {"data": [{"sku": " a "}, {"sku": " b "}]}},
            {"key": "clean", "type": "TRANSFORM", "config": {"operators": [{"op": "trim", "args": {"path": "sku"}}]}},
            {"key": "upper", "type": "TRANSFORM", "config": {"operators": [{"op": "uppercase", "args": {"path": "sku"}}]}},
            {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}},
        ],
        "edges": [],
        "context": context,
    }


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture
def steps_started(monkeypatch):
    """Every step start written by any store, in order; ``crash_at(key)`` kills the worker when ``key``
    starts (after its start is written, so the step shows RUNNING, as it would)."""
    class Started(list):
        def crash_at(self, key):
            crash["at"] = key

    started = Started()
    emit = DjangoRunStore.emit
    crash = {"at": None}

    def watching(self, event):
        emit(self, event)
        if isinstance(event, StepStarted):
            started.append(event.step_key)
            if event.step_key == crash["at"]:
                crash["at"] = None
                raise WorkerKilled()

    monkeypatch.setattr(DjangoRunStore, "emit", watching)
    return started


def kill_while(run, steps_started, key):
    steps_started.crash_at(key)
    with pytest.raises(WorkerKilled):
        services.run_now(run)
    Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timezone.timedelta(minutes=5))


def take_back(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        taken = services.reap_stale_runs(max_silence_seconds=60)
    return taken, callbacks


def test_it_resumes_from_the_last_completed_step_reading_its_outputs_back(
        media, steps_started, django_capture_on_commit_callbacks):
    run = services.create_run(save_definition(definition()))
    kill_while(run, steps_started, "upper")
    rows = {s.step_key: s for s in run.step_runs.all()}
    assert [rows[k].status for k in ("src", "clean", "upper", "out")] == ["COMPLETED", "COMPLETED", "RUNNING", "PENDING"]
    saved = rows["clean"].outputs["_main"]
    assert default_storage.open(saved).read().splitlines() == [b'[{"sku":"a"},{"sku":"b"}]']

    taken, callbacks = take_back(django_capture_on_commit_callbacks)
    assert taken == 1 and len(callbacks) == 1  # queued again at once
    run.refresh_from_db()
    assert run.status == RunStatus.PENDING and run.resumes == 1 and run.worker == ""
    assert set(run.resume_state["steps"]) == {"src", "clean"}
    upper = run.step_runs.get(step_key="upper")
    assert upper.status == "PENDING" and upper.error.startswith("interrupted: worker ")

    del steps_started[:]
    outcome = services.run_now(run, keep_outputs=True)
    assert outcome.run.status == RunStatus.COMPLETED, outcome.run.error
    assert steps_started == ["upper", "out"]  # src and clean never ran again
    assert outcome.result.output("out") == [{"sku": "A"}, {"sku": "B"}]  # clean's output, read back
    assert {s.step_key: (s.status, s.attempts) for s in outcome.run.step_runs.all()} == {
        "src": ("COMPLETED", 1), "clean": ("COMPLETED", 1), "upper": ("COMPLETED", 1), "out": ("COMPLETED", 1)}
    assert outcome.run.resume_state is None and not default_storage.exists(saved)  # cleaned up at the end
    assert [(e.kind, bool(e.worker)) for e in outcome.run.events.all()] == [
        ("STARTED", True), ("WORKER_LOST", True), ("RESUMED", True)]
    assert "stopped responding (no heartbeat since" in outcome.run.events.get(kind="WORKER_LOST").detail


def test_a_crash_inside_a_streamed_pipe_runs_the_pipe_again(
        media, steps_started, django_capture_on_commit_callbacks):
    run = services.create_run(save_definition(definition("piped", streaming={"enabled": True})))
    kill_while(run, steps_started, "upper")  # src -> clean -> upper stream: all three had started
    assert steps_started == ["src", "clean", "upper"]
    rows = {s.step_key: s.status for s in run.step_runs.all()}
    assert rows["out"] == "PENDING" and "COMPLETED" not in (rows["clean"], rows["upper"])
    take_back(django_capture_on_commit_callbacks)
    del steps_started[:]
    outcome = services.run_now(run, keep_outputs=True)
    assert outcome.run.status == RunStatus.COMPLETED, outcome.run.error
    assert "upper" in steps_started and steps_started[-1] == "out"  # nothing half-read is reused
    assert outcome.result.output("out") == [{"sku": "A"}, {"sku": "B"}]


def test_a_run_resumed_too_often_fails_with_the_reason_and_its_later_steps_show_skipped(
        media, steps_started, settings, django_capture_on_commit_callbacks):
    settings.DATAHUB_MAX_RESUMES = 1
    ended = []
    run_ended.connect(lambda sender, run, **kw: ended.append((run.pk, run.status)), weak=False, dispatch_uid="t")
    try:
        run = services.create_run(save_definition(definition()))
        kill_while(run, steps_started, "clean")
        assert take_back(django_capture_on_commit_callbacks)[0] == 1
        kill_while(run, steps_started, "upper")
        saved = run.step_runs.get(step_key="clean").outputs["_main"]
        assert take_back(django_capture_on_commit_callbacks)[0] == 1
        assert take_back(django_capture_on_commit_callbacks)[0] == 0  # once
    finally:
        run_ended.disconnect(dispatch_uid="t")
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "the worker stopped responding (no heartbeat since " in run.error
    assert "resumed 1 times already (limit DATAHUB_MAX_RESUMES=1)" in run.error
    steps = {s.step_key: (s.status, s.error) for s in run.step_runs.all()}
    assert steps["clean"][0] == "COMPLETED"
    assert steps["upper"] == ("FAILED", "the worker stopped responding")
    assert steps["out"] == ("SKIPPED", "not run: the run failed because its worker stopped responding")
    assert ended == [(run.pk, RunStatus.FAILED)]
    assert not default_storage.exists(saved)
    assert [e.kind for e in run.events.all()] == ["STARTED", "WORKER_LOST", "RESUMED", "GAVE_UP"]


def test_with_durable_outputs_off_a_resumed_run_runs_again_what_the_rest_needs(
        media, steps_started, django_capture_on_commit_callbacks):
    run = services.create_run(save_definition(definition("volatile", checkpointing={"enabled": False})))
    kill_while(run, steps_started, "upper")
    assert run.step_runs.get(step_key="clean").outputs is None
    assert not media.exists() or not any(p.is_file() for p in media.rglob("*"))  # nothing written
    take_back(django_capture_on_commit_callbacks)
    del steps_started[:]
    outcome = services.run_now(run, keep_outputs=True)
    assert outcome.run.status == RunStatus.COMPLETED
    assert steps_started == ["src", "clean", "upper", "out"]  # their outputs were in the dead worker only
    assert outcome.result.output("out") == [{"sku": "A"}, {"sku": "B"}]


def test_a_worker_that_wakes_up_after_its_run_was_taken_back_writes_nothing(
        media, steps_started, django_capture_on_commit_callbacks):
    run = services.create_run(save_definition(definition("late")))
    kill_while(run, steps_started, "upper")
    stale = DjangoRunStore(Run.objects.get(pk=run.pk))  # the silent worker's store
    take_back(django_capture_on_commit_callbacks)
    assert services.claim(run.pk)  # a new worker owns it now
    assert stale.heartbeat() is False
    from runs.engine.events import RunFinished

    stale.emit(RunFinished("FAILED", "late"))
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING and run.error == ""


def test_the_reaper_task_is_idle_when_every_worker_beats(media):
    run = services.create_run(save_definition(definition("alive")))
    assert services.claim(run.pk)
    assert tasks.reap_stale_runs() == 0
    assert Run.objects.get(pk=run.pk).status == RunStatus.RUNNING


def test_the_run_page_and_both_apis_show_the_history_across_workers(
        media, steps_started, django_capture_on_commit_callbacks, alice, client):
    from tests.api.conftest import client_for

    run = services.create_run(save_definition(definition("told")))
    kill_while(run, steps_started, "upper")
    take_back(django_capture_on_commit_callbacks)
    services.run_now(run)
    kinds = ["STARTED", "WORKER_LOST", "RESUMED"]

    rest = client_for(alice).get(f"/api/runs/{run.pk}/").json()
    assert [e["kind"] for e in rest["history"]] == kinds and rest["resumes"] == 1
    assert "stopped responding" in rest["history"][1]["detail"] and rest["history"][1]["worker"]

    query = "query($id: ID!) { run(id: $id) { resumes history { kind worker detail at } } }"
    answer = client_for(alice).post("/graphql/", {"query": query, "variables": {"id": str(run.pk)}},
                                    format="json").json()
    assert "errors" not in answer, answer
    assert [e["kind"] for e in answer["data"]["run"]["history"]] == kinds

    client.force_login(alice)
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert 'id="run-history"' in page and "worker lost" in page and "no heartbeat since" in page


def test_a_run_failed_by_an_internal_error_shows_its_steps_that_will_not_run_as_skipped(media, monkeypatch):
    emit = DjangoRunStore.emit

    def broken(self, event):
        emit(self, event)
        if isinstance(event, StepStarted) and event.step_key == "upper":
            raise RuntimeError("the database went away")

    monkeypatch.setattr(DjangoRunStore, "emit", broken)
    outcome = services.run_now(services.create_run(save_definition(definition("broken"))))
    assert outcome.run.status == RunStatus.FAILED and "the database went away" in outcome.run.error
    steps = {s.step_key: (s.status, s.error) for s in outcome.run.step_runs.all()}
    assert steps["clean"][0] == "COMPLETED"
    assert steps["upper"] == ("FAILED", "stopped: the run failed (see the run's error)")
    assert steps["out"] == ("SKIPPED", "not run: the run failed (see the run's error)")


def test_writing_many_failed_records_keeps_the_heartbeat_going(media):
    """The executor's thread writes a step's failed records in bulk; that must not look like a dead worker."""
    from runs.engine.events import RecordFailed

    run = services.create_run(save_definition(definition("noisy")))
    assert services.claim(run.pk)
    long_ago = timezone.now() - timezone.timedelta(minutes=5)
    Run.objects.filter(pk=run.pk).update(heartbeat_at=long_ago)
    store = DjangoRunStore(Run.objects.get(pk=run.pk))
    store._last_beat -= 10  # the last beat was a while ago
    for n in range(500):  # one flush
        store.emit(RecordFailed("clean", {"n": n}, "bad record"))
    assert Run.objects.get(pk=run.pk).heartbeat_at > long_ago
    assert run.record_errors.count() == 500

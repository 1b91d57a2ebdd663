"""A run's record errors (the dead-letter list), paged, and their replay into a new run."""

from runs.models import RecordError, Run


def test_it_lists_record_errors_a_page_at_a_time(failed_run, as_bob):
    body = as_bob.get(f"/api/runs/{failed_run.pk}/record-errors/", {"limit": 1}).json()
    assert body["count"] == 2 and body["next"] is not None
    first = body["results"][0]
    assert first["stepKey"] == "clean" and first["record"] == {"sku": 1}
    assert first["message"] == "not a string" and first["deadLetter"] is True and first["replayedAt"] is None
    assert as_bob.get(f"/api/runs/{failed_run.pk}/record-errors/", {"step": "out"}).json()["count"] == 0
    assert as_bob.get("/api/runs/999/record-errors/").status_code == 404


def test_it_replays_dead_letter_records_in_a_new_run(failed_run, as_alice, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as queued:
        response = as_alice.post(f"/api/runs/{failed_run.pk}/record-errors/replay/", {"step": "clean"},
                                 format="json")
    assert response.status_code == 201, response.content
    replay = Run.objects.get(pk=response.json()["id"])
    assert replay.replay_of == failed_run and replay.seed_step == "clean"
    assert replay.seed_records == [{"sku": 1}, {"sku": 2}]
    assert response.json()["replayOf"] == failed_run.pk and len(queued) == 1
    assert not RecordError.objects.filter(run=failed_run, replayed_at__isnull=True).exists()
    again = as_alice.post(f"/api/runs/{failed_run.pk}/record-errors/replay/", {"step": "clean"}, format="json")
    assert again.status_code == 409 and "no dead-letter records" in again.json()["detail"]


def test_it_replays_chosen_records_only(failed_run, as_alice):
    chosen = RecordError.objects.filter(run=failed_run).order_by("id").last()
    response = as_alice.post(f"/api/runs/{failed_run.pk}/record-errors/replay/",
                             {"step": "clean", "ids": [chosen.pk]}, format="json")
    assert response.status_code == 201
    assert Run.objects.get(pk=response.json()["id"]).seed_records == [{"sku": 2}]


def test_it_refuses_a_replay_of_nothing(failed_run, as_alice):
    response = as_alice.post(f"/api/runs/{failed_run.pk}/record-errors/replay/", {"step": "out"}, format="json")
    assert response.status_code == 409
    missing = as_alice.post(f"/api/runs/{failed_run.pk}/record-errors/replay/", {}, format="json")
    assert missing.status_code == 400 and missing.json()["problems"][0]["field"] == "step"

import pytest

from pipelines.services import save_definition
from runs import services
from runs.models import RecordError, Run
from tests.fixtures import simple_definition
from tests.web.conftest import csrf_token

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def failed_records(shaky):
    d = simple_definition("f", records=[{"sku": "a"}, {"sku": "b", "fail": True}, {"sku": "c", "fail": True}])
    d["steps"][1]["config"]["operators"].append({"op": "shaky", "args": {}})
    return services.run_now(services.create_run(save_definition(d))).run


def test_it_cancels_a_pending_run(as_alice, pipeline):
    run = services.create_run(pipeline)
    response = as_alice.post(f"/runs/{run.pk}/cancel/")
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == "CANCELLED"
    assert "was cancelled" in as_alice.get(response["Location"]).content.decode()
    response = as_alice.post(f"/runs/{run.pk}/cancel/")
    assert "has already ended" in as_alice.get(response["Location"]).content.decode()


def test_it_asks_a_running_run_to_stop(as_alice, pipeline):
    run = services.create_run(pipeline)
    Run.objects.filter(pk=run.pk).update(status="RUNNING")
    response = as_alice.post(f"/runs/{run.pk}/cancel/")
    assert Run.objects.get(pk=run.pk).cancel_requested
    assert "cancelling" in as_alice.get(response["Location"]).content.decode()


def test_it_reruns_the_same_revision(as_alice, pipeline):
    first = services.run_now(services.create_run(pipeline)).run
    save_definition(simple_definition("simple", records=[{"sku": "new"}]))
    response = as_alice.post(f"/runs/{first.pk}/rerun/")
    new = Run.objects.exclude(pk=first.pk).get()
    assert response["Location"] == f"/runs/{new.pk}/"
    assert new.revision_id == first.revision_id and new.trigger == "rerun"
    response = as_alice.post(f"/runs/{first.pk}/rerun/")  # the re-run is still pending
    assert "already has an active run" in as_alice.get(response["Location"]).content.decode()


def test_it_replays_selected_dead_letter_records(as_alice, failed_records):
    run = failed_records
    first = RecordError.objects.filter(run=run).order_by("id").first()
    response = as_alice.post(f"/runs/{run.pk}/replay/", {"step": "clean", "error_ids": [first.pk],
                                                          "scope": "selected"})
    replay = Run.objects.get(replay_of=run)
    assert response["Location"] == f"/runs/{replay.pk}/"
    assert replay.seed_step == "clean" and replay.seed_records == [first.record]
    page = as_alice.get(f"/runs/{replay.pk}/").content.decode()
    assert f"replay of <a href=\"/runs/{run.pk}/\">#{run.pk}</a>" in page


def test_it_replays_all_records_left(as_alice, failed_records):
    run = failed_records
    as_alice.post(f"/runs/{run.pk}/replay/", {"step": "clean", "scope": "all"})
    assert len(Run.objects.get(replay_of=run).seed_records) == 2
    response = as_alice.post(f"/runs/{run.pk}/replay/", {"step": "clean", "scope": "all"})
    assert "Nothing was replayed" in as_alice.get(response["Location"]).content.decode()


def test_it_asks_for_a_choice_when_nothing_is_ticked(as_alice, failed_records):
    response = as_alice.post(f"/runs/{failed_records.pk}/replay/", {"step": "clean", "scope": "selected"})
    assert response["Location"].endswith("?step=clean#errors")
    assert "Tick the failed records to replay" in as_alice.get(response["Location"]).content.decode()
    assert not Run.objects.filter(replay_of=failed_records).exists()


def test_it_enforces_csrf(csrf_alice, pipeline):
    run = services.create_run(pipeline)
    assert csrf_alice.post(f"/runs/{run.pk}/cancel/").status_code == 403
    token = csrf_token(csrf_alice, f"/runs/{run.pk}/")
    assert csrf_alice.post(f"/runs/{run.pk}/cancel/", HTTP_X_CSRFTOKEN=token).status_code == 302

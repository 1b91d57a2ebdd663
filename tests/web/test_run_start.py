import pytest

from pipelines.models import Pipeline
from runs.models import Run
from runs.services import create_run

pytestmark = pytest.mark.django_db


def test_it_starts_a_run_and_opens_its_page(as_alice, pipeline):
    response = as_alice.post("/pipelines/simple/run/")
    run = Run.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/runs/{run.pk}/"
    assert (run.status, run.trigger, run.triggered_by.username) == ("PENDING", "manual", "alice")


def test_it_says_why_a_second_run_is_refused(as_alice, pipeline):
    create_run(pipeline)
    response = as_alice.post("/pipelines/simple/run/")
    assert response.status_code == 302 and response["Location"] == "/pipelines/simple/"
    assert "already has an active run" in as_alice.get(response["Location"]).content.decode()
    assert Run.objects.count() == 1


def test_it_refuses_a_disabled_pipeline(as_alice, pipeline):
    Pipeline.objects.filter(pk=pipeline.pk).update(enabled=False)
    response = as_alice.post("/pipelines/simple/run/")
    assert "is disabled; enable it to run it" in as_alice.get(response["Location"]).content.decode()
    assert not Run.objects.exists()


def test_it_goes_back_to_the_page_the_button_was_on(as_alice, pipeline):
    Pipeline.objects.filter(pk=pipeline.pk).update(enabled=False)
    response = as_alice.post("/pipelines/simple/run/", HTTP_REFERER="http://testserver/")
    assert response["Location"] == "http://testserver/"
    response = as_alice.post("/pipelines/simple/run/", HTTP_REFERER="https://evil.example/")
    assert response["Location"] == "/pipelines/"

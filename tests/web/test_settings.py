import pytest

from pipelines.models import Pipeline
from tests.web.conftest import form_data, htmx, working

pytestmark = pytest.mark.django_db


def settings_form(client, **changes):
    return form_data(client.get("/pipelines/simple/").content, "settings-form", **changes)


def test_it_switches_parallel_execution_on_with_its_limits(as_alice, pipeline):
    data = settings_form(as_alice, **{"context.parallelExecution.enabled": "1",
                                      "context.parallelExecution.maxConcurrentSteps": "3",
                                      "context.parallelExecution.errorPolicy": "BEST_EFFORT"})
    response = as_alice.post("/pipelines/simple/settings/", data, **htmx())
    assert response["HX-Retarget"] == "#settings"  # the settings panel only: input elsewhere stays
    assert "Saved the settings to your draft." in response.content.decode()
    assert 'class="badge s-running plain">parallel' in as_alice.get("/pipelines/simple/").content.decode()
    d = working("simple")
    assert d["context"] == {"parallelExecution": {"enabled": True, "maxConcurrentSteps": 3,
                                                  "errorPolicy": "BEST_EFFORT"}}
    # and off again: the switch unticked
    data = settings_form(as_alice, **{"context.parallelExecution.enabled": None})
    as_alice.post("/pipelines/simple/settings/", data)
    assert "enabled" not in working("simple")["context"]["parallelExecution"]


def test_it_answers_out_of_range_values_at_the_field_keeping_them(as_alice, pipeline):
    data = settings_form(as_alice, **{"context.parallelExecution.maxConcurrentSteps": "40",
                                      "context.throughput.batchSize": "lots", "name": "Renamed"})
    response = as_alice.post("/pipelines/simple/settings/", data, **htmx())
    html = response.content.decode()
    assert response["HX-Retarget"] == "#settings"
    assert 'value="lots"' in html and "enter a whole number" in html and 'value="Renamed"' in html
    data["context.throughput.batchSize"] = "500"
    html = as_alice.post("/pipelines/simple/settings/", data, **htmx()).content.decode()
    field = html.split('name="context.parallelExecution.maxConcurrentSteps"')[1].split("</div>")[0]
    assert 'value="40"' in field and "40 is greater than the maximum of 16" in field
    assert Pipeline.objects.get(code="simple").revisions.count() == 1


def test_it_renames_and_allows_concurrent_runs(as_alice, pipeline):
    data = settings_form(as_alice, name="Better name", description="Does things", allow_concurrent_runs="1")
    assert as_alice.post("/pipelines/simple/settings/", data).status_code == 302
    p = Pipeline.objects.get(code="simple")
    assert (working("simple")["name"], working("simple")["description"]) == ("Better name", "Does things")
    assert p.allow_concurrent_runs is True  # an operating switch: it applies at once, not at publishing
    assert p.name == "Pipeline simple"  # the published pipeline changes when the draft is published


def test_it_needs_a_name(as_alice, pipeline):
    html = as_alice.post("/pipelines/simple/settings/", settings_form(as_alice, name=" "), **htmx()).content.decode()
    assert "a pipeline needs a name" in html


def test_it_keeps_context_keys_the_form_has_no_field_for(as_alice, db):
    from pipelines.services import save_definition
    from tests.fixtures import simple_definition

    save_definition({**simple_definition("simple"), "context": {"allowConcurrentRuns": True}})
    data = settings_form(as_alice)
    assert '"allowConcurrentRuns": true' in data["context.__extra__"]
    as_alice.post("/pipelines/simple/settings/", data)
    assert working("simple")["context"] == {"allowConcurrentRuns": True}
    data["context.__extra__"] = "{oops"
    html = as_alice.post("/pipelines/simple/settings/", data, **htmx()).content.decode()
    assert "not valid JSON" in html and "{oops" in html

"""Optimistic concurrency over the API: a definition sent as a change of revision N is not saved over a newer
revision by accident (409 with the diff, or GraphQL's ``stale``); merging or overwriting is asked for."""

import pytest

from pipelines.models import Pipeline
from pipelines.services import definition_of, save_definition
from tests.api.conftest import gql
from tests.fixtures import simple_definition

pytestmark = pytest.mark.django_db


@pytest.fixture
def moved_on(db):
    """Revision 1, then someone else's revision 2 that names the source step."""
    save_definition(simple_definition("simple"), message="created")
    theirs = simple_definition("simple")
    theirs["steps"][0]["name"] = "Their source"
    save_definition(theirs, message="theirs")


def mine():
    """A change of revision 1 to another step."""
    d = simple_definition("simple")
    d["steps"][1]["config"]["operators"][0]["args"]["path"] = "title"
    return d


def put(client, **body):
    return client.put("/api/pipelines/simple/", {"definition": mine(), "message": "mine", **body}, format="json")


def test_it_refuses_a_change_of_an_older_revision_with_the_diff(as_alice, moved_on):
    response = put(as_alice, baseRevision=1)
    body = response.json()
    assert response.status_code == 409
    assert (body["baseRevision"], body["currentRevision"], body["conflicts"]) == (1, 2, [])
    assert '+      "name": "Their source",' in body["diff"] and body["diff"].startswith("--- r1\n+++ r2\n")
    assert "revision 2 was published after revision 1" in body["detail"]
    assert Pipeline.objects.get(code="simple").current_revision.number == 2


def test_it_merges_both_changes_when_asked(as_alice, moved_on):
    response = put(as_alice, baseRevision=1, onStale="merge")
    assert response.status_code == 200 and response.json()["revision"] == 3
    d = definition_of(Pipeline.objects.get(code="simple"))
    assert d["steps"][0]["name"] == "Their source"
    assert d["steps"][1]["config"]["operators"][0]["args"]["path"] == "title"


def test_it_names_conflicts_instead_of_merging_them(as_alice, moved_on):
    conflicting = mine()
    conflicting["steps"][0]["name"] = "My source"
    response = as_alice.put("/api/pipelines/simple/", {"definition": conflicting, "baseRevision": 1,
                                                       "onStale": "merge"}, format="json")
    assert response.status_code == 409 and response.json()["conflicts"] == ["step 'src' was changed in both"]
    assert Pipeline.objects.get(code="simple").current_revision.number == 2


def test_it_overwrites_only_on_purpose(as_alice, moved_on):
    assert put(as_alice, baseRevision=1, onStale="overwrite").status_code == 200
    d = definition_of(Pipeline.objects.get(code="simple"))
    assert "name" not in d["steps"][0] and d["steps"][1]["config"]["operators"][0]["args"]["path"] == "title"


def test_it_saves_a_change_of_the_current_revision(as_alice, moved_on):
    assert put(as_alice, baseRevision=2).status_code == 200
    assert Pipeline.objects.get(code="simple").current_revision.number == 3


def test_it_answers_bad_concurrency_input_at_its_field(as_alice, moved_on):
    missing = put(as_alice, baseRevision=7, onStale="merge")
    assert missing.status_code == 400 and missing.json()["problems"][0]["field"] == "baseRevision"
    for body in ({"baseRevision": "one"}, {"baseRevision": 0}, {"onStale": "sometimes"}, {"onStale": ["merge"]}):
        response = put(as_alice, **body)
        assert response.status_code == 400, body
        assert next(iter(body)) in str(response.json()), body
    assert Pipeline.objects.get(code="simple").current_revision.number == 2


SAVE = """mutation($definition: GenericScalar!, $base: Int, $onStale: OnStale) {
  savePipeline(definition: $definition, message: "mine", baseRevision: $base, onStale: $onStale) {
    ok problems { field code } pipeline { revision } stale { baseRevision currentRevision diff conflicts }
  }
}"""


def test_graphql_refuses_a_stale_change_then_merges_on_purpose(as_alice, moved_on):
    _, body = gql(as_alice, SAVE, {"definition": mine(), "base": 1})
    result = body["data"]["savePipeline"]
    assert result["ok"] is False and result["problems"] == [{"field": "baseRevision", "code": "stale"}]
    assert (result["stale"]["baseRevision"], result["stale"]["currentRevision"]) == (1, 2)
    assert "Their source" in result["stale"]["diff"]
    _, body = gql(as_alice, SAVE, {"definition": mine(), "base": 1, "onStale": "MERGE"})
    assert body["data"]["savePipeline"]["ok"] is True and body["data"]["savePipeline"]["pipeline"]["revision"] == 3
    assert definition_of(Pipeline.objects.get(code="simple"))["steps"][0]["name"] == "Their source"

import pytest

from pipelines.errors import DefinitionError
from pipelines.models import ImmutableError, Pipeline, PipelineRevision
from pipelines.services import definition_of, diff_revisions, restore_revision, save_definition
from tests.fixtures import simple_definition

pytestmark = pytest.mark.django_db


def test_it_stores_steps_and_edges_as_rows_that_serialize_back_exactly():
    d = simple_definition()
    d["steps"][0]["retries"] = 2
    d["steps"][0]["throughput"] = {"batchSize": 5}
    d["edges"] = [{"from": "src", "to": "clean"}, {"from": "clean", "to": "out", "dependencyOnly": True}]
    pipeline = save_definition(d)
    assert list(pipeline.steps.values_list("key", flat=True)) == ["src", "clean", "out"]
    assert pipeline.steps.get(key="src").retries == 2
    assert definition_of(pipeline) == d
    assert pipeline.current_revision.definition == d


def test_it_makes_a_revision_only_when_the_definition_changes(django_user_model):
    user = django_user_model.objects.create(username="alice")
    save_definition(simple_definition(), user=user)
    save_definition(simple_definition(), user=user)
    pipeline = save_definition(simple_definition(records=[{"sku": "c"}]), user=user, message="new data")
    revisions = list(pipeline.revisions.order_by("number"))
    assert [r.number for r in revisions] == [1, 2]
    assert revisions[1].created_by == user and revisions[1].message == "new data"
    assert '"sku": "c"' in diff_revisions(revisions[0], revisions[1])


def test_it_keeps_revisions_immutable():
    revision = save_definition(simple_definition()).current_revision
    revision.message = "changed"
    with pytest.raises(ImmutableError):
        revision.save()


def test_it_restores_an_old_revision_as_a_new_one():
    save_definition(simple_definition())
    pipeline = save_definition(simple_definition(records=[{"sku": "z"}]))
    pipeline = restore_revision(pipeline, 1)
    assert pipeline.current_revision.number == 3
    assert pipeline.current_revision.definition == PipelineRevision.objects.get(pipeline=pipeline, number=1).definition


def test_it_writes_nothing_for_an_invalid_definition():
    d = simple_definition()
    d["steps"][1]["config"]["operators"][0]["op"] = "trimm"
    with pytest.raises(DefinitionError) as err:
        save_definition(d)
    assert err.value.as_list()[0]["step"] == "clean"
    assert not Pipeline.objects.exists()


@pytest.mark.parametrize("code", ["", "Has Spaces", "UPPER", "-lead"])
def test_it_rejects_bad_codes(code):
    with pytest.raises(DefinitionError) as err:
        save_definition(simple_definition(code=code), code=code or None)
    assert err.value.problems[0].field == "code"

import pytest
from django.contrib.auth.models import User

from pipelines.models import Pipeline, PipelineDraft, PipelineReview, ReviewStatus
from pipelines.services import definition_of, save_definition
from tests.fixtures import simple_definition
from tests.web.conftest import htmx, working

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_revisions(pipeline):
    save_definition(simple_definition("simple", records=[{"sku": "second"}]), message="new data")
    return pipeline


def test_it_shows_a_diff_against_the_previous_revision(as_bob, two_revisions):
    page = as_bob.get("/pipelines/simple/revisions/2/").content.decode()
    assert '<span class="del">-' in page and '<span class="add">+' in page and "second" in page
    assert "Restore" not in page  # bob may not


def test_it_answers_htmx_with_the_diff_only(as_alice, two_revisions):
    html = as_alice.get("/pipelines/simple/revisions/1/", **htmx(target="revision-view")).content.decode()
    assert html.lstrip().startswith('<div class="stack')
    assert "(the first revision)" in html and "Restore r1" in html


def test_it_compares_with_a_chosen_revision(as_alice, two_revisions):
    save_definition(simple_definition("simple", records=[{"sku": "third"}]))
    page = as_alice.get("/pipelines/simple/revisions/3/?against=1").content.decode()
    assert "compared with r1" in page


def test_it_restores_a_revision_into_the_draft_then_publishes_it(as_alice, two_revisions):
    autosave_typed = {"step:src": [["key", "src"], ["retries", "many"]]}
    PipelineDraft.objects.create(pipeline=two_revisions, user=User.objects.get(username="alice"),
                                 definition=definition_of(two_revisions),
                                 base_revision=Pipeline.objects.get(code="simple").current_revision,
                                 pending=autosave_typed)
    response = as_alice.post("/pipelines/simple/revisions/1/restore/", **htmx())
    assert "Revision 1 is in your draft now: publish it to make it the current revision." in \
        response.content.decode()
    p = Pipeline.objects.get(code="simple")
    assert p.current_revision.number == 2  # nothing published: restoring is an edit like any other
    assert working("simple")["steps"][0]["config"]["data"] == [{"sku": " a "}, {"sku": "b"}]
    assert PipelineDraft.objects.get(pipeline=p).pending == {}  # typed against what was replaced
    as_alice.post("/pipelines/simple/publish/", {"message": "back to r1", "_action": "publish"})
    p = Pipeline.objects.get(code="simple")
    assert (p.current_revision.number, p.current_revision.message) == (3, "back to r1")
    assert definition_of(p)["steps"][0]["config"]["data"] == [{"sku": " a "}, {"sku": "b"}]


def test_it_answers_404_for_a_missing_revision(as_alice, pipeline):
    assert as_alice.get("/pipelines/simple/revisions/7/").status_code == 404
    response = as_alice.post("/pipelines/simple/revisions/7/restore/")
    assert response.status_code == 302
    assert "cannot be restored" in as_alice.get(response["Location"]).content.decode()


def test_restoring_under_review_goes_to_the_draft_and_publish_submits_it(as_alice, two_revisions):
    Pipeline.objects.filter(code="simple").update(requires_review=True)
    response = as_alice.post("/pipelines/simple/revisions/1/restore/", **htmx())
    assert "Revision 1 is in your draft now" in response.content.decode()
    as_alice.post("/pipelines/simple/publish/", {"message": "back to r1", "_action": "publish"})
    p = Pipeline.objects.get(code="simple")
    assert p.current_revision.number == 2  # waits for a reviewer
    review = PipelineReview.objects.get(pipeline=p)
    assert (review.message, review.status) == ("back to r1", ReviewStatus.PENDING)
    assert review.definition["steps"][0]["config"]["data"] == [{"sku": " a "}, {"sku": "b"}]

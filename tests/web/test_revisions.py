import pytest

from pipelines.models import Pipeline
from pipelines.services import definition_of, save_definition
from tests.fixtures import simple_definition
from tests.web.conftest import htmx

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


def test_it_restores_a_revision_as_a_new_one(as_alice, two_revisions):
    response = as_alice.post("/pipelines/simple/revisions/1/restore/", **htmx())
    assert "Restored revision 1 as revision 3." in response.content.decode()
    p = Pipeline.objects.get(code="simple")
    assert p.current_revision.number == 3 and p.current_revision.message == "restored r1"
    assert definition_of(p)["steps"][0]["config"]["data"] == [{"sku": " a "}, {"sku": "b"}]


def test_it_answers_404_for_a_missing_revision(as_alice, pipeline):
    assert as_alice.get("/pipelines/simple/revisions/7/").status_code == 404
    response = as_alice.post("/pipelines/simple/revisions/7/restore/")
    assert response.status_code == 302
    assert "cannot be restored" in as_alice.get(response["Location"]).content.decode()

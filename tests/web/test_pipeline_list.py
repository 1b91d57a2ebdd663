import pytest

from pipelines.models import Pipeline
from pipelines.services import save_definition
from tests.fixtures import simple_definition
from tests.web.conftest import htmx

pytestmark = pytest.mark.django_db


def test_it_lists_pipelines_with_their_actions(as_alice, pipeline):
    page = as_alice.get("/pipelines/").content.decode()
    assert "Pipeline simple" in page and "<code>simple</code>" in page
    assert 'action="/pipelines/simple/run/"' in page
    assert 'href="/pipelines/simple/export/"' in page and 'href="/pipelines/simple/duplicate/"' in page
    assert "Disable" in page


def test_it_shows_a_viewer_no_change_buttons(as_bob, pipeline):
    page = as_bob.get("/pipelines/").content.decode()
    assert "Pipeline simple" in page
    assert "Run now" not in page and "Disable" not in page and "New pipeline" not in page


def test_it_searches_by_code_name_and_description(as_alice, db):
    save_definition(simple_definition("orders-in"))
    save_definition({**simple_definition("stock"), "description": "nightly warehouse sync"})
    page = as_alice.get("/pipelines/?q=warehouse").content.decode()
    assert "stock" in page and "orders-in" not in page
    partial = as_alice.get("/pipelines/?q=orders", **htmx(target="pipeline-table")).content.decode()
    assert partial.lstrip().startswith('<div id="pipeline-table">')
    assert "orders-in" in partial and "<html" not in partial


def test_it_says_when_nothing_matches_and_when_there_is_nothing(as_alice, db):
    assert "No pipelines yet" in as_alice.get("/pipelines/").content.decode()
    save_definition(simple_definition("a"))
    assert "No pipeline matches" in as_alice.get("/pipelines/?q=zzz").content.decode()


def test_it_escapes_names(as_alice, db):
    save_definition({**simple_definition("x"), "name": "<script>alert(1)</script>"})
    page = as_alice.get("/pipelines/").content.decode()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_it_enables_and_disables(as_alice, pipeline):
    response = as_alice.post("/pipelines/simple/toggle/", **htmx())
    assert response.status_code == 200 and response.content.decode().lstrip().startswith("<tr")
    assert "Enable" in response.content.decode()
    assert Pipeline.objects.get(code="simple").enabled is False
    assert as_alice.post("/pipelines/simple/toggle/").status_code == 302
    assert Pipeline.objects.get(code="simple").enabled is True


def test_it_answers_404_for_an_unknown_pipeline(as_alice, db):
    assert as_alice.post("/pipelines/nope/toggle/").status_code == 404
    assert as_alice.get("/pipelines/nope/").status_code == 404

import pytest

from tests.web.conftest import htmx

pytestmark = pytest.mark.django_db


def test_it_shows_graph_steps_connections_settings_and_revisions(as_alice, pipeline):
    page = as_alice.get("/pipelines/simple/").content.decode()
    assert '<svg class="graph"' in page and 'data-step="clean"' in page
    for section in ('id="steps"', 'id="edges"', 'id="settings"', 'id="revisions"', 'id="workspace"'):
        assert section in page
    assert 'id="step-clean"' in page and 'name="config.operators.0.op"' in page
    assert 'name="config.operators.0.args.path" value="sku"' in page
    assert "r1" in page and "created" in page


def test_it_builds_the_palette_from_the_registries(as_alice, pipeline, shaky):
    page = as_alice.get("/pipelines/simple/").content.decode()
    assert 'data-palette="EXTRACT:inMemory"' in page
    assert 'data-palette="TRANSFORM:trim"' in page
    assert 'data-palette="SINK:records"' in page
    assert 'data-palette="ROUTE:ROUTE"' in page
    # a custom operator shows up in the palette, under its own category, the moment it is registered
    assert 'data-palette="TRANSFORM:shaky"' in page and ">Testing<" in page


def test_it_filters_the_palette(as_alice, pipeline):
    partial = as_alice.get("/pipelines/simple/?palette_q=trim", **htmx(target="palette-items")).content.decode()
    assert partial.lstrip().startswith('<div id="palette-items">')
    assert 'data-palette="TRANSFORM:trim"' in partial and 'data-palette="EXTRACT:inMemory"' not in partial
    partial = as_alice.get("/pipelines/simple/?palette_q=zzzz", **htmx(target="palette-items")).content.decode()
    assert "Nothing matches" in partial


def test_it_shows_a_viewer_the_pipeline_without_ways_to_change_it(as_bob, pipeline):
    page = as_bob.get("/pipelines/simple/").content.decode()
    assert "You can look at this pipeline but not change it" in page
    assert "Save step" not in page and "Save settings" not in page and "+ Connect" not in page
    assert "data-palette" not in page
    assert "<fieldset class=\"plain\" disabled>" in page


def test_it_opens_the_step_asked_for(as_alice, pipeline):
    page = as_alice.get("/pipelines/simple/?open=clean").content.decode()
    assert 'id="card-clean" open' in page

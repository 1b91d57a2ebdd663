"""Every step form, posted back unchanged, saves nothing new: the generated forms read back exactly what they
show (demo pipelines cover extractors, ROUTE branches with conditions, operator chains, maps and sinks)."""

import json
from pathlib import Path

import pytest
from django.conf import settings

from pipelines.models import Pipeline
from pipelines.services import definition_of, save_definition
from tests.web.conftest import form_data

pytestmark = pytest.mark.django_db

DEMOS = sorted(Path(settings.DATAHUB_DEMO_PIPELINES_DIR).glob("*.json"))


@pytest.mark.parametrize("path", DEMOS, ids=lambda p: p.stem)
def test_it_reads_back_every_step_and_the_settings_unchanged(as_alice, path):
    pipeline = save_definition(json.loads(path.read_text()))
    before = definition_of(pipeline)
    page = as_alice.get(f"/pipelines/{pipeline.code}/").content.decode()
    for step in before["steps"]:
        data = form_data(page, f"step-{step['key']}", _action="save")
        response = as_alice.post(f"/pipelines/{pipeline.code}/steps/{step['key']}/", data)
        assert response.status_code == 302, (step["key"], response.content.decode()[:2000])
    as_alice.post(f"/pipelines/{pipeline.code}/settings/", form_data(page, "settings-form"))
    pipeline = Pipeline.objects.get(code=pipeline.code)
    assert definition_of(pipeline) == before
    assert pipeline.revisions.count() == 1

"""The run table's and the gate list's rows are written in Python (runs.run_rows, gates.gate_rows), not by
the template engine: every value in them is escaped as a template variable would be, and they link where
reverse() says."""

import pytest
from django.test import Client
from django.urls import reverse

from gates.models import GateRequest
from pipelines.services import save_definition
from runs import services

pytestmark = pytest.mark.django_db

NAME = '<img src=x onerror="alert(1)">'


@pytest.fixture
def client(django_user_model):
    c = Client()
    c.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "pw"))
    return c


def test_a_pipeline_name_with_markup_is_shown_as_text_in_the_run_table_and_the_gate_list(client, settings,
                                                                                        tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    pipeline = save_definition({"version": 1, "code": "held", "name": NAME, "steps": [
        {"key": "src", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": [{"sku": "a"}]}},
        {"key": "gate", "type": "GATE", "config": {"approvalType": "MANUAL"}},
        {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}}], "edges": []})
    run = services.run_now(services.create_run(pipeline)).run
    gate = GateRequest.objects.get(run=run)
    escaped = "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"

    for url in ("/runs/", "/"):  # the run list and the dashboard share the run table
        page = client.get(url).content.decode()
        assert escaped in page and NAME not in page, url
        assert f'href="{reverse("run-detail", args=[run.pk])}"' in page

    page = client.get("/gates/").content.decode()
    assert escaped in page and NAME not in page
    assert f'href="{reverse("run-detail", args=[run.pk])}"' in page
    assert f'href="{reverse("gates:review", args=[run.pk, gate.step_key])}"' in page

"""The run page shows what a finished run put out: the first records of each final output, escaped, in
the records table the preview uses; the REST run detail carries the same sample."""

import pytest
from django.utils import timezone

from pipelines.services import save_definition
from runs import services
from runs.models import Run
from tests.api.conftest import client_for
from tests.fixtures import simple_definition
from tests.web.conftest import htmx

pytestmark = pytest.mark.django_db


def finished(records):
    return services.run_now(services.create_run(save_definition(simple_definition("shop", records=records)))).run


def test_it_shows_the_output_records_escaped(as_bob):
    run = finished([{"sku": "<script>alert(1)</script>", "qty": 3}, {"sku": "b", "qty": None}])
    page = as_bob.get(f"/runs/{run.pk}/").content.decode()
    outputs = page.split('id="run-outputs"')[1].split("</section>")[0]
    assert 'data-output="out"' in outputs and "2 records" in outputs
    assert "<th>sku</th>" in outputs and "<th>qty</th>" in outputs
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in outputs and "<script>alert" not in page
    assert 'class="null"' in outputs  # qty: null is shown as null, not as text


def test_it_says_how_many_of_how_many_are_shown(as_bob):
    run = finished([{"n": n} for n in range(1234)])
    outputs = as_bob.get(f"/runs/{run.pk}/").content.decode().split('id="run-outputs"')[1].split("</section>")[0]
    assert "1,234 records, the first 100 shown" in outputs and outputs.count("<tr>") == 101


def test_it_polls_once_more_while_the_sample_of_a_run_just_ended_is_written(as_bob, pipeline):
    run = services.create_run(pipeline)
    Run.objects.filter(pk=run.pk).update(status="COMPLETED", finished_at=timezone.now())
    response = as_bob.get(f"/runs/{run.pk}/", **htmx(target="run-progress"))
    assert response.status_code == 200 and 'hx-trigger="every 1s"' in response.content.decode()
    Run.objects.filter(pk=run.pk).update(output_sample=[])
    response = as_bob.get(f"/runs/{run.pk}/", **htmx(target="run-progress"))
    assert response.status_code == 286 and "No output records" in response.content.decode()
    # a run that ended long ago without a sample (before there were samples) does not poll
    Run.objects.filter(pk=run.pk).update(output_sample=None, finished_at=timezone.now() - timezone.timedelta(hours=1))
    assert as_bob.get(f"/runs/{run.pk}/", **htmx(target="run-progress")).status_code == 286


def test_the_rest_run_detail_carries_the_sample(bob):
    run = finished([{"sku": " a "}])
    body = client_for(bob).get(f"/api/runs/{run.pk}/").json()
    assert body["outputSample"] == [{"step": "out", "branch": None, "total": 1, "records": [{"sku": "a"}],
                                     "columns": ["sku"], "truncated": False}]
    pending = services.create_run(run.pipeline)
    assert client_for(bob).get(f"/api/runs/{pending.pk}/").json()["outputSample"] is None


def test_graphql_carries_the_sample_too(bob):
    from tests.api.conftest import gql

    run = finished([{"sku": " a "}, {"sku": "b"}])
    status, body = gql(client_for(bob), "query($id: ID!) { run(id: $id) { outputSample { step branch total "
                                        "records truncated } } }", {"id": run.pk})
    assert status == 200 and body["data"]["run"]["outputSample"] == [{"step": "out", "branch": None, "total": 2,
                                            "records": [{"sku": "a"}, {"sku": "b"}], "truncated": False}]


def test_its_columns_keep_the_steps_order_whatever_order_the_database_keeps_keys_in(as_bob):
    run = finished([{"sku": "a", "qty": 1}])
    stored = Run.objects.get(pk=run.pk).output_sample
    assert stored[0]["columns"] == list(stored[0]["records"][0])  # as the step put them out
    # PostgreSQL's jsonb keeps an object's keys shortest first; the columns list keeps the step's order.
    sample = [{**stored[0], "records": [{"qty": 1, "sku": "a"}], "columns": ["sku", "qty"]}]
    Run.objects.filter(pk=run.pk).update(output_sample=sample)
    outputs = as_bob.get(f"/runs/{run.pk}/").content.decode().split('id="run-outputs"')[1].split("</section>")[0]
    assert "<th>sku</th><th>qty</th>" in outputs
    assert as_bob.get(f"/api/runs/{run.pk}/").json()["outputSample"][0]["columns"] == ["sku", "qty"]

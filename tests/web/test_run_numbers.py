"""The run page's numbers: "Records out" is what the run's final steps put out (not the largest step count),
every number has thousands separators, and the graph's labels fit their boxes (compact counts, squeezed
when long, the exact numbers in the tooltip)."""

import re

import pytest

from pipelines import svg
from pipelines.services import save_definition
from runs import services
from runs.models import StepRun
from runs.views import final_keys
from tests.fixtures import simple_definition
from tests.web.conftest import htmx

pytestmark = pytest.mark.django_db


def big_run():
    """A finished run whose counts were large: 3,000,000 read, 30,000 kept by the last step."""
    run = services.create_run(save_definition(simple_definition("big")))
    run = services.run_now(run).run
    for key, n_in, n_out in (("src", 0, 3_000_000), ("clean", 3_000_000, 30_000), ("out", 30_000, 30_000)):
        StepRun.objects.filter(run=run, step_key=key).update(records_in=n_in, records_out=n_out)
    return run


def test_records_out_is_what_the_final_steps_put_out(as_bob):
    page = as_bob.get(f"/runs/{big_run().pk}/").content.decode()
    assert re.search(r'id="records-out">30,000<', page)  # not 3,000,000, the largest count
    row = page.split('<tr data-step="clean">')[1].split("</tr>")[0]
    assert ">3,000,000</td>" in row and ">30,000</td>" in row


def test_final_steps_are_those_feeding_no_other_step():
    d = simple_definition("x")
    assert final_keys(d) == {"out"}
    d["steps"].append({"key": "audit", "type": "SINK", "adapterCode": "records", "config": {}})
    d["edges"] = [{"from": "src", "to": "clean"}, {"from": "clean", "to": "out"}, {"from": "src", "to": "audit"},
                  {"from": "out", "to": "audit", "dependencyOnly": True}]
    assert final_keys(d) == {"out", "audit"}


def test_graph_labels_fit_their_boxes(as_bob):
    html = as_bob.get(f"/runs/{big_run().pk}/", **htmx(target="run-progress")).content.decode()
    node = html.split('data-step="clean"')[1].split("</g>")[0]
    assert "Completed · 3M→30k" in node and "3,000,000 in, 30,000 out records" in node
    long = svg.definition_graph(simple_definition("y"), statuses={"src": "CANCELLED"},
                                counts={"src": (999_999, 999_999)})
    sub = long.split('data-step="src"')[1].split('class="node-sub"')[1].split('>')[0]
    assert f'textLength="{svg.NODE_W - 24}"' in sub  # squeezed to the box rather than overflowing it


def test_dashboard_run_tables_keep_to_the_columns_that_fit(as_alice):
    run = services.create_run(save_definition(simple_definition("d")))
    page = as_alice.get("/").content.decode()
    active = page.split('id="active-runs"')[1].split("</section>")[0]
    assert f"#{run.pk}" in active and "<th>Progress</th>" not in active and "<th>Trigger</th>" not in active
    assert "<th>Progress</th>" in as_alice.get("/runs/").content.decode()  # the runs list keeps every column

"""The step tester's page side (runs/tester_views.py): a step card's panel posts here and gets the result.

It tests the person's draft, only for people who may edit the pipeline, refuses bad pasted JSON and steps
with side effects with a message, and shows record values escaped."""

import json

import pytest

from pipelines import drafts
from pipelines.models import Pipeline
from pipelines.services import save_definition
from tests.fixtures import simple_definition
from tests.web.conftest import htmx

pytestmark = pytest.mark.django_db


def post_test(client, step="clean", **data):
    return client.post(f"/pipelines/simple/steps/{step}/test/", data, **htmx())


def html_of(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def test_the_editor_offers_the_tester_on_steps_it_can_run_and_only_to_editors(as_alice, as_bob, pipeline):
    page = as_alice.get("/pipelines/simple/").content.decode()
    clean = page.split('id="card-clean"')[1].split('id="card-out"')[0]
    sink = page.split('id="card-out"')[1].split("</details>")[0]
    assert "Test this step" in clean and 'hx-post="/pipelines/simple/steps/clean/test/"' in clean
    assert "data-flush-first" in clean
    assert "Test this step" not in sink and "Test this step" not in page.split('id="card-src"')[1].split("</details>")[0]
    assert "Test this step" not in as_bob.get("/pipelines/simple/").content.decode()


def test_it_runs_the_step_of_the_draft_on_the_sample_and_shows_the_diff(as_alice, alice, pipeline):
    definition = simple_definition("simple")
    definition["steps"][1]["config"]["operators"].append({"op": "set", "args": {"path": "seen", "value": True}})
    drafts.save_draft(Pipeline.objects.get(code="simple"), alice, definition)  # not published
    html = html_of(post_test(as_alice, source="sample"))
    assert "2 records in" in html and "the sample from the step before" in html and "2 out" in html
    assert '<code>sku</code> &quot; a &quot; → &quot;a&quot;' in html  # the trim, from the published revision too
    assert '<code>seen</code> true' in html  # the draft's operator: the draft is what is tested
    assert "no change" not in html.split("tester-diff")[1].split("</table>")[0].split("<tr")[2]


def test_pasted_records_with_bad_json_are_refused_naming_the_line(as_alice, pipeline):
    html = html_of(post_test(as_alice, source="pasted", records='[{"sku": "a"},\n {"sku": }]'))
    assert "Not tested:" in html and "line 2, column 10: Expecting value" in html


def test_pasted_records_are_tested_and_their_values_escaped(as_alice, pipeline):
    records = [{"sku": " <script>alert(1)</script> "}]
    html = html_of(post_test(as_alice, source="pasted", records=json.dumps(records)))
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "1 record in (pasted), 1 out" in " ".join(html.split())


def test_a_step_with_side_effects_is_not_tested(as_alice, pipeline):
    html = html_of(post_test(as_alice, step="out", source="sample"))
    assert "Not tested:" in html and "step &#x27;out&#x27; is a SINK step" in html


def test_only_people_who_may_edit_the_pipeline_may_test(as_alice, as_bob, as_charlie, django_user_model, pipeline):
    assert post_test(as_bob, source="sample").status_code == 403
    assert post_test(as_charlie, source="sample").status_code == 403
    assert post_test(as_alice, step="nope", source="sample").status_code == 404
    assert post_test(as_alice, source="sample").status_code == 200
    Pipeline.objects.get(code="simple").owners.add(django_user_model.objects.create_user("erin"))
    assert post_test(as_alice, source="sample").status_code == 404  # erin's now, not alice's: not found


def test_it_needs_a_post_with_the_csrf_token(csrf_alice, as_alice, pipeline):
    assert as_alice.get("/pipelines/simple/steps/clean/test/").status_code == 405
    assert csrf_alice.post("/pipelines/simple/steps/clean/test/", {"source": "sample"}).status_code == 403


def test_an_upstream_writer_is_named_and_does_not_run(as_alice, alice):
    definition = simple_definition("simple")
    definition["steps"].insert(1, {"key": "keep", "type": "SINK", "adapterCode": "records", "config": {}})
    save_definition(definition, message="created")
    html = html_of(post_test(as_alice, source="sample"))
    assert "step &#x27;keep&#x27; (SINK) did not run" in html


def test_a_route_shows_each_branch_and_where_each_record_went(as_alice):
    save_definition({
        "version": 1, "code": "simple", "name": "Routes",
        "steps": [{"key": "src", "type": "EXTRACT", "adapterCode": "inMemory",
                   "config": {"data": [{"price": 5}, {"price": 50}]}},
                  {"key": "split", "type": "ROUTE", "config": {"branches": [
                      {"name": "cheap", "when": [{"field": "price", "cmp": "lt", "value": 10}]}]}},
                  {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}}],
        "edges": [{"from": "src", "to": "split"}, {"from": "split", "to": "out", "branch": "cheap"},
                  {"from": "split", "to": "out", "branch": "default"}],
        "context": {}}, message="created")
    html = " ".join(html_of(post_test(as_alice, step="split", source="sample")).split())
    assert "Branch cheap · 1 record" in html and "Branch default · 1 record" in html
    diff = html.split("tester-diff")[1].split("</table>")[0]
    assert '<code class="branch">cheap</code>' in diff.split("<tr")[2]
    assert '<code class="branch">default</code>' in diff.split("<tr")[3]


def test_a_validate_in_fail_fast_mode_says_the_step_fails_and_lists_the_invalid_record(as_alice):
    definition = simple_definition("simple")
    definition["steps"][1] = {"key": "clean", "type": "VALIDATE", "config": {
        "errorHandlingMode": "FAIL_FAST", "rules": [{"field": "sku", "pattern": "^[a-z]+$"}]}}
    save_definition(definition, message="created")
    html = " ".join(html_of(post_test(as_alice, source="sample")).split())
    assert "The step fails:</strong> record 1 is invalid" in html and "FAIL_FAST" in html
    assert "Dead letters · 1" in html and "0 out" in html


def test_a_gate_before_the_step_does_not_pause_anything_and_is_named(as_alice):
    from gates.models import GateRequest

    definition = simple_definition("simple")
    definition["steps"].insert(1, {"key": "approve", "type": "GATE", "config": {"approvalType": "MANUAL"}})
    save_definition(definition, message="created")
    html = " ".join(html_of(post_test(as_alice, source="sample")).split())
    assert "step &#x27;approve&#x27; (GATE) did not run" in html and "2 records in" in html
    assert GateRequest.objects.count() == 0

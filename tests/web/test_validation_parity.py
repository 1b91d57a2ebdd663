"""Validation parity: what a run would refuse is refused in the editor, the API and at publishing, with the
run's own message, every problem at once, each at its field (VALIDATE rules and ROUTE conditions)."""

import pytest

from pipelines.definition import problems_of
from pipelines.errors import ConfigError
from pipelines.models import Pipeline
from runs.engine.validate import compile_rules
from tests.api.conftest import client_for
from tests.fixtures import simple_definition
from tests.web.conftest import form_data, htmx, working

pytestmark = pytest.mark.django_db


def with_steps(*steps):
    d = simple_definition("parity")
    d["steps"] = [d["steps"][0], *steps]
    return d


def test_it_refuses_every_bad_rule_with_the_runs_message():
    config = {"rules": [{"field": "a", "patern": "^A"}, {"field": "b", "pattern": "("}]}
    with pytest.raises(ConfigError) as at_run:  # what the run says when it reaches the step
        compile_rules(config)
    problems = problems_of(with_steps({"key": "v", "type": "VALIDATE", "config": config}))
    assert [(p.step, p.field) for p in problems] == [("v", "config.rules.0"), ("v", "config.rules.1.pattern")]
    assert problems[0].message == str(at_run.value)
    assert problems[1].message.startswith("invalid pattern:")


def test_it_refuses_every_bad_route_condition_at_its_row():
    route = {"key": "r", "type": "ROUTE", "config": {"branches": [
        {"name": "x", "when": [{"field": "a", "cmp": "bogus", "value": 1}, {"field": "b", "cmp": "regex",
                                                                            "value": "("}]}]}}
    d = with_steps(route, {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}})
    d["edges"] = [{"from": "src", "to": "r"}, {"from": "r", "to": "out", "branch": "x"}]
    fields = {p.field: p.message for p in problems_of(d)}
    assert fields["config.branches.0.when.0.cmp"].startswith("unknown comparator 'bogus'")
    assert fields["config.branches.0.when.1.value"].startswith("regex '(' cannot be used")


def test_the_api_refuses_what_the_run_would(alice, pipeline):
    d = simple_definition("simple")
    d["steps"].insert(1, {"key": "v", "type": "VALIDATE", "config": {"rules": [{"field": "sku", "patern": "^A"}]}})
    response = client_for(alice).put("/api/pipelines/simple/", {"definition": d}, format="json")
    assert response.status_code == 400
    assert response.json()["problems"][0]["message"].startswith("unknown rule key(s) patern")
    assert Pipeline.objects.get(code="simple").revisions.count() == 1


def test_the_editor_shows_rule_rows_and_a_bad_rule_at_its_field(as_alice, pipeline):
    html = as_alice.get("/pipelines/simple/new-step/?type=VALIDATE", **htmx()).content.decode()
    data = form_data(html, "new-step-form", _action="add:config.rules")
    html = as_alice.post("/pipelines/simple/new-step/", data, **htmx()).content.decode()
    assert 'name="config.rules.0.field"' in html and 'name="config.rules.0.pattern"' in html  # a row, not JSON
    data = form_data(html, "new-step-form", **{"config.rules.0.field": "sku", "config.rules.0.pattern": "(",
                                               "_action": "save"})
    html = as_alice.post("/pipelines/simple/new-step/", data, **htmx()).content.decode()
    pattern_field = html.split('name="config.rules.0.pattern"')[1].split("</div>")[0]
    assert "invalid pattern" in pattern_field
    data["config.rules.0.pattern"] = "^[a-z]"
    response = as_alice.post("/pipelines/simple/new-step/", data, **htmx())
    assert response["HX-Retarget"] == "#workspace"
    assert working("simple")["steps"][-1]["config"] == {"rules": [{"field": "sku", "pattern": "^[a-z]"}]}

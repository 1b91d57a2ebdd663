"""GraphQL queries: pipelines, pipeline(code), runs, run(id), adapters, pendingGates, with the REST API's
permissions (charlie may see nothing) and authentication (nobody gets a 401)."""

import pytest

from runs import services
from tests.api.conftest import codes, gql

QUERIES = {
    "pipelines": "{ pipelines { code name revision enabled allowConcurrentRuns } }",
    "pipeline": '{ pipeline(code: "simple") { code definition revisions { number message } } }',
    "runs": '{ runs(pipeline: "simple") { id status pipeline revision dryRun } }',
    "run": "query($id: ID!) { run(id: $id) { id status stepRuns { stepKey status recordsIn } recordErrorCount } }",
    "adapters": '{ adapters(kind: "operator") { kind code schema builtin } }',
    "pendingGates": "{ pendingGates { runId stepKey pipeline recordCount } }",
}


@pytest.mark.parametrize("name", QUERIES)
def test_it_refuses_a_user_without_the_permission(name, failed_run, as_charlie):
    status, body = gql(as_charlie, QUERIES[name], {"id": failed_run.pk} if name == "run" else None)
    assert status == 200
    assert codes(body) == ["FORBIDDEN"]
    assert "permission" in body["errors"][0]["message"]


@pytest.mark.parametrize("name", QUERIES)
def test_it_asks_nobody_to_authenticate(name, failed_run, anonymous):
    status, body = gql(anonymous, QUERIES[name])
    assert status == 401
    assert codes(body) == ["UNAUTHENTICATED"]


def test_it_lists_pipelines(pipeline, as_bob):
    status, body = gql(as_bob, QUERIES["pipelines"])
    assert status == 200 and "errors" not in body
    assert body["data"]["pipelines"] == [
        {"code": "simple", "name": "Pipeline simple", "revision": 1, "enabled": True, "allowConcurrentRuns": False}]


def test_it_shows_a_pipeline_with_its_definition_and_revisions(pipeline, as_bob):
    _, body = gql(as_bob, QUERIES["pipeline"])
    found = body["data"]["pipeline"]
    assert found["definition"] == pipeline.current_revision.definition
    assert found["revisions"] == [{"number": 1, "message": "first"}]
    _, missing = gql(as_bob, '{ pipeline(code: "nope") { code } }')
    assert missing == {"data": {"pipeline": None}}


def test_it_lists_runs_with_filters(failed_run, as_bob):
    services.create_run(failed_run.pipeline, dry_run=True)
    _, body = gql(as_bob, '{ runs(status: ["FAILED"]) { id status } }')
    assert body["data"]["runs"] == [{"id": str(failed_run.pk), "status": "FAILED"}]
    _, every = gql(as_bob, QUERIES["runs"])
    assert [r["dryRun"] for r in every["data"]["runs"]] == [True, False]
    _, bad = gql(as_bob, '{ runs(status: ["DONE"]) { id } }')
    assert codes(bad) == ["BAD_INPUT"]
    _, too_many = gql(as_bob, "{ runs(limit: 100000) { id } }")
    assert codes(too_many) == ["BAD_INPUT"]


def test_it_shows_a_run_with_its_step_runs_and_record_errors(pipeline, failed_run, as_bob):
    run = services.create_run(pipeline, dry_run=True)
    services.run_now(run)
    _, body = gql(as_bob, QUERIES["run"], {"id": run.pk})
    assert body["data"]["run"]["status"] == "COMPLETED"
    assert [s["stepKey"] for s in body["data"]["run"]["stepRuns"]] == ["src", "clean", "out"]
    _, errors = gql(as_bob, "query($id: ID!) { run(id: $id) { recordErrors(limit: 1) { stepKey record message } } }",
                    {"id": failed_run.pk})
    assert errors["data"]["run"]["recordErrors"] == [{"stepKey": "clean", "record": {"sku": 1},
                                                      "message": "not a string"}]
    for unknown in ("999999", "not-an-id", str(2**80)):
        _, missing = gql(as_bob, QUERIES["run"], {"id": unknown})
        assert missing == {"data": {"run": None}}


def test_it_lists_adapters_with_their_schemas(as_bob):
    _, body = gql(as_bob, QUERIES["adapters"])
    trim = next(a for a in body["data"]["adapters"] if a["code"] == "trim")
    assert trim["kind"] == "operator" and trim["builtin"] is True and trim["schema"]["type"] == "object"
    _, bad = gql(as_bob, '{ adapters(kind: "widget") { code } }')
    assert codes(bad) == ["BAD_INPUT"]


def test_it_answers_a_malformed_query_with_400(as_bob):
    status, body = gql(as_bob, "{ pipelines { code ")
    assert status == 400 and "Syntax Error" in body["errors"][0]["message"]
    status, body = gql(as_bob, "{ pipelines { nope } }")
    assert status == 400 and "Cannot query field 'nope'" in body["errors"][0]["message"]

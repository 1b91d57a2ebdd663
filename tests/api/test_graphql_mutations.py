"""GraphQL mutations: savePipeline (validated as in the editor), startRun and cancelRun, with and without
the permission they need."""

from pipelines.models import Pipeline
from runs import services
from runs.models import Run
from tests.api.conftest import codes, gql
from tests.fixtures import simple_definition

SAVE = """mutation($definition: GenericScalar!, $message: String) {
  savePipeline(definition: $definition, message: $message) {
    ok created problems { step field message code } pipeline { code revision }
  }
}"""
START = """mutation($pipeline: String!, $dryRun: Boolean, $recordLimit: Int) {
  startRun(pipeline: $pipeline, dryRun: $dryRun, recordLimit: $recordLimit) {
    run { id status dryRun recordLimit trigger triggeredBy }
  }
}"""
CANCEL = "mutation($runId: ID!) { cancelRun(runId: $runId) { run { id status } } }"


def test_it_saves_a_pipeline(as_alice, db):
    status, body = gql(as_alice, SAVE, {"definition": simple_definition(code="made"), "message": "via graphql"})
    assert status == 200 and "errors" not in body
    assert body["data"]["savePipeline"] == {"ok": True, "created": True, "problems": [],
                                            "pipeline": {"code": "made", "revision": 1}}
    assert Pipeline.objects.get(code="made").current_revision.message == "via graphql"
    _, again = gql(as_alice, SAVE, {"definition": simple_definition(code="made", records=[])})
    assert again["data"]["savePipeline"]["created"] is False
    assert again["data"]["savePipeline"]["pipeline"]["revision"] == 2


def test_it_answers_an_invalid_definition_with_its_problems(as_alice, db):
    definition = simple_definition(code="broken")
    definition["steps"][1]["config"]["operators"][0]["op"] = "trm"
    _, body = gql(as_alice, SAVE, {"definition": definition})
    result = body["data"]["savePipeline"]
    assert result["ok"] is False and result["pipeline"] is None
    assert result["problems"][0]["step"] == "clean"
    assert result["problems"][0]["field"] == "config.operators[0].op"
    assert not Pipeline.objects.filter(code="broken").exists()


def test_it_refuses_to_save_without_permission(pipeline, as_bob):
    _, body = gql(as_bob, SAVE, {"definition": simple_definition(code="simple", records=[])})
    assert codes(body) == ["FORBIDDEN"] and body["data"] == {"savePipeline": None}
    assert pipeline.revisions.count() == 1


def test_it_starts_a_run(pipeline, as_alice, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as queued:
        _, body = gql(as_alice, START, {"pipeline": "simple", "dryRun": True, "recordLimit": 3})
    run = body["data"]["startRun"]["run"]
    assert run["status"] == "PENDING" and run["dryRun"] is True and run["recordLimit"] == 3
    assert run["trigger"] == "graphql" and run["triggeredBy"] == "alice"
    assert len(queued) == 1


def test_it_refuses_a_run_it_cannot_start(pipeline, as_alice, as_bob):
    _, forbidden = gql(as_bob, START, {"pipeline": "simple"})
    assert codes(forbidden) == ["FORBIDDEN"]
    _, unknown = gql(as_alice, START, {"pipeline": "nope"})
    assert codes(unknown) == ["NOT_FOUND"]
    _, bad_limit = gql(as_alice, START, {"pipeline": "simple", "recordLimit": 0})
    assert codes(bad_limit) == ["BAD_INPUT"]
    _, wrong_type = gql(as_alice, START, {"pipeline": "simple", "recordLimit": "ten"})
    assert "errors" in wrong_type and "Int cannot represent" in wrong_type["errors"][0]["message"]
    gql(as_alice, START, {"pipeline": "simple"})
    _, conflict = gql(as_alice, START, {"pipeline": "simple"})
    assert codes(conflict) == ["CONFLICT"] and "already has an active run" in conflict["errors"][0]["message"]
    assert not Run.objects.filter(triggered_by__username="bob").exists()


def test_it_cancels_a_run(pipeline, as_alice, as_bob):
    run = services.create_run(pipeline)
    _, forbidden = gql(as_bob, CANCEL, {"runId": run.pk})
    assert codes(forbidden) == ["FORBIDDEN"]
    _, body = gql(as_alice, CANCEL, {"runId": run.pk})
    assert body["data"]["cancelRun"]["run"] == {"id": str(run.pk), "status": "CANCELLED"}
    _, again = gql(as_alice, CANCEL, {"runId": run.pk})
    assert codes(again) == ["CONFLICT"]
    _, missing = gql(as_alice, CANCEL, {"runId": "12345678"})
    assert codes(missing) == ["NOT_FOUND"]

"""Review before publish over REST and GraphQL: submit, list what waits, look at the diff, approve or reject,
with the permission checked first and every bad request answered with what is wrong."""

import pytest

from pipelines import drafts, reviews
from pipelines.models import Pipeline, PipelineReview, ReviewStatus
from pipelines.services import definition_of, save_definition
from tests.api.conftest import client_for, codes, gql
from tests.fixtures import simple_definition

pytestmark = pytest.mark.django_db


@pytest.fixture
def reviewed(db):
    pipeline = save_definition(simple_definition("simple"), message="created")
    Pipeline.objects.filter(pk=pipeline.pk).update(requires_review=True)
    return Pipeline.objects.get(pk=pipeline.pk)


@pytest.fixture
def as_rita(rita):
    return client_for(rita)


def changed(path="title"):
    d = simple_definition("simple")
    d["steps"][1]["config"]["operators"][0]["args"]["path"] = path
    return d


def submit(client, definition=None, **body):
    return client.post("/api/pipelines/simple/reviews/", {"definition": definition or changed(), "message": "title",
                                                          **body}, format="json")


def test_a_review_round_over_rest(as_alice, as_rita, reviewed):
    # saving directly is refused: the pipeline requires review
    put = as_alice.put("/api/pipelines/simple/", {"definition": changed()}, format="json")
    assert put.status_code == 400 and put.json()["problems"][0]["code"] == "review_required"

    first = submit(as_alice)
    assert first.status_code == 201, first.json()
    body = first.json()
    assert (body["status"], body["author"], body["baseRevision"], body["stale"]) == ("PENDING", "alice", 1, False)
    assert '+              "path": "title"' in body["diff"] and body["diff"].startswith("--- r1 (published)\n")
    assert body["changes"] == ["step 'clean' changed"]

    waiting = as_rita.get("/api/reviews/").json()
    assert [r["id"] for r in waiting["results"]] == [body["id"]]
    assert as_rita.get(f"/api/reviews/{body['id']}/").json()["definition"] == Pipeline.objects.get(
        code="simple").reviews.get().definition

    no_comment = as_rita.post(f"/api/reviews/{body['id']}/reject/", {}, format="json")
    assert no_comment.status_code == 400 and no_comment.json()["problems"][0]["field"] == "comment"
    blank = as_rita.post(f"/api/reviews/{body['id']}/reject/", {"comment": "  "}, format="json")
    assert blank.status_code == 400 and blank.json()["problems"][0]["field"] == "comment"
    rejected = as_rita.post(f"/api/reviews/{body['id']}/reject/", {"comment": "Use 'name'."}, format="json")
    assert rejected.status_code == 200 and rejected.json()["status"] == "REJECTED"
    assert rejected.json()["decidedBy"] == "rita" and rejected.json()["comment"] == "Use 'name'."
    twice = as_rita.post(f"/api/reviews/{body['id']}/reject/", {"comment": "again"}, format="json")
    assert twice.status_code == 409 and "already rejected by rita" in twice.json()["detail"]

    second = submit(as_alice, changed("name")).json()
    approved = as_rita.post(f"/api/reviews/{second['id']}/approve/", {"comment": "Good."}, format="json")
    assert approved.status_code == 200, approved.json()
    assert approved.json()["review"]["revision"] == 2 and approved.json()["pipeline"]["revision"] == 2
    revisions = as_alice.get("/api/pipelines/simple/revisions/").json()["results"]
    assert (revisions[0]["createdBy"], revisions[0]["approvedBy"], revisions[0]["message"]) == ("alice", "rita", "title")
    assert revisions[1]["approvedBy"] is None
    history = as_alice.get("/api/pipelines/simple/reviews/").json()["results"]
    assert [(h["status"], h["decidedBy"], h["comment"]) for h in history] == [
        ("APPROVED", "rita", "Good."), ("REJECTED", "rita", "Use 'name'.")]
    assert as_rita.get("/api/reviews/").json()["count"] == 0
    assert as_rita.get("/api/reviews/?status=APPROVED").json()["count"] == 1


def test_who_may_do_what(as_alice, as_bob, as_charlie, as_rita, anonymous, reviewed, alice):
    review_id = submit(as_alice).json()["id"]
    assert submit(as_bob).status_code == 403  # may look, not change
    assert anonymous.get("/api/reviews/").status_code == 401
    assert as_charlie.get("/api/reviews/").status_code == 403
    own = as_alice.post(f"/api/reviews/{review_id}/approve/", {}, format="json")
    assert own.status_code == 403 and "review_pipeline" in own.json()["detail"]  # alice is no reviewer
    rita_own = submit(as_rita, changed("rita")).json()["id"]
    refused = as_rita.post(f"/api/reviews/{rita_own}/approve/", {}, format="json")
    assert refused.status_code == 403 and "is your own" in refused.json()["detail"]
    assert as_bob.get("/api/reviews/").json()["count"] == 0  # no reviewer, nothing of his own
    assert as_alice.get("/api/reviews/").json()["count"] == 1  # her own
    assert as_rita.get("/api/reviews/").json()["count"] == 2
    reviewed.owners.add(alice)
    hidden = as_rita.post(f"/api/reviews/{review_id}/approve/", {}, format="json")
    assert hidden.status_code == 404 and hidden.json()["detail"] == f"no submission {review_id}"


def test_bad_input_is_named(as_alice, as_rita, reviewed):
    assert as_rita.get("/api/reviews/999/").status_code == 404
    assert as_rita.post("/api/reviews/999/approve/", {}, format="json").status_code == 404
    assert as_rita.post("/api/reviews/99999999999999999999/reject/", {"comment": "x"}, format="json").status_code == 404
    assert as_alice.get("/api/pipelines/nope/reviews/").status_code == 404
    bad = changed()
    bad["steps"][1]["config"]["operators"][0]["op"] = "nosuchop"
    response = submit(as_alice, bad)
    assert response.status_code == 400 and response.json()["problems"][0]["step"] == "clean"
    same = submit(as_alice, simple_definition("simple"))
    assert same.status_code == 400 and "nothing to review" in same.json()["detail"]
    for body in ({"baseRevision": 7}, {"baseRevision": "one"}, {"unknown": 1}):
        response = submit(as_alice, **body)
        assert response.status_code == 400 and next(iter(body)) in str(response.json()), body
    review_id = submit(as_alice).json()["id"]
    for body in ({"onStale": "sometimes"}, {"comment": 5}, {"comment": "x" * 2001}):
        response = as_rita.post(f"/api/reviews/{review_id}/approve/", body, format="json")
        assert response.status_code == 400 and next(iter(body)) in str(response.json()), body
    assert as_rita.get("/api/reviews/?status=MAYBE").status_code == 400
    assert PipelineReview.objects.get(pk=review_id).status == ReviewStatus.PENDING


def test_approving_a_stale_submission_answers_409_with_the_diff(as_alice, as_rita, reviewed, rita, django_user_model):
    review_id = submit(as_alice).json()["id"]
    dora = django_user_model.objects.create_user("dora")
    theirs = simple_definition("simple")
    theirs["steps"][0]["name"] = "Dora's source"
    drafts.save_draft(reviewed, dora, theirs)
    reviews.approve(reviews.submit(reviewed, dora, "name").pk, rita)
    assert as_rita.get(f"/api/reviews/{review_id}/").json()["stale"] is True
    response = as_rita.post(f"/api/reviews/{review_id}/approve/", {}, format="json")
    body = response.json()
    assert response.status_code == 409 and (body["baseRevision"], body["currentRevision"]) == (1, 2)
    assert "Dora's source" in body["diff"] and body["detail"].startswith("not approved: revision 2 was published")
    assert PipelineReview.objects.get(pk=review_id).status == ReviewStatus.PENDING
    over = as_rita.post(f"/api/reviews/{review_id}/approve/", {"onStale": "overwrite"}, format="json")
    assert over.status_code == 200 and over.json()["pipeline"]["revision"] == 3
    assert "name" not in definition_of(Pipeline.objects.get(code="simple"))["steps"][0]


def test_requiring_review_is_a_setting_only_a_reviewer_turns_off(as_alice, as_bob, as_rita, reviewed):
    assert as_alice.get("/api/pipelines/simple/").json()["requiresReview"] is True
    assert as_bob.patch("/api/pipelines/simple/", {"requiresReview": False}, format="json").status_code == 403
    assert as_alice.patch("/api/pipelines/simple/", {"requiresReview": "no"}, format="json").status_code == 400
    # The author may change the pipeline but not go around its review by switching it off.
    refused = as_alice.patch("/api/pipelines/simple/", {"requiresReview": False}, format="json")
    assert refused.status_code == 403 and "only a reviewer" in refused.json()["detail"]
    assert Pipeline.objects.get(code="simple").requires_review is True
    response = as_rita.patch("/api/pipelines/simple/", {"requiresReview": False}, format="json")
    assert response.status_code == 200 and response.json()["requiresReview"] is False
    assert as_alice.put("/api/pipelines/simple/", {"definition": changed()}, format="json").status_code == 200
    # Anyone who may change it may turn it on.
    response = as_alice.patch("/api/pipelines/simple/", {"requiresReview": True}, format="json")
    assert response.status_code == 200 and response.json()["requiresReview"] is True


SUBMIT = """mutation($definition: GenericScalar!) {
  submitPipelineReview(code: "simple", definition: $definition, message: "title") {
    ok problems { step field code } review { id status author diff }
  }
}"""
PENDING = "{ pendingReviews { id pipeline author message stale diff } }"
APPROVE = """mutation($id: ID!, $onStale: OnStale) { approvePipelineReview(id: $id, comment: "ok", onStale: $onStale) {
  ok review { status decidedBy revision } pipeline { revision } stale { baseRevision currentRevision diff }
  problems { field code } } }"""
REJECT = """mutation($id: ID!, $comment: String!) { rejectPipelineReview(id: $id, comment: $comment) {
  ok review { status decidedBy comment } } }"""


def test_a_review_round_over_graphql(as_alice, as_rita, as_bob, reviewed):
    _, body = gql(as_alice, SUBMIT, {"definition": changed()})
    result = body["data"]["submitPipelineReview"]
    assert result["ok"] is True and result["review"]["status"] == "PENDING" and '"path": "title"' in result["review"]["diff"]
    review_id = result["review"]["id"]
    _, body = gql(as_rita, PENDING)
    assert [r["id"] for r in body["data"]["pendingReviews"]] == [review_id]

    _, body = gql(as_bob, REJECT, {"id": review_id, "comment": "no"})
    assert codes(body) == ["FORBIDDEN"]
    _, body = gql(as_rita, REJECT, {"id": "999", "comment": "no"})
    assert codes(body) == ["NOT_FOUND"]
    _, body = gql(as_rita, REJECT, {"id": review_id, "comment": " "})
    assert codes(body) == ["BAD_INPUT"] and "needs a comment" in body["errors"][0]["message"]
    _, body = gql(as_rita, REJECT, {"id": review_id, "comment": "Use 'name'."})
    assert body["data"]["rejectPipelineReview"]["review"] == {"status": "REJECTED", "decidedBy": "rita",
                                                              "comment": "Use 'name'."}
    _, body = gql(as_rita, REJECT, {"id": review_id, "comment": "again"})
    assert codes(body) == ["CONFLICT"] and "already rejected by rita" in body["errors"][0]["message"]

    _, body = gql(as_alice, SUBMIT, {"definition": changed("name")})
    second = body["data"]["submitPipelineReview"]["review"]["id"]
    _, body = gql(as_rita, APPROVE, {"id": second})
    result = body["data"]["approvePipelineReview"]
    assert result["ok"] is True and result["review"] == {"status": "APPROVED", "decidedBy": "rita", "revision": 2}
    assert result["pipeline"]["revision"] == 2
    _, body = gql(as_alice, '{ pipeline(code: "simple") { requiresReview revisions { number createdBy approvedBy } } '
                            'pipelineReviews(code: "simple") { status author decidedBy comment } }')
    assert body["data"]["pipeline"]["revisions"][0] == {"number": 2, "createdBy": "alice", "approvedBy": "rita"}
    assert [r["status"] for r in body["data"]["pipelineReviews"]] == ["APPROVED", "REJECTED"]


def test_graphql_answers_a_bad_submission_and_a_stale_approval(as_alice, as_rita, reviewed):
    bad = changed()
    bad["steps"][1]["config"]["operators"][0]["op"] = "nosuchop"
    _, body = gql(as_alice, SUBMIT, {"definition": bad})
    result = body["data"]["submitPipelineReview"]
    assert result["ok"] is False and result["problems"][0]["step"] == "clean" and result["review"] is None
    _, body = gql(as_alice, SUBMIT, {"definition": changed()})
    review_id = body["data"]["submitPipelineReview"]["review"]["id"]
    Pipeline.objects.filter(pk=reviewed.pk).update(requires_review=False)
    theirs = simple_definition("simple")
    theirs["steps"][0]["name"] = "Their source"
    save_definition(theirs, message="theirs")
    _, body = gql(as_rita, APPROVE, {"id": review_id})
    result = body["data"]["approvePipelineReview"]
    assert result["ok"] is False and result["problems"] == [{"field": "onStale", "code": "stale"}]
    assert (result["stale"]["baseRevision"], result["stale"]["currentRevision"]) == (1, 2)
    _, body = gql(as_rita, APPROVE, {"id": review_id, "onStale": "MERGE"})
    assert body["data"]["approvePipelineReview"]["pipeline"]["revision"] == 3
    assert definition_of(Pipeline.objects.get(code="simple"))["steps"][0]["name"] == "Their source"

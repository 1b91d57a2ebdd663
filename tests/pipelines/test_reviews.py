"""Review before publish, as services: nothing publishes around a review, a submission is decided once, by
someone else than its author, and a stale base is refused as Publish refuses it."""

import pytest
from django.core.exceptions import PermissionDenied

from audit.models import AuditEvent
from pipelines import drafts, reviews
from pipelines.errors import DefinitionError
from pipelines.models import Pipeline, PipelineDraft, PipelineReview, ReviewStatus
from pipelines.services import definition_of, restore_revision, save_definition
from tests.fixtures import simple_definition

pytestmark = pytest.mark.django_db


@pytest.fixture
def reviewed(db):
    """Pipeline 'simple' at revision 1, requiring review."""
    pipeline = save_definition(simple_definition("simple"), message="created")
    Pipeline.objects.filter(pk=pipeline.pk).update(requires_review=True)
    pipeline.refresh_from_db()
    return pipeline


def changed(path="title", name=None):
    d = simple_definition("simple")
    d["steps"][1]["config"]["operators"][0]["args"]["path"] = path
    if name:
        d["steps"][0]["name"] = name
    return d


def drafted(pipeline, user, definition=None):
    drafts.save_draft(pipeline, user, definition or changed())
    return pipeline


def test_nothing_publishes_around_the_review(reviewed, alice):
    with pytest.raises(DefinitionError) as caught:
        save_definition(changed(), user=alice, code="simple", message="sneaky")
    assert caught.value.problems[0].code == "review_required"
    assert "pipeline 'simple' requires review" in str(caught.value)
    reviewed = save_definition(changed("other"), code="simple", message="by the operator")  # a CLI import
    with pytest.raises(DefinitionError, match="requires review"):
        restore_revision(reviewed, 1, user=alice)
    drafted(reviewed, alice)
    with pytest.raises(DefinitionError, match="requires review"):
        drafts.publish(reviewed, alice, "publish anyway")
    assert reviewed.revisions.count() == 2


def test_a_submission_freezes_the_draft_and_keeps_it_for_the_author(reviewed, alice):
    with pytest.raises(DefinitionError, match="there is no draft"):
        reviews.submit(reviewed, alice, "nothing")
    review = reviews.submit(drafted(reviewed, alice), alice, "use the title")
    assert (review.status, review.author, review.message, review.base_revision.number) == (
        ReviewStatus.PENDING, alice, "use the title", 1)
    assert review.definition["steps"][1]["config"]["operators"][0]["args"] == {"path": "title"}
    assert PipelineDraft.objects.filter(pipeline=reviewed, user=alice).exists()
    assert "+" in reviews.diff_of(review) and '"path": "title"' in reviews.diff_of(review)
    assert reviews.latest_of_author(reviewed, alice) == review
    # later typing does not change what is under review
    drafts.save_draft(reviewed, alice, changed("later"))
    review.refresh_from_db()
    assert review.definition["steps"][1]["config"]["operators"][0]["args"] == {"path": "title"}
    assert AuditEvent.objects.filter(action="pipeline.review_submitted", target="pipeline:simple").count() == 1


def test_a_second_submission_replaces_the_first(reviewed, alice, rita):
    first = reviews.submit(drafted(reviewed, alice), alice, "one")
    drafts.save_draft(reviewed, alice, changed("other"))
    second = reviews.submit(reviewed, alice, "two")
    first.refresh_from_db()
    assert first.status == ReviewStatus.SUPERSEDED and second.status == ReviewStatus.PENDING
    with pytest.raises(reviews.ReviewConflict, match="replaced by a newer submission"):
        reviews.approve(first.pk, rita)


def test_rejecting_needs_a_comment_and_happens_once(reviewed, alice, rita):
    review = reviews.submit(drafted(reviewed, alice), alice, "use the title")
    with pytest.raises(reviews.InvalidDecision, match="needs a comment"):
        reviews.reject(review.pk, rita, "   ")
    rejected = reviews.reject(review.pk, rita, "Trim the name too.")
    assert (rejected.status, rejected.decided_by, rejected.comment) == (ReviewStatus.REJECTED, rita, "Trim the name too.")
    with pytest.raises(reviews.ReviewConflict, match=f"submission {review.pk} was already rejected by rita at"):
        reviews.reject(review.pk, rita, "again")
    with pytest.raises(reviews.ReviewConflict, match="already rejected"):
        reviews.approve(review.pk, rita)
    assert reviewed.revisions.count() == 1
    assert PipelineDraft.objects.get(pipeline=reviewed, user=alice).definition["steps"][1]["config"]["operators"][0][
        "args"] == {"path": "title"}  # the draft goes back to its author as it was
    assert reviews.latest_of_author(reviewed, alice) == rejected


def test_approving_publishes_as_the_author_and_names_the_approver(reviewed, alice, rita):
    review = reviews.submit(drafted(reviewed, alice), alice, "use the title")
    approved = reviews.approve(review.pk, rita, comment="Looks right.")
    reviewed.refresh_from_db()
    revision = reviewed.current_revision
    assert (revision.number, revision.created_by, revision.message) == (2, alice, "use the title")
    assert (approved.status, approved.decided_by, approved.revision, approved.comment) == (
        ReviewStatus.APPROVED, rita, revision, "Looks right.")
    assert revision.review.decided_by == rita
    assert definition_of(reviewed)["steps"][1]["config"]["operators"][0]["args"] == {"path": "title"}
    assert not PipelineDraft.objects.filter(pipeline=reviewed, user=alice).exists()  # it is published
    assert reviews.latest_of_author(reviewed, alice) is None
    assert [e.action for e in AuditEvent.objects.filter(action__startswith="pipeline.review").order_by("pk")] == [
        "pipeline.review_submitted", "pipeline.review_approved"]


def test_a_draft_that_went_on_after_submitting_continues_from_the_new_revision(reviewed, alice, rita):
    review = reviews.submit(drafted(reviewed, alice), alice, "use the title")
    drafts.save_draft(reviewed, alice, changed("title", name="Named later"))
    reviews.approve(review.pk, rita)
    draft = PipelineDraft.objects.get(pipeline=reviewed, user=alice)
    assert draft.base_revision.number == 2 and draft.definition["steps"][0]["name"] == "Named later"


def test_only_another_reviewer_decides(reviewed, alice, bob, rita, django_user_model):
    review = reviews.submit(drafted(reviewed, alice), alice, "mine")
    with pytest.raises(PermissionDenied, match="'pipelines.review_pipeline' permission"):
        reviews.approve(review.pk, bob)
    drafted(reviewed, rita)
    own = reviews.submit(reviewed, rita, "rita's own")
    with pytest.raises(PermissionDenied, match="is your own"):
        reviews.approve(own.pk, rita)
    with pytest.raises(PermissionDenied, match="is your own"):
        reviews.reject(own.pk, rita, "no")
    boss = django_user_model.objects.create_superuser("boss", password="x")
    drafted(reviewed, boss, changed("boss"))
    bosses = reviews.submit(reviewed, boss, "the superuser's own")
    assert reviews.approve(bosses.pk, boss).status == ReviewStatus.APPROVED  # decided and documented
    assert PipelineReview.objects.get(pk=review.pk).status == ReviewStatus.PENDING


def test_a_reviewer_outside_the_pipelines_team_does_not_find_it(reviewed, alice, rita):
    review = reviews.submit(drafted(reviewed, alice), alice, "mine")
    reviewed.owners.add(alice)
    with pytest.raises(reviews.ReviewNotFound, match=f"no submission {review.pk}"):
        reviews.approve(review.pk, rita)
    with pytest.raises(reviews.ReviewNotFound, match="no submission 'x'"):
        reviews.get_review("x", rita)
    assert list(reviews.pending_for(rita)) == []
    assert list(reviews.pending_for(alice)) == [review]  # her own


def test_approving_a_stale_submission_is_refused_like_publish(reviewed, alice, rita, django_user_model):
    review = reviews.submit(drafted(reviewed, alice), alice, "use the title")
    # another change is approved first
    dora = django_user_model.objects.create_user("dora")
    theirs = simple_definition("simple")
    theirs["steps"][0]["name"] = "Dora's source"
    drafts.save_draft(reviewed, dora, theirs)
    reviews.approve(reviews.submit(reviewed, dora, "name").pk, rita)
    review.refresh_from_db()
    assert reviews.is_stale(review) and "Dora's source" in reviews.stale_diff(review)
    with pytest.raises(drafts.StaleBase, match="revision 2 was published after revision 1") as caught:
        reviews.approve(review.pk, rita)
    assert caught.value.current.number == 2 and "Dora's source" in caught.value.diff
    review.refresh_from_db()
    assert review.status == ReviewStatus.PENDING and reviewed.revisions.count() == 2  # nothing changed
    merged = reviews.approve(review.pk, rita, on_stale="merge")
    d = merged.revision.definition
    assert d["steps"][0]["name"] == "Dora's source" and d["steps"][1]["config"]["operators"][0]["args"] == {
        "path": "title"}


def test_bad_decisions_are_named(reviewed, alice, rita):
    review = reviews.submit(drafted(reviewed, alice), alice, "mine")
    with pytest.raises(reviews.InvalidDecision, match="onStale must be one of refuse, merge, overwrite"):
        reviews.approve(review.pk, rita, on_stale="sometimes")
    with pytest.raises(reviews.InvalidDecision, match="at most 2000"):
        reviews.reject(review.pk, rita, "x" * 2001)
    with pytest.raises(reviews.ReviewNotFound, match="no submission 999"):
        reviews.reject(999, rita, "why")


def test_submitting_a_definition_checks_it_first(reviewed, alice):
    bad = changed()
    bad["steps"][1]["config"]["operators"][0]["op"] = "nosuchop"
    with pytest.raises(DefinitionError) as caught:
        reviews.submit_definition(reviewed, alice, bad, "bad")
    assert caught.value.problems[0].step == "clean"
    with pytest.raises(DefinitionError, match="nothing to review"):
        reviews.submit_definition(reviewed, alice, simple_definition("simple"), "same")
    with pytest.raises(DefinitionError, match="there is no revision 7"):
        reviews.submit_definition(reviewed, alice, changed(), "x", base=7)
    with pytest.raises(DefinitionError, match="is not this pipeline's"):
        reviews.submit_definition(reviewed, alice, simple_definition("other"), "x")
    assert not PipelineReview.objects.exists()


def test_switching_review_on_and_off_is_recorded(reviewed, rita, alice):
    assert reviews.set_requires_review(reviewed, False, rita) is True
    assert reviews.set_requires_review(reviewed, False, rita) is False
    event = AuditEvent.objects.get(action="pipeline.review_setting")
    assert event.actor == rita and event.details["requires_review"] is False
    assert reviews.set_requires_review(reviewed, True, alice) is True


def test_only_a_reviewer_turns_review_off(reviewed, alice):
    with pytest.raises(PermissionDenied, match="only a reviewer of this pipeline"):
        reviews.set_requires_review(reviewed, False, alice)
    reviewed.refresh_from_db()
    assert reviewed.requires_review is True
    assert reviews.set_requires_review(reviewed, False, None) is True  # the CLI, with no person


def test_reviewers_and_authors_are_told_by_email(reviewed, alice, rita, bob, mailoutbox,
                                                 django_capture_on_commit_callbacks, django_user_model):
    from django_q.models import OrmQ

    from pipelines import review_notices

    django_user_model.objects.create_user("mute", email="")  # no address: not told
    with django_capture_on_commit_callbacks(execute=True):
        review = reviews.submit(drafted(reviewed, alice), alice, "use <the> title")
    assert OrmQ.objects.count() == 1  # queued after the commit, sent by a worker
    assert review_notices.send(review.pk, "submitted") == "sent to 1"
    (mail,) = mailoutbox
    assert mail.to == ["rita@example.com"] and "a change waits for your review" in mail.subject
    assert "alice submitted a change of Pipeline simple (simple)" in mail.body
    assert f"/reviews/{review.pk}/" in mail.body and "“use <the> title”" in mail.body
    with django_capture_on_commit_callbacks(execute=True):
        reviews.reject(review.pk, rita, "Say which title.")
    assert review_notices.send(review.pk, "submitted").startswith("not sent: submission")  # decided meanwhile
    assert review_notices.send(review.pk, "decided") == "sent to 1"
    assert mailoutbox[-1].to == ["alice@example.com"] and "Say which title." in mailoutbox[-1].body
    assert "your change was rejected" in mailoutbox[-1].subject
    # a refused approval (stale) announces nothing
    second = reviews.submit(reviewed, alice, "again")
    save_definition(changed("other"), code="simple", message="by the operator")
    queued = OrmQ.objects.count()
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(drafts.StaleBase):
        reviews.approve(second.pk, rita)
    assert OrmQ.objects.count() == queued


def test_the_change_is_named_by_step_connection_and_setting(reviewed, alice):
    d = changed()
    d["name"] = "Renamed"
    d["steps"].insert(2, {"key": "count", "type": "TRANSFORM", "config": {"operators": [
        {"op": "set", "args": {"path": "n", "value": 1}}]}})
    d["steps"] = [s for s in d["steps"] if s["key"] != "out"] + [{"key": "out2", "type": "SINK",
                                                                   "adapterCode": "records", "config": {}}]
    review = reviews.submit_definition(reviewed, alice, d, "several")
    assert reviews.changes(review) == ["step 'count' added", "step 'out2' added", "step 'out' removed",
                                       "step 'clean' changed", "settings: name"]

"""The review pages: what waits, one submission with its diff and the decision, the history; who may decide,
and what a wrong decision is told."""

import re

import pytest

from pipelines import drafts, reviews
from pipelines.models import Pipeline, ReviewStatus
from pipelines.services import save_definition
from tests.fixtures import simple_definition
from tests.web.conftest import _client, form_data, htmx

pytestmark = pytest.mark.django_db


@pytest.fixture
def as_rita(rita):
    return _client(rita)


@pytest.fixture
def submitted(db, alice):
    """alice's change of 'simple' (which requires review), waiting for review."""
    pipeline = save_definition(simple_definition("simple"), message="created")
    Pipeline.objects.filter(pk=pipeline.pk).update(requires_review=True)
    pipeline.refresh_from_db()
    d = simple_definition("simple")
    d["steps"][1]["config"]["operators"][0]["args"]["path"] = "title<b>"
    drafts.save_draft(pipeline, alice, d)
    return reviews.submit(pipeline, alice, "trim the <title>")


def test_a_reviewer_sees_what_waits_and_the_diff(as_rita, submitted):
    queue = as_rita.get("/reviews/").content.decode()
    assert f'data-review="{submitted.pk}"' in queue and "trim the &lt;title&gt;" in queue
    page = as_rita.get(f"/reviews/{submitted.pk}/").content.decode()
    assert 'id="approve"' in page and 'id="reject"' in page
    assert '<span class="add">+              &quot;path&quot;: &quot;title&lt;b&gt;&quot;</span>' in page  # escaped
    assert "compared with revision 1, the published one" in page


def test_rejecting_needs_a_comment_then_sends_it_back(as_rita, as_alice, submitted):
    response = as_rita.post(f"/reviews/{submitted.pk}/reject/", {"comment": "  "})
    assert response.status_code == 400
    assert "a rejection needs a comment" in response.content.decode()
    response = as_rita.post(f"/reviews/{submitted.pk}/reject/", {"comment": "Use <name> instead."}, follow=True)
    page = response.content.decode()
    assert "Rejected: the change went back to its author" in page and "Use &lt;name&gt; instead." in page
    again = as_rita.post(f"/reviews/{submitted.pk}/reject/", {"comment": "again"})
    assert again.status_code == 409 and "already rejected by rita" in again.content.decode()
    history = as_alice.get("/pipelines/simple/reviews/").content.decode()
    assert 'data-status="REJECTED"' in history and "Use &lt;name&gt; instead." in history


def test_approving_publishes(as_rita, submitted, alice):
    response = as_rita.post(f"/reviews/{submitted.pk}/approve/", {"comment": "fine", "_action": "approve"}, follow=True)
    page = response.content.decode()
    assert "Approved: published as revision 2." in page
    assert "compared with revision 1, the one it changed" in page and "&quot;title&lt;b&gt;&quot;" in page
    revision = Pipeline.objects.get(code="simple").current_revision
    assert revision.number == 2 and revision.created_by == alice and revision.review.decided_by.username == "rita"


def test_who_may_decide(as_alice, as_bob, as_charlie, as_rita, submitted):
    own = as_alice.get(f"/reviews/{submitted.pk}/").content.decode()
    assert 'id="review-own"' in own and 'id="approve"' not in own
    assert as_alice.post(f"/reviews/{submitted.pk}/approve/").status_code == 403  # no review permission
    assert as_bob.post(f"/reviews/{submitted.pk}/reject/", {"comment": "x"}).status_code == 403
    assert as_charlie.get(f"/reviews/{submitted.pk}/").status_code == 403
    assert as_rita.get("/reviews/999/").status_code == 404
    assert as_rita.post("/reviews/999/approve/").status_code == 404
    submitted.pipeline.owners.add(submitted.author)  # now only alice's: rita does not find it
    assert as_rita.get(f"/reviews/{submitted.pk}/").status_code == 404
    assert as_rita.post(f"/reviews/{submitted.pk}/approve/").status_code == 404
    assert reviews.get_review(submitted.pk, submitted.author).status == ReviewStatus.PENDING


def test_approving_from_a_stale_base_offers_merge_or_overwrite(as_rita, submitted):
    Pipeline.objects.filter(code="simple").update(requires_review=False)
    theirs = simple_definition("simple")
    theirs["steps"][0]["name"] = "Their source"
    save_definition(theirs, message="theirs")
    page = as_rita.get(f"/reviews/{submitted.pk}/").content.decode()
    assert 'id="review-stale-note"' in page
    response = as_rita.post(f"/reviews/{submitted.pk}/approve/", {"_action": "approve", "comment": "ok"})
    page = response.content.decode()
    assert response.status_code == 409 and "Revision 2 was published after this change began" in page
    assert "Their source" in page and 'id="approve-merge"' in page and 'id="approve-overwrite"' in page
    response = as_rita.post(f"/reviews/{submitted.pk}/approve/", {"_action": "merge", "comment": "ok"}, follow=True)
    assert "Approved: published as revision 3." in response.content.decode()
    assert Pipeline.objects.get(code="simple").current_revision.definition["steps"][0]["name"] == "Their source"


def test_publish_submits_when_review_is_required_and_the_editor_says_so(as_alice, as_rita, alice, rita):
    save_definition(simple_definition("simple"), message="created")
    page = as_alice.get("/pipelines/simple/").content.decode()
    assert 'id="requires-review"' in page and ">Publish</button>" in page
    data = form_data(page, "settings-form", requires_review="1")
    assert as_alice.post("/pipelines/simple/draft/settings/", data, **htmx()).status_code == 200
    assert Pipeline.objects.get(code="simple").requires_review is True
    page = as_alice.get("/pipelines/simple/").content.decode()
    assert ">Submit for review</button>" in page
    d = simple_definition("simple")
    d["steps"][1]["config"]["operators"][0]["args"]["path"] = "title"
    drafts.save_draft(Pipeline.objects.get(code="simple"), alice, d)
    response = as_alice.post("/pipelines/simple/publish/", {"message": "use the title"}, follow=True)
    page = response.content.decode()
    assert "Submitted for review (submission" in page and 'id="review-note"' in page and "Waiting for review" in page
    assert Pipeline.objects.get(code="simple").current_revision.number == 1
    review = Pipeline.objects.get(code="simple").reviews.get()
    assert as_rita.get("/pipelines/simple/").content.decode().count('id="review-waiting"') == 1
    reviews.reject(review.pk, rita, "Say why in the message.")
    page = as_alice.get("/pipelines/simple/").content.decode()
    assert 'id="review-rejection"' in page and "Say why in the message." in page
    # a settings form without the box (an older page) leaves review on
    data = form_data(page, "settings-form")
    data.pop("requires_review_shown", None)
    data.pop("requires_review", None)
    as_alice.post("/pipelines/simple/draft/settings/", data, **htmx())
    assert Pipeline.objects.get(code="simple").requires_review is True
    # alice may change the pipeline but not turn its review off: her box is shown disabled and not sent, and a
    # request that sends it anyway is refused
    page = as_alice.get("/pipelines/simple/").content.decode()
    assert "Only a reviewer of this pipeline may turn it off." in page and 'name="requires_review_shown"' not in page
    data = form_data(page, "settings-form", requires_review=None)
    data["requires_review_shown"] = "1"
    assert as_alice.post("/pipelines/simple/draft/settings/", data, **htmx()).status_code == 403
    assert Pipeline.objects.get(code="simple").requires_review is True
    # rita, a reviewer, may
    data = form_data(as_rita.get("/pipelines/simple/").content.decode(), "settings-form", requires_review=None)
    as_rita.post("/pipelines/simple/draft/settings/", data, **htmx())
    assert Pipeline.objects.get(code="simple").requires_review is False


def test_submitting_a_stale_draft_is_refused_like_publishing(as_alice, alice):
    pipeline = save_definition(simple_definition("simple"), message="created")
    Pipeline.objects.filter(pk=pipeline.pk).update(requires_review=True)
    pipeline.refresh_from_db()
    d = simple_definition("simple")
    d["steps"][1]["config"]["operators"][0]["args"]["path"] = "title"
    drafts.save_draft(pipeline, alice, d)
    theirs = simple_definition("simple")
    theirs["steps"][0]["name"] = "Their source"
    save_definition(theirs, code="simple", message="theirs (an operator's import)")
    response = as_alice.post("/pipelines/simple/publish/", {"message": "title"}, follow=True)
    page = response.content.decode()
    assert "Nothing was submitted." in page and "Submit my draft for review over revision 2" in page
    assert not Pipeline.objects.get(code="simple").reviews.exists()
    as_alice.post("/pipelines/simple/publish/", {"message": "title", "_action": "overwrite"})
    review = Pipeline.objects.get(code="simple").reviews.get()
    assert review.base_revision.number == 2  # a change of what is published now: its diff shows what it undoes
    page = as_alice.get(f"/reviews/{review.pk}/").content.decode()
    assert re.search(r'<span class="del">-\s+&quot;name&quot;: &quot;Their source&quot;', page)

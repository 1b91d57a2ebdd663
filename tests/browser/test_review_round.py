"""A review round as two people do it: the author submits in one browser, the reviewer in another sees the
diff and rejects with a comment, the author reads it, fixes and submits again, the reviewer approves; the
revision is published as the author's, and the history shows every step with its comment."""

from playwright.sync_api import expect

from pipelines import drafts, reviews
from pipelines.models import Pipeline, ReviewStatus
from pipelines.services import definition_of, save_definition
from tests.browser.conftest import log_in
from tests.fixtures import simple_definition


def test_it_runs_a_review_round_between_two_people(page, shoot, alice, rita):
    save_definition(simple_definition("simple"), message="created")
    Pipeline.objects.filter(code="simple").update(requires_review=True)
    page.on("dialog", lambda d: d.accept())  # leaving with an unpublished draft asks first
    log_in(page, "alice")
    page.goto("/pipelines/simple/")
    expect(page.locator("#publish")).to_have_text("Submit for review")
    expect(page.locator("#requires-review")).to_be_checked()

    # alice changes a step and submits it
    page.click("#card-clean > summary")
    page.fill("#step-clean #f-config-operators-0-args-path", "title")
    expect(page.locator("#step-clean .autosave-status")).to_have_text("Saved in your draft.")
    page.fill("#publish-message", "Trim the title, not the sku")
    page.click("#publish")
    expect(page.locator(".message.success", has_text="Submitted for review")).to_be_visible()
    expect(page.locator("#review-note")).to_contain_text("Waiting for review")
    shoot(page, "author-submitted")

    # rita, in another browser, finds it waiting, reads the diff and rejects it with a comment
    reviewer = page.context.browser.new_context(viewport={"width": 1440, "height": 1000},
                                                base_url=page.url.split("/pipelines/")[0])
    rita_page = reviewer.new_page()
    log_in(rita_page, "rita")
    rita_page.click("nav >> text=Reviews")
    expect(rita_page.locator("#pending-reviews tbody tr")).to_have_count(1)
    expect(rita_page.locator("#pending-reviews")).to_contain_text("Trim the title, not the sku")
    shoot(rita_page, "reviewer-queue")
    rita_page.click("#pending-reviews >> text=Review")
    expect(rita_page.locator("#review-changes-list")).to_have_text("step 'clean' changed")
    expect(rita_page.locator("#review-diff .add")).to_contain_text(['"path": "title"'])
    expect(rita_page.locator("#review-diff .del")).to_contain_text(['"path": "sku"'])
    shoot(rita_page, "reviewer-sees-the-diff")
    rita_page.click("#reject")  # without a comment: the browser asks for one (required), nothing is sent
    expect(rita_page.locator("#review-status")).to_have_text("waiting for review")
    rita_page.fill("#reject-comment", "Also name the source step 'Products', so the run page says what it reads.")
    rita_page.click("#reject")
    expect(rita_page.locator(".message.success", has_text="Rejected")).to_be_visible()
    expect(rita_page.locator("#review-status")).to_have_text("rejected")
    shoot(rita_page, "reviewer-rejected")

    # alice sees the rejection with its comment, fixes her draft and submits again
    page.reload()
    expect(page.locator("#review-note")).to_contain_text("rita rejected “Trim the title, not the sku”")
    expect(page.locator("#review-rejection")).to_have_text(
        "Also name the source step 'Products', so the run page says what it reads.")
    shoot(page, "author-sees-the-rejection")
    page.click("#card-src > summary")
    page.fill("#step-src #f-name", "Products")
    expect(page.locator("#step-src .autosave-status")).to_have_text("Saved in your draft.")
    page.fill("#publish-message", "Trim the title; the source is named Products")
    page.click("#publish")
    expect(page.locator(".message.success", has_text="Submitted for review")).to_be_visible()
    expect(page.locator("#review-note")).to_contain_text("Waiting for review")

    # rita approves the second submission: it is published
    rita_page.click("nav >> text=Reviews")
    expect(rita_page.locator("#pending-reviews")).to_contain_text("the source is named Products")
    rita_page.click("#pending-reviews >> text=Review")
    expect(rita_page.locator("#review-diff .add")).to_contain_text(['"name": "Products",', '"path": "title"'])
    rita_page.fill("#approve-comment", "Good, thanks.")
    rita_page.click("#approve")
    expect(rita_page.locator(".message.success", has_text="Approved: published as revision 2.")).to_be_visible()
    shoot(rita_page, "reviewer-approved")
    reviewer.close()

    # alice: revision 2 is hers, approved by rita; the history shows the whole round
    page.reload()
    expect(page.locator("#review-note")).to_have_count(0)
    expect(page.locator("#revisions li.current .meta")).to_contain_text("alice · approved by rita")
    page.click("#review-history-link")
    history = page.locator("#review-history > li")
    expect(history).to_have_count(2)
    expect(history.nth(0)).to_contain_text("approved · r2")
    expect(history.nth(0)).to_contain_text("Approved by rita")
    expect(history.nth(0)).to_contain_text("Good, thanks.")
    expect(history.nth(1)).to_contain_text("Submitted by alice")
    expect(history.nth(1)).to_contain_text("Rejected by rita")
    expect(history.nth(1)).to_contain_text("Also name the source step 'Products'")
    shoot(page, "history")

    pipeline = Pipeline.objects.get(code="simple")
    published = definition_of(pipeline)
    assert published["steps"][0]["name"] == "Products"
    assert published["steps"][1]["config"]["operators"][0]["args"] == {"path": "title"}
    assert (pipeline.current_revision.number, pipeline.current_revision.created_by) == (2, alice)
    assert [r.status for r in pipeline.reviews.order_by("pk")] == [ReviewStatus.REJECTED, ReviewStatus.APPROVED]


def test_it_refuses_a_stale_approval_and_merges_on_purpose(page, shoot, alice, rita, django_user_model):
    save_definition(simple_definition("simple"), message="created")
    Pipeline.objects.filter(code="simple").update(requires_review=True)
    pipeline = Pipeline.objects.get(code="simple")
    mine = simple_definition("simple")
    mine["steps"][1]["config"]["operators"][0]["args"]["path"] = "title"
    drafts.save_draft(pipeline, alice, mine)
    waiting = reviews.submit(pipeline, alice, "Trim the title")
    # meanwhile dora's change of another step is approved first
    dora = django_user_model.objects.create_user("dora")
    theirs = simple_definition("simple")
    theirs["steps"][0]["name"] = "Dora's source"
    drafts.save_draft(pipeline, dora, theirs)
    reviews.approve(reviews.submit(pipeline, dora, "Name the source").pk, rita)

    log_in(page, "rita")
    page.goto(f"/reviews/{waiting.pk}/")
    expect(page.locator("#review-stale-note")).to_contain_text("Revision 2 was published after this change began")
    page.fill("#approve-comment", "Fine")
    page.click("#approve")
    expect(page.locator("#review-stale h3").first).to_contain_text(
        "Revision 2 was published after this change began (from revision 1)")
    expect(page.locator("#theirs-diff .add")).to_contain_text(['"name": "Dora\'s source",'])
    shoot(page, "stale-refused")
    page.click("#approve-merge")
    expect(page.locator(".message.success", has_text="Approved: published as revision 3.")).to_be_visible()
    published = definition_of(Pipeline.objects.get(code="simple"))
    assert published["steps"][0]["name"] == "Dora's source"
    assert published["steps"][1]["config"]["operators"][0]["args"] == {"path": "title"}

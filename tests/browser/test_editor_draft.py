"""No lost work, as a person sees it: what is typed is saved into the draft while typing, a reload shows it
again, saving one card leaves another card's typing alone, leaving with an unpublished draft asks first,
and two people editing one pipeline cannot publish over each other by accident."""

from django.contrib.auth.models import Permission
from playwright.sync_api import expect

from pipelines.models import Pipeline
from pipelines.services import definition_of, save_definition
from tests.browser.conftest import log_in
from tests.conftest import PASSWORD, PERMISSIONS
from tests.fixtures import simple_definition


def test_it_loses_nothing_on_reload_or_on_saving_another_card(page, shoot, alice):
    save_definition(simple_definition("simple"), message="created")
    log_in(page, "alice")
    page.goto("/pipelines/simple/")
    page.click("#card-clean > summary")
    page.click("#card-src > summary")
    page.fill("#step-clean #f-config-operators-0-args-path", "title")
    expect(page.locator("#step-clean .autosave-status")).to_have_text("Saved in your draft.")
    expect(page.locator("#draft-status")).to_have_attribute("data-dirty", "1")

    # typing in one card, then saving another: the typing stays, and is in the draft
    page.fill("#step-src #f-name", "Source, typed")
    page.click("#step-clean button:has-text('Save step')")
    expect(page.locator("#card-clean .message.success")).to_have_text("Saved step clean to your draft.")
    expect(page.locator("#step-src #f-name")).to_have_value("Source, typed")
    page.click("#step-src summary:has-text('Advanced')")
    page.fill("#step-src #f-retries", "three")  # not a number: kept as typed
    expect(page.locator("#step-src .autosave-status")).to_contain_text("Kept in your draft as typed")
    shoot(page, "typed")

    # a reload: the browser asks first, then everything typed is back
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.type), d.accept()))
    page.reload()
    assert dialogs == ["beforeunload"]
    expect(page.locator("#step-clean #f-config-operators-0-args-path")).to_have_value("title")
    expect(page.locator("#step-src #f-name")).to_have_value("Source, typed")
    expect(page.locator("#step-src #f-retries")).to_have_value("three")
    expect(page.locator("#card-src .field-errors").first).to_contain_text("enter a whole number")
    shoot(page, "after-reload")

    # publishing refuses while a field is wrong, naming it; fixed, one revision holds it all
    page.fill("#publish-message", "title and a name")
    page.click("#publish")
    expect(page.locator("#publish-problems")).to_contain_text("step 'src', retries: enter a whole number")
    page.fill("#step-src #f-retries", "2")
    expect(page.locator("#step-src .autosave-status")).to_have_text("Saved in your draft.")
    page.click("#publish")
    expect(page.locator(".message.success", has_text="Published revision 2.")).to_be_visible()
    published = definition_of(Pipeline.objects.get(code="simple"))
    assert published["steps"][0]["name"] == "Source, typed" and published["steps"][0]["retries"] == 2
    assert published["steps"][1]["config"]["operators"][0]["args"] == {"path": "title"}
    assert Pipeline.objects.get(code="simple").revisions.count() == 2


def test_it_lets_two_people_edit_one_pipeline_without_overwriting(page, shoot, alice, django_user_model):
    dora = django_user_model.objects.create_user("dora", password=PASSWORD)
    for perm in PERMISSIONS["alice"]:
        app, codename = perm.split(".")
        dora.user_permissions.add(Permission.objects.get(content_type__app_label=app, codename=codename))
    save_definition(simple_definition("simple"), message="created")
    other = page.context.browser.new_context(viewport={"width": 1440, "height": 1000},
                                             base_url=page.url or None)
    log_in(page, "alice")
    page.goto("/pipelines/simple/")
    page.click("#card-clean > summary")
    page.fill("#step-clean #f-config-operators-0-args-path", "title")
    expect(page.locator("#step-clean .autosave-status")).to_have_text("Saved in your draft.")

    # dora, in another browser, changes another step and publishes first
    dora_page = other.new_page()
    dora_page.goto(page.url.split("/pipelines/")[0] + "/accounts/login/")
    dora_page.fill("#id_username", "dora")
    dora_page.fill("#id_password", PASSWORD)
    dora_page.click("button[type=submit]")
    dora_page.wait_for_url("**/")
    dora_page.goto(page.url)
    dora_page.click("#card-src > summary")
    dora_page.fill("#step-src #f-name", "Dora's source")
    expect(dora_page.locator("#step-src .autosave-status")).to_have_text("Saved in your draft.")
    dora_page.fill("#publish-message", "dora's name")
    dora_page.click("#publish")
    expect(dora_page.locator(".message.success", has_text="Published revision 2.")).to_be_visible()
    other.close()

    # alice publishes from revision 1: refused, with what changed, then merged on purpose
    page.fill("#publish-message", "title")
    page.click("#publish")
    expect(page.locator("#stale h2")).to_contain_text("Revision 2 was published after your draft began")
    expect(page.locator("#theirs-diff")).to_contain_text("Dora's source")
    shoot(page, "stale")
    # the refusal was answered with a redirect: reloading shows the editor again and posts nothing
    assert page.url.endswith("/pipelines/simple/#stale")
    page.on("dialog", lambda d: d.accept())  # the unpublished draft makes the browser ask before leaving
    page.reload()
    expect(page.locator("#draft-status")).to_contain_text("Revision 2 was published since.")
    expect(page.locator("#stale")).to_have_count(0)
    assert Pipeline.objects.get(code="simple").revisions.count() == 2
    page.fill("#publish-message", "title")
    page.click("#publish")
    expect(page.locator("#stale h2")).to_contain_text("Revision 2 was published after your draft began")
    page.click("#merge-draft")
    expect(page.locator(".message.success", has_text="Merged revision 2 into your draft.")).to_be_visible()
    page.fill("#publish-message", "title, after dora")
    page.click("#publish")
    expect(page.locator(".message.success", has_text="Published revision 3.")).to_be_visible()
    published = definition_of(Pipeline.objects.get(code="simple"))
    assert published["steps"][0]["name"] == "Dora's source"
    assert published["steps"][1]["config"]["operators"][0]["args"] == {"path": "title"}

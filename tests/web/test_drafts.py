"""The editor's draft: saved as one types, kept as typed across a reload, published as one revision with a
message, and never published over a newer revision by accident (merge or overwrite, on purpose)."""

import pytest
from django.contrib.auth.models import Permission

from pipelines.drafts import three_way
from pipelines.models import Pipeline, PipelineDraft
from pipelines.services import definition_of, save_definition
from tests.conftest import PERMISSIONS
from tests.fixtures import simple_definition
from tests.web.conftest import _client, csrf_token, form_data, htmx, working

pytestmark = pytest.mark.django_db


def editor(client, code="simple"):
    return client.get(f"/pipelines/{code}/").content.decode()


def autosave(client, step, **changes):
    data = form_data(editor(client), f"step-{step}", **changes)
    return client.post(f"/pipelines/simple/draft/steps/{step}/", data, **htmx())


@pytest.fixture
def dora(django_user_model):
    """A second person who may edit pipelines, like alice."""
    user = django_user_model.objects.create_user("dora", password="correct-horse-battery")
    for perm in PERMISSIONS["alice"]:
        app, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app, codename=codename))
    return _client(user)


def test_it_autosaves_valid_typing_into_the_draft_only(as_alice, pipeline):
    response = autosave(as_alice, "clean", **{"config.operators.0.args.path": "title"})
    html = response.content.decode()
    assert response.status_code == 200 and "HX-Retarget" not in response  # swapped into the status element
    assert html.startswith("Saved in your draft.")
    assert 'id="graph-box" hx-swap-oob="true"' in html and 'id="draft-status" class="draft-status is-dirty"' in html
    assert working("simple")["steps"][1]["config"]["operators"][0]["args"] == {"path": "title"}
    assert definition_of(Pipeline.objects.get(code="simple"))["steps"][1]["config"]["operators"][0]["args"] == {
        "path": "sku"}  # the published pipeline is untouched
    assert Pipeline.objects.get(code="simple").revisions.count() == 1


def test_it_keeps_invalid_typing_as_typed_across_a_reload(as_alice, pipeline):
    html = autosave(as_alice, "clean", retries="three", **{"config.operators.0.args.path": "title"}).content.decode()
    assert "Kept in your draft as typed" in html and "step &#x27;clean&#x27;, retries: enter a whole number" in html
    page = editor(as_alice)  # a reload
    card = page.split('id="card-clean"')[1].split('id="card-out"')[0]
    assert 'value="three"' in card and 'value="title"' in card and "enter a whole number" in card
    assert " open" in page.split('id="card-clean"')[1][:20]  # the card with the problem is open
    assert 'data-dirty="1"' in page


def test_it_saves_one_card_without_touching_another_cards_typing(as_alice, pipeline):
    autosave(as_alice, "src", **{"config.data": "[{oops"})  # typed into another card, not valid yet
    data = form_data(editor(as_alice), "step-clean", **{"config.operators.0.args.path": "name"})
    html = as_alice.post("/pipelines/simple/steps/clean/", {**data, "_action": "save"}, **htmx()).content.decode()
    assert "Saved step clean to your draft." in html and 'id="card-src"' not in html
    assert "[{oops" in editor(as_alice)  # still there, as typed
    assert working("simple")["steps"][1]["config"]["operators"][0]["args"] == {"path": "name"}


def test_it_publishes_many_changes_as_one_revision_with_a_message(as_alice, pipeline):
    autosave(as_alice, "clean", **{"config.operators.0.args.path": "title"})
    autosave(as_alice, "src", name="Source")
    as_alice.post("/pipelines/simple/steps/out/remove/", **htmx())
    response = as_alice.post("/pipelines/simple/publish/", {"message": "title, not sku", "_action": "publish"})
    assert response.status_code == 302
    p = Pipeline.objects.get(code="simple")
    assert (p.current_revision.number, p.current_revision.message) == (2, "title, not sku")
    assert p.current_revision.created_by.username == "alice"
    assert [s["key"] for s in definition_of(p)["steps"]] == ["src", "clean"]
    assert not PipelineDraft.objects.exists()
    assert 'data-dirty="0"' in editor(as_alice)


def test_it_refuses_to_publish_with_every_problem_at_its_field(as_alice, pipeline):
    autosave(as_alice, "clean", **{"config.operators.0.args.path": None})
    autosave(as_alice, "src", retries="many")
    response = as_alice.post("/pipelines/simple/publish/", {"message": "x", "_action": "publish"})
    # POST/redirect/GET: the refusal is shown by the page it redirects to, so a reload posts nothing again
    assert response.status_code == 302 and response["Location"] == "/pipelines/simple/#publish-problems"
    html = as_alice.get(response["Location"]).content.decode()
    assert "Fix 2 problems" in html
    problems = html.split('id="publish-problems"')[1].split("</div>")[0]
    assert "step &#x27;clean&#x27;, config.operators.0.args.path: is required" in problems
    assert "step &#x27;src&#x27;, retries: enter a whole number" in problems
    assert "is required" in html.split('name="config.operators.0.args.path"')[1].split("</div>")[0]
    assert 'id="publish-message" maxlength="500" placeholder="What changed (for the revision history)" ' \
           'aria-label="Revision message" value="x"' in html  # the message typed is kept
    assert Pipeline.objects.get(code="simple").revisions.count() == 1
    # shown once: the next page (a reload) has no refusal, and the field problems stay at their fields
    again = editor(as_alice)
    assert 'id="publish-problems"' not in again and "enter a whole number" in again


def test_it_publishes_typed_input_that_became_valid(as_alice, pipeline):
    autosave(as_alice, "clean", key="tidy")  # a new key waits for Save step, kept as typed
    assert working("simple")["steps"][1]["key"] == "clean"
    as_alice.post("/pipelines/simple/publish/", {"message": "renamed", "_action": "publish"})
    assert [s["key"] for s in definition_of(Pipeline.objects.get(code="simple"))["steps"]] == ["src", "tidy", "out"]


def test_it_refuses_a_stale_draft_with_the_diff_then_merges(as_alice, dora, pipeline):
    autosave(as_alice, "clean", **{"config.operators.0.args.path": "title"})
    # dora publishes a change to another step meanwhile
    data = form_data(editor(dora), "step-src", name="Dora's source")
    dora.post("/pipelines/simple/steps/src/", {**data, "_action": "save"})
    dora.post("/pipelines/simple/publish/", {"message": "dora", "_action": "publish"})
    assert Pipeline.objects.get(code="simple").current_revision.number == 2
    assert "Revision 2 was published since." in editor(as_alice)

    response = as_alice.post("/pipelines/simple/publish/", {"message": "mine", "_action": "publish"})
    assert response.status_code == 302 and response["Location"] == "/pipelines/simple/#stale"
    html = as_alice.get(response["Location"]).content.decode()
    assert "Revision 2 was published after your draft began" in html
    theirs = html.split('id="theirs-diff"')[1].split("</pre>")[0]
    assert "Dora&#x27;s source" in theirs
    assert "title" in html.split('id="mine-diff"')[1].split("</pre>")[0]
    assert '<input type="hidden" name="message" value="mine">' in html  # for "publish over it"
    assert Pipeline.objects.get(code="simple").current_revision.number == 2
    assert 'id="stale"' not in editor(as_alice)  # a reload shows the editor, publishes nothing

    as_alice.post("/pipelines/simple/publish/", {"_action": "merge"})
    merged = working("simple")
    assert merged["steps"][0]["name"] == "Dora's source"
    assert merged["steps"][1]["config"]["operators"][0]["args"] == {"path": "title"}
    assert as_alice.post("/pipelines/simple/publish/", {"message": "both", "_action": "publish"}).status_code == 302
    published = definition_of(Pipeline.objects.get(code="simple"))
    assert published["steps"][0]["name"] == "Dora's source"
    assert published["steps"][1]["config"]["operators"][0]["args"] == {"path": "title"}


def test_it_overwrites_a_newer_revision_only_when_asked(as_alice, pipeline):
    autosave(as_alice, "src", name="Alice's")
    save_definition(simple_definition("simple", records=[{"sku": "theirs"}]), message="someone else")
    as_alice.post("/pipelines/simple/publish/", {"message": "mine", "_action": "overwrite"})
    p = Pipeline.objects.get(code="simple")
    assert (p.current_revision.number, p.current_revision.message) == (3, "mine")
    assert definition_of(p)["steps"][0]["config"]["data"] == [{"sku": " a "}, {"sku": "b"}]


def test_it_discards_the_draft(as_alice, pipeline):
    autosave(as_alice, "src", name="Gone soon")
    as_alice.post("/pipelines/simple/draft/discard/")
    assert not PipelineDraft.objects.exists() and working("simple")["steps"][0].get("name") is None


def test_each_person_has_their_own_draft(as_alice, dora, pipeline):
    autosave(as_alice, "src", name="Alice's")
    assert "Alice&#x27;s" not in editor(dora) and "Alice&#x27;s" in editor(as_alice)


def test_it_lets_a_viewer_look_but_not_save_a_draft(as_bob, pipeline):
    page = editor(as_bob)
    assert "data-autosave" not in page and 'id="publish"' not in page
    assert as_bob.post("/pipelines/simple/draft/steps/src/", {"key": "src"}).status_code == 403
    assert as_bob.post("/pipelines/simple/publish/", {}).status_code == 403


def test_it_enforces_csrf_on_the_autosave(csrf_alice, pipeline):
    assert csrf_alice.post("/pipelines/simple/draft/steps/src/", {"key": "src"}).status_code == 403
    token = csrf_token(csrf_alice, "/pipelines/simple/")
    response = csrf_alice.post("/pipelines/simple/draft/steps/src/", {"key": "src", "csrfmiddlewaretoken": token,
                                                                      "adapterCode": "inMemory"})
    assert response.status_code == 200


def test_it_answers_404_for_an_unknown_step(as_alice, pipeline):
    assert as_alice.post("/pipelines/simple/draft/steps/nope/", {"key": "nope"}).status_code == 404


def test_three_way_merge_takes_each_sides_changes_and_names_conflicts():
    base = simple_definition("m")
    theirs = simple_definition("m")
    mine = simple_definition("m")
    theirs["steps"][0]["name"] = "theirs"
    theirs["steps"].append({"key": "extra", "type": "SINK", "adapterCode": "records", "config": {}})
    mine["steps"][1]["config"] = {"operators": []}
    mine["name"] = "Mine"
    result = three_way(base, theirs, mine)
    assert result.conflicts == []
    assert [s["key"] for s in result.definition["steps"]] == ["src", "clean", "out", "extra"]
    assert result.definition["steps"][0]["name"] == "theirs" and result.definition["name"] == "Mine"
    assert result.definition["steps"][1]["config"] == {"operators": []}
    mine["steps"][0]["name"] = "mine"
    result = three_way(base, theirs, mine)
    assert result.conflicts == ["step 'src' was changed in both"] and result.definition["steps"][0]["name"] == "mine"

"""The editor's step views: save a card, autosave it as typed, add a step, move or remove one."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods, require_POST

from pipelines import access, drafts, editing
from pipelines.definition import STEP_TYPES
from pipelines.errors import DefinitionError
from pipelines.forms.reading import strip_missing
from pipelines.forms.step import StepForm, new_step, read_step, step_problems
from pipelines.models import Pipeline
from pipelines.views.attempts import post_pairs, try_step, working
from pipelines.views.common import can_change
from pipelines.views.workspace import (
    autosaved,
    card_response,
    editor_context,
    refused,
    save_to_draft,
    simple_change,
    workspace_response,
)


def _container(step: dict, path: str, *, create: bool = False) -> Any:
    node: Any = step
    for part in path.split("."):
        if isinstance(node, list):
            try:
                node = node[int(part)]
            except (ValueError, IndexError):
                return None
        elif isinstance(node, dict):
            if part not in node and create:
                node[part] = []
            node = node.get(part)
        else:
            return None
    return node


def _apply_action(step: dict, action: str, post) -> dict:
    """A button inside a step form that changes the form, not the pipeline: add, move or remove an item."""
    verb, _, path = action.partition(":")
    if verb == "add":
        items = _container(step, path, create=True)
        if isinstance(items, list):
            if path.endswith("operators"):
                items.append({"op": post.get(f"_add_op:{path}", ""), "args": {}})
            else:
                items.append({})
    elif verb in ("up", "down", "remove"):
        parent_path, _, index = path.rpartition(".")
        items = _container(step, parent_path)
        if isinstance(items, list) and index.isdigit():
            i = int(index)
            if verb == "remove":
                new = editing.list_remove(items, i)
            else:
                new = editing.list_move(items, i, -1 if verb == "up" else 1)
            items[:] = new
    return step


def _step_from_post(request: HttpRequest, step_type: str) -> tuple[dict, dict, str]:
    if step_type not in STEP_TYPES:
        raise Http404("unknown step type")
    step, errors = read_step(request.POST, step_type)
    action = request.POST.get("_action", "save") or "save"
    if action != "save":
        step = _apply_action(step, action, request.POST)
    return step, dict(errors), action


def _working_step(request: HttpRequest, pipeline: Pipeline, key: str) -> tuple[dict, dict]:
    definition, _ = working(request, pipeline)
    try:
        return definition, editing.find_step(definition, key)
    except editing.EditError:
        raise Http404("no such step") from None


@require_POST
@can_change
def step_save(request: HttpRequest, code: str, key: str) -> HttpResponse:
    """Save step: the card's input into the draft (or kept as typed, with its problems at their fields)."""
    pipeline = access.get_or_404(request.user, Pipeline.objects, code=code)
    definition, previous = _working_step(request, pipeline, key)
    action = request.POST.get("_action", "save") or "save"
    if action != "save":
        step, _, _ = _step_from_post(request, previous["type"])
        form = StepForm(step, original_key=key, open=True)
        if request.htmx:
            return card_response(request, pipeline, key, form)
        return render(request, "pipelines/editor.html", editor_context(request, pipeline, step_forms={key: form}))
    attempt = try_step(definition, key, request.POST)
    if attempt.changed is None:
        drafts.save_draft(pipeline, request.user, pending={f"step:{key}": post_pairs(request.POST)})
        if request.htmx:
            return card_response(request, pipeline, key, attempt.form)
        return render(request, "pipelines/editor.html",
                      editor_context(request, pipeline, step_forms={key: attempt.form}), status=400)
    drafts.save_draft(pipeline, request.user, attempt.changed, pending={f"step:{key}": None})
    flash = f"Saved step {attempt.new_key} to your draft."
    if request.htmx:
        return card_response(request, pipeline, attempt.new_key, attempt.form, flash=flash, target_key=key)
    return workspace_response(request, pipeline, open_step=attempt.new_key, flash=flash)


@can_change
def step_autosave(request: HttpRequest, code: str, key: str) -> HttpResponse:
    """What a step card holds, saved as the person types (debounced). Valid input goes into the draft; the
    rest is kept as typed. A new key waits for Save step, so the card keeps posting to the key it shows."""
    pipeline = access.get_or_404(request.user, Pipeline.objects, code=code)
    definition, _ = _working_step(request, pipeline, key)
    attempt = try_step(definition, key, request.POST)
    if attempt.changed is not None and attempt.new_key == key:
        drafts.save_draft(pipeline, request.user, attempt.changed, pending={f"step:{key}": None})
        return autosaved(request, pipeline, "Saved in your draft.", [])
    drafts.save_draft(pipeline, request.user, pending={f"step:{key}": post_pairs(request.POST)})
    if attempt.changed is not None:
        return autosaved(request, pipeline, f"Kept in your draft; the new key '{attempt.new_key}' takes effect "
                                             "when you press Save step.", [])
    return autosaved(request, pipeline, "Kept in your draft as typed; fix before publishing:", attempt.problems)


@require_http_methods(["GET", "POST"])
@can_change
def step_new(request: HttpRequest, code: str) -> HttpResponse:
    pipeline = access.get_or_404(request.user, Pipeline.objects, code=code)
    definition, _ = working(request, pipeline)
    if request.method == "GET":
        step_type = request.GET.get("type", "")
        if step_type not in STEP_TYPES:
            raise Http404("unknown step type")
        adapter = request.GET.get("adapter") or None
        op = request.GET.get("op") or None
        key = editing.unique_key(definition, op or adapter or step_type.lower())
        form = StepForm(new_step(step_type, adapter=adapter, op=op, key=key), is_new=True, open=True)
        context = editor_context(request, pipeline, new_form=form)
        context["form"] = form
        if request.htmx:
            return render(request, "pipelines/editor.html#new-step", context)
        return render(request, "pipelines/editor.html", context)

    step, errors, action = _step_from_post(request, request.POST.get("type", ""))
    connect = {"from": request.POST.get("_connect_from", ""), "branch": request.POST.get("_branch", "").strip(),
               "to": request.POST.get("_connect_to", "")}
    if action != "save" or errors:
        form = StepForm(step, is_new=True, open=True, field_errors=errors if action == "save" else {})
        form.connect = connect
        return refused(request, pipeline, "new-step", "#new-step", new_form=form)
    try:
        changed = editing.add_step(definition, strip_missing(step), connect_from=connect["from"] or None,
                                   branch=connect["branch"] or None, connect_to=connect["to"] or None)
        save_to_draft(changed, pipeline, request)
    except (DefinitionError, editing.EditError) as exc:
        problems = exc.problems if isinstance(exc, DefinitionError) else []
        field_errors, rest = step_problems(problems, step.get("key"))
        if isinstance(exc, editing.EditError):
            rest.append(str(exc))
        form = StepForm(step, is_new=True, open=True, field_errors=field_errors, errors=rest)
        form.connect = connect
        return refused(request, pipeline, "new-step", "#new-step", new_form=form)
    return workspace_response(request, pipeline, flash=f"Added step {step.get('key')}.")


@require_POST
@can_change
def step_move(request: HttpRequest, code: str, key: str) -> HttpResponse:
    pipeline = access.get_or_404(request.user, Pipeline.objects, code=code)
    offset = -1 if request.POST.get("direction") == "up" else 1
    return simple_change(request, pipeline, lambda d: editing.move_step(d, key, offset), f"Moved {key}.",
                          open_step=key)


@require_POST
@can_change
def step_remove(request: HttpRequest, code: str, key: str) -> HttpResponse:
    pipeline = access.get_or_404(request.user, Pipeline.objects, code=code)
    return simple_change(request, pipeline, lambda d: editing.remove_step(d, key), f"Removed {key}.",
                          forget=f"step:{key}")

"""The pipeline pages: the list, creating and importing, and the editor.

Function-based views; one template per page, and an htmx request gets a named partial of that same
template. Every change the editor makes is one call of :mod:`pipelines.editing` on the person's working
definition (their draft, :mod:`pipelines.drafts`), validated like the API, the CLI and the run validate,
and saved into the draft; Publish turns the draft into a revision. Input that cannot be applied yet is
kept in the draft as typed and shown with each problem next to its field, after a reload too.

Saving one panel answers with that panel only (plus the graph and the draft bar, out of band), so input
typed into another panel is never redrawn away; changes to the graph's shape redraw the workspace, and
static/js/editor.js first saves whatever was typed elsewhere.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import reswap, retarget

from pipelines import access, drafts, editing, svg
from pipelines import forms as pforms
from pipelines.canvas import canvas_data
from pipelines.definition import STEP_TYPES, problems_of
from pipelines.errors import DefinitionError
from pipelines.models import Pipeline, PipelineDraft
from pipelines.services import definition_of, diff_revisions, get_revision, restore_revision, save_definition

VIEW = "pipelines.view_pipeline"
CHANGE = "pipelines.change_pipeline"
ADD = "pipelines.add_pipeline"


def can_view(view):
    return login_required(permission_required(VIEW, raise_exception=True)(view))


def can_change(view):
    return login_required(permission_required([VIEW, CHANGE], raise_exception=True)(view))


def can_add(view):
    return login_required(permission_required([VIEW, ADD], raise_exception=True)(view))


def _partial(request: HttpRequest, template: str, name: str, context: dict, *, target: str | None = None,
             status: int = 200) -> HttpResponse:
    """Render the named partial; with ``target``, tell htmx to swap it there instead of the form's target."""
    response = render(request, f"{template}#{name}", context, status=status)
    if target:
        response = reswap(retarget(response, target), "outerHTML")
    return response


# --- the list ---------------------------------------------------------------------------------------

@require_GET
@can_view
def pipeline_list(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "").strip()
    pipelines = access.visible(request.user, Pipeline.objects.select_related("current_revision")
                               .annotate(step_count=Count("steps")))
    if q:
        pipelines = pipelines.filter(Q(code__icontains=q) | Q(name__icontains=q) | Q(description__icontains=q))
    page = Paginator(pipelines.order_by("code"), 50).get_page(request.GET.get("page"))
    context = {"page": page, "q": q, "total": access.visible(request.user, Pipeline.objects).count(), **_perms(request)}
    if request.htmx and request.htmx.target == "pipeline-table":
        return render(request, "pipelines/list.html#table", context)
    return render(request, "pipelines/list.html", context)


def _perms(request: HttpRequest) -> dict:
    user = request.user
    return {
        "can_change": user.has_perm(CHANGE),
        "can_add": user.has_perm(ADD),
        "can_run": user.has_perm("pipelines.run_pipeline"),
    }


@require_POST
@can_change
def pipeline_toggle(request: HttpRequest, code: str) -> HttpResponse:
    pipeline = access.get_or_404(request.user, Pipeline.objects, code=code)
    pipeline.enabled = not pipeline.enabled
    pipeline.save(update_fields=["enabled", "updated_at"])
    if request.htmx:
        pipeline.step_count = pipeline.steps.count()
        return render(request, "pipelines/list.html#row", {"p": pipeline, **_perms(request)})
    messages.success(request, f"{pipeline.name} is {'enabled' if pipeline.enabled else 'disabled'}.")
    return redirect("pipeline-list")


@require_GET
@can_view
def pipeline_export(request: HttpRequest, code: str) -> HttpResponse:
    pipeline = access.get_or_404(request.user, Pipeline.objects, code=code)
    number = request.GET.get("revision")
    if number:
        try:
            definition = get_revision(pipeline, int(number)).definition
        except (ValueError, DefinitionError):
            raise Http404("no such revision") from None
    else:
        definition = definition_of(pipeline)
    body = json.dumps(definition, indent=2, ensure_ascii=False) + "\n"
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{pipeline.code}.json"'
    return response


# --- creating, importing, duplicating ---------------------------------------------------------------

def _first_step(start: str) -> dict:
    if start == "TRIGGER":
        return {"key": "start", "type": "TRIGGER", "config": {"type": "MANUAL"}}
    _, _, adapter = start.partition(":")
    return {"key": editing.unique_key({}, adapter), "type": "EXTRACT", "adapterCode": adapter, "config": {}}


@require_http_methods(["GET", "POST"])
@can_add
def pipeline_create(request: HttpRequest) -> HttpResponse:
    form = pforms.PipelineCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        definition = {"version": 1, "code": data["code"], "name": data["name"], "steps": [_first_step(data["start"])],
                      "edges": [], "context": {}}
        if data["description"]:
            definition["description"] = data["description"]
        try:
            pipeline = save_definition(definition, user=request.user, message="created")
        except DefinitionError as exc:
            for p in exc.problems:
                form.add_error(None, str(p))
        else:
            messages.success(request, f"Created {pipeline.name}. Add its next steps from the palette.")
            return redirect("pipeline-editor", code=pipeline.code)
    return render(request, "pipelines/new.html", {"form": form}, status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
@can_add
def pipeline_import(request: HttpRequest) -> HttpResponse:
    form = pforms.ImportForm(request.POST or None, request.FILES or None)
    problems: list[str] = []
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data["file"]
        code = form.cleaned_data["code"] or data.get("code")
        existing = Pipeline.objects.filter(code=code).first() if isinstance(code, str) else None
        if not code:
            form.add_error("code", "the file has no code: enter one")
        elif existing is not None and not form.cleaned_data["replace"]:
            form.add_error("code", f"a pipeline with the code '{code}' exists; choose another code or tick "
                                   "'Replace'")
        elif existing is not None and not request.user.has_perm(CHANGE):
            form.add_error("replace", "you may not change existing pipelines")
        else:
            try:
                pipeline = save_definition(data, user=request.user, code=code, message="imported")
            except DefinitionError as exc:
                problems = [str(p) for p in exc.problems]
            else:
                messages.success(request, f"Imported {pipeline.name} (revision {pipeline.current_revision.number}).")
                return redirect("pipeline-editor", code=pipeline.code)
    status = 400 if (form.errors or problems) else 200
    return render(request, "pipelines/import.html", {"form": form, "problems": problems,
                                                     "max_kib": pforms.IMPORT_MAX_BYTES // 1024}, status=status)


@require_http_methods(["GET", "POST"])
@can_add
def pipeline_duplicate(request: HttpRequest, code: str) -> HttpResponse:
    pipeline = access.get_or_404(request.user, Pipeline.objects, code=code)
    source = definition_of(pipeline)
    initial = {"code": editing.unique_key({"steps": [{"key": p} for p in Pipeline.objects.values_list(
        "code", flat=True)]}, f"{pipeline.code}-copy"), "name": f"Copy of {pipeline.name}"}
    form = pforms.DuplicateForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            copy = save_definition(editing.duplicate(source, form.cleaned_data["code"], form.cleaned_data["name"]),
                                   user=request.user, message=f"duplicated from {pipeline.code}")
        except DefinitionError as exc:
            for p in exc.problems:
                form.add_error(None, str(p))
        else:
            messages.success(request, f"Created {copy.name} as a copy of {pipeline.name}.")
            return redirect("pipeline-editor", code=copy.code)
    return render(request, "pipelines/duplicate.html", {"form": form, "pipeline": pipeline},
                  status=400 if form.errors else 200)


# --- the editor ---------------------------------------------------------------------------------------

def _step_summary(step: dict) -> str:
    config = step.get("config") or {}
    if step.get("type") == "TRANSFORM" and not step.get("adapterCode"):
        ops = [o.get("op", "?") for o in config.get("operators", []) if isinstance(o, dict)]
        return " → ".join(ops) if ops else "no operators yet"
    if step.get("type") == "ROUTE":
        names = [b.get("name") for b in config.get("branches", []) if isinstance(b, dict)]
        return "branches: " + ", ".join(str(n) for n in names)
    parts = []
    for k, v in list(config.items())[:3]:
        text = v if isinstance(v, str) else json.dumps(v)
        parts.append(f"{k}: {text[:40]}")
    return " · ".join(parts)


def _working(request: HttpRequest, pipeline: Pipeline) -> tuple[dict, PipelineDraft | None]:
    """The definition this person edits: their draft, or the published one (also for those who only look)."""
    if request.user.has_perm(CHANGE):
        return drafts.working_definition(pipeline, request.user)
    return definition_of(pipeline), None


def _post_pairs(post) -> list[list[str]]:
    """A form's fields as (name, value) pairs, the way a draft keeps input it could not apply yet."""
    return [[name, value] for name, values in post.lists() if name != "csrfmiddlewaretoken" for value in values]


def _as_post(pairs: list) -> QueryDict:
    post = QueryDict(mutable=True)
    for name, value in pairs:
        post.appendlist(name, value)
    return post


@dataclass
class _Attempt:
    """A panel's input tried against the working definition: ``changed`` is the new definition when the
    input is valid, else None and ``problems`` says why (also shown at the fields of ``form``)."""

    form: Any
    changed: dict | None
    problems: list[str]
    new_key: str | None = None


def _problem_list(prefix: str, field_errors: dict, rest: list[str]) -> list[str]:
    return [*(f"{prefix}{name}: {m}" for name, ms in field_errors.items() for m in ms), *rest]


def _try_step(definition: dict, key: str, post) -> _Attempt:
    previous = editing.find_step(definition, key)
    step, errors = pforms.read_step(post, previous["type"])
    if errors:
        form = pforms.StepForm(step, original_key=key, field_errors=dict(errors), open=True)
        return _Attempt(form, None, _problem_list(f"step '{key}', ", dict(errors), []))
    changed = editing.update_step(definition, key, pforms.strip_missing(step))
    problems = problems_of(changed)
    if problems:
        field_errors, rest = pforms.step_problems(problems, step.get("key"))
        form = pforms.StepForm(step, original_key=key, field_errors=field_errors, errors=rest, open=True)
        return _Attempt(form, None, _problem_list(f"step '{key}', ", field_errors, rest))
    new_key = step.get("key", key)
    return _Attempt(pforms.StepForm(editing.find_step(changed, new_key), open=True), changed, [], new_key)


def _try_settings(definition: dict, post) -> _Attempt:
    values, errors = pforms.read_settings(post)
    if not values["name"].strip():
        errors.add("name", "a pipeline needs a name")

    def form(field_errors: dict, rest: list[str]):
        return pforms.SettingsForm(values["name"], values["description"], values["context"],
                                   values["allow_concurrent_runs"], field_errors=field_errors, errors=rest)

    if errors:
        return _Attempt(form(dict(errors), []), None, _problem_list("settings, ", dict(errors), []))
    changed = editing.set_settings(definition, name=values["name"].strip(),
                                   description=values["description"].strip(),
                                   context=pforms.strip_missing(values["context"]))
    problems = problems_of(changed)
    if problems:
        field_errors, rest = pforms.settings_problems(problems)
        return _Attempt(form(field_errors, rest), None, _problem_list("settings, ", field_errors, rest))
    return _Attempt(form({}, []), changed, [])


def _cards(definition: dict, forms: dict, open_step: str | None = None) -> list[dict]:
    steps = definition["steps"]
    return [{"n": n + 1, "step": step, "summary": _step_summary(step),
             "form": forms.get(step["key"]) or pforms.StepForm(step, open=step["key"] == open_step),
             "colour": svg.TYPE_COLOURS.get(step["type"], "#64748b"), "first": n == 0, "last": n == len(steps) - 1}
            for n, step in enumerate(steps)]


def _pending_forms(definition: dict, draft: PipelineDraft | None) -> tuple[dict, Any]:
    """The step forms (and the settings form) of input the draft keeps as typed, with their problems."""
    steps: dict = {}
    settings_form = None
    keys = set(editing.step_keys(definition))
    for name, pairs in ((draft.pending or {}).items() if draft else []):
        if name.startswith("step:") and name[5:] in keys:
            steps[name[5:]] = _try_step(definition, name[5:], _as_post(pairs)).form
        elif name == "settings":
            settings_form = _try_settings(definition, _as_post(pairs)).form
    return steps, settings_form


def _draft_context(pipeline: Pipeline, draft: PipelineDraft | None) -> dict:
    return {
        "draft": draft,
        "draft_dirty": drafts.is_dirty(pipeline, draft),
        "draft_stale": draft is not None and draft.base_revision_id != pipeline.current_revision_id,
    }


def _editor_context(request: HttpRequest, pipeline: Pipeline, *, step_forms: dict | None = None,
                    new_form: pforms.StepForm | None = None, settings_form: pforms.SettingsForm | None = None,
                    edge_state: dict | None = None, open_step: str | None = None, flash: str = "",
                    **extra) -> dict:
    definition, draft = _working(request, pipeline)
    pending_steps, pending_settings = _pending_forms(definition, draft)
    cards = _cards(definition, {**pending_steps, **(step_forms or {})}, open_step)
    context_value = definition.get("context") or {}
    settings_form = settings_form or pending_settings
    if settings_form is None:
        settings_form = pforms.SettingsForm(definition.get("name", ""), definition.get("description", ""),
                                            context_value, pipeline.allow_concurrent_runs)
    revisions = list(pipeline.revisions.select_related("created_by").order_by("-number")[:15])
    route_branches = sorted({b for s in definition["steps"] if s["type"] == "ROUTE"
                             for b in [*[x.get("name") for x in (s.get("config") or {}).get("branches", [])
                                         if isinstance(x, dict)], "default"] if b})
    perms = _perms(request)
    return {
        "pipeline": pipeline,
        "definition": definition,
        "cards": cards,
        "new_form": new_form,
        "settings_form": settings_form,
        "graph": _graph(definition),
        "canvas_json": json.dumps(canvas_data(definition)),
        "edges": definition["edges"],
        "edge_state": edge_state or {},
        "step_keys": [s["key"] for s in definition["steps"]],
        "route_branches": route_branches,
        "revisions": revisions,
        "revision_count": pipeline.revisions.count(),
        "palette": pforms.palette(request.GET.get("palette_q", "")) if perms["can_change"] else [],
        "palette_q": request.GET.get("palette_q", ""),
        "type_colours": svg.TYPE_COLOURS,
        "flash": flash,
        **_draft_context(pipeline, draft),
        **perms,
        **extra,
    }


def _graph(definition: dict) -> str:
    return mark_safe(svg.definition_graph(definition, link=lambda key: f"#card-{_slug(key)}"))


def _slug(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", key)


def _workspace(request: HttpRequest, pipeline: Pipeline, **kwargs) -> HttpResponse:
    """After a change: the whole workspace (graph, steps, edges, settings, revisions) for htmx, else the page."""
    if request.htmx:
        response = render(request, "pipelines/editor.html#workspace", _editor_context(request, pipeline, **kwargs))
        return reswap(retarget(response, "#workspace"), "outerHTML")
    if kwargs.get("flash"):
        messages.success(request, kwargs["flash"])
    url = reverse("pipeline-editor", args=[pipeline.code])
    open_step = kwargs.get("open_step")
    return redirect(f"{url}?open={open_step}#card-{_slug(open_step)}" if open_step else url)


def _panel(request: HttpRequest, pipeline: Pipeline, partial: str, target: str | None, context: dict,
           *, renamed: bool = False) -> HttpResponse:
    """One panel redrawn in place, with the graph and the draft bar (and the connections when a step was
    renamed) out of band: the other panels, and what was typed into them, stay as they are."""
    definition, draft = _working(request, pipeline)
    context = {"pipeline": pipeline, "definition": definition, "graph": _graph(definition), "oob": True,
               "edges": definition["edges"], "step_keys": editing.step_keys(definition),
               "edge_state": {}, **_draft_context(pipeline, draft), **_perms(request), **context}
    html = render(request, f"pipelines/editor.html#{partial}", context).content.decode()
    parts = [html, render(request, "pipelines/editor.html#graph-box", context).content.decode(),
             render(request, "pipelines/editor.html#draft-status", context).content.decode()]
    if renamed:
        parts.append(render(request, "pipelines/editor.html#edges", context).content.decode())
    response = HttpResponse("".join(parts))
    return reswap(retarget(response, target), "outerHTML") if target else response


def _card_response(request: HttpRequest, pipeline: Pipeline, key: str, form, *, flash: str = "",
                   target_key: str | None = None) -> HttpResponse:
    definition, _ = _working(request, pipeline)
    card = next((c for c in _cards(definition, {key: form}) if c["step"]["key"] == key), None)
    if card is None:  # the step was renamed in the draft, but the form still shows the old key
        card = _cards({**definition, "steps": [form.step]}, {form.step.get("key"): form})[0]
    return _panel(request, pipeline, "card", f"#card-{_slug(target_key or key)}", {"card": card, "card_flash": flash},
                  renamed=bool(target_key and target_key != key))


@require_GET
@can_view
def pipeline_editor(request: HttpRequest, code: str) -> HttpResponse:
    pipeline = access.get_or_404(request.user, Pipeline.objects, code=code)
    if request.htmx and request.htmx.target == "palette-items":
        query = request.GET.get("palette_q", "")
        return render(request, "pipelines/editor.html#palette-items",
                      {"pipeline": pipeline, "palette": pforms.palette(query), "palette_q": query})
    context = _editor_context(request, pipeline, open_step=request.GET.get("open"))
    return render(request, "pipelines/editor.html", context)


def _save(definition: dict, pipeline: Pipeline, request: HttpRequest) -> PipelineDraft | None:
    return drafts.save_draft(pipeline, request.user, definition)


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
    step, errors = pforms.read_step(request.POST, step_type)
    action = request.POST.get("_action", "save") or "save"
    if action != "save":
        step = _apply_action(step, action, request.POST)
    return step, dict(errors), action


def _working_step(request: HttpRequest, pipeline: Pipeline, key: str) -> tuple[dict, dict]:
    definition, _ = _working(request, pipeline)
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
        form = pforms.StepForm(step, original_key=key, open=True)
        if request.htmx:
            return _card_response(request, pipeline, key, form)
        return render(request, "pipelines/editor.html", _editor_context(request, pipeline, step_forms={key: form}))
    attempt = _try_step(definition, key, request.POST)
    if attempt.changed is None:
        drafts.save_draft(pipeline, request.user, pending={f"step:{key}": _post_pairs(request.POST)})
        if request.htmx:
            return _card_response(request, pipeline, key, attempt.form)
        return render(request, "pipelines/editor.html",
                      _editor_context(request, pipeline, step_forms={key: attempt.form}), status=400)
    drafts.save_draft(pipeline, request.user, attempt.changed, pending={f"step:{key}": None})
    flash = f"Saved step {attempt.new_key} to your draft."
    if request.htmx:
        return _card_response(request, pipeline, attempt.new_key, attempt.form, flash=flash, target_key=key)
    return _workspace(request, pipeline, open_step=attempt.new_key, flash=flash)


def _autosaved(request: HttpRequest, pipeline: Pipeline, status: str, problems: list[str]) -> HttpResponse:
    return _panel(request, pipeline, "autosave-status", None, {"status": status, "problems": problems})


@require_POST
@can_change
def step_autosave(request: HttpRequest, code: str, key: str) -> HttpResponse:
    """What a step card holds, saved as the person types (debounced). Valid input goes into the draft; the
    rest is kept as typed. A new key waits for Save step, so the card keeps posting to the key it shows."""
    pipeline = access.get_or_404(request.user, Pipeline.objects, code=code)
    definition, _ = _working_step(request, pipeline, key)
    attempt = _try_step(definition, key, request.POST)
    if attempt.changed is not None and attempt.new_key == key:
        drafts.save_draft(pipeline, request.user, attempt.changed, pending={f"step:{key}": None})
        return _autosaved(request, pipeline, "Saved in your draft.", [])
    drafts.save_draft(pipeline, request.user, pending={f"step:{key}": _post_pairs(request.POST)})
    if attempt.changed is not None:
        return _autosaved(request, pipeline, f"Kept in your draft; the new key '{attempt.new_key}' takes effect "
                                             "when you press Save step.", [])
    return _autosaved(request, pipeline, "Kept in your draft as typed; fix before publishing:", attempt.problems)


@require_http_methods(["GET", "POST"])
@can_change
def step_new(request: HttpRequest, code: str) -> HttpResponse:
    pipeline = access.get_or_404(request.user, Pipeline.objects, code=code)
    definition, _ = _working(request, pipeline)
    if request.method == "GET":
        step_type = request.GET.get("type", "")
        if step_type not in STEP_TYPES:
            raise Http404("unknown step type")
        adapter = request.GET.get("adapter") or None
        op = request.GET.get("op") or None
        key = editing.unique_key(definition, op or adapter or step_type.lower())
        form = pforms.StepForm(pforms.new_step(step_type, adapter=adapter, op=op, key=key), is_new=True, open=True)
        context = _editor_context(request, pipeline, new_form=form)
        context["form"] = form
        if request.htmx:
            return render(request, "pipelines/editor.html#new-step", context)
        return render(request, "pipelines/editor.html", context)

    step, errors, action = _step_from_post(request, request.POST.get("type", ""))
    connect = {"from": request.POST.get("_connect_from", ""), "branch": request.POST.get("_branch", "").strip(),
               "to": request.POST.get("_connect_to", "")}
    if action != "save" or errors:
        form = pforms.StepForm(step, is_new=True, open=True, field_errors=errors if action == "save" else {})
        form.connect = connect
        return _refused(request, pipeline, "new-step", "#new-step", new_form=form)
    try:
        changed = editing.add_step(definition, pforms.strip_missing(step), connect_from=connect["from"] or None,
                                   branch=connect["branch"] or None, connect_to=connect["to"] or None)
        _save(changed, pipeline, request)
    except (DefinitionError, editing.EditError) as exc:
        problems = exc.problems if isinstance(exc, DefinitionError) else []
        field_errors, rest = pforms.step_problems(problems, step.get("key"))
        if isinstance(exc, editing.EditError):
            rest.append(str(exc))
        form = pforms.StepForm(step, is_new=True, open=True, field_errors=field_errors, errors=rest)
        form.connect = connect
        return _refused(request, pipeline, "new-step", "#new-step", new_form=form)
    return _workspace(request, pipeline, flash=f"Added step {step.get('key')}.")


def _refused(request: HttpRequest, pipeline: Pipeline, partial: str, target: str, **kwargs) -> HttpResponse:
    """A refused change: the form with its problems in place (htmx), or the whole page with it (status 400)."""
    context = _editor_context(request, pipeline, **kwargs)
    if request.htmx:
        context.update({"form": kwargs.get("new_form") or next(iter((kwargs.get("step_forms") or {}).values()), None)})
        return _partial(request, "pipelines/editor.html", partial, context, target=target)
    return render(request, "pipelines/editor.html", context, status=400)


def _simple_change(request: HttpRequest, pipeline: Pipeline, change, flash: str,
                   *, open_step: str | None = None, forget: str | None = None) -> HttpResponse:
    """A change from a button (move, remove, edges): saved, or refused with the problems shown on top."""
    try:
        changed = change(_working(request, pipeline)[0])
        _save(changed, pipeline, request)
        if forget:
            drafts.save_draft(pipeline, request.user, pending={forget: None})
    except (DefinitionError, editing.EditError) as exc:
        problems = [str(p) for p in exc.problems] if isinstance(exc, DefinitionError) else [str(exc)]
        text = "That change was not saved: " + "; ".join(problems)
        if request.htmx:
            response = render(request, "pipelines/editor.html#workspace",
                              {**_editor_context(request, pipeline), "refusal": text})
            return reswap(retarget(response, "#workspace"), "outerHTML")
        messages.error(request, text)
        return redirect("pipeline-editor", code=pipeline.code)
    return _workspace(request, pipeline, flash=flash, open_step=open_step)


@require_POST
@can_change
def step_move(request: HttpRequest, code: str, key: str) -> HttpResponse:
    pipeline = access.get_or_404(request.user, Pipeline.objects, code=code)
    offset = -1 if request.POST.get("direction") == "up" else 1
    return _simple_change(request, pipeline, lambda d: editing.move_step(d, key, offset), f"Moved {key}.",
                          open_step=key)


@require_POST
@can_change
def step_remove(request: HttpRequest, code: str, key: str) -> HttpResponse:
    pipeline = access.get_or_404(request.user, Pipeline.objects, code=code)
    return _simple_change(request, pipeline, lambda d: editing.remove_step(d, key), f"Removed {key}.",
                          forget=f"step:{key}")


@require_POST
@can_change
def edge_add(request: HttpRequest, code: str) -> HttpResponse:
    pipeline = access.get_or_404(request.user, Pipeline.objects, code=code)
    post = request.POST
    state = {"from": post.get("from", ""), "to": post.get("to", ""), "branch": post.get("branch", "").strip(),
             "dependencyOnly": post.get("dependencyOnly") in ("1", "on"), "errors": {}, "problems": []}
    for end in ("from", "to"):
        if not state[end]:
            state["errors"][end] = "choose a step"
    if not state["errors"]:
        changed = editing.add_edge(_working(request, pipeline)[0], state["from"], state["to"],
                                   branch=state["branch"] or None, dependency_only=state["dependencyOnly"])
        try:
            _save(changed, pipeline, request)
        except DefinitionError as exc:
            for p in exc.problems:
                path, message = pforms.problem_path(p)
                if "branch" in message and state["branch"]:
                    state["errors"]["branch"] = message
                else:
                    state["problems"].append(str(p))
        else:
            return _workspace(request, pipeline, flash=f"Connected {state['from']} → {state['to']}.")
    return _refused(request, pipeline, "edges", "#edges", edge_state=state)


@require_POST
@can_change
def edge_remove(request: HttpRequest, code: str, index: int) -> HttpResponse:
    pipeline = access.get_or_404(request.user, Pipeline.objects, code=code)
    return _simple_change(request, pipeline, lambda d: editing.remove_edge(d, index), "Removed the connection.")


@require_POST
@can_change
def edges_clear(request: HttpRequest, code: str) -> HttpResponse:
    pipeline = access.get_or_404(request.user, Pipeline.objects, code=code)
    return _simple_change(request, pipeline, editing.use_list_order, "The steps run in list order again.")


def _allow_concurrent(pipeline: Pipeline, post) -> None:
    """An operating switch, not part of the definition: it applies at once, draft or not."""
    allow = post.get("allow_concurrent_runs") in ("1", "on")
    if pipeline.allow_concurrent_runs != allow:
        pipeline.allow_concurrent_runs = allow
        pipeline.save(update_fields=["allow_concurrent_runs", "updated_at"])


@require_POST
@can_change
def pipeline_settings(request: HttpRequest, code: str) -> HttpResponse:
    pipeline = access.get_or_404(request.user, Pipeline.objects, code=code)
    attempt = _try_settings(_working(request, pipeline)[0], request.POST)
    if attempt.changed is None:
        drafts.save_draft(pipeline, request.user, pending={"settings": _post_pairs(request.POST)})
        if request.htmx:
            return _panel(request, pipeline, "settings", "#settings", {"settings_form": attempt.form})
        return render(request, "pipelines/editor.html",
                      _editor_context(request, pipeline, settings_form=attempt.form), status=400)
    drafts.save_draft(pipeline, request.user, attempt.changed, pending={"settings": None})
    _allow_concurrent(pipeline, request.POST)
    if request.htmx:
        return _panel(request, pipeline, "settings", "#settings",
                      {"settings_form": attempt.form, "settings_flash": "Saved the settings to your draft."})
    return _workspace(request, pipeline, flash="Saved the settings to your draft.")


@require_POST
@can_change
def settings_autosave(request: HttpRequest, code: str) -> HttpResponse:
    pipeline = access.get_or_404(request.user, Pipeline.objects, code=code)
    attempt = _try_settings(_working(request, pipeline)[0], request.POST)
    _allow_concurrent(pipeline, request.POST)
    if attempt.changed is not None:
        drafts.save_draft(pipeline, request.user, attempt.changed, pending={"settings": None})
        return _autosaved(request, pipeline, "Saved in your draft.", [])
    drafts.save_draft(pipeline, request.user, pending={"settings": _post_pairs(request.POST)})
    return _autosaved(request, pipeline, "Kept in your draft as typed; fix before publishing:", attempt.problems)


# --- the draft: publish, merge, discard -----------------------------------------------------------------

def _apply_pending(request: HttpRequest, pipeline: Pipeline) -> list[str]:
    """Apply what the draft kept as typed, where it is valid now; the problems of the rest, all of them."""
    definition, draft = _working(request, pipeline)
    if draft is None or not draft.pending:
        return []
    problems: list[str] = []
    cleared: dict[str, None] = {}
    for name, pairs in sorted(draft.pending.items()):
        if name.startswith("step:") and name[5:] not in editing.step_keys(definition):
            cleared[name] = None
            continue
        attempt = (_try_step(definition, name[5:], _as_post(pairs)) if name.startswith("step:")
                   else _try_settings(definition, _as_post(pairs)))
        if attempt.changed is None:
            problems.extend(attempt.problems)
        else:
            definition = attempt.changed
            cleared[name] = None
    if cleared:
        drafts.save_draft(pipeline, request.user, definition, pending=cleared)
    return problems


def _stale_context(stale: drafts.StaleDraft, draft: PipelineDraft, message: str) -> dict:
    base = stale.base.definition if stale.base else None
    base_name = f"r{stale.base.number}" if stale.base else "(none)"
    current_name = f"r{stale.current.number}" if stale.current else "(none)"
    mine = drafts.normalized(draft.definition, draft.pipeline.code) or draft.definition
    return {
        "base": stale.base, "current": stale.current, "message": message,
        "theirs_diff": diff_lines(drafts.diff_text(base, stale.current.definition if stale.current else None,
                                                   base_name, current_name)),
        "mine_diff": diff_lines(drafts.diff_text(stale.current.definition if stale.current else None, mine,
                                                 current_name, "your draft")),
    }


@require_POST
@can_change
def pipeline_publish(request: HttpRequest, code: str) -> HttpResponse:
    """Publish the draft as the next revision, with a message. From a stale base the answer is the diff to
    the newer revision and two deliberate choices: merge it into the draft, or publish over it."""
    pipeline = access.get_or_404(request.user, Pipeline.objects, code=code)
    message = request.POST.get("message", "").strip()[:500]
    choice = request.POST.get("_action", "publish")
    _, draft = _working(request, pipeline)
    if draft is None:
        messages.info(request, "There is nothing to publish: your draft has no changes.")
        return redirect("pipeline-editor", code=code)
    if choice == "merge":
        return _merge(request, pipeline)
    problems = _apply_pending(request, pipeline)
    if problems:
        context = _editor_context(request, pipeline, publish_problems=problems, publish_message=message)
        return render(request, "pipelines/editor.html", context, status=400)
    try:
        pipeline = drafts.publish(pipeline, request.user, message, overwrite=choice == "overwrite")
    except drafts.StaleDraft as stale:
        context = _editor_context(request, pipeline, stale=_stale_context(stale, stale.draft, message),
                                  publish_message=message)
        return render(request, "pipelines/editor.html", context, status=409)
    except DefinitionError as exc:
        context = _editor_context(request, pipeline, publish_problems=[str(p) for p in exc.problems],
                                  publish_message=message)
        return render(request, "pipelines/editor.html", context, status=400)
    messages.success(request, f"Published revision {pipeline.current_revision.number}.")
    return redirect("pipeline-editor", code=code)


def _merge(request: HttpRequest, pipeline: Pipeline) -> HttpResponse:
    current = pipeline.current_revision
    try:
        conflicts = drafts.merge_into_draft(pipeline, request.user)
    except DefinitionError as exc:
        messages.error(request, "The newer revision could not be merged into your draft: "
                                + "; ".join(str(p) for p in exc.problems) + ". Change your draft or publish over it.")
        return redirect("pipeline-editor", code=pipeline.code)
    text = f"Merged revision {current.number if current else '-'} into your draft."
    if conflicts:
        messages.warning(request, text + " Your draft's version was kept where both changed: "
                                  + "; ".join(conflicts) + ".")
    else:
        messages.success(request, text + " Check it, then publish.")
    return redirect("pipeline-editor", code=pipeline.code)


@require_POST
@can_change
def draft_discard(request: HttpRequest, code: str) -> HttpResponse:
    pipeline = access.get_or_404(request.user, Pipeline.objects, code=code)
    drafts.discard_draft(pipeline, request.user)
    messages.success(request, "Discarded your draft: the editor shows the published revision.")
    return redirect("pipeline-editor", code=code)


# --- revisions ---------------------------------------------------------------------------------------

def diff_lines(text: str) -> list[tuple[str, str]]:
    out = []
    for line in text.splitlines():
        if line.startswith(("+++", "---")):
            cls = "file"
        elif line.startswith("@@"):
            cls = "hunk"
        elif line.startswith("+"):
            cls = "add"
        elif line.startswith("-"):
            cls = "del"
        else:
            cls = ""
        out.append((cls, line))
    return out


@require_GET
@can_view
def revision_detail(request: HttpRequest, code: str, number: int) -> HttpResponse:
    pipeline = access.get_or_404(request.user, Pipeline.objects, code=code)
    try:
        revision = get_revision(pipeline, number)
    except DefinitionError:
        raise Http404("no such revision") from None
    against_number = request.GET.get("against")
    previous = None
    if against_number and against_number.isdigit():
        previous = pipeline.revisions.filter(number=int(against_number)).first()
    if previous is None:
        previous = pipeline.revisions.filter(number__lt=number).order_by("-number").first()
    diff = diff_revisions(previous, revision)
    context = {
        "pipeline": pipeline, "revision": revision, "previous": previous, "diff": diff_lines(diff),
        "is_current": pipeline.current_revision_id == revision.pk,
        "revisions": pipeline.revisions.order_by("-number").values_list("number", flat=True)[:200],
        "graph": mark_safe(svg.definition_graph(revision.definition)),
        **_perms(request),
    }
    if request.htmx:
        return render(request, "pipelines/revision.html#diff", context)
    return render(request, "pipelines/revision.html", context)


@require_POST
@can_change
def revision_restore(request: HttpRequest, code: str, number: int) -> HttpResponse:
    pipeline = access.get_or_404(request.user, Pipeline.objects, code=code)
    try:
        restore_revision(pipeline, number, user=request.user)
    except DefinitionError as exc:
        messages.error(request, f"Revision {number} cannot be restored: {exc}")
        return redirect("pipeline-editor", code=code)
    pipeline.refresh_from_db()
    return _workspace(request, pipeline, flash=f"Restored revision {number} as revision "
                                                f"{pipeline.current_revision.number}.")


# --- the JSON view ------------------------------------------------------------------------------------

@require_http_methods(["GET", "POST"])
@can_view
def pipeline_json(request: HttpRequest, code: str) -> HttpResponse:
    pipeline = access.get_or_404(request.user, Pipeline.objects, code=code)
    text = json.dumps(definition_of(pipeline), indent=2, ensure_ascii=False)
    problems: list[dict] = []
    error = ""
    valid = False
    status = 200
    if request.method == "POST":
        if not request.user.has_perm(CHANGE):
            raise PermissionDenied
        text = request.POST.get("definition", "")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            error = pforms.json_error(exc)
            data = None
        if data is not None and not isinstance(data, dict):
            error = "the definition must be a JSON object"
        elif data is not None:
            if data.get("code") not in (None, pipeline.code):
                problems.append({"where": "code", "message": f"the code stays '{pipeline.code}'; use Duplicate "
                                                             "to make a pipeline with another code"})
            elif request.POST.get("_action") == "validate":
                problems = [_problem_row(p) for p in problems_of(data)]
                valid = not problems
            else:
                try:
                    save_definition(data, user=request.user, code=pipeline.code, message="edited as JSON")
                except DefinitionError as exc:
                    problems = [_problem_row(p) for p in exc.problems]
                else:
                    messages.success(request, "Saved the definition.")
                    return redirect("pipeline-editor", code=pipeline.code)
        status = 400 if (error or problems) else 200
    context = {"pipeline": pipeline, "text": text, "problems": problems, "error": error, "valid": valid,
               **_perms(request)}
    if request.htmx and request.method == "POST":
        return render(request, "pipelines/json.html#result", context)
    return render(request, "pipelines/json.html", context, status=status)


def _problem_row(p) -> dict:
    where = ", ".join(x for x in (f"step '{p.step}'" if p.step else "", p.field or "") if x)
    return {"where": where or "definition", "message": p.message}

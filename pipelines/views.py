"""The pipeline pages: the list, creating and importing, and the editor.

Function-based views; one template per page, and an htmx request gets a named partial of that same
template. Every change the editor makes is one call of :mod:`pipelines.editing` on the current
definition, saved with :func:`~pipelines.services.save_definition`: validated like the API and the CLI
validate, and frozen into a revision. When a change is refused, the form comes back with what the person
typed and each problem next to its field (htmx: the form is re-targeted in place of the workspace).
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import reswap, retarget

from pipelines import editing, svg
from pipelines import forms as pforms
from pipelines.definition import STEP_TYPES, problems_of
from pipelines.errors import DefinitionError
from pipelines.models import Pipeline
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
    pipelines = Pipeline.objects.select_related("current_revision").annotate(step_count=Count("steps"))
    if q:
        pipelines = pipelines.filter(Q(code__icontains=q) | Q(name__icontains=q) | Q(description__icontains=q))
    page = Paginator(pipelines.order_by("code"), 50).get_page(request.GET.get("page"))
    context = {"page": page, "q": q, "total": Pipeline.objects.count(), **_perms(request)}
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
    pipeline = get_object_or_404(Pipeline, code=code)
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
    pipeline = get_object_or_404(Pipeline, code=code)
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
    pipeline = get_object_or_404(Pipeline, code=code)
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


def _editor_context(request: HttpRequest, pipeline: Pipeline, *, step_forms: dict | None = None,
                    new_form: pforms.StepForm | None = None, settings_form: pforms.SettingsForm | None = None,
                    edge_state: dict | None = None, open_step: str | None = None, flash: str = "") -> dict:
    definition = definition_of(pipeline)
    step_forms = step_forms or {}
    cards = []
    for n, step in enumerate(definition["steps"]):
        form = step_forms.get(step["key"]) or pforms.StepForm(step, open=step["key"] == open_step)
        cards.append({"n": n + 1, "step": step, "form": form, "summary": _step_summary(step),
                      "colour": svg.TYPE_COLOURS.get(step["type"], "#64748b"), "first": n == 0,
                      "last": n == len(definition["steps"]) - 1})
    context_value = definition.get("context") or {}
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
        "graph": mark_safe(svg.definition_graph(definition, link=lambda key: f"#card-{_slug(key)}")),
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
        **perms,
    }


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


def _refused(request: HttpRequest, pipeline: Pipeline, partial: str, target: str, **kwargs) -> HttpResponse:
    """A refused change: the form with its problems in place (htmx), or the whole page with it (status 400)."""
    context = _editor_context(request, pipeline, **kwargs)
    if request.htmx:
        context.update({"form": kwargs.get("new_form") or next(iter((kwargs.get("step_forms") or {}).values()), None)})
        return _partial(request, "pipelines/editor.html", partial, context, target=target)
    return render(request, "pipelines/editor.html", context, status=400)


@require_GET
@can_view
def pipeline_editor(request: HttpRequest, code: str) -> HttpResponse:
    pipeline = get_object_or_404(Pipeline, code=code)
    if request.htmx and request.htmx.target == "palette-items":
        query = request.GET.get("palette_q", "")
        return render(request, "pipelines/editor.html#palette-items",
                      {"pipeline": pipeline, "palette": pforms.palette(query), "palette_q": query})
    context = _editor_context(request, pipeline, open_step=request.GET.get("open"))
    return render(request, "pipelines/editor.html", context)


def _save(definition: dict, pipeline: Pipeline, request: HttpRequest, message: str) -> Pipeline:
    return save_definition(definition, user=request.user, code=pipeline.code, message=message)


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


@require_POST
@can_change
def step_save(request: HttpRequest, code: str, key: str) -> HttpResponse:
    pipeline = get_object_or_404(Pipeline, code=code)
    definition = definition_of(pipeline)
    try:
        previous = editing.find_step(definition, key)
    except editing.EditError:
        raise Http404("no such step") from None
    step, errors, action = _step_from_post(request, previous["type"])
    target = f"#step-{_slug(key)}"
    if action != "save":
        form = pforms.StepForm(step, original_key=key, open=True)
        return _refused(request, pipeline, "step-form", target, step_forms={key: form}, open_step=key)
    if errors:
        form = pforms.StepForm(step, original_key=key, field_errors=errors, open=True)
        return _refused(request, pipeline, "step-form", target, step_forms={key: form}, open_step=key)
    changed = editing.update_step(definition, key, pforms.strip_missing(step))
    try:
        _save(changed, pipeline, request, f"edited step {step.get('key', key)}")
    except DefinitionError as exc:
        field_errors, rest = pforms.step_problems(exc.problems, step.get("key"))
        form = pforms.StepForm(step, original_key=key, field_errors=field_errors, errors=rest, open=True)
        return _refused(request, pipeline, "step-form", target, step_forms={key: form}, open_step=key)
    new_key = step.get("key", key)
    return _workspace(request, pipeline, open_step=new_key, flash=f"Saved step {new_key}.")


@require_http_methods(["GET", "POST"])
@can_change
def step_new(request: HttpRequest, code: str) -> HttpResponse:
    pipeline = get_object_or_404(Pipeline, code=code)
    definition = definition_of(pipeline)
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
    changed = editing.add_step(definition, pforms.strip_missing(step), connect_from=connect["from"] or None,
                               branch=connect["branch"] or None, connect_to=connect["to"] or None)
    try:
        _save(changed, pipeline, request, f"added step {step.get('key')}")
    except (DefinitionError, editing.EditError) as exc:
        problems = exc.problems if isinstance(exc, DefinitionError) else []
        field_errors, rest = pforms.step_problems(problems, step.get("key"))
        if isinstance(exc, editing.EditError):
            rest.append(str(exc))
        form = pforms.StepForm(step, is_new=True, open=True, field_errors=field_errors, errors=rest)
        form.connect = connect
        return _refused(request, pipeline, "new-step", "#new-step", new_form=form)
    return _workspace(request, pipeline, flash=f"Added step {step.get('key')}.")


def _simple_change(request: HttpRequest, pipeline: Pipeline, change, message: str, flash: str,
                   *, open_step: str | None = None) -> HttpResponse:
    """A change from a button (move, remove, edges): saved, or refused with the problems shown on top."""
    try:
        changed = change(definition_of(pipeline))
        _save(changed, pipeline, request, message)
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
    pipeline = get_object_or_404(Pipeline, code=code)
    offset = -1 if request.POST.get("direction") == "up" else 1
    return _simple_change(request, pipeline, lambda d: editing.move_step(d, key, offset),
                          f"moved step {key} {'up' if offset < 0 else 'down'}", f"Moved {key}.", open_step=key)


@require_POST
@can_change
def step_remove(request: HttpRequest, code: str, key: str) -> HttpResponse:
    pipeline = get_object_or_404(Pipeline, code=code)
    return _simple_change(request, pipeline, lambda d: editing.remove_step(d, key), f"removed step {key}",
                          f"Removed {key}.")


@require_POST
@can_change
def edge_add(request: HttpRequest, code: str) -> HttpResponse:
    pipeline = get_object_or_404(Pipeline, code=code)
    post = request.POST
    state = {"from": post.get("from", ""), "to": post.get("to", ""), "branch": post.get("branch", "").strip(),
             "dependencyOnly": post.get("dependencyOnly") in ("1", "on"), "errors": {}, "problems": []}
    for end in ("from", "to"):
        if not state[end]:
            state["errors"][end] = "choose a step"
    if not state["errors"]:
        changed = editing.add_edge(definition_of(pipeline), state["from"], state["to"],
                                   branch=state["branch"] or None, dependency_only=state["dependencyOnly"])
        try:
            _save(changed, pipeline, request, f"connected {state['from']} -> {state['to']}")
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
    pipeline = get_object_or_404(Pipeline, code=code)
    return _simple_change(request, pipeline, lambda d: editing.remove_edge(d, index), "removed an edge",
                          "Removed the connection.")


@require_POST
@can_change
def edges_clear(request: HttpRequest, code: str) -> HttpResponse:
    pipeline = get_object_or_404(Pipeline, code=code)
    return _simple_change(request, pipeline, editing.use_list_order, "steps run in list order",
                          "The steps run in list order again.")


@require_POST
@can_change
def pipeline_settings(request: HttpRequest, code: str) -> HttpResponse:
    pipeline = get_object_or_404(Pipeline, code=code)
    values, errors = pforms.read_settings(request.POST)

    def refused(field_errors: dict, rest: list[str]) -> HttpResponse:
        form = pforms.SettingsForm(values["name"], values["description"], values["context"],
                                   values["allow_concurrent_runs"], field_errors=field_errors, errors=rest)
        return _refused(request, pipeline, "settings", "#settings", settings_form=form)

    if not values["name"].strip():
        errors.add("name", "a pipeline needs a name")
    if errors:
        return refused(dict(errors), [])
    changed = editing.set_settings(definition_of(pipeline), name=values["name"].strip(),
                                   description=values["description"].strip(),
                                   context=pforms.strip_missing(values["context"]))
    try:
        pipeline = _save(changed, pipeline, request, "changed settings")
    except DefinitionError as exc:
        return refused(*pforms.settings_problems(exc.problems))
    if pipeline.allow_concurrent_runs != values["allow_concurrent_runs"]:
        pipeline.allow_concurrent_runs = values["allow_concurrent_runs"]
        pipeline.save(update_fields=["allow_concurrent_runs", "updated_at"])
    return _workspace(request, pipeline, flash="Saved the settings.")


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
    pipeline = get_object_or_404(Pipeline, code=code)
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
    pipeline = get_object_or_404(Pipeline, code=code)
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
    pipeline = get_object_or_404(Pipeline, code=code)
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
                    _save(data, pipeline, request, "edited as JSON")
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

"""The editor page and how the editor answers a change.

Saving one panel answers with that panel only (``panel_response``: plus the graph and the draft bar, out
of band), so input typed into another panel is never redrawn away; changes to the graph's shape redraw
the workspace (``workspace_response``), and static/js/editor.js first saves whatever was typed elsewhere.
An htmx request gets a named partial of the editor template; without htmx the answer is the whole page.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET
from django_htmx.http import reswap, retarget

from pipelines import access, drafts, editing, reviews, svg
from pipelines.canvas import canvas_data
from pipelines.errors import DefinitionError
from pipelines.forms.palette import palette
from pipelines.forms.settings import SettingsForm
from pipelines.forms.step import StepForm
from pipelines.models import Pipeline, PipelineDraft
from pipelines.views import refusals
from pipelines.views.attempts import as_post, try_settings, try_step, working
from pipelines.views.common import can_view, permissions_of, slug


def _partial(request: HttpRequest, template: str, name: str, context: dict, *, target: str | None = None,
             status: int = 200) -> HttpResponse:
    """Render the named partial; with ``target``, tell htmx to swap it there instead of the form's target."""
    response = render(request, f"{template}#{name}", context, status=status)
    if target:
        response = reswap(retarget(response, target), "outerHTML")
    return response


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


def cards_of(definition: dict, forms: dict, open_step: str | None = None) -> list[dict]:
    steps = definition["steps"]
    return [{"n": n + 1, "step": step, "summary": _step_summary(step),
             "form": forms.get(step["key"]) or StepForm(step, open=step["key"] == open_step),
             "colour": svg.TYPE_COLOURS.get(step["type"], "#64748b"), "first": n == 0, "last": n == len(steps) - 1}
            for n, step in enumerate(steps)]


def _pending_forms(definition: dict, draft: PipelineDraft | None) -> tuple[dict, Any]:
    """The step forms (and the settings form) of input the draft keeps as typed, with their problems."""
    steps: dict = {}
    settings_form = None
    keys = set(editing.step_keys(definition))
    for name, pairs in ((draft.pending or {}).items() if draft else []):
        if name.startswith("step:") and name[5:] in keys:
            steps[name[5:]] = try_step(definition, name[5:], as_post(pairs)).form
        elif name == "settings":
            settings_form = try_settings(definition, as_post(pairs)).form
    return steps, settings_form


def draft_context(pipeline: Pipeline, draft: PipelineDraft | None) -> dict:
    return {
        "draft": draft,
        "draft_dirty": drafts.is_dirty(pipeline, draft),
        "draft_stale": draft is not None and draft.base_revision_id != pipeline.current_revision_id,
    }


def editor_context(request: HttpRequest, pipeline: Pipeline, *, step_forms: dict | None = None,
                    new_form: StepForm | None = None, settings_form: SettingsForm | None = None,
                    edge_state: dict | None = None, open_step: str | None = None, flash: str = "",
                    **extra) -> dict:
    definition, draft = working(request, pipeline)
    pending_steps, pending_settings = _pending_forms(definition, draft)
    cards = cards_of(definition, {**pending_steps, **(step_forms or {})}, open_step)
    context_value = definition.get("context") or {}
    settings_form = settings_form or pending_settings
    if settings_form is None:
        settings_form = SettingsForm(definition.get("name", ""), definition.get("description", ""),
                                     context_value, pipeline.allow_concurrent_runs)
    revisions = list(pipeline.revisions.select_related("created_by", "review__decided_by").order_by("-number")[:15])
    route_branches = sorted({b for s in definition["steps"] if s["type"] == "ROUTE"
                             for b in [*[x.get("name") for x in (s.get("config") or {}).get("branches", [])
                                         if isinstance(x, dict)], "default"] if b})
    perms = permissions_of(request)
    return {
        "pipeline": pipeline,
        "definition": definition,
        "cards": cards,
        "new_form": new_form,
        "settings_form": settings_form,
        "graph": graph_html(definition),
        "canvas_json": json.dumps(canvas_data(definition)),
        "edges": definition["edges"],
        "edge_state": edge_state or {},
        "step_keys": [s["key"] for s in definition["steps"]],
        "route_branches": route_branches,
        "revisions": revisions,
        "revision_count": pipeline.revisions.count(),
        "palette": palette(request.GET.get("palette_q", "")) if perms["can_change"] else [],
        "palette_q": request.GET.get("palette_q", ""),
        "type_colours": svg.TYPE_COLOURS,
        "flash": flash,
        **draft_context(pipeline, draft),
        **_review_context(request, pipeline, perms),
        **perms,
        **extra,
    }


def _review_context(request: HttpRequest, pipeline: Pipeline, perms: dict) -> dict:
    """What the editor says about review: the person's own submission (waiting, or rejected with the
    reviewer's comment), and how many submissions of others wait for them as a reviewer."""
    waiting = 0
    if access.may_review(request.user, pipeline):
        waiting = reviews.pending_for(request.user).filter(pipeline=pipeline).exclude(author=request.user).count()
    return {
        "my_review": reviews.latest_of_author(pipeline, request.user) if perms["can_change"] else None,
        "waiting_reviews": waiting,
        "has_reviews": pipeline.requires_review or pipeline.reviews.exists(),
        # Review on, and this person may not turn it off: the box is shown but not sent (so never switched).
        "review_locked": pipeline.requires_review and not reviews.may_switch_review_off(request.user, pipeline),
    }


def graph_html(definition: dict) -> str:
    return mark_safe(svg.definition_graph(definition, link=lambda key: f"#card-{slug(key)}"))


def workspace_response(request: HttpRequest, pipeline: Pipeline, **kwargs) -> HttpResponse:
    """After a change: the whole workspace (graph, steps, edges, settings, revisions) for htmx, else the page."""
    if request.htmx:
        response = render(request, "pipelines/editor.html#workspace", editor_context(request, pipeline, **kwargs))
        return reswap(retarget(response, "#workspace"), "outerHTML")
    if kwargs.get("flash"):
        messages.success(request, kwargs["flash"])
    url = reverse("pipeline-editor", args=[pipeline.code])
    open_step = kwargs.get("open_step")
    return redirect(f"{url}?open={open_step}#card-{slug(open_step)}" if open_step else url)


def panel_response(request: HttpRequest, pipeline: Pipeline, partial: str, target: str | None, context: dict,
           *, renamed: bool = False) -> HttpResponse:
    """One panel redrawn in place, with the graph and the draft bar (and the connections when a step was
    renamed) out of band: the other panels, and what was typed into them, stay as they are."""
    definition, draft = working(request, pipeline)
    context = {"pipeline": pipeline, "definition": definition, "graph": graph_html(definition), "oob": True,
               "edges": definition["edges"], "step_keys": editing.step_keys(definition),
               "edge_state": {}, **draft_context(pipeline, draft), **permissions_of(request), **context}
    html = render(request, f"pipelines/editor.html#{partial}", context).content.decode()
    parts = [html, render(request, "pipelines/editor.html#graph-box", context).content.decode(),
             render(request, "pipelines/editor.html#draft-status", context).content.decode()]
    if renamed:
        parts.append(render(request, "pipelines/editor.html#edges", context).content.decode())
    response = HttpResponse("".join(parts))
    return reswap(retarget(response, target), "outerHTML") if target else response


def card_response(request: HttpRequest, pipeline: Pipeline, key: str, form, *, flash: str = "",
                   target_key: str | None = None) -> HttpResponse:
    definition, _ = working(request, pipeline)
    card = next((c for c in cards_of(definition, {key: form}) if c["step"]["key"] == key), None)
    if card is None:  # the step was renamed in the draft, but the form still shows the old key
        card = cards_of({**definition, "steps": [form.step]}, {form.step.get("key"): form})[0]
    return panel_response(request, pipeline, "card", f"#card-{slug(target_key or key)}", {"card": card, "card_flash": flash},
                  renamed=bool(target_key and target_key != key))


@require_GET
@can_view
def pipeline_editor(request: HttpRequest, code: str) -> HttpResponse:
    pipeline = access.get_or_404(request.user, Pipeline.objects, code=code)
    if request.htmx and request.htmx.target == "palette-items":
        query = request.GET.get("palette_q", "")
        return render(request, "pipelines/editor.html#palette-items",
                      {"pipeline": pipeline, "palette": palette(query), "palette_q": query})
    context = editor_context(request, pipeline, open_step=request.GET.get("open"), **refusals.take(request, pipeline))
    return render(request, "pipelines/editor.html", context)


def save_to_draft(definition: dict, pipeline: Pipeline, request: HttpRequest) -> PipelineDraft | None:
    return drafts.save_draft(pipeline, request.user, definition)


def autosaved(request: HttpRequest, pipeline: Pipeline, status: str, problems: list[str]) -> HttpResponse:
    return panel_response(request, pipeline, "autosave-status", None, {"status": status, "problems": problems})


def refused(request: HttpRequest, pipeline: Pipeline, partial: str, target: str, **kwargs) -> HttpResponse:
    """A refused change: the form with its problems in place (htmx), or the whole page with it (status 400)."""
    context = editor_context(request, pipeline, **kwargs)
    if request.htmx:
        context.update({"form": kwargs.get("new_form") or next(iter((kwargs.get("step_forms") or {}).values()), None)})
        return _partial(request, "pipelines/editor.html", partial, context, target=target)
    return render(request, "pipelines/editor.html", context, status=400)


def simple_change(request: HttpRequest, pipeline: Pipeline, change, flash: str,
                   *, open_step: str | None = None, forget: str | None = None) -> HttpResponse:
    """A change from a button (move, remove, edges): saved, or refused with the problems shown on top."""
    try:
        changed = change(working(request, pipeline)[0])
        save_to_draft(changed, pipeline, request)
        if forget:
            drafts.save_draft(pipeline, request.user, pending={forget: None})
    except (DefinitionError, editing.EditError) as exc:
        problems = [str(p) for p in exc.problems] if isinstance(exc, DefinitionError) else [str(exc)]
        text = "That change was not saved: " + "; ".join(problems)
        if request.htmx:
            response = render(request, "pipelines/editor.html#workspace",
                              {**editor_context(request, pipeline), "refusal": text})
            return reswap(retarget(response, "#workspace"), "outerHTML")
        messages.error(request, text)
        return redirect("pipeline-editor", code=pipeline.code)
    return workspace_response(request, pipeline, flash=flash, open_step=open_step)

"""The editor's connections between steps: add one, remove one, or go back to list order."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_POST

from pipelines import access, editing
from pipelines.errors import DefinitionError
from pipelines.forms.problems import problem_path
from pipelines.models import Pipeline
from pipelines.views.attempts import working
from pipelines.views.common import can_change
from pipelines.views.workspace import refused, save_to_draft, simple_change, workspace_response


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
        changed = editing.add_edge(working(request, pipeline)[0], state["from"], state["to"],
                                   branch=state["branch"] or None, dependency_only=state["dependencyOnly"])
        try:
            save_to_draft(changed, pipeline, request)
        except DefinitionError as exc:
            for p in exc.problems:
                path, message = problem_path(p)
                if "branch" in message and state["branch"]:
                    state["errors"]["branch"] = message
                else:
                    state["problems"].append(str(p))
        else:
            return workspace_response(request, pipeline, flash=f"Connected {state['from']} → {state['to']}.")
    return refused(request, pipeline, "edges", "#edges", edge_state=state)


@require_POST
@can_change
def edge_remove(request: HttpRequest, code: str, index: int) -> HttpResponse:
    pipeline = access.get_or_404(request.user, Pipeline.objects, code=code)
    return simple_change(request, pipeline, lambda d: editing.remove_edge(d, index), "Removed the connection.")


@require_POST
@can_change
def edges_clear(request: HttpRequest, code: str) -> HttpResponse:
    pipeline = access.get_or_404(request.user, Pipeline.objects, code=code)
    return simple_change(request, pipeline, editing.use_list_order, "The steps run in list order again.")

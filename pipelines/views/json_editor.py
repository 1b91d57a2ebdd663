"""The whole definition as JSON: shown, validated, and saved into the person's draft (published from the
editor, like any change)."""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from pipelines import access, drafts
from pipelines.definition import problems_of
from pipelines.errors import DefinitionError
from pipelines.forms.values import json_error
from pipelines.models import Pipeline
from pipelines.views.attempts import working
from pipelines.views.common import CHANGE, can_view, permissions_of


@require_http_methods(["GET", "POST"])
@can_view
def pipeline_json(request: HttpRequest, code: str) -> HttpResponse:
    pipeline = access.get_or_404(request.user, Pipeline.objects, code=code)
    text = json.dumps(working(request, pipeline)[0], indent=2, ensure_ascii=False)
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
            error = json_error(exc)
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
                    draft = drafts.replace_draft(pipeline, request.user, data)
                except DefinitionError as exc:
                    problems = [_problem_row(p) for p in exc.problems]
                else:
                    messages.success(request, "Saved the definition to your draft: publish it to make it a "
                                              "revision." if draft else "The definition is what is published: "
                                              "your draft has no changes.")
                    return redirect("pipeline-editor", code=pipeline.code)
        status = 400 if (error or problems) else 200
    context = {"pipeline": pipeline, "text": text, "problems": problems, "error": error, "valid": valid,
               **permissions_of(request)}
    if request.htmx and request.method == "POST":
        return render(request, "pipelines/json.html#result", context)
    return render(request, "pipelines/json.html", context, status=status)


def _problem_row(p) -> dict:
    where = ", ".join(x for x in (f"step '{p.step}'" if p.step else "", p.field or "") if x)
    return {"where": where or "definition", "message": p.message}

"""New pipelines: created with a first step, imported from a definition file, or duplicated."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from pipelines import access, editing
from pipelines.errors import DefinitionError
from pipelines.forms.pages import IMPORT_MAX_BYTES, DuplicateForm, ImportForm, PipelineCreateForm
from pipelines.models import Pipeline
from pipelines.services import definition_of, save_definition
from pipelines.views.common import CHANGE, can_add


def _first_step(start: str) -> dict:
    if start == "TRIGGER":
        return {"key": "start", "type": "TRIGGER", "config": {"type": "MANUAL"}}
    _, _, adapter = start.partition(":")
    return {"key": editing.unique_key({}, adapter), "type": "EXTRACT", "adapterCode": adapter, "config": {}}


@require_http_methods(["GET", "POST"])
@can_add
def pipeline_create(request: HttpRequest) -> HttpResponse:
    form = PipelineCreateForm(request.POST or None)
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
    form = ImportForm(request.POST or None, request.FILES or None)
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
                                                     "max_kib": IMPORT_MAX_BYTES // 1024}, status=status)


@require_http_methods(["GET", "POST"])
@can_add
def pipeline_duplicate(request: HttpRequest, code: str) -> HttpResponse:
    pipeline = access.get_or_404(request.user, Pipeline.objects, code=code)
    source = definition_of(pipeline)
    initial = {"code": editing.unique_key({"steps": [{"key": p} for p in Pipeline.objects.values_list(
        "code", flat=True)]}, f"{pipeline.code}-copy"), "name": f"Copy of {pipeline.name}"}
    form = DuplicateForm(request.POST or None, initial=initial)
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

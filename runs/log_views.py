"""Run logs in the browser: the explorer at /logs/ (filter by pipeline, run, step, level, text and time;
newest first; JSON export of what the filters select) and a run's own log at /runs/<id>/log/.

Looking needs ``runs.view_run``, and shows only the lines of pipelines the person may use
(:mod:`pipelines.access`). Filters are checked by a form: a bad value is named at its field and the
filter is not applied. The export is at most :data:`EXPORT_LIMIT` lines, newest first, and says so.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from pipelines import access
from pipelines.models import Pipeline
from runs import run_logs
from runs.models import Run, RunLog
from runs.run_logs import LEVELS

PER_PAGE = 100
EXPORT_LIMIT = 50_000
MAX_RUN_ID = 2**63 - 1
TIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"]
TIME_INPUT = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class LogFilter(forms.Form):
    pipeline = forms.CharField(required=False, max_length=100)
    run = forms.IntegerField(required=False, min_value=1, max_value=MAX_RUN_ID)
    step = forms.CharField(required=False, max_length=100)
    level = forms.ChoiceField(required=False, choices=[("", "any level"), *[(v, v) for v in LEVELS]],
                              help_text="this level and the more severe ones")
    q = forms.CharField(required=False, max_length=200, label="Text")
    since = forms.DateTimeField(required=False, label="From", input_formats=TIME_FORMATS, widget=TIME_INPUT)
    until = forms.DateTimeField(required=False, label="Until", input_formats=TIME_FORMATS, widget=TIME_INPUT)

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.add_error("until", "must be after From")
        return data


def filtered(user, form: LogFilter):
    if not form.is_valid():
        return RunLog.objects.none()
    return run_logs.select(user, **{k: v for k, v in form.cleaned_data.items() if v not in (None, "")})


def as_json(line: RunLog) -> dict:
    return {"id": line.pk, "time": line.created_at, "level": line.level, "pipeline": line.run.pipeline.code,
            "run": line.run_id, "step": line.step_key or None, "message": line.message, "data": line.data}


def _query(request: HttpRequest) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    params.pop("format", None)
    return params.urlencode()


@require_GET
@login_required
@permission_required("runs.view_run", raise_exception=True)
def log_explorer(request: HttpRequest) -> HttpResponse:
    form = LogFilter(request.GET or None)
    if request.GET and not form.is_valid():
        lines = RunLog.objects.none()
    else:
        lines = filtered(request.user, form) if request.GET else run_logs.select(request.user)
    if request.GET.get("format") == "json":
        chosen = list(lines[:EXPORT_LIMIT + 1])
        body = {"count": min(len(chosen), EXPORT_LIMIT), "truncated": len(chosen) > EXPORT_LIMIT,
                "lines": [as_json(line) for line in chosen[:EXPORT_LIMIT]]}
        response = HttpResponse(json.dumps(body, cls=DjangoJSONEncoder, ensure_ascii=False),
                                content_type="application/json")
        response["Content-Disposition"] = 'attachment; filename="datahub-logs.json"'
        return response
    page = Paginator(lines, PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "runs/logs.html", {
        "form": form, "page": page, "query": _query(request),
        "pipeline_codes": access.visible(request.user, Pipeline.objects.all()).values_list("code", flat=True),
    })


@require_GET
@login_required
@permission_required("runs.view_run", raise_exception=True)
def run_log(request: HttpRequest, pk: int) -> HttpResponse:
    mine = access.visible(request.user, Run.objects.select_related("pipeline", "revision"), via="pipeline")
    run = get_object_or_404(mine, pk=min(pk, MAX_RUN_ID))
    form = LogFilter({**request.GET.dict(), "run": run.pk})
    page = Paginator(filtered(request.user, form).order_by("id"), PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "run": run, "pipeline": run.pipeline, "form": form, "page": page, "query": _query(request),
        "steps": [s["key"] for s in (run.revision.definition or {}).get("steps", []) if isinstance(s, dict)],
    }
    # While the run goes, the lines poll themselves (htmx) and only that part is sent again.
    if request.htmx and request.htmx.target == "run-log-lines":
        return render(request, "runs/run_log.html#lines", context)
    return render(request, "runs/run_log.html", context)

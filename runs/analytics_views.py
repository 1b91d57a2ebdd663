"""/analytics/: how pipelines behave over time, overall or for one pipeline (``?pipeline=code``), over
the last ``?days=`` (7, 14, 30 or 90). The real-time panel polls itself (htmx) every 5 seconds.

The numbers come from :func:`runs.analytics.summary` in a fixed number of queries; charts are SVG drawn
on the server (:mod:`pipelines.svg`). Needs ``runs.view_run``; counts only the runs of pipelines the
person may use (:mod:`pipelines.access`).
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET

from pipelines import access, svg
from pipelines.models import Pipeline
from runs import analytics
from runs.models import Run

DAYS = (7, 14, 30, 90)


@require_GET
@login_required
@permission_required("runs.view_run", raise_exception=True)
def analytics_page(request: HttpRequest) -> HttpResponse:
    code = request.GET.get("pipeline", "")
    # Only the pipelines (and so the runs) this person may use count (pipelines.access).
    pipelines = access.visible(request.user, Pipeline.objects.all())
    pipeline = pipelines.filter(code=code).only("id", "code", "name").first() if code else None
    days = int(request.GET["days"]) if request.GET.get("days", "").isdigit() and int(request.GET["days"]) in DAYS else 14
    data = analytics.summary(pipeline.pk if pipeline else None, days=days,
                             runs=access.visible(request.user, Run.objects.all(), via="pipeline"))
    context = {
        "data": data, "pipeline": pipeline, "unknown": code if code and pipeline is None else "", "days": days,
        "day_choices": DAYS, "pipeline_codes": pipelines.values_list("code", flat=True),
        "query": request.GET.urlencode(),
    }
    if request.htmx and request.htmx.target == "realtime":
        return render(request, "runs/analytics.html#realtime", context)
    trend = data.trend
    context.update({
        "trend_svg": mark_safe(svg.daily_chart([d["date"] for d in trend], [d["runs"] for d in trend],
                                               [d["failed"] for d in trend], [d["records"] for d in trend])),
        "steps_svg": mark_safe(svg.bar_list(data.failed_by_step, label="Failed records by step"))
        if data.failed_by_step else "",
        "failed": data.by_status.get("FAILED", 0),
    })
    return render(request, "runs/analytics.html", context)

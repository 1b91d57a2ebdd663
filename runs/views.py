"""The run pages: the dashboard, the run list, a run's live page, and starting, previewing, cancelling,
re-running and replaying runs.

The run page polls itself while the run is active: an htmx request whose target is ``run-progress``
gets that partial of ``runs/detail.html``; once the run has ended it gets the final partial with HTTP
286, which tells htmx to stop polling (and the partial no longer carries the trigger either).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.db.models import Count, Exists, Max, OuterRef, Q, Subquery, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from datahub_project.page_cache import ANY_RUN, RUNS, cached_page
from pipelines import access, svg
from pipelines.errors import DatahubError
from pipelines.forms.pages import PreviewForm
from pipelines.models import Pipeline
from runs import analytics, dashboard_tiles, services
from runs.engine.status import ENDED_STEP_STATUSES
from runs.models import (
    ACTIVE_STATUSES,
    RecordAttempt,
    RecordError,
    Run,
    RunEvent,
    RunStatus,
    StepRun,
    StepStatus,
)
from runs.record_tables import pretty, record_table
from runs.run_rows import duration_text, finish

VIEW_PIPELINE = "pipelines.view_pipeline"
RUN = "pipelines.run_pipeline"
VIEW_RUN = "runs.view_run"
ERRORS_PER_PAGE = 20
SAMPLE_SETTLE_SECONDS = 5


def can_view_runs(view):
    return login_required(permission_required([VIEW_PIPELINE, VIEW_RUN], raise_exception=True)(view))


def can_run(view):
    return login_required(permission_required([VIEW_PIPELINE, RUN], raise_exception=True)(view))


def _with_progress(runs) -> list:
    """The runs (a sliced queryset or a list), each with ``steps_total``, ``steps_done``, ``records`` (the
    largest step output) and ``errors`` from its step runs: one aggregate over these runs' step runs only,
    so a page costs the same with a hundred runs kept or a million (grouping every run before taking a
    page was what made the run list slow)."""
    runs = list(runs)
    rows = (StepRun.objects.filter(run_id__in=[r.pk for r in runs]).order_by().values("run_id")
            .annotate(steps_total=Count("id"), steps_done=Count("id", filter=Q(status__in=ENDED_STEP_STATUSES)),
                      records=Max("records_out"), errors=Sum("records_error")))
    progress = {row.pop("run_id"): row for row in rows} if runs else {}
    empty = {"steps_total": 0, "steps_done": 0, "records": None, "errors": None}
    for r in runs:
        for name, value in progress.get(r.pk, empty).items():
            setattr(r, name, value)
    return runs


# --- the dashboard -----------------------------------------------------------------------------------

def _daily(user, days: int = 14) -> dict:
    # One grouped query (runs.analytics.daily), not every run of the days read into Python.
    trend = analytics.daily(days, runs=access.visible(user, Run.objects.all(), via="pipeline"))
    runs, failed, records = ([d[k] for d in trend] for k in ("runs", "failed", "records"))
    return {
        "svg": mark_safe(svg.daily_chart([d["date"] for d in trend], runs, failed, records)),
        "runs": sum(runs),
        "records": sum(records),
        "failed": sum(failed),
    }


@require_GET
@can_view_runs
def dashboard(request: HttpRequest) -> HttpResponse:
    day_ago = timezone.now() - timedelta(days=1)
    mine = access.visible(request.user, Run.objects, via="pipeline")
    pipelines_of_mine = access.visible(request.user, Pipeline.objects)
    active = finish(_with_progress(mine.for_listing().filter(status__in=ACTIVE_STATUSES).order_by("-created_at")[:20]),
                    narrow=True)
    context: dict[str, Any] = {"active": active}
    if request.htmx and request.htmx.target == "active-runs":
        return render(request, "dashboard.html#active", context)
    last = Run.objects.filter(pipeline=OuterRef("pk"), dry_run=False).order_by("-created_at", "-id")
    pipelines = list(pipelines_of_mine.annotate(last_run_id=Subquery(last.values("pk")[:1]),
                                               step_count=Count("steps")).order_by("code")[:50])
    last_runs = Run.objects.in_bulk([p.last_run_id for p in pipelines if p.last_run_id])
    for p in pipelines:
        p.last_run = last_runs.get(p.last_run_id)
    failures = finish(_with_progress(mine.for_listing().filter(status=RunStatus.FAILED).filter(
        Q(finished_at__gte=day_ago) | Q(finished_at__isnull=True, created_at__gte=day_ago)).order_by("-created_at")[:20]),
        narrow=True)
    context.update({
        "pipelines": pipelines,
        "pipeline_count": pipelines_of_mine.count(),
        "enabled_count": pipelines_of_mine.filter(enabled=True).count(),
        "failures": failures,
        "tiles": dashboard_tiles.tiles(request.user),
        "chart": _daily(request.user),
        "can_run": request.user.has_perm(RUN),
    })
    return render(request, "dashboard.html", context)


# --- the run list ------------------------------------------------------------------------------------

@cached_page(RUNS)
@require_GET
@can_view_runs
def run_list(request: HttpRequest) -> HttpResponse:
    code = request.GET.get("pipeline", "")
    status = request.GET.get("status", "")
    runs = access.visible(request.user, Run.objects.all(), via="pipeline")
    if code:
        runs = runs.filter(pipeline__code=code)
    if status in RunStatus.values:
        runs = runs.filter(status=status)
    page = Paginator(runs.for_listing().order_by("-created_at", "-id"), 25).get_page(request.GET.get("page"))
    page.object_list = finish(_with_progress(page.object_list))
    query = "&".join(f"{k}={v}" for k, v in (("pipeline", code), ("status", status)) if v)
    context = {
        "page": page, "pipeline_code": code, "status": status, "query": query,
        "statuses": RunStatus.values, "pipeline_codes": access.visible(request.user, Pipeline.objects).values_list("code", flat=True),
        "any_active": any(r.status in ACTIVE_STATUSES for r in page.object_list),
    }
    if request.htmx and request.htmx.target == "runs-table":
        return render(request, "runs/list.html#table", context)
    return render(request, "runs/list.html", context)


# --- one run -----------------------------------------------------------------------------------------

def final_keys(definition: dict) -> set[str]:
    """The steps whose output is what the run put out: those that feed no other step with records (the last
    step when the pipeline has no edges)."""
    steps = [s.get("key") for s in definition.get("steps", [])]
    edges = definition.get("edges") or []
    if not edges:
        return set(steps[-1:])
    feeding = {e.get("from") for e in edges if not e.get("dependencyOnly")}
    return {key for key in steps if key not in feeding}


def live_progress(step_run: StepRun | None) -> dict | None:
    """A RUNNING step's speed and, when its total input is known, its ETA and share done, as the run page
    shows them; None for a step that is not running or has reported no progress yet."""
    if step_run is None or step_run.status != StepStatus.RUNNING or not step_run.records_per_second:
        return None
    eta = step_run.eta_seconds
    expected = step_run.records_expected
    return {
        "rate": step_run.records_per_second,
        "eta_seconds": eta,
        "eta": duration_text(eta) if eta is not None else None,
        "percent": min(100, round(100 * step_run.records_in / expected)) if expected else None,
    }


def _live_totals(live: list[dict]) -> dict | None:
    """The running steps together: records per second, and the ETA of the last to finish when all are known."""
    if not live:
        return None
    etas = [s["eta_seconds"] for s in live]
    return {"rate": sum(s["rate"] for s in live),
            "eta": duration_text(max(etas)) if None not in etas else None}


def _known_page(queryset, count: int, number):
    """Page ``number`` of ``queryset`` whose length the page already counted: no COUNT query, and no query at
    all when it is empty."""
    paginator = Paginator(queryset if count else queryset.none(), ERRORS_PER_PAGE)
    paginator.count = count  # a cached_property: set here, never queried
    return paginator.get_page(number)


def _run_context(request: HttpRequest, run: Run, *, records: bool = True) -> dict:
    """The run page's context; without ``records`` (the progress poll, which shows none of them) no page
    of failed records or retry attempts is read."""
    definition = run.revision.definition
    step_runs = {s.step_key: s for s in run.step_runs.all()}
    steps = []
    for n, spec in enumerate(definition.get("steps", [])):
        sr = step_runs.get(spec["key"])
        steps.append({"key": spec["key"], "spec": spec, "run": sr, "status": sr.status if sr else StepStatus.PENDING,
                      "n": n + 1})
    total = len(steps) or 1
    share = {s: 0 for s in ("COMPLETED", "FAILED", "SKIPPED", "RUNNING")}
    for s in steps:
        bucket = "SKIPPED" if s["status"] in ("SKIPPED", "CANCELLED") else s["status"]
        if bucket in share:
            share[bucket] += 1
    done = share["COMPLETED"] + share["FAILED"] + share["SKIPPED"]
    statuses = {s["key"]: s["status"] for s in steps}
    counts = {s["key"]: (s["run"].records_in, s["run"].records_out) for s in steps
              if s["run"] and (s["run"].records_in or s["run"].records_out)}
    error_counts, open_counts = {}, {}
    if _has(run, "errors"):
        for key, n, still_open in (RecordError.objects.filter(run=run).order_by().values_list("step_key").annotate(
                n=Count("id"), open=Count("id", filter=Q(dead_letter=True, replayed_at__isnull=True)))):
            error_counts[key], open_counts[key] = n, still_open
    attempt_counts = dict(RecordAttempt.objects.filter(run=run).order_by().values_list("step_key")
                          .annotate(n=Count("id"))) if _has(run, "attempts") else {}
    for s in steps:
        s["live"] = live_progress(s["run"])
        s["errors"] = error_counts.get(s["key"], 0)
        if s["status"] == StepStatus.RUNNING and s["run"]:  # its failed records are written when it ends
            s["errors"] = max(s["errors"], s["run"].records_error)
        s["replayable"] = open_counts.get(s["key"], 0)
        s["attempts"] = attempt_counts.get(s["key"], 0)
    selected = request.GET.get("step") or next((s["key"] for s in steps if s["errors"] or s["attempts"]), "")
    errors_page = attempts_page = None
    if selected and records:
        errors_page = _known_page(run.record_errors.filter(step_key=selected).order_by("id"),
                                  error_counts.get(selected, 0), request.GET.get("page"))
        errors_page.rows = [(e, pretty(e.record), pretty(e.details) if e.details else "")
                            for e in errors_page.object_list]
        attempts_page = _known_page(run.record_attempts.filter(step_key=selected).order_by("id"),
                                    attempt_counts.get(selected, 0), request.GET.get("apage"))
        attempts_page.rows = [(a, pretty(a.record)) for a in attempts_page.object_list]
    perms_run = request.user.has_perm(RUN)
    return {
        "run": run,
        "pipeline": run.pipeline,
        "steps": steps,
        "selected": selected,
        "selected_step": next((s for s in steps if s["key"] == selected), None),
        "errors_page": errors_page,
        "attempts_page": attempts_page,
        "error_steps": [s for s in steps if s["errors"] or s["attempts"]],
        "progress": {
            "done": done, "total": len(steps), "percent": round(100 * done / total),
            "ok": 100 * share["COMPLETED"] / total, "bad": 100 * share["FAILED"] / total,
            "skip": 100 * share["SKIPPED"] / total, "running": 100 * share["RUNNING"] / total,
        },
        "live": _live_totals([s["live"] for s in steps if s["live"]]),
        "totals": {
            "errors": sum(s["errors"] for s in steps),
            "in": max((s["run"].records_in for s in steps if s["run"]), default=0),
            "out": sum(s["run"].records_out for s in steps if s["run"] and s["key"] in final_keys(definition)),
        },
        "graph": mark_safe(svg.definition_graph(definition, statuses=statuses, counts=counts,
                                                link=lambda key: f"?step={key}#errors")),
        "replays": list(run.replays.order_by("-created_at")[:10]) if _has(run, "replays") else [],
        "history": list(run.events.all()) if _has(run, "events") else [],
        "can_run": perms_run,
        "poll": "5s" if run.status == RunStatus.PAUSED else "1s",
        "settling": _settling(run),
        "outputs": [{**entry, "table": record_table(entry.get("records") or [], columns=entry.get("columns"))}
                    for entry in (run.output_sample or []) if isinstance(entry, dict)],
    }


# What the run page reads only when the run has some: asked in the run's own query (EXISTS subqueries, index
# lookups), so a run without retries, replays or history costs one query instead of four (under load every
# query is a round trip each request waits for). A run read without them is asked about each.
PRESENCE = {
    "errors": lambda: Exists(RecordError.objects.filter(run=OuterRef("pk"))),
    "attempts": lambda: Exists(RecordAttempt.objects.filter(run=OuterRef("pk"))),
    "replays": lambda: Exists(Run.objects.filter(replay_of=OuterRef("pk"))),
    "events": lambda: Exists(RunEvent.objects.filter(run=OuterRef("pk"))),
}


def _with_presence(queryset):
    return queryset.annotate(**{f"has_{name}": expression() for name, expression in PRESENCE.items()})


def _has(run: Run, name: str) -> bool:
    return getattr(run, f"has_{name}", True)


def _settling(run: Run) -> bool:
    """A run that has just ended whose output sample is not written yet (it is written right after the
    run's status): the page polls once more rather than stop without it."""
    return (not run.is_active and run.output_sample is None and run.finished_at is not None
            and (timezone.now() - run.finished_at).total_seconds() < SAMPLE_SETTLE_SECONDS)


@cached_page(ANY_RUN, run="pk")
@require_GET
@can_view_runs
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(_with_presence(access.visible(request.user, Run.objects, via="pipeline").select_related(
        "pipeline", "revision", "triggered_by", "replay_of")), pk=pk)
    target = request.htmx.target if request.htmx else None
    context = _run_context(request, run, records=target != "run-progress")
    if target == "run-progress":
        response = render(request, "runs/detail.html#progress", context)
        if not run.is_active and not context["settling"]:
            response.status_code = 286  # htmx: stop polling (the ended partial has no trigger either)
    elif target == "errors":
        response = render(request, "runs/detail.html#errors", context)
    else:
        response = render(request, "runs/detail.html", context)
    if run.is_active or context["settling"]:
        # Changes by the clock (the duration so far; settling ends by itself) with no write to tell the page
        # cache: never stored. Such a page polls itself every second or five anyway.
        add_never_cache_headers(response)
    return response


@require_POST
@can_run
def run_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(access.visible(request.user, Run.objects, via="pipeline"), pk=pk)
    if not run.is_active:
        messages.warning(request, f"Run {run.pk} has already ended ({run.status.lower()}).")
    else:
        run = services.cancel_run(run)
        if run.status == RunStatus.CANCELLED:
            messages.success(request, f"Run {run.pk} was cancelled.")
        else:
            messages.info(request, f"Run {run.pk} will stop when its current step notices.")
    return redirect("run-detail", pk=run.pk)


@require_POST
@can_run
def run_rerun(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(access.visible(request.user, Run.objects, via="pipeline").select_related(
        "pipeline", "revision"), pk=pk)
    try:
        new = services.start_run(run.pipeline, user=request.user, revision=run.revision, dry_run=run.dry_run,
                                 record_limit=run.record_limit, trigger="rerun")
    except DatahubError as exc:
        messages.error(request, f"The run was not started: {exc}")
        return redirect("run-detail", pk=run.pk)
    messages.success(request, f"Started run {new.pk}, a re-run of run {run.pk} (revision {run.revision.number}).")
    return redirect("run-detail", pk=new.pk)


@require_POST
@can_run
def run_replay(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(access.visible(request.user, Run.objects, via="pipeline").select_related(
        "pipeline", "revision"), pk=pk)
    step = request.POST.get("step", "")
    ids: list[int] | None = None
    if request.POST.get("scope") != "all":
        try:
            ids = [int(x) for x in request.POST.getlist("error_ids")]
        except ValueError:
            ids = []
        if not ids:
            messages.error(request, "Tick the failed records to replay, or replay all of them.")
            return redirect(f"{_detail_url(run)}?step={step}#errors")
    try:
        replay = services.replay_record_errors(run, step, ids, user=request.user)
    except DatahubError as exc:
        messages.error(request, f"Nothing was replayed: {exc}")
        return redirect(f"{_detail_url(run)}?step={step}#errors")
    messages.success(request, f"Replaying {len(replay.seed_records or [])} record(s) from step {step} in run "
                              f"{replay.pk}.")
    return redirect("run-detail", pk=replay.pk)


def _back(request: HttpRequest, default: str) -> HttpResponse:
    """Back to the page the button was on (the list, the dashboard, the editor), if it is one of ours."""
    referer = request.headers.get("referer", "")
    if referer and url_has_allowed_host_and_scheme(referer, {request.get_host()}, request.is_secure()):
        return redirect(referer)
    return redirect(default)


def _detail_url(run: Run) -> str:
    return reverse("run-detail", args=[run.pk])


# --- starting and previewing from a pipeline -------------------------------------------------------------

@require_POST
@can_run
def run_start(request: HttpRequest, code: str) -> HttpResponse:
    pipeline = access.get_or_404(request.user, Pipeline.objects, code=code)
    if not pipeline.enabled:
        messages.error(request, f"{pipeline.name} is disabled; enable it to run it.")
        return _back(request, reverse("pipeline-list"))
    try:
        run = services.start_run(pipeline, user=request.user)
    except DatahubError as exc:
        messages.error(request, f"The run was not started: {exc}")
        return _back(request, reverse("pipeline-editor", args=[code]))
    messages.success(request, f"Started run {run.pk} of {pipeline.name}.")
    return redirect("run-detail", pk=run.pk)


@require_http_methods(["GET", "POST"])
@can_run
def pipeline_preview(request: HttpRequest, code: str) -> HttpResponse:
    pipeline = access.get_or_404(request.user, Pipeline.objects, code=code)
    form = PreviewForm(request.POST or None)
    context: dict[str, Any] = {"pipeline": pipeline, "form": form}
    if request.method == "POST" and form.is_valid():
        try:
            run = services.create_run(pipeline, user=request.user, dry_run=True,
                                      record_limit=form.cleaned_data["limit"], trigger="preview")
        except DatahubError as exc:  # no saved revision yet
            form.add_error(None, f"nothing to preview: {exc}")
            return render(request, "runs/preview.html", context, status=400)
        outcome = services.run_now(run, keep_outputs=True)
        result = outcome.result
        try:
            step_runs = {s.step_key: s for s in outcome.run.step_runs.all()}
            errors: dict[str, list] = {}
            for e in RecordError.objects.filter(run=outcome.run).order_by("id")[:500]:
                errors.setdefault(e.step_key, []).append((e, pretty(e.record)))
            steps = []
            for spec in outcome.run.revision.definition.get("steps", []):
                key = spec["key"]
                branches = []
                if result is not None:
                    for branch in (result.outputs.get(key) or {}):
                        if branch is not None:
                            branches.append((branch, record_table(result.output(key, branch))))
                steps.append({
                    "key": key, "spec": spec, "run": step_runs.get(key),
                    "table": record_table(result.output(key)) if result is not None else None,
                    "branches": branches, "errors": errors.get(key, [])[:20],
                    "error_count": len(errors.get(key, [])),
                })
        finally:
            if result is not None:
                result.close()
        context.update({"run": outcome.run, "steps": steps,
                        "graph": mark_safe(svg.definition_graph(
                            outcome.run.revision.definition,
                            statuses={k: s.status for k, s in step_runs.items()}))})
    status = 400 if form.errors else 200
    if request.htmx and request.method == "POST":
        return render(request, "runs/preview.html#result", context, status=200)
    return render(request, "runs/preview.html", context, status=status)

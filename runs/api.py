"""REST API for runs: start, list, look at, cancel, re-run, and the record errors with their replay.

Thin views over :mod:`runs.services` with the plumbing of :mod:`pipelines.rest_plumbing` (authentication,
permission rules, strict JSON bodies, paging, error shapes). Looking needs ``runs.view_run``; starting,
cancelling, re-running and replaying need ``pipelines.run_pipeline``.
"""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from datahub_project.page_cache import ANY_RUN, RUNS, cached_page
from pipelines import access
from pipelines.errors import DefinitionError, Problem
from pipelines.models import Pipeline
from pipelines.rest_plumbing import (
    MAX_ID,
    MAX_POSITIVE_INT,
    READ_ERRORS,
    WRITE_ERRORS,
    Body,
    Conflict,
    Invalid,
    PageQuery,
    StrictBooleanField,
    StrictCharField,
    StrictIntegerField,
    endpoint,
    errors,
    page_of,
    paged,
    query_of,
    validated,
)
from runs import services
from runs.models import Run, RunEventKind, RunStatus


def run_or_404(run_id: int, *, detail: bool = False, user=None) -> Run:
    """The run, or 404 when there is none or (given ``user``) its pipeline is not theirs (pipelines.access)."""
    run = None
    if run_id <= MAX_ID:
        queryset = Run.objects.select_related("pipeline", "revision", "triggered_by")
        if user is not None:
            queryset = access.visible(user, queryset, via="pipeline")
        if detail:
            queryset = queryset.prefetch_related("step_runs", "events")
        run = queryset.filter(pk=run_id).first()
    if run is None:
        raise NotFound(f"no run {run_id}")
    return run


def rerun_run(run: Run, *, user=None, allow_concurrent: bool | None = None) -> Run:
    """A new run of the same revision with the same options (and, for a seeded run such as a replay, the
    same seed records), queued for a worker. (A service the run page's re-run button may want too.)"""
    return services.start_run(
        run.pipeline, user=user, revision=run.revision, dry_run=run.dry_run, record_limit=run.record_limit,
        trigger="rerun", allow_concurrent=allow_concurrent, seed_step=run.seed_step,
        seed_records=run.seed_records if run.seed_step else None, replay_of=run.replay_of,
    )


def _runnable(pipeline: Pipeline) -> Pipeline:
    if not pipeline.enabled:
        raise Conflict(f"pipeline '{pipeline.code}' is disabled; enable it to run it")
    return pipeline


@extend_schema_field({"type": "string", "enum": list(RunStatus.values)}, component_name="RunStatus")
class RunStatusField(serializers.ChoiceField):
    """A run's status, as its own named component (a shared "Status" enum would clash with gates')."""

    def __init__(self, **kwargs):
        super().__init__(choices=RunStatus.choices, **kwargs)


class RunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    pipeline = serializers.CharField(source="pipeline.code")
    revision = serializers.IntegerField(source="revision.number")
    status = RunStatusField()
    dryRun = serializers.BooleanField(source="dry_run")
    recordLimit = serializers.IntegerField(source="record_limit", allow_null=True)
    trigger = serializers.CharField()
    triggeredBy = serializers.CharField(source="triggered_by.username", allow_null=True)
    createdAt = serializers.DateTimeField(source="created_at")
    startedAt = serializers.DateTimeField(source="started_at", allow_null=True)
    finishedAt = serializers.DateTimeField(source="finished_at", allow_null=True)
    durationSeconds = serializers.FloatField(source="duration_seconds", allow_null=True)
    cancelRequested = serializers.BooleanField(source="cancel_requested")
    error = serializers.CharField()
    seedStep = serializers.CharField(source="seed_step", help_text="a seeded run (a replay) starts at this step")
    replayOf = serializers.IntegerField(source="replay_of_id", allow_null=True)


class StepRunSerializer(serializers.Serializer):
    stepKey = serializers.CharField(source="step_key")
    position = serializers.IntegerField()
    status = serializers.CharField()
    attempts = serializers.IntegerField()
    recordsIn = serializers.IntegerField(source="records_in")
    recordsOut = serializers.IntegerField(source="records_out")
    recordsError = serializers.IntegerField(source="records_error")
    recordsDropped = serializers.IntegerField(source="records_dropped")
    recordsExpected = serializers.IntegerField(
        source="records_expected", allow_null=True,
        help_text="while the step runs: the records it reads in all, when known (every input has ended)")
    recordsPerSecond = serializers.FloatField(
        source="records_per_second", allow_null=True,
        help_text="while the step runs: records read (or put out, by a step that reads none) per second")
    etaSeconds = serializers.FloatField(
        source="eta_seconds", allow_null=True,
        help_text="while the step runs: seconds until it has read its input at its rate so far, when the total is known")
    startedAt = serializers.DateTimeField(source="started_at", allow_null=True)
    finishedAt = serializers.DateTimeField(source="finished_at", allow_null=True)
    durationMs = serializers.IntegerField(source="duration_ms", allow_null=True)
    error = serializers.CharField()
    warnings = serializers.ListField(child=serializers.JSONField())


class RunEventSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    kind = serializers.ChoiceField(choices=RunEventKind.choices)
    worker = serializers.CharField(help_text="host:pid of the worker process")
    detail = serializers.CharField(help_text="why: a worker stopping, a worker that stopped responding, ...")


class OutputSampleSerializer(serializers.Serializer):
    step = serializers.CharField()
    branch = serializers.CharField(allow_null=True, help_text="a ROUTE branch; null for a step's output")
    total = serializers.IntegerField(help_text="records the output held")
    records = serializers.ListField(child=serializers.JSONField(), help_text="its first records (at most 100)")
    columns = serializers.ListField(child=serializers.CharField(), required=False,
                                    help_text="the records' fields in the order the step put them out")
    truncated = serializers.BooleanField(help_text="fewer records are shown than the output held")


class RunDetailSerializer(RunSerializer):
    worker = serializers.CharField(help_text="the worker running it now (host:pid), empty when none")
    resumes = serializers.IntegerField(help_text="times it was taken back from a worker that died")
    history = RunEventSerializer(many=True, source="events",
                                 help_text="which worker took the run, handed it back, died, resumed it")
    stepRuns = StepRunSerializer(many=True, source="step_runs")
    recordErrors = serializers.IntegerField(source="record_error_count",
                                            help_text="record errors kept (see /record-errors/)")
    outputSample = OutputSampleSerializer(
        many=True, source="output_sample", allow_null=True,
        help_text="the first records of each final output (a step no edge leaves, a ROUTE branch no edge "
                  "takes), bounded; null until the run (or a part of it) has ended")


class RecordErrorSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    stepKey = serializers.CharField(source="step_key")
    record = serializers.JSONField()
    message = serializers.CharField()
    attempts = serializers.IntegerField()
    details = serializers.DictField()
    deadLetter = serializers.BooleanField(source="dead_letter", help_text="replayable")
    createdAt = serializers.DateTimeField(source="created_at")
    replayedAt = serializers.DateTimeField(source="replayed_at", allow_null=True)


class StartRunSerializer(Body):
    pipeline = StrictCharField(max_length=100, help_text="the pipeline's code")
    dryRun = StrictBooleanField(required=False, default=False,
                                help_text="run everything, but loaders, exports, feeds and sinks write nothing")
    recordLimit = StrictIntegerField(required=False, allow_null=True, min_value=1, max_value=MAX_POSITIVE_INT,
                                     help_text="stop extracting after this many records")
    revision = StrictIntegerField(required=False, allow_null=True, min_value=1, max_value=MAX_POSITIVE_INT,
                                  help_text="run this revision (default: the current one)")
    allowConcurrent = StrictBooleanField(required=False, allow_null=True,
                                         help_text="start although another run is active (default: the "
                                                   "pipeline's setting)")


class RerunSerializer(Body):
    allowConcurrent = StrictBooleanField(required=False, allow_null=True)


class ReplaySerializer(Body):
    step = StrictCharField(max_length=100, help_text="the step whose dead-letter records are fed back in")
    ids = serializers.ListField(child=StrictIntegerField(min_value=1, max_value=MAX_ID), required=False,
                                max_length=10_000, help_text="only these record errors (default: all not "
                                                             "yet replayed)")


class RunQuery(PageQuery):
    pipeline = serializers.CharField(required=False, max_length=100, help_text="a pipeline's code")
    status = serializers.ListField(child=RunStatusField(), required=False, help_text="one or more statuses")
    since = serializers.DateTimeField(required=False, help_text="created at or after (ISO 8601)")
    until = serializers.DateTimeField(required=False, help_text="created before (ISO 8601)")


class RecordErrorQuery(PageQuery):
    step = serializers.CharField(required=False, max_length=100, help_text="only this step's errors")


RUN_ID = OpenApiParameter("run_id", {"type": "integer", "minimum": 1}, OpenApiParameter.PATH,
                          description="the run's id")


def _detail(run: Run) -> dict:
    run = run_or_404(run.pk, detail=True)
    run.record_error_count = run.record_errors.count()
    return RunDetailSerializer(run).data


@extend_schema(methods=["GET"], operation_id="runs_list", tags=["runs"], parameters=[RunQuery],
               responses={200: page_of(RunSerializer), **errors(*READ_ERRORS, 404)},
               summary="Runs, newest first, filtered by pipeline, status and creation time")
@extend_schema(methods=["POST"], operation_id="runs_start", tags=["runs"], request=StartRunSerializer,
               responses={201: RunDetailSerializer, **errors(*WRITE_ERRORS, 404, 409)},
               summary="Start a run (queued for a worker); dry run, record limit and revision are optional")
@cached_page(RUNS, api=True)
@endpoint(["GET", "POST"], GET="runs.view_run", POST="pipelines.run_pipeline")
def runs(request):
    if request.method == "GET":
        query = query_of(request, RunQuery)
        queryset = access.visible(request.user, Run.objects.for_listing(), via="pipeline").order_by("-created_at", "-id")
        if query.get("pipeline"):
            pipeline = access.visible(request.user, Pipeline.objects).filter(code=query["pipeline"]).first()
            if pipeline is None:
                # a well-formed filter naming nothing: 404, as for /api/pipelines/<code>/
                raise NotFound(f"no pipeline '{query['pipeline']}'")
            queryset = queryset.filter(pipeline=pipeline)
        if query.get("status"):
            queryset = queryset.filter(status__in=sorted(query["status"]))
        if query.get("since"):
            queryset = queryset.filter(created_at__gte=query["since"])
        if query.get("until"):
            queryset = queryset.filter(created_at__lt=query["until"])
        return paged(request, queryset, RunSerializer, query)

    body = validated(StartRunSerializer, request.data)
    pipeline = access.visible(request.user, Pipeline.objects).filter(code=body["pipeline"]).first()
    if pipeline is None:  # the body names no pipeline one may see: 404, as the list's filter answers
        raise NotFound(f"no pipeline '{body['pipeline']}'")
    try:
        with transaction.atomic():
            run = services.start_run(
                _runnable(pipeline), user=request.user, revision=body.get("revision"), dry_run=body["dryRun"],
                record_limit=body.get("recordLimit"), trigger="api", allow_concurrent=body.get("allowConcurrent"),
            )
    except DefinitionError as exc:  # no such revision
        raise Invalid([Problem(str(exc), field="revision", code="unknown_revision").as_dict()]) from None
    except services.RunConflict as exc:
        raise Conflict(str(exc)) from None
    return Response(_detail(run), status=status.HTTP_201_CREATED)


@extend_schema(operation_id="runs_retrieve", tags=["runs"], parameters=[RUN_ID],
               responses={200: RunDetailSerializer, **errors(401, 403, 404)},
               summary="A run with its step runs (status, counts, duration, errors)")
@endpoint(["GET"], GET="runs.view_run")
def run(request, run_id: int):
    return Response(_detail(run_or_404(run_id, user=request.user)))


@extend_schema(operation_id="runs_cancel", tags=["runs"], parameters=[RUN_ID], request=None,
               responses={200: RunDetailSerializer, **errors(401, 403, 404, 409)},
               summary="Cancel a run: at once when pending or paused, at its next step when running")
@endpoint(["POST"], POST="pipelines.run_pipeline")
def cancel(request, run_id: int):
    found = run_or_404(run_id, user=request.user)
    if not found.is_active:
        raise Conflict(f"run {found.pk} has already ended ({found.status})")
    return Response(_detail(services.cancel_run(found, f"cancelled by {request.user.get_username()} (API)")))


@extend_schema(operation_id="runs_rerun", tags=["runs"], parameters=[RUN_ID], request=RerunSerializer,
               responses={201: RunDetailSerializer, **errors(*WRITE_ERRORS, 404, 409)},
               summary="Start a new run of the same revision with the same options")
@endpoint(["POST"], POST="pipelines.run_pipeline")
def rerun(request, run_id: int):
    body = validated(RerunSerializer, request.data)
    found = run_or_404(run_id, user=request.user)
    _runnable(found.pipeline)
    try:
        with transaction.atomic():
            new = rerun_run(found, user=request.user, allow_concurrent=body.get("allowConcurrent"))
    except services.RunConflict as exc:
        raise Conflict(str(exc)) from None
    return Response(_detail(new), status=status.HTTP_201_CREATED)


@extend_schema(operation_id="runs_record_errors", tags=["runs"], parameters=[RUN_ID, RecordErrorQuery],
               responses={200: page_of(RecordErrorSerializer), **errors(*READ_ERRORS, 404)},
               summary="The records that failed in a run (the dead-letter list), with their errors")
@cached_page(ANY_RUN, run="run_id", api=True)
@endpoint(["GET"], GET="runs.view_run")
def record_errors(request, run_id: int):
    query = query_of(request, RecordErrorQuery)
    found = run_or_404(run_id, user=request.user)
    queryset = found.record_errors.order_by("id")
    if query.get("step"):
        queryset = queryset.filter(step_key=query["step"])
    return paged(request, queryset, RecordErrorSerializer, query)


@extend_schema(operation_id="runs_replay", tags=["runs"], parameters=[RUN_ID], request=ReplaySerializer,
               responses={201: RunDetailSerializer, **errors(*WRITE_ERRORS, 404, 409)},
               summary="Feed a step's dead-letter records back into that step in a new run")
@endpoint(["POST"], POST="pipelines.run_pipeline")
def replay(request, run_id: int):
    body = validated(ReplaySerializer, request.data)
    found = run_or_404(run_id, user=request.user)
    try:
        new = services.replay_record_errors(found, body["step"], body.get("ids"), user=request.user)
    except services.RunConflict as exc:
        raise Conflict(str(exc)) from None
    return Response(_detail(new), status=status.HTTP_201_CREATED)


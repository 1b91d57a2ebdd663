"""GraphQL for runs: the runs and run(id) queries and the startRun and cancelRun mutations.

Same services and permissions as :mod:`runs.api`: looking needs ``runs.view_run``; starting and
cancelling need ``pipelines.run_pipeline``.
"""

from __future__ import annotations

import graphene
from django.db import transaction
from graphene.types.generic import GenericScalar

from pipelines import access
from pipelines.errors import DefinitionError
from pipelines.models import Pipeline
from pipelines.schema import error, require, window
from runs import services
from runs.models import Run, RunStatus

MAX_ID = 2**63 - 1


def run_id_of(value) -> int | None:
    """The integer id in a GraphQL ID, or None when it cannot be one."""
    text = str(value).strip()
    if not text.isdigit() or len(text) > 19 or int(text) > MAX_ID:
        return None
    return int(text)


def find_run(value, user=None) -> Run | None:
    """The run, or None; given ``user``, also None when its pipeline is not theirs (pipelines.access)."""
    run_id = run_id_of(value)
    if run_id is None:
        return None
    queryset = Run.objects.select_related("pipeline", "revision", "triggered_by")
    if user is not None:
        queryset = access.visible(user, queryset, via="pipeline")
    return queryset.filter(pk=run_id).first()


def found_run(value, user=None) -> Run:
    run = find_run(value, user)
    if run is None:
        raise error(f"no run '{value}'", "NOT_FOUND")
    return run


class StepRunType(graphene.ObjectType):
    class Meta:
        name = "StepRun"

    step_key = graphene.String(required=True)
    position = graphene.Int(required=True)
    status = graphene.String(required=True)
    attempts = graphene.Int(required=True)
    records_in = graphene.Float(required=True, description="a count (Float: it may pass 2^31)")
    records_out = graphene.Float(required=True)
    records_error = graphene.Float(required=True)
    records_dropped = graphene.Float(required=True)
    records_expected = graphene.Float(description="while the step runs: the records it reads in all, when known")
    records_per_second = graphene.Float(description="while the step runs: records read (or put out) per second")
    eta_seconds = graphene.Float(description="while the step runs: seconds until it has read its input, when "
                                 "the total is known")
    started_at = graphene.DateTime()
    finished_at = graphene.DateTime()
    duration_ms = graphene.Float()
    error = graphene.String(required=True)
    warnings = GenericScalar(required=True)


class RecordErrorType(graphene.ObjectType):
    class Meta:
        name = "RecordError"

    id = graphene.ID(required=True)
    step_key = graphene.String(required=True)
    record = GenericScalar(required=True)
    message = graphene.String(required=True)
    attempts = graphene.Int(required=True)
    dead_letter = graphene.Boolean(required=True)
    created_at = graphene.DateTime(required=True)
    replayed_at = graphene.DateTime()


class RunEventType(graphene.ObjectType):
    class Meta:
        name = "RunEvent"
        description = "One step of a run's history across workers."

    at = graphene.DateTime(required=True)
    kind = graphene.String(required=True, description="STARTED, RESUMED, HANDED_BACK, WORKER_LOST or GAVE_UP")
    worker = graphene.String(required=True, description="host:pid of the worker process")
    detail = graphene.String(required=True)


class OutputSampleType(graphene.ObjectType):
    """The first records of one final output of a run (runs.output_sample)."""

    class Meta:
        name = "RunOutputSample"

    step = graphene.String(required=True)
    branch = graphene.String(description="a ROUTE branch; null for a step's output")
    total = graphene.Int(required=True, description="records the output held")
    records = graphene.List(graphene.NonNull(GenericScalar), required=True, description="its first records")
    columns = graphene.List(graphene.NonNull(graphene.String),
                            description="the records' fields in the order the step put them out")
    truncated = graphene.Boolean(required=True, description="fewer records are shown than the output held")


class RunType(graphene.ObjectType):
    class Meta:
        name = "Run"

    id = graphene.ID(required=True)
    pipeline = graphene.String(required=True, description="the pipeline's code")
    revision = graphene.Int(required=True)
    status = graphene.String(required=True, description="one of: " + ", ".join(RunStatus.values))
    dry_run = graphene.Boolean(required=True)
    record_limit = graphene.Int()
    trigger = graphene.String(required=True)
    triggered_by = graphene.String()
    created_at = graphene.DateTime(required=True)
    started_at = graphene.DateTime()
    finished_at = graphene.DateTime()
    duration_seconds = graphene.Float()
    cancel_requested = graphene.Boolean(required=True)
    error = graphene.String(required=True)
    seed_step = graphene.String(required=True)
    replay_of = graphene.ID()
    step_runs = graphene.List(graphene.NonNull(StepRunType), required=True)
    worker = graphene.String(required=True, description="the worker running it now (host:pid), empty when none")
    resumes = graphene.Int(required=True, description="times it was taken back from a worker that died")
    history = graphene.List(graphene.NonNull(RunEventType), required=True,
                            description="which worker took the run, handed it back, died, resumed it")
    record_errors = graphene.List(graphene.NonNull(RecordErrorType), required=True, step=graphene.String(),
                                  limit=graphene.Int(default_value=50), offset=graphene.Int(default_value=0))
    record_error_count = graphene.Int(required=True)
    output_sample = graphene.List(
        graphene.NonNull(OutputSampleType),
        description="the first records of each final output (a step no edge leaves, a ROUTE branch no edge "
                    "takes), bounded; null until the run (or a part of it) has ended")

    @staticmethod
    def resolve_pipeline(run, info):
        return run.pipeline.code

    @staticmethod
    def resolve_revision(run, info):
        return run.revision.number

    @staticmethod
    def resolve_triggered_by(run, info):
        return run.triggered_by.get_username() if run.triggered_by_id else None

    @staticmethod
    def resolve_replay_of(run, info):
        return run.replay_of_id

    @staticmethod
    def resolve_step_runs(run, info):
        return run.step_runs.order_by("position")

    def resolve_history(run, info):
        return run.events.all()

    @staticmethod
    def resolve_record_errors(run, info, limit, offset, step=None):
        queryset = run.record_errors.order_by("id")
        if step:
            queryset = queryset.filter(step_key=step)
        return queryset[window(limit, offset)]

    @staticmethod
    def resolve_record_error_count(run, info):
        return run.record_errors.count()


class Query(graphene.ObjectType):
    runs = graphene.List(
        graphene.NonNull(RunType), required=True,
        pipeline=graphene.String(description="a pipeline's code"),
        status=graphene.List(graphene.NonNull(graphene.String), description="one or more statuses"),
        since=graphene.DateTime(description="created at or after"),
        until=graphene.DateTime(description="created before"),
        limit=graphene.Int(default_value=50), offset=graphene.Int(default_value=0),
        description="newest first",
    )
    run = graphene.Field(RunType, id=graphene.ID(required=True))

    @staticmethod
    def resolve_runs(root, info, limit, offset, pipeline=None, status=None, since=None, until=None):
        user = require(info, "runs.view_run")
        queryset = access.visible(user, Run.objects.select_related("pipeline", "revision", "triggered_by"),
                                  via="pipeline").order_by("-created_at", "-id")
        if pipeline is not None:
            queryset = queryset.filter(pipeline__code=pipeline)
        if status:
            unknown = sorted(set(status) - set(RunStatus.values))
            if unknown:
                raise error(f"unknown status {', '.join(unknown)} (one of: {', '.join(RunStatus.values)})",
                            "BAD_INPUT")
            queryset = queryset.filter(status__in=status)
        if since is not None:
            queryset = queryset.filter(created_at__gte=since)
        if until is not None:
            queryset = queryset.filter(created_at__lt=until)
        return queryset[window(limit, offset)]

    @staticmethod
    def resolve_run(root, info, id):  # noqa: A002 - the GraphQL argument is called id
        return find_run(id, require(info, "runs.view_run"))


class StartRun(graphene.Mutation):
    """Start a run of a pipeline, queued for a worker."""

    class Arguments:
        pipeline = graphene.String(required=True, description="the pipeline's code")
        dry_run = graphene.Boolean(default_value=False)
        record_limit = graphene.Int(description="stop extracting after this many records")
        revision = graphene.Int(description="run this revision (default: the current one)")
        allow_concurrent = graphene.Boolean(description="start although another run is active")

    run = graphene.Field(RunType, required=True)

    @staticmethod
    def mutate(root, info, pipeline, dry_run=False, record_limit=None, revision=None, allow_concurrent=None):
        user = require(info, "pipelines.run_pipeline")
        if record_limit is not None and record_limit < 1:
            raise error("recordLimit must be at least 1", "BAD_INPUT")
        if revision is not None and revision < 1:
            raise error(f"no revision {revision}", "BAD_INPUT")
        found = access.visible(user, Pipeline.objects).filter(code=pipeline).first()
        if found is None:
            raise error(f"no pipeline '{pipeline}'", "NOT_FOUND")
        if not found.enabled:
            raise error(f"pipeline '{found.code}' is disabled; enable it to run it", "CONFLICT")
        try:
            with transaction.atomic():
                run = services.start_run(found, user=user, revision=revision, dry_run=bool(dry_run),
                                         record_limit=record_limit, trigger="graphql",
                                         allow_concurrent=allow_concurrent)
        except DefinitionError as exc:
            raise error(str(exc), "BAD_INPUT") from None
        except services.RunConflict as exc:
            raise error(str(exc), "CONFLICT") from None
        return StartRun(run=found_run(run.pk))


class CancelRun(graphene.Mutation):
    """Cancel a run: at once when pending or paused, at its next step when running."""

    class Arguments:
        run_id = graphene.ID(required=True)

    run = graphene.Field(RunType, required=True)

    @staticmethod
    def mutate(root, info, run_id):
        user = require(info, "pipelines.run_pipeline")
        run = found_run(run_id, user)
        if not run.is_active:
            raise error(f"run {run.pk} has already ended ({run.status})", "CONFLICT")
        return CancelRun(run=services.cancel_run(run, f"cancelled by {user.get_username()} (GraphQL)"))


class Mutation(graphene.ObjectType):
    start_run = StartRun.Field()
    cancel_run = CancelRun.Field()

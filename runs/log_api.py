"""``GET /api/logs/``: run log lines for programs, with the explorer's filters (pipeline, run, step,
level and the more severe ones, text, time), newest first, paged. Needs ``runs.view_run``."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from pipelines.rest_plumbing import MAX_ID, PageQuery, endpoint, errors, page_of, paged, query_of
from runs import run_logs
from runs.run_logs import LEVELS


class LogQuery(PageQuery):
    # Blank means "any", as in the explorer's form (and the schema says so).
    pipeline = serializers.CharField(required=False, allow_blank=True, max_length=100, help_text="a pipeline's code")
    run = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID, help_text="a run's id")
    step = serializers.CharField(required=False, allow_blank=True, max_length=100, help_text="a step's key")
    level = serializers.ChoiceField(required=False, allow_blank=True, choices=list(LEVELS),
                                    help_text="this level and the more severe ones")
    q = serializers.CharField(required=False, allow_blank=True, max_length=200, help_text="text the message contains")
    since = serializers.DateTimeField(required=False, help_text="written at or after (ISO 8601)")
    until = serializers.DateTimeField(required=False, help_text="written at or before (ISO 8601)")


class LogLineSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    time = serializers.DateTimeField(source="created_at")
    level = serializers.ChoiceField(choices=list(LEVELS))
    pipeline = serializers.CharField(source="run.pipeline.code")
    run = serializers.IntegerField(source="run_id")
    step = serializers.CharField(source="step_key", allow_blank=True)
    message = serializers.CharField()
    data = serializers.DictField()


@extend_schema(operation_id="logs_list", tags=["runs"], parameters=[LogQuery],
               responses={200: page_of(LogLineSerializer), **errors(400, 401, 403)},
               summary="Run log lines, newest first")
@endpoint(["GET"], GET="runs.view_run")
def logs(request):
    query = query_of(request, LogQuery)
    filters = {k: query.get(k) for k in ("pipeline", "run", "step", "level", "q", "since", "until")}
    lines = run_logs.select(request.user, **{k: v for k, v in filters.items() if v not in (None, "")})
    return paged(request, lines, LogLineSerializer, query)

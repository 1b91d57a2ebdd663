"""How pipelines behave over time: the numbers of the analytics page, overall or for one pipeline.

Every figure is computed by the database in a fixed number of queries, whatever the number of runs (the
test holds it at :data:`QUERY_COUNT`): grouped aggregates, and the duration percentiles in one query
that numbers the runs by duration (``ROW_NUMBER() OVER``) and keeps the three ranks wanted (portable:
SQLite has no percentile function). Nothing loads runs into Python. bench/bench_analytics.py times it
with 100,000 runs.

Definitions (a window is the last ``days`` days, by when runs were created; dry runs are left out):

- success rate: COMPLETED runs over ended runs (COMPLETED, FAILED, CANCELLED), in percent.
- duration: ``finished_at - started_at`` of ended runs that started; p50/p95/p99 are nearest-rank
  percentiles (the value at rank ceil(p * n)).
- records of a run: the most records any of its steps put out (a run's throughput, not the sum over
  its steps, which would count a record once per step); records/s: their sum over the sum of durations.
- failed records: the run's record errors, grouped by step and by message (the top ten of each).
- real time: runs PENDING (queued), RUNNING and PAUSED now, whatever their age; records put out by
  steps that ended in the last minute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db.models import Count, F, FloatField, Func, Max, OuterRef, Q, QuerySet, Subquery, Sum, Window
from django.db.models.functions import Coalesce, RowNumber, TruncDate
from django.utils import timezone

from runs.models import ENDED_STATUSES, RecordError, Run, RunStatus, StepRun

PERCENTILES = (50, 95, 99)
TOP = 10
# Queries one call of summary() makes (tests/operate/test_analytics.py holds it).
QUERY_COUNT = 7


@dataclass
class Summary:
    days: int
    since: datetime
    runs: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    success_rate: float | None = None
    durations: dict[int, float | None] = field(default_factory=dict)  # percentile -> seconds
    records: int = 0
    records_per_second: float | None = None
    failed_by_step: list[tuple[str, int]] = field(default_factory=list)
    failed_by_message: list[tuple[str, str, int]] = field(default_factory=list)
    trend: list[dict] = field(default_factory=list)  # per day: date, runs, failed, completed, records
    active: dict[str, int] = field(default_factory=dict)
    records_last_minute: int = 0


class Seconds(Func):
    """``finished_at - started_at`` in seconds, in each database's own date arithmetic. (Django's generic
    duration on SQLite is a Python function called per row: about ten times slower over 100,000 runs.)"""

    output_field = FloatField()

    def __init__(self):
        super().__init__(F("finished_at"), F("started_at"))

    def _sql(self, compiler, connection, template: str, swap: bool = False):
        end, end_params = compiler.compile(self.source_expressions[0])
        start, start_params = compiler.compile(self.source_expressions[1])
        if swap:
            return template % (start, end), [*start_params, *end_params]
        return template % (end, start), [*end_params, *start_params]

    def as_sqlite(self, compiler, connection, **extra):
        return self._sql(compiler, connection, "((julianday(%s) - julianday(%s)) * 86400.0)")

    def as_mysql(self, compiler, connection, **extra):
        return self._sql(compiler, connection, "(TIMESTAMPDIFF(MICROSECOND, %s, %s) / 1000000.0)", swap=True)

    def as_sql(self, compiler, connection, **extra):  # PostgreSQL
        return self._sql(compiler, connection, "EXTRACT(EPOCH FROM (%s - %s))")


class Day(TruncDate):
    """The local date of a timestamp. On SQLite in UTC, its native ``date()``: Django's generic one is a
    Python function called per row (about eight times slower over 100,000 runs). Elsewhere TruncDate."""

    def as_sqlite(self, compiler, connection, **extra):
        if self.get_tzname() in ("UTC", "Etc/UTC", None):
            sql, params = compiler.compile(self.lhs)
            return f"date({sql})", params
        return super().as_sql(compiler, connection, **extra)


def _run_records():
    """The most records one step of the run put out (a correlated subquery on the step runs' run index)."""
    best = (StepRun.objects.filter(run=OuterRef("pk")).order_by().values("run")
            .annotate(m=Max("records_out")).values("m")[:1])
    return Coalesce(Subquery(best), 0)


def _window(days: int, now: datetime) -> tuple[date, datetime]:
    """The first local day of the last ``days`` days, and the moment it began."""
    first_day = timezone.localdate(now) - timedelta(days=days - 1)
    return first_day, timezone.make_aware(datetime.combine(first_day, datetime.min.time()))


def _trend(rows, first_day: date, days: int) -> list[dict]:
    per_day = {_as_date(r["day"]): r for r in rows}
    return [{"date": day, "runs": r.get("n", 0), "failed": r.get("failed", 0), "completed": r.get("completed", 0),
             "records": int(r.get("records") or 0)}
            for day in (first_day + timedelta(days=i) for i in range(days)) for r in [per_day.get(day, {})]]


def _per_day(runs: QuerySet, **more):
    return (runs.annotate(day=Day("created_at"), run_records=_run_records(), **more).order_by().values("day")
            .annotate(n=Count("id"), failed=Count("id", filter=Q(status=RunStatus.FAILED)),
                      completed=Count("id", filter=Q(status=RunStatus.COMPLETED)), records=Sum("run_records")))


def daily(days: int = 14, now: datetime | None = None, runs: QuerySet | None = None) -> list[dict]:
    """Runs, failed, completed and records per day of the last ``days`` days, in one query (the
    dashboard's chart). ``runs``: the runs to count (default all; the views pass what the person may see)."""
    first_day, since = _window(days, now or timezone.now())
    base = Run.objects.all() if runs is None else runs
    return _trend(_per_day(base.filter(created_at__gte=since, dry_run=False)), first_day, days)


def summary(pipeline_id: int | None = None, days: int = 14, now: datetime | None = None,
            runs: QuerySet | None = None) -> Summary:
    """The figures of the runs in ``runs`` (default all; the page passes what the person may see)."""
    now = now or timezone.now()
    first_day, since = _window(days, now)
    narrowed = runs is not None
    visible = runs if narrowed else Run.objects.all()
    runs = visible.filter(created_at__gte=since, dry_run=False)
    if pipeline_id is not None:
        runs = runs.filter(pipeline_id=pipeline_id)
    out = Summary(days=days, since=since)
    timed = Q(status__in=ENDED_STATUSES, started_at__isnull=False, finished_at__isnull=False)

    # 1. counts by status
    out.by_status = dict(runs.order_by().values_list("status").annotate(n=Count("id")))
    out.runs = sum(out.by_status.values())
    ended = sum(out.by_status.get(s, 0) for s in ENDED_STATUSES)
    if ended:
        out.success_rate = 100.0 * out.by_status.get(RunStatus.COMPLETED, 0) / ended

    # 2. per day, and the totals of records and time from the same pass (the annotations' names differ
    # from the aggregates': an aggregate named like an annotation sums nothing)
    rows = list(_per_day(runs, run_seconds=Seconds()).annotate(
        timed=Count("id", filter=timed), timed_records=Sum("run_records", filter=timed),
        seconds=Sum("run_seconds", filter=timed)))
    n = sum(r["timed"] for r in rows)
    out.records = int(sum(r["timed_records"] or 0 for r in rows))
    seconds = sum(float(r["seconds"] or 0) for r in rows)
    if out.records and seconds:
        out.records_per_second = out.records / seconds
    out.trend = _trend(rows, first_day, days)

    # 3. the duration percentiles in one sort: the values at ranks ceil(p/100 * n) (nearest rank)
    ranks = {p: max(1, math.ceil(p / 100 * n)) for p in PERCENTILES}
    found: dict[int, float] = {}
    if n:
        ranked = (runs.filter(timed).annotate(run_seconds=Seconds())
                  .annotate(rank=Window(RowNumber(), order_by=[F("run_seconds").asc(), F("id").asc()]))
                  .filter(rank__in=set(ranks.values())).values_list("rank", "run_seconds"))
        found = {int(rank): float(value) for rank, value in ranked}
    out.durations = {p: found.get(rank) for p, rank in ranks.items()}

    # 4-5. failed records by step and by message
    errors = RecordError.objects.filter(run__in=runs)
    out.failed_by_step = list(errors.order_by().values_list("step_key").annotate(n=Count("id"))
                              .order_by("-n", "step_key")[:TOP])
    out.failed_by_message = list(errors.order_by().values_list("step_key", "message").annotate(n=Count("id"))
                                 .order_by("-n", "step_key")[:TOP])

    # 6-7. real time: what runs now, and what steps put out in the last minute
    active = visible.filter(status__in=(RunStatus.PENDING, RunStatus.RUNNING, RunStatus.PAUSED))
    minute = StepRun.objects.filter(finished_at__gte=now - timedelta(seconds=60))
    if narrowed:
        minute = minute.filter(run__in=visible)
    if pipeline_id is not None:
        active = active.filter(pipeline_id=pipeline_id)
        minute = minute.filter(run__pipeline_id=pipeline_id)
    counts = dict(active.order_by().values_list("status").annotate(n=Count("id")))
    out.active = {"queued": counts.get(RunStatus.PENDING, 0), "running": counts.get(RunStatus.RUNNING, 0),
                  "paused": counts.get(RunStatus.PAUSED, 0)}
    out.records_last_minute = int(minute.aggregate(s=Sum("records_out"))["s"] or 0)
    return out


def _as_date(value) -> date:
    return value if isinstance(value, date) and not isinstance(value, datetime) else date.fromisoformat(str(value)[:10])

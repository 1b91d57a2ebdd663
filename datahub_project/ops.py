"""What people who operate Datahub look at: ``/healthz`` for load balancers and ``/metrics`` for Prometheus.

``/healthz`` (no login; it answers with check names, true/false, timings and ages, never an error message,
a host name or a setting): 200 when every check passes, 503 otherwise.

* ``database``: ``SELECT 1`` on the default database.
* ``broker``: Redis answers PING (``REDIS_URL``), or the ORM broker's queue table answers a query.
* ``workers``: some worker showed life within ``DATAHUB_HEALTH_WORKER_SECONDS``. Life is the newest of
  (a) the stop time of the newest django-q2 task result and (b) the newest heartbeat of a RUNNING run.
  django-q2 writes task results to the database whichever broker carries the tasks, and the reaper
  schedule finishes a task every minute, so an idle healthy cluster shows life every minute or so; a
  cluster whose workers are all busy with long runs shows life through the runs' heartbeats (every few
  seconds). We do not use django-q2's own cluster stats (``Stat.get_all()``): with the ORM broker they
  live in Django's cache, which is per process unless a shared cache is configured, so the web process
  would never see a worker.

``?checks=database,broker`` asks for some of them only (a load balancer in front of the web processes
may not want to take them out of service because the workers are down).

``/metrics``: Prometheus text, computed on each scrape with a fixed number of aggregate queries (never a
query per row), so it costs the same with ten runs or ten million. When ``DATAHUB_METRICS_TOKEN`` is set it
needs ``Authorization: Bearer <token>``. The figures cover what the database holds (retention prunes old
runs), so the "totals" are gauges, not counters.
"""

from __future__ import annotations

import hmac
import logging
import time
from datetime import datetime, timedelta

from django.apps import apps
from django.conf import settings
from django.db import connection
from django.db.models import Count, Max, Min, Q, Sum
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

log = logging.getLogger(__name__)

# Step duration buckets, in seconds (Prometheus histogram upper bounds).
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600)


# --- health -------------------------------------------------------------------------------------------


def check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {}


def broker_kind() -> str:
    return "redis" if settings.Q_CLUSTER.get("redis") else "orm"


_redis_client = None


def _redis():
    """One client per process, with short timeouts: a health check must answer even when Redis hangs."""
    global _redis_client
    if _redis_client is None:
        import redis

        conf = settings.Q_CLUSTER["redis"]
        options = {"socket_connect_timeout": 2, "socket_timeout": 2}
        if isinstance(conf, str):
            _redis_client = redis.Redis.from_url(conf, **options)
        else:
            _redis_client = redis.Redis(**{**conf, **options})
    return _redis_client


def queue_size() -> int:
    """Tasks waiting in the broker for a worker."""
    if broker_kind() == "redis":
        from django_q.conf import Conf

        return int(_redis().llen(f"django_q:{Conf.CLUSTER_NAME}:q"))
    from django_q.conf import Conf
    from django_q.models import OrmQ

    return OrmQ.objects.using(settings.Q_CLUSTER["orm"]).filter(
        key=Conf.CLUSTER_NAME, lock__lte=timezone.now()).count()


def check_broker() -> dict:
    if broker_kind() == "redis":
        _redis().ping()
    else:
        queue_size()
    return {"kind": broker_kind()}


def worker_last_seen() -> datetime | None:
    """When a worker last showed life: a finished task, or a heartbeat of a run it executes."""
    from django_q.models import Task

    from runs.models import Run, RunStatus

    seen = [
        Task.objects.aggregate(at=Max("stopped"))["at"],
        Run.objects.filter(status=RunStatus.RUNNING).aggregate(at=Max("heartbeat_at"))["at"],
    ]
    seen = [s for s in seen if s is not None]
    return max(seen) if seen else None


def check_workers() -> dict:
    limit = settings.DATAHUB_HEALTH_WORKER_SECONDS
    last = worker_last_seen()
    age = None if last is None else max(0.0, (timezone.now() - last).total_seconds())
    result = {"lastSeenSecondsAgo": None if age is None else round(age, 1), "limitSeconds": limit}
    if age is None or age > limit:
        result["ok"] = False
    return result


CHECKS = {"database": check_database, "broker": check_broker, "workers": check_workers}


def run_checks(names=None) -> dict:
    results = {}
    for name in names or CHECKS:
        started = time.perf_counter()
        try:
            result = {"ok": True, **CHECKS[name]()}
        except Exception as exc:  # a health check reports; it never raises
            log.warning("health check %s failed: %r", name, exc)
            result = {"ok": False, "error": type(exc).__name__}
        result["ms"] = round((time.perf_counter() - started) * 1000, 1)
        results[name] = result
    return results


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    names = None
    if request.GET.get("checks"):
        names = [n.strip() for n in request.GET["checks"].split(",") if n.strip()]
        unknown = sorted(set(names) - set(CHECKS))
        if unknown or not names:
            return JsonResponse({"error": f"unknown checks {unknown}; known: {sorted(CHECKS)}"}, status=400)
    checks = run_checks(names)
    ok = all(c["ok"] for c in checks.values())
    return JsonResponse({"status": "ok" if ok else "fail", "checks": checks}, status=200 if ok else 503)


# --- metrics ------------------------------------------------------------------------------------------


class DatahubCollector:
    """Collects Datahub's metrics with a handful of aggregate queries per scrape."""

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily

        from runs.models import Run, RunStatus, StepRun

        runs = GaugeMetricFamily("datahub_runs", "Runs in the database, by pipeline and status.",
                                 labels=["pipeline", "status"])
        totals = {status: 0 for status in RunStatus.values}
        for row in Run.objects.values("pipeline__code", "status").annotate(n=Count("id")).order_by():
            runs.add_metric([row["pipeline__code"], row["status"]], row["n"])
            totals[row["status"]] = totals.get(row["status"], 0) + row["n"]
        yield runs
        by_status = GaugeMetricFamily("datahub_runs_by_status", "Runs in the database, by status.",
                                      labels=["status"])
        for status, n in totals.items():
            by_status.add_metric([status], n)
        yield by_status

        records = GaugeMetricFamily(
            "datahub_records_processed", "Records put out by the steps of the runs in the database "
            "(sum of step records_out), by pipeline.", labels=["pipeline"])
        records_in = GaugeMetricFamily("datahub_records_in", "Records taken in by steps, by pipeline.",
                                       labels=["pipeline"])
        record_errors = GaugeMetricFamily("datahub_record_errors", "Records that failed at a step, by pipeline.",
                                          labels=["pipeline"])
        for row in (StepRun.objects.values("run__pipeline__code")
                    .annotate(out=Sum("records_out"), inn=Sum("records_in"), err=Sum("records_error")).order_by()):
            code = row["run__pipeline__code"]
            records.add_metric([code], row["out"] or 0)
            records_in.add_metric([code], row["inn"] or 0)
            record_errors.add_metric([code], row["err"] or 0)
        yield records
        yield records_in
        yield record_errors

        bounds = {f"le{n}": Count("id", filter=Q(duration_ms__lte=int(b * 1000)))
                  for n, b in enumerate(DURATION_BUCKETS)}
        durations = HistogramMetricFamily("datahub_step_duration_seconds",
                                          "How long finished steps took, by pipeline.", labels=["pipeline"])
        for row in (StepRun.objects.filter(duration_ms__isnull=False).values("run__pipeline__code")
                    .annotate(n=Count("id"), total=Sum("duration_ms"), **bounds).order_by()):
            buckets = [(_le(b), row[f"le{n}"]) for n, b in enumerate(DURATION_BUCKETS)]
            buckets.append(("+Inf", row["n"]))
            durations.add_metric([row["run__pipeline__code"]], buckets, (row["total"] or 0) / 1000)
        yield durations

        yield from self._gates()
        yield from self._consumers()

        seen = worker_last_seen()
        worker = GaugeMetricFamily("datahub_worker_last_seen_seconds",
                                   "Seconds since a worker last finished a task or wrote a run heartbeat.")
        worker.add_metric([], (timezone.now() - seen).total_seconds() if seen else float("nan"))
        yield worker
        queued = GaugeMetricFamily("datahub_queue_tasks", "Tasks waiting in the broker for a worker.",
                                   labels=["broker"])
        try:
            queued.add_metric([broker_kind()], queue_size())
        except Exception as exc:  # the broker being down must not hide every other metric
            log.warning("metrics: cannot read the broker's queue size: %r", exc)
            queued.add_metric([broker_kind()], float("nan"))
        yield queued

    def _gates(self):
        from prometheus_client.core import GaugeMetricFamily

        try:
            GateRequest = apps.get_model("gates", "GateRequest")
        except LookupError:
            return
        waiting = GaugeMetricFamily("datahub_gates_waiting", "Gates waiting for a decision, by pipeline.",
                                    labels=["pipeline"])
        oldest = GaugeMetricFamily("datahub_gates_waiting_oldest_seconds",
                                   "How long the oldest waiting gate has waited, by pipeline.", labels=["pipeline"])
        now = timezone.now()
        for row in (GateRequest.objects.filter(status="PENDING", run__status="PAUSED")
                    .values("run__pipeline__code").annotate(n=Count("id"), first=Min("created_at")).order_by()):
            waiting.add_metric([row["run__pipeline__code"]], row["n"])
            oldest.add_metric([row["run__pipeline__code"]], (now - row["first"]).total_seconds())
        yield waiting
        yield oldest


    def _consumers(self):
        """The MESSAGE consumers, from their rows (one query): what their consume processes last wrote."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        from runs.consumers.models import Consumer

        labels = ["pipeline", "trigger"]
        up = GaugeMetricFamily("datahub_consumer_up", "1 while a consume process holds the consumer (its lease "
                               "is fresh), 0 otherwise.", labels=labels)
        lag = GaugeMetricFamily("datahub_consumer_lag", "Messages not yet acknowledged: ready in the RabbitMQ "
                                "queue, or not acknowledged by the Redis consumer group.", labels=labels)
        received = CounterMetricFamily("datahub_consumer_messages_received", "Messages the consumer took.",
                                       labels=labels)
        errors = CounterMetricFamily("datahub_consumer_errors", "Broker, database and run-start failures.",
                                     labels=labels)
        dead = CounterMetricFamily("datahub_consumer_dead_letters", "Messages turned into dead letters.",
                                   labels=labels)
        fresh = timezone.now() - timedelta(seconds=settings.DATAHUB_CONSUMER_LEASE_SECONDS)
        for c in Consumer.objects.values("pipeline__code", "trigger_key", "owner", "heartbeat_at", "lag",
                                         "received", "errors", "dead_letters").order_by():
            key = [c["pipeline__code"], c["trigger_key"]]
            up.add_metric(key, int(bool(c["owner"]) and c["heartbeat_at"] is not None and c["heartbeat_at"] >= fresh))
            lag.add_metric(key, c["lag"] if c["lag"] is not None else float("nan"))
            received.add_metric(key, c["received"])
            errors.add_metric(key, c["errors"])
            dead.add_metric(key, c["dead_letters"])
        yield from (up, lag, received, errors, dead)


def _le(bound: float) -> str:
    return repr(float(bound))


def _authorized(request: HttpRequest) -> bool:
    token = settings.DATAHUB_METRICS_TOKEN
    if not token:
        return True
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    if not _authorized(request):
        response = HttpResponse("a bearer token is required\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="datahub-metrics"'
        return response
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatahubCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)

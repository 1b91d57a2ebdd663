"""The analytics page with 100,000 runs: how long its numbers take, against the dashboard in the same run.

    .venv/bin/python bench/bench_analytics.py [--runs 100000] [--database-url postgres://...]

Builds a fresh database (SQLite in a temporary folder, or the PostgreSQL database named by
``--database-url``, which it drops and creates), migrates it, and inserts ``--runs`` runs spread over
30 days (a fifth FAILED, a few still active) with two step runs each and a record error for every tenth
run. Then it times, best of 5 after a warm-up: ``runs.analytics.summary()`` over 14 and 90 days, the
whole /analytics/ page, and as the baseline the dashboard page (/), which every person opens. It prints
each figure, the ratio to the baseline, and the queries each page made.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import header, load_average  # noqa: E402


def best_of(fn, repeat: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="bench-analytics-")
    os.environ["DATAHUB_VAR_DIR"] = tmp
    os.environ["DJANGO_SETTINGS_MODULE"] = "datahub_project.settings"
    if args.database_url:
        from urllib.parse import urlsplit

        import psycopg

        name = urlsplit(args.database_url).path.lstrip("/")
        with psycopg.connect(args.database_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            admin.execute(f'CREATE DATABASE "{name}"')
        os.environ["DATABASE_URL"] = args.database_url
    import django

    django.setup()
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from pipelines.services import save_definition
    from runs import analytics
    from runs.models import RecordError, Run, StepRun

    call_command("migrate", verbosity=0)
    header(f"analytics with {args.runs:,} runs ({connection.vendor})")
    pipelines = [save_definition({"version": 1, "code": f"p{i}", "name": f"P{i}", "steps": [
        {"key": "src", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": []}}]}) for i in range(5)]
    now = timezone.now()
    started = time.perf_counter()
    batch = 5000
    for offset in range(0, args.runs, batch):
        runs = []
        for i in range(offset, min(args.runs, offset + batch)):
            p = pipelines[i % 5]
            status = "RUNNING" if i < 3 else ("FAILED" if i % 5 == 0 else "COMPLETED")
            runs.append(Run(pipeline=p, revision=p.current_revision, status=status))
        Run.objects.bulk_create(runs)
    ids = list(Run.objects.order_by("id").values_list("id", flat=True))
    for offset in range(0, len(ids), batch):
        chunk = ids[offset:offset + batch]
        StepRun.objects.bulk_create([StepRun(run_id=r, position=k, step_key=f"s{k}", status="COMPLETED",
                                             records_out=100 + (r % 50) * k) for r in chunk for k in range(2)])
        RecordError.objects.bulk_create([RecordError(run_id=r, step_key="s1", record={"n": r},
                                                     message=f"bad value {r % 13}") for r in chunk if r % 10 == 0])
    # created_at is auto_now_add: spread the runs over 30 days (300 slices, durations of 1 to 120 s)
    slices = 300
    size = max(1, len(ids) // slices)
    for n in range(slices):
        lo, hi = ids[min(n * size, len(ids) - 1)], ids[min((n + 1) * size, len(ids)) - 1]
        created = now - timedelta(seconds=n * 30 * 86400 // slices)
        Run.objects.filter(id__gte=lo, id__lte=hi).update(
            created_at=created, started_at=created, finished_at=created + timedelta(seconds=1 + (n * 7) % 120))
    Run.objects.filter(status="RUNNING").update(finished_at=None)
    print(f"inserted {Run.objects.count():,} runs, {StepRun.objects.count():,} step runs, "
          f"{RecordError.objects.count():,} record errors in {time.perf_counter() - started:.1f} s")

    user = get_user_model().objects.create_superuser("bench", password="x")
    client = Client()
    client.force_login(user)

    def page(url):
        response = client.get(url)
        assert response.status_code == 200, response.status_code

    def queries(url) -> int:
        with CaptureQueriesContext(connection) as captured:
            page(url)
        return len(captured)

    print(f"load average before: {load_average()}")
    baseline = best_of(lambda: page("/"))
    figures = [
        ("summary(), 14 days", best_of(lambda: analytics.summary(days=14))),
        ("summary(), 90 days", best_of(lambda: analytics.summary(days=90))),
        ("summary(), one pipeline, 90 days", best_of(lambda: analytics.summary(pipelines[0].pk, days=90))),
        ("/analytics/ page, 14 days", best_of(lambda: page("/analytics/"))),
        ("/analytics/?days=90 page", best_of(lambda: page("/analytics/?days=90"))),
    ]
    print(f"{'baseline: the dashboard page /':40s} {baseline * 1000:8.1f} ms   ({queries('/')} queries)")
    for name, seconds in figures:
        print(f"{name:40s} {seconds * 1000:8.1f} ms   {seconds / baseline:5.2f}x the dashboard")
    print(f"queries: /analytics/ {queries('/analytics/')}, /analytics/?days=90 {queries('/analytics/?days=90')}")
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()

"""CPU time per request of the pages of the load test, in one process, against ``/healthz`` (issue 18).

    .venv/bin/python bench/bench_page_cpu.py [--runs 3000] [--requests 200] [--cache-url redis://127.0.0.1:6379/0]
                                             [--no-page-cache] [--profile "run page poll"]

At 50 connections on 2 sync gunicorn workers a request waits behind the ~49 before it, so a page's p95
against ``/healthz``'s p95 is in effect the ratio of what each costs the worker. This measures that cost
directly, where a loaded machine's wall times cannot: ``time.process_time`` per request (the median of
``--requests``), through Django's test client, with the production settings profile, on the same data as
``bench_load.py`` (a scratch PostgreSQL database seeded by its ``SEED``, dropped at the end).

Besides the pages it measures the floor a cached page cannot go below, views that return a constant:

* ``floor: no login``: the middleware alone;
* ``floor: login_required``: + the session and the user;
* ``floor: + view permissions``: + the user's permissions (``runs.views.can_view_runs``).

Each page is measured as a cache miss (the page cache's generations bumped before every request, so the
whole view runs: what a page costs right after a write) and, with the page cache on, as a hit.
``--cache-url`` (default ``redis://127.0.0.1:6379/0``) is the shared cache the production profile needs
for the page cache and cached sessions; its keys are deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import ROOT, load_average, machine  # noqa: E402
from bench_load import PG, SEED  # noqa: E402

URLS = """
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.urls import include, path

from runs.views import can_view_runs


def constant(request):
    return HttpResponse("ok")


urlpatterns = [
    path("bench/floor/", constant),
    path("bench/floor-login/", login_required(constant)),
    path("bench/floor-perms/", can_view_runs(constant)),
    path("", include("datahub_project.urls")),
]
"""

SETTINGS = """
from datahub_project.settings_production import *  # noqa
ROOT_URLCONF = "bench_urls"
# The profile's collectstatic also compresses (slow); the manifest, which serving needs, is the same.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"}}
"""

MEASURE = r"""
import json, statistics, time
from django.test import Client
from datahub_project import page_cache

seeded = json.loads({seeded!r})
run, gate_run = seeded["run"], seeded["gate_run"]
session = {{"HTTP_X_FORWARDED_PROTO": "https"}}
token = {{"HTTP_AUTHORIZATION": "Token " + seeded["token"], "HTTP_X_FORWARDED_PROTO": "https"}}
poll = {{**session, "HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "run-progress"}}
targets = [
    ("/healthz?checks=database,broker", "/healthz?checks=database,broker", {{}}, False),
    ("floor: no login", "/bench/floor/", session, False),
    ("floor: login_required", "/bench/floor-login/", session, False),
    ("floor: + view permissions", "/bench/floor-perms/", session, False),
    ("run list page", "/runs/", session, True),
    ("run page (failed run, record errors)", f"/runs/{{run}}/", session, True),
    ("run page poll (htmx partial)", f"/runs/{{run}}/", poll, True),
    ("gate review page (200 held records)", f"/gates/{{gate_run}}/gate/", session, True),
    ("gate list page", "/gates/", session, True),
    ("REST GET /api/runs/", "/api/runs/", token, True),
    ("REST GET /api/pipelines/", "/api/pipelines/", token, True),
    ("REST GET /api/gates/", "/api/gates/", token, True),
    ("REST GET /api/runs/<id>/record-errors/", f"/api/runs/{{run}}/record-errors/", token, True),
    ("/metrics", "/metrics", {{"HTTP_X_FORWARDED_PROTO": "https"}}, False),
]
client = Client()
client.cookies["sessionid"] = seeded["session"]

def cpu_ms(path, headers, before=None):
    times = []
    for n in range({requests} + 5):
        if before:
            before()
        t = time.process_time()
        response = client.get(path, **headers)
        spent = time.process_time() - t
        assert response.status_code in (200, 286), (path, response.status_code, response.content[:300])
        if n >= 5:  # the first few warm the process, the connections and the cache
            times.append(spent * 1000)
    return statistics.median(times)

def miss():
    page_cache.bump_everything()

if {profile!r}:
    import cProfile, pstats
    label, path, headers, _ = next(t for t in targets if {profile!r} in t[0])
    client.get(path, **headers)  # imports and first compilations are not what a request costs
    profiler = cProfile.Profile()
    for _ in range({requests}):
        miss()
        profiler.enable()
        client.get(path, **headers)
        profiler.disable()
    print(f"cProfile of {{{requests}}} misses of {{label}} ({{path}}), by own time:")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
    if {callers!r}:
        pstats.Stats(profiler).print_callers({callers!r})
    raise SystemExit
base = cpu_ms(*targets[0][1:3])
print(f"{{'URL':44}} {{'miss ms':>8}} {{'x healthz':>9}} {{'hit ms':>8}} {{'x healthz':>9}}")
print(f"{{'/healthz (first)':44}} {{base:8.2f}} {{1:9.2f}}")
for label, path, headers, cached in targets[1:]:
    cold = cpu_ms(path, headers, before=miss if cached else None)
    line = f"{{label:44}} {{cold:8.2f}} {{cold / base:8.2f}}x"
    if cached and page_cache.enabled():
        hot = cpu_ms(path, headers)
        line += f" {{hot:8.2f}} {{hot / base:8.2f}}x"
    print(line, flush=True)
last = cpu_ms(*targets[0][1:3])
print(f"{{'/healthz (last)':44}} {{last:8.2f}}")

# What the invalidation costs a writer: one UPDATE of a run in autocommit, with and without the bump.
from django.conf import settings
from runs.models import Run
def write_ms():
    times = []
    for n in range({requests}):
        t = time.process_time()
        Run.objects.filter(pk=run).update(error="")
        times.append((time.process_time() - t) * 1000)
    return statistics.median(times)
on = write_ms()
settings.DATAHUB_PAGE_CACHE = False
off = write_ms()
print(f"one UPDATE of a run: {{off:.3f}} ms CPU without the page cache, {{on:.3f}} ms with (the bump)")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--requests", type=int, default=200, help="requests per URL (the median is printed)")
    parser.add_argument("--cache-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--no-page-cache", action="store_true", help="DATAHUB_PAGE_CACHE=false (misses only)")
    parser.add_argument("--profile", default="", help="instead: cProfile the misses of the URL whose label has this")
    parser.add_argument("--callers", default="", help="with --profile: who calls the functions matching this")
    args = parser.parse_args()

    import psycopg
    import redis

    print("CPU ms per request (time.process_time, median), Django test client, production settings, PostgreSQL")
    print("machine:", machine(), " load average:", load_average())
    admin = psycopg.connect(PG, autocommit=True, connect_timeout=5)
    name = f"datahub_cpu_{os.getpid()}"
    admin.execute(f'CREATE DATABASE "{name}"')
    work = Path(tempfile.mkdtemp(prefix="datahub-cpu-"))
    (work / "bench_urls.py").write_text(URLS)
    (work / "bench_settings.py").write_text(SETTINGS)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATAHUB_", "DJANGO_"))
           and k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{name}", "DATAHUB_VAR_DIR": str(work),
                "DJANGO_SETTINGS_MODULE": "bench_settings", "PYTHONPATH": str(work),
                "DATAHUB_SECRET_KEY": secrets.token_urlsafe(50), "DATAHUB_ALLOWED_HOSTS": "testserver",
                "DATAHUB_MASTER_KEY": secrets.token_urlsafe(32), "DATAHUB_PROXY_SSL_HEADER": "true",
                "DATAHUB_DB_CONN_MAX_AGE": "60", "DATAHUB_LOG_LEVEL": "WARNING", "DATAHUB_RATE_USER": "",
                "DATAHUB_CACHE_URL": args.cache_url, "DATAHUB_CACHE_KEY_PREFIX": name,
                "DATAHUB_PAGE_CACHE": "false" if args.no_page_cache else "true"})
    try:
        def manage(*cmd):
            done = subprocess.run([sys.executable, "manage.py", *cmd], cwd=ROOT, env=env, capture_output=True,
                                  text=True, timeout=1800)
            if done.returncode:
                sys.exit(f"manage.py {cmd[0]} failed:\n{done.stderr[-4000:]}")
            return done.stdout

        manage("migrate", "--noinput")
        manage("collectstatic", "--noinput")
        seeded = manage("shell", "-c", SEED.format(runs=args.runs)).strip().splitlines()[-1]
        print(f"seeded {json.loads(seeded)['runs']} runs; {args.requests} requests per URL; "
              f"page cache {'off' if args.no_page_cache else 'on'} ({args.cache_url})")
        print(manage("shell", "-c", MEASURE.format(seeded=seeded, requests=args.requests, profile=args.profile,
                                                       callers=args.callers)),
              end="")
        print("load average:", load_average())
    finally:
        cache = redis.Redis.from_url(args.cache_url)
        for key in cache.scan_iter(f"{name}:*"):
            cache.delete(key)
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        subprocess.run(["rm", "-rf", str(work)], check=False)
        admin.close()


if __name__ == "__main__":
    main()

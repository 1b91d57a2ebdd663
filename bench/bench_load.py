"""Load test on loopback: the run pages, the gate review page and the REST lists, with wrk, on PostgreSQL.

    .venv/bin/python bench/bench_load.py [--runs 3000] [--seconds 10] [--connections 50] [--web-workers 2]
                                         [--cache-url redis://127.0.0.1:6379/0 | --cache-url '']

What it does, every step bounded and cleaned up at the end:

1. creates a scratch database ``datahub_load_<pid>`` on the local PostgreSQL (127.0.0.1:5432, user postgres)
   and migrates it;
2. seeds it (``manage.py shell``): 20 pipelines, ``--runs`` runs with 5 step runs each (bulk inserted; 5 %
   of them FAILED with 20 record errors), and 50 runs really executed up to a MANUAL gate (held records
   on disk, a pending gate request each); a user with view and approve permissions, a session and an
   API token;
3. serves it with gunicorn and the production settings profile (DEBUG off, WhiteNoise, persistent
   database connections), ``--web-workers`` sync workers;
4. runs wrk against each URL for ``--seconds`` (after a 2 s warm-up; before each, it waits until the
   requests the last wrk left queued are answered), ``--connections`` connections on 2
   threads, and prints requests/s and the p50/p95/p99 latency (a wrk Lua ``done`` hook), non-2xx
   answers, and each URL's p95 as a multiple of ``/healthz``'s p95, the baseline, measured first and
   again last in the same run (the ratio uses the larger of the two, so a machine that got busier
   during the run does not flatter the pages). Each URL is also measured against a ``/healthz`` run of the
   same length just before it (``adjacent``): on a machine whose load moves by the minute (other
   people's test runs) that is the fairer baseline; both ratios are printed.

``--cache-url`` (default ``redis://127.0.0.1:6379/0``; ``--cache-url ''`` for none) serves with
``DATAHUB_CACHE_URL`` set under a key prefix of its own, deleted at the end: a shared Redis cache, sessions
read from it (``datahub_project.cache_config``) and the page cache on (``datahub_project.page_cache``), as
production runs. The first request to each URL renders it; wrk's warm-up and measured runs then read it
from the page cache, as readers of an unchanging page do.

The per-user request rate (``DATAHUB_RATE_USER``, 1200/minute by default) is switched off: one user at
50 connections is exactly what it refuses, and 429 answers would measure the throttle, not the pages.

Needs ``wrk`` (``apt-get install wrk``) and the local PostgreSQL. Not a test; not collected by pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import ROOT, load_average, machine  # noqa: E402

PG = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"

SEED = r"""
import json, random
from datetime import timedelta
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.auth import SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY
from django.utils import timezone
from rest_framework.authtoken.models import Token
from pipelines.services import save_definition
from runs import services
from runs.models import Run, StepRun, RecordError

random.seed(7)
N = {runs}
steps = ["src", "clean", "check", "enrich", "out"]
def definition(code):
    return {{"version": 1, "code": code, "name": f"Pipeline {{code}}", "edges": [], "steps": [
        {{"key": "src", "type": "EXTRACT", "adapterCode": "inMemory", "config": {{"data": [{{"sku": " a "}}]}}}},
        {{"key": "clean", "type": "TRANSFORM", "config": {{"operators": [{{"op": "trim", "args": {{"path": "sku"}}}}]}}}},
        {{"key": "check", "type": "TRANSFORM", "config": {{"operators": [{{"op": "uppercase", "args": {{"path": "sku"}}}}]}}}},
        {{"key": "enrich", "type": "TRANSFORM", "config": {{"operators": [{{"op": "set", "args": {{"path": "ok", "value": True}}}}]}}}},
        {{"key": "out", "type": "SINK", "adapterCode": "records", "config": {{}}}}]}}
pipelines = [save_definition(definition(f"load-{{n:02d}}")) for n in range(20)]
now = timezone.now()
runs = []
for i in range(N):
    p = pipelines[i % 20]
    failed = i % 20 == 0
    started = now - timedelta(minutes=N - i)
    runs.append(Run(pipeline=p, revision=p.current_revision, status="FAILED" if failed else "COMPLETED",
                    trigger="schedule", started_at=started, finished_at=started + timedelta(seconds=3),
                    heartbeat_at=started + timedelta(seconds=3), error="step 'check' failed" if failed else ""))
runs = Run.objects.bulk_create(runs, batch_size=1000)
step_runs, errors = [], []
for run in runs:
    for n, key in enumerate(steps):
        bad = run.status == "FAILED" and key == "check"
        step_runs.append(StepRun(run=run, position=n, step_key=key, status="FAILED" if bad else "COMPLETED",
                                 attempts=1, records_in=1000, records_out=980 if bad else 1000,
                                 records_error=20 if bad else 0, started_at=run.started_at,
                                 finished_at=run.finished_at, duration_ms=random.randint(5, 3000),
                                 error="20 records failed" if bad else ""))
    if run.status == "FAILED":
        errors += [RecordError(run=run, step_key="check", record={{"sku": f"s{{k}}", "price": "x"}},
                               message="price is not a number") for k in range(20)]
StepRun.objects.bulk_create(step_runs, batch_size=2000)
RecordError.objects.bulk_create(errors, batch_size=2000)

gated = definition("load-gated")
gated["steps"].insert(4, {{"key": "gate", "type": "GATE", "config": {{"approvalType": "MANUAL"}}}})
gated["steps"][0]["config"]["data"] = [{{"sku": f" s{{k}} ", "price": k}} for k in range(200)]
gp = save_definition(gated)
paused = [services.run_now(services.create_run(gp, allow_concurrent=True)).run for _ in range(50)]
assert all(r.status == "PAUSED" for r in paused), [r.error for r in paused]

user = get_user_model().objects.create_user("loader", password=None)
for app, code in [("pipelines", "view_pipeline"), ("runs", "view_run"), ("gates", "approve_gate")]:
    user.user_permissions.add(Permission.objects.get(content_type__app_label=app, codename=code))
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
failed_run = Run.objects.filter(status="FAILED").order_by("-id").first()
print(json.dumps({{"session": session.session_key, "token": Token.objects.create(user=user).key,
                  "run": failed_run.pk, "gate_run": paused[0].pk, "runs": Run.objects.count()}}))
"""

LUA = r"""
wrk.method = "GET"
{headers}
done = function(summary, latency, requests)
  io.write(string.format('RESULT {{"requests": %d, "seconds": %.3f, "non2xx": %d, "socket_errors": %d, '
    .. '"p50": %.2f, "p95": %.2f, "p99": %.2f, "max": %.2f}}\n',
    summary.requests, summary.duration / 1e6, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def drain(base: str) -> None:
    """Wait until the requests a finished wrk left queued have been answered. wrk closes its connections
    when its time is up, but the workers still answer what is in their backlog (50 requests of the last
    URL); without this those would be counted against the next URL. Each worker takes one of these
    requests after what was queued before it."""
    for _ in range(4):
        urllib.request.urlopen(f"{base}/healthz?checks=database", timeout=120).read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database and folder (prints them)")
    parser.add_argument("--only", default="", help="only the URLs whose label contains this")
    parser.add_argument("--gunicorn", default="", help="extra gunicorn options, e.g. '--max-requests 0'")
    # The production profile's page cache and cached sessions need a shared cache: on by default ('' for none).
    parser.add_argument("--cache-url", default="redis://127.0.0.1:6379/0",
                        help="DATAHUB_CACHE_URL for the server (default: %(default)s; '' serves without one)")
    args = parser.parse_args()

    import psycopg

    print("load test: run pages, gate review, REST lists (wrk, loopback, PostgreSQL)")
    print("machine:", machine())
    admin = psycopg.connect(PG, autocommit=True, connect_timeout=5)
    name = f"datahub_load_{os.getpid()}"
    admin.execute(f'CREATE DATABASE "{name}"')
    work = Path(tempfile.mkdtemp(prefix="datahub-load-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATAHUB_", "DJANGO_"))
           and k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{name}", "DATAHUB_VAR_DIR": str(work),
                "DJANGO_SETTINGS_MODULE": "datahub_project.settings_production",
                "DATAHUB_SECRET_KEY": secrets.token_urlsafe(50), "DATAHUB_ALLOWED_HOSTS": "127.0.0.1",
                "DATAHUB_MASTER_KEY": secrets.token_urlsafe(32),
                "DATAHUB_PROXY_SSL_HEADER": "true", "DATAHUB_DB_CONN_MAX_AGE": "60",
                "DATAHUB_LOG_LEVEL": "WARNING", "DATAHUB_RATE_USER": ""})
    if args.cache_url:
        env.update({"DATAHUB_CACHE_URL": args.cache_url, "DATAHUB_CACHE_KEY_PREFIX": name})
    server = None
    try:
        def manage(*cmd, extra=None):
            done = subprocess.run([sys.executable, "manage.py", *cmd], cwd=ROOT, env={**env, **(extra or {})},
                                  capture_output=True, text=True, timeout=900)
            if done.returncode:
                sys.exit(f"manage.py {cmd[0]} failed:\n{done.stderr[-4000:]}")
            return done.stdout

        t = time.monotonic()
        manage("migrate", "--noinput")
        # The profile's collectstatic also compresses (slow); the manifest, which serving needs, is the same.
        (work / "fast_static.py").write_text(
            "from datahub_project.settings_production import *  # noqa\nSTORAGES = {**STORAGES, 'staticfiles': "
            "{'BACKEND': 'django.contrib.staticfiles.storage.ManifestStaticFilesStorage'}}\n")
        manage("collectstatic", "--noinput", extra={"PYTHONPATH": str(work), "DJANGO_SETTINGS_MODULE": "fast_static"})
        seeded = json.loads(manage("shell", "-c", SEED.format(runs=args.runs)).strip().splitlines()[-1])
        print(f"seeded {seeded['runs']} runs (+ step runs, record errors, 50 paused gates) "
              f"in {time.monotonic() - t:.0f} s")

        port = free_port()
        log = open(work / "gunicorn.log", "w")
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "--config", "deploy/gunicorn.conf.py",
             "--bind", f"127.0.0.1:{port}", "--workers", str(args.web_workers), "--access-logfile", "/dev/null",
             *args.gunicorn.split(), "datahub_project.wsgi:application"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/healthz?checks=database", timeout=2)
                break
            except Exception:
                time.sleep(0.2)

        # Both cookies a browser holds after its first page: the session and the CSRF secret (without the
        # latter every page would make a new secret, and the page cache stores no page made for a secret
        # that the request did not bring).
        session = {"Cookie": f"sessionid={seeded['session']}; csrftoken={secrets.token_hex(16)}",
                   "X-Forwarded-Proto": "https"}
        token = {"Authorization": f"Token {seeded['token']}", "X-Forwarded-Proto": "https"}
        poll = {**session, "HX-Request": "true", "HX-Target": "run-progress"}
        healthz = ("/healthz?checks=database,broker", "/healthz?checks=database,broker", {})
        targets = [
            healthz,
            ("run list page", "/runs/", session),
            ("run page (failed run, record errors)", f"/runs/{seeded['run']}/", session),
            ("run page poll (htmx partial)", f"/runs/{seeded['run']}/", poll),
            ("gate review page (200 held records)", f"/gates/{seeded['gate_run']}/gate/", session),
            ("gate list page", "/gates/", session),
            ("REST GET /api/runs/", "/api/runs/", token),
            ("REST GET /api/pipelines/", "/api/pipelines/", token),
            ("REST GET /api/gates/", "/api/gates/", token),
            ("REST GET /api/runs/<id>/record-errors/", f"/api/runs/{seeded['run']}/record-errors/", token),
            ("/metrics", "/metrics", {"X-Forwarded-Proto": "https"}),
            healthz,
        ]
        print(f"wrk: 2 threads, {args.connections} connections, {args.seconds} s per URL after a 2 s warm-up; "
              f"gunicorn {args.web_workers} sync workers")
        print(f"{'URL':44} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'non-2xx':>7}  load avg")
        def measure(label, path, headers):
            script = work / "wrk.lua"
            script.write_text(LUA.format(headers="\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())))
            for seconds in (2, args.seconds):  # a warm-up, then the measured run (its output is kept)
                drain(base)
                out = subprocess.run(["wrk", "-t2", f"-c{args.connections}", f"-d{seconds}s", "--timeout", "10s",
                                      "-s", str(script), base + path], capture_output=True, text=True,
                                     timeout=seconds + 60).stdout
            line = next(x for x in out.splitlines() if x.startswith("RESULT "))
            r = json.loads(line[len("RESULT "):])
            rps = r["requests"] / r["seconds"]
            # No answer at all in the whole run counts as failing too (a stalled server answers nothing).
            failed = r["non2xx"] + r["socket_errors"] + (r["requests"] == 0)
            print(f"{label:44} {rps:7.1f} {r['p50']:7.1f} {r['p95']:7.1f} {r['p99']:7.1f} "
                  f"{failed:7d}  {load_average()}")
            return r["p95"], failed

        results = []
        for label, path, headers in [t for t in targets if t is healthz or args.only in t[0]]:
            # The adjacent baseline: /healthz just before each page, under the same load of the machine.
            adjacent = None if label == healthz[0] else measure("  (/healthz just before)", *healthz[1:])[0]
            results.append((label, *measure(label, path, headers), adjacent))
        # The baseline: /healthz measured first and last; the larger p95 of the two (the busier moment).
        base_p95 = max(p95 for label, p95, *_ in (results[0], results[-1]))
        print(f"\np95 against /healthz's p95: the larger of its first and last measurement ({base_p95:.1f} ms), "
              f"and the one just before the page; goal: at most 2x")
        print(f"{'URL':44} {'first/last':>10} {'adjacent':>9}")
        for label, p95, failed, adjacent in results[1:-1]:
            verdict = "ok" if p95 <= 2 * base_p95 and not failed else "OVER" if not failed else "ERRORS"
            verdict_adjacent = "ok" if p95 <= 2 * adjacent and not failed else "OVER" if not failed else "ERRORS"
            print(f"{label:44} {p95 / base_p95:9.2f}x {p95 / adjacent:8.2f}x  {verdict} / {verdict_adjacent}")
        if any(failed for _, _, failed, _ in results):
            print("\nnon-2xx answers or socket errors; the end of gunicorn's log:")
            print("".join((work / "gunicorn.log").read_text().splitlines(keepends=True)[-30:]))
    finally:
        if server is not None:
            try:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(server.pid, signal.SIGKILL)
        if args.cache_url:
            import redis

            cache = redis.Redis.from_url(args.cache_url)
            for key in cache.scan_iter(f"{name}:*"):
                cache.delete(key)
        if args.keep:
            print(f"kept database {name} and DATAHUB_VAR_DIR {work}")
        else:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            subprocess.run(["rm", "-rf", str(work)], check=False)
        admin.close()


if __name__ == "__main__":
    main()

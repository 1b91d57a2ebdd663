"""Real processes for the multi-worker and crash tests: a scratch PostgreSQL database, a Redis database
of their own, ``manage.py qcluster`` clusters and ``manage.py shell`` scripts started as subprocesses.

The pytest-django test database is invisible to other processes, so these tests create a database of
their own (``datahub_ops_<pid>_<random>``), migrate it with ``manage.py migrate`` in a subprocess, and
drop it at the end. Every process started here is in a session of its own and is killed (its whole
process group) in a ``finally``, whatever happens.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PG = "host=127.0.0.1 port=5432 user=postgres"
REDIS = "redis://127.0.0.1:6379"
REDIS_LOCK = "datahub-ops-tests:lock"
# django-q2's keys for the cluster name "datahub" (Q_CLUSTER["name"]): the queue and the cluster stats.
REDIS_KEYS = ("django_q:datahub:q", "django_q:datahub:cluster*")


def _postgres():
    import psycopg

    return psycopg.connect(f"{PG} dbname=postgres", connect_timeout=3, autocommit=True)


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory):
    """A migrated scratch database on the local PostgreSQL, dropped after the session."""
    try:
        conn = _postgres()
    except Exception as exc:
        pytest.skip(f"PostgreSQL is not reachable on 127.0.0.1:5432 ({type(exc).__name__}): these tests "
                    "start real workers against it")
    name = f"datahub_ops_{os.getpid()}_{secrets.token_hex(3)}"
    conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgres://postgres@127.0.0.1:5432/{name}"
    try:
        done = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT,
                              env=base_env(url, tmp_path_factory.mktemp("migrate")), capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        yield url
    finally:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


@pytest.fixture(scope="session")
def redis_url():
    """A Redis database of these tests' own: the first of 15..1 that is empty and not locked by another
    session of these tests (two sessions sharing a queue would take each other's tasks)."""
    import redis

    try:
        redis.Redis.from_url(REDIS, socket_connect_timeout=2).ping()
    except Exception as exc:
        pytest.skip(f"Redis is not reachable on 127.0.0.1:6379 ({type(exc).__name__}): these tests start "
                    "real workers on it")
    for db in range(15, 0, -1):
        client = redis.Redis.from_url(f"{REDIS}/{db}")
        if client.set(REDIS_LOCK, os.getpid(), nx=True, ex=3600):
            if client.dbsize() == 1:
                break
            client.delete(REDIS_LOCK)
    else:
        pytest.skip("no empty Redis database (1-15) is free for these tests")
    try:
        yield f"{REDIS}/{db}"
    finally:
        for pattern in REDIS_KEYS:
            for key in client.scan_iter(pattern):
                client.delete(key)
        client.delete(REDIS_LOCK)


def base_env(database_url: str, var_dir: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATAHUB_", "DJANGO_")) and k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({
        "DJANGO_SETTINGS_MODULE": "datahub_project.settings",
        "DATABASE_URL": database_url,
        "DATAHUB_VAR_DIR": str(var_dir),
        "DATAHUB_PLUGIN_MODULES": "tests.ops.worker_plugin",
        "DATAHUB_OPS_TRACE": str(var_dir / "trace.ndjson"),
        "PYTHONUNBUFFERED": "1",
    })
    env.update({k: str(v) for k, v in extra.items() if v is not None})
    return env


class Fleet:
    """The processes of one test: clusters (kept until the end) and shell scripts (run to completion)."""

    def __init__(self, env: dict, logs: Path):
        self.env = env
        self.logs = logs
        self.clusters: list[subprocess.Popen] = []

    # --- clusters ---

    def start_cluster(self, name: str, command: str = "qcluster", **extra) -> subprocess.Popen:
        """``manage.py qcluster`` (django-q2's) or ``manage.py worker`` (ours: drains, sweeps)."""
        log = open(self.logs / f"{name}.log", "a")
        proc = subprocess.Popen([sys.executable, "manage.py", command], cwd=ROOT, env={**self.env, **extra},
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        proc.name, proc.log_path = name, self.logs / f"{name}.log"
        log.close()
        self.clusters.append(proc)
        return proc

    def wait_running(self, proc, timeout=60) -> None:
        wait_for(lambda: "running." in proc.log_path.read_text() or proc.poll() is not None, timeout,
                 f"cluster {proc.name} to start")
        assert proc.poll() is None, f"cluster {proc.name} exited:\n{proc.log_path.read_text()[-3000:]}"

    def kill(self, proc) -> None:
        """SIGKILL to every process of the cluster (main, sentinel, workers, monitor, pusher): a crash."""
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        wait_for(lambda: not group_alive(proc.pid), 10, f"every process of {proc.name} to die")

    def stop(self, proc, timeout=30) -> None:
        """SIGTERM to the main process only (what systemd's KillMode=mixed does): a graceful stop."""
        if proc.poll() is None:
            with suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(5)

    def close(self) -> None:
        for proc in self.clusters:
            self.stop(proc, timeout=10)

    def logs_text(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.log_path.read_text()[-4000:]}" for p in self.clusters)

    # --- scripts ---

    def shell(self, code: str, timeout=120):
        """Run ``code`` in ``manage.py shell`` against the fleet's database; returns the JSON it prints last."""
        done = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=timeout, start_new_session=True)
        assert done.returncode == 0, f"script failed:\n{done.stderr[-5000:]}"
        return json.loads(done.stdout.strip().splitlines()[-1])

    # --- the database, directly ---

    def sql(self, query: str, params=()) -> list[tuple]:
        import psycopg

        dsn = self.env["DATABASE_URL"].replace("postgres://", "postgresql://")
        with psycopg.connect(dsn, connect_timeout=5) as conn:
            return conn.execute(query, params).fetchall()

    def trace(self) -> list[dict]:
        path = Path(self.env["DATAHUB_OPS_TRACE"])
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Zombies of the killed group count as dead: look for a live member.
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            stat = (pid_dir / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def pgid_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def wait_for(predicate, timeout: float, what: str, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def make_fleet(directory: Path, database_url: str, redis_url: str | None = None, **extra) -> Fleet:
    var = directory / "var"
    var.mkdir(exist_ok=True)
    return Fleet(base_env(database_url, var, REDIS_URL=redis_url, **extra), directory)


@pytest.fixture
def fleet_factory(tmp_path):
    """``fleet_factory(database_url, redis_url=None, **env)`` -> Fleet; every cluster is stopped at the end."""
    fleets = []

    def make(database_url: str, redis_url: str | None = None, **extra) -> Fleet:
        directory = tmp_path / f"fleet{len(fleets)}"
        directory.mkdir()
        fleets.append(make_fleet(directory, database_url, redis_url, **extra))
        return fleets[-1]

    try:
        yield make
    finally:
        for fleet in fleets:
            fleet.close()

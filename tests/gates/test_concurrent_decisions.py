"""A gate is decided once: many approvals, rejections and the timer at the same moment, from real threads
with their own database connections, give one winner and clean conflicts, and the run continues once.

The suite's database (SQLite by default) is used directly; the same tests also run against PostgreSQL in a
subprocess when the service is there, since its row locks are what a production deployment relies on."""

import os
import socket
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection, connections
from django.utils import timezone

from gates import services, tasks
from gates.models import GateRequest, GateStatus
from runs.models import Run, RunStatus
from tests.gates.conftest import linear, paused, queued_tasks, resume_on_a_worker

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 24


def race(actions) -> list:
    """Run every action in its own thread, all released at once; returns what each returned or raised."""
    barrier = threading.Barrier(len(actions))
    results: list = [None] * len(actions)

    def body(i, action):
        try:
            barrier.wait()
            results[i] = action()
        except BaseException as exc:
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=body, args=(i, a)) for i, a in enumerate(actions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def test_it_continues_the_run_once_when_many_approve_at_once(counting, approver):
    run = paused(linear())
    results = race([lambda: services.approve(run.pk, "gate", approver)] * THREADS)

    winners = [r for r in results if isinstance(r, GateRequest)]
    conflicts = [r for r in results if isinstance(r, services.GateConflict)]
    assert len(winners) == 1 and len(conflicts) == THREADS - 1, [r for r in results if isinstance(r, Exception)
                                                                   and not isinstance(r, services.GateConflict)]
    assert all("already approved by alice" in str(c) for c in conflicts)
    assert queued_tasks() == [f"resume-{run.pk}"]
    run = resume_on_a_worker(run)
    assert run.status == RunStatus.COMPLETED and len(counting["after"]) == 2


def test_approvals_rejections_and_the_timer_racing_give_one_decision(counting, approver):
    run = paused(linear(approval="TIMEOUT", timeoutSeconds=1))
    gate = GateRequest.objects.get()
    GateRequest.objects.filter(pk=gate.pk).update(timeout_at=timezone.now() - timedelta(seconds=1))
    actions = []
    for i in range(THREADS):
        if i % 3 == 0:
            actions.append(lambda: services.approve(run.pk, "gate", approver))
        elif i % 3 == 1:
            actions.append(lambda: services.reject(run.pk, "gate", approver, "no"))
        else:
            actions.append(lambda: tasks.auto_approve(gate.pk))
    results = race(actions)

    unexpected = [r for r in results if isinstance(r, Exception) and not isinstance(r, services.GateConflict)]
    assert not unexpected
    gate.refresh_from_db()
    decided = [r for r in results if isinstance(r, GateRequest) or r == "approved"]
    assert len(decided) == 1
    run = Run.objects.get(pk=run.pk)
    if gate.status == GateStatus.REJECTED:
        assert run.status == RunStatus.CANCELLED and queued_tasks() == []
    else:
        assert gate.status == GateStatus.APPROVED and queued_tasks() == [f"resume-{run.pk}"]
        assert resume_on_a_worker(run).status == RunStatus.COMPLETED


def _postgres_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.postgres
def test_it_decides_once_on_postgresql_too():
    if connection.vendor == "postgresql":
        pytest.skip("the suite runs on PostgreSQL: the tests above covered it")
    if not _postgres_reachable():
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/datahub_gates_{os.getpid()}"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--create-db",
         f"{__file__}::test_it_continues_the_run_once_when_many_approve_at_once",
         f"{__file__}::test_approvals_rejections_and_the_timer_racing_give_one_decision"],
        cwd=root, env=env, capture_output=True, text=True, timeout=280,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "2 passed" in proc.stdout

"""``manage.py worker``: a django-q2 cluster that stops cleanly, and takes back the runs of dead workers.

Why not ``qcluster``: django-q2's cluster stops from inside its signal handler (it joins its sentinel
there), which can deadlock (django-q2 issues #66 and #346: "Q Cluster ... stopping." and then nothing);
its sentinel's children keep SIGTERM's default action, so a signal to the process group (Ctrl-C in a
terminal, systemd's default KillMode) kills the worker processes mid-run; and it waits for runs in flight
without limit.

Here the signal handler only records the request; the main loop does the stopping. Every process of the
cluster ignores SIGTERM and SIGINT, so a signal to the main process or to the whole group does the same:

1. no task is taken any more (the pusher stops; a task already fetched is queued again untouched);
2. every run in flight stops starting steps and is handed back (PENDING, queued again, continued by another
   worker from its last completed step) as soon as its steps in flight end, or, at the latest a little
   before the drain window (``DATAHUB_DRAIN_SECONDS``, 10 s) ends, with those steps interrupted: they run
   again from their start elsewhere; the run is never FAILED for it;
3. the process exits within the window. Whatever is somehow still alive at its end is killed (its run is
   then taken back by another worker's sweep like a crash). A second signal hands runs back at once.

While it runs, the main process also sweeps every ``DATAHUB_REAPER_SECONDS`` (5 s): runs whose worker
stopped beating for ``DATAHUB_HEARTBEAT_TIMEOUT`` (15 s) are taken back and resumed (runs.services), and
runs whose task was lost are queued again. Every worker sweeps; conditional UPDATEs make each act once.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
import uuid
from contextlib import suppress
from multiprocessing import Event
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections, connections

log = logging.getLogger("runs.worker")


def _sentinel(stop_event, start_event, cluster_id, broker, timeout):
    """django-q2's sentinel, with SIGTERM and SIGINT ignored in it and in every process it forks (workers,
    pusher, monitor): only the main process decides how the cluster stops."""
    from django_q.cluster import Sentinel

    sentinel = Sentinel(stop_event, start_event, cluster_id, broker, timeout, start=False)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sentinel.start()


def _descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (from /proc; no psutil)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class Command(BaseCommand):
    help = ("Start a worker cluster (django-q2) that drains on SIGTERM/SIGINT within DATAHUB_DRAIN_SECONDS and "
            "takes back the runs of workers that died.")

    def handle(self, *args, **options):
        from django_q.cluster import Cluster, get_mp_context

        from runs import drain

        settings.SECRET_KEY  # noqa: B018 - django-q2 signs tasks with it: fail now, not in the workers
        window = settings.DATAHUB_DRAIN_SECONDS
        signals: list[int] = []

        class DrainingCluster(Cluster):
            def sig_handler(self, signum, frame):  # never block here: the main loop acts on it
                signals.append(signum)

        drain.install()
        connections.close_all()  # the forked processes must not share this process's connections
        cluster = DrainingCluster()
        cluster.stop_event, cluster.start_event = Event(), Event()
        cluster.sentinel = get_mp_context().Process(
            target=_sentinel, name=f"Process-{uuid.uuid4().hex}",
            args=(cluster.stop_event, cluster.start_event, cluster.cluster_id, None, None))
        cluster.sentinel.start()
        log.info("worker %s (pid %s) starting; drain window %s s", cluster.name, os.getpid(), window)

        next_sweep = time.monotonic() + 1
        while not signals and cluster.sentinel.is_alive():
            if cluster.start_event.is_set() and time.monotonic() >= next_sweep:
                self._sweep()
                next_sweep = time.monotonic() + settings.DATAHUB_REAPER_SECONDS
            time.sleep(0.1)
        if not signals:
            log.error("worker %s: its cluster exited (code %s)", cluster.name, cluster.sentinel.exitcode)
            raise SystemExit(1)
        self._drain(cluster, window, signals)

    def _sweep(self) -> None:
        from runs import services

        try:
            close_old_connections()
            taken = services.reap_stale_runs()
            if taken:
                log.warning("took back %s run(s) whose worker stopped responding", taken)
            services.requeue_lost_runs()
        except Exception:  # a database restarting must not stop the worker; the next sweep tries again
            log.exception("sweep for runs of dead workers failed")
            connections.close_all()

    def _drain(self, cluster, window: int, signals: list[int]) -> None:
        from runs import drain

        began = time.time()
        # Runs hand back a little before the window ends, leaving time to save their state and exit.
        hand_back_at = began + max(window - 3.0, window * 0.5)
        drain.start(hand_back_at)
        log.info("worker %s: stopping (signal %s); taking no tasks; runs in flight are handed back within %.0f s",
                 cluster.name, signals[0], hand_back_at - began)
        cluster.stop_event.set()
        seen = 1
        while cluster.sentinel.is_alive() and time.time() < began + window:
            if len(signals) > seen:  # asked again: hand back now
                seen = len(signals)
                drain.start(time.time())
            cluster.sentinel.join(0.1)
        if cluster.sentinel.is_alive():
            left = _descendants(os.getpid())
            log.error("worker %s: drain window (%s s) over; killing %s process(es) still alive; their runs are "
                      "taken back by another worker", cluster.name, window, len(left))
            for pid in left:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            cluster.sentinel.join(2)
        log.info("worker %s stopped after %.1f s", cluster.name, time.time() - began)
        # Every process of the cluster is gone and every run handed back: nothing is left to clean up, and
        # the interpreter's teardown of a Django process can take seconds on a busy machine, past the window.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)

"""``manage.py consume``: the long-running process that runs MESSAGE consumers.

Every tick (2 s) it reads which consumers should run (their trigger exists, its pipeline is enabled, and
``desired`` is RUNNING), takes each with a conditional UPDATE on its row (free, already ours, or its
owner's heartbeat older than ``DATAHUB_CONSUMER_LEASE_SECONDS``: that process died), renews what it holds,
and starts or stops the consuming threads (``concurrency`` per consumer) to match. A changed trigger config
restarts that consumer's threads. Several consume processes share the work: each consumer is run by one
of them at a time, and when a process dies another takes its consumers after the lease.

SIGTERM or SIGINT: the threads stop taking messages, finish or give back the batch in hand (a message not
yet in a run stays unacknowledged and comes back), close their connections, and the process gives its
consumers up and exits, within a few seconds.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from django.db import close_old_connections
from django.db.models import Q
from django.utils import timezone

from runs.consumers import services
from runs.consumers.config import MessageSettings
from runs.consumers.models import Consumer, ConsumerState
from runs.consumers.worker import run_loop

log = logging.getLogger(__name__)

TICK_S = 2.0
RATE_WINDOW_S = 60.0
JOIN_TIMEOUT_S = 5.0


@dataclass
class Runner:
    consumer: Consumer
    config: dict
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    samples: deque = field(default_factory=lambda: deque(maxlen=64))  # (monotonic time, received)

    def start(self) -> None:
        settings = MessageSettings.from_config(self.config, pipeline_code=self.consumer.pipeline.code)
        for i in range(settings.concurrency):
            thread = threading.Thread(target=run_loop, args=(self.consumer, settings, self.stop),
                                      kwargs={"measures_lag": i == 0}, name=f"consumer-{self.consumer.pk}-{i}",
                                      daemon=True)
            thread.start()
            self.threads.append(thread)

    def halt(self) -> None:
        self.stop.set()

    def join(self, deadline: float) -> None:
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))


class Supervisor:
    def __init__(self, *, pipeline_codes: list[str] | None = None, tick_s: float = TICK_S):
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.pipeline_codes = pipeline_codes or None
        self.tick_s = tick_s
        self.stop = threading.Event()
        self.runners: dict[int, Runner] = {}

    def run(self) -> None:
        log.info("consume %s: started (SIGTERM or Ctrl-C stops it)", self.name)
        try:
            while not self.stop.is_set():
                try:
                    self.tick()
                except Exception:  # noqa: BLE001  (the database may be away for a moment: try next tick)
                    log.exception("consume %s: tick failed", self.name)
                    close_old_connections()
                self.stop.wait(self.tick_s)
        finally:
            self.shutdown()

    def tick(self) -> None:
        close_old_connections()
        wanted = {}
        for c in services.configured_consumers(self.pipeline_codes):
            if c.consumer.desired == services.RUNNING and c.can_run:
                wanted[c.consumer.pk] = c
            elif c.consumer.desired == services.RUNNING and c.consumer.owner in ("", self.name):
                Consumer.objects.filter(pk=c.consumer.pk).update(last_error=f"not started: {c.why_not}")
        for pk, runner in list(self.runners.items()):
            if pk not in wanted or wanted[pk].config != runner.config:
                self._halt(pk)
        now = timezone.now()
        stale = now - services.lease()
        for pk, c in wanted.items():
            held = Consumer.objects.filter(pk=pk).filter(
                Q(owner=self.name) | Q(owner="") | Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=stale)
            ).update(owner=self.name, heartbeat_at=now)
            if held and pk not in self.runners:
                Consumer.objects.filter(pk=pk).update(state=ConsumerState.STARTING)
                runner = self.runners[pk] = Runner(c.consumer, c.config)
                runner.start()
                log.info("consume %s: consumer %s started", self.name, c.consumer)
            elif not held and pk in self.runners:
                log.warning("consume %s: consumer %s was taken over by another process", self.name, c.consumer)
                self._halt(pk)
        Consumer.objects.filter(owner=self.name).exclude(pk__in=list(self.runners)).update(
            owner="", heartbeat_at=None, state=ConsumerState.STOPPED)
        self._rates()

    def _halt(self, pk: int) -> None:
        runner = self.runners.pop(pk)
        runner.halt()
        runner.join(time.monotonic() + JOIN_TIMEOUT_S)
        log.info("consume %s: consumer %s stopped", self.name, runner.consumer)

    def _rates(self) -> None:
        """Messages per second over the last minute, from the consumer's own received counter."""
        received = dict(Consumer.objects.filter(pk__in=list(self.runners)).values_list("pk", "received"))
        now = time.monotonic()
        for pk, runner in self.runners.items():
            if pk not in received:
                continue
            runner.samples.append((now, received[pk]))
            while len(runner.samples) > 2 and now - runner.samples[1][0] >= RATE_WINDOW_S:
                runner.samples.popleft()
            first_t, first_n = runner.samples[0]
            rate = (received[pk] - first_n) / (now - first_t) if now > first_t else 0.0
            Consumer.objects.filter(pk=pk).update(rate=round(rate, 3))

    def shutdown(self) -> None:
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        for runner in self.runners.values():
            runner.halt()
        for runner in self.runners.values():
            runner.join(deadline)
        try:
            Consumer.objects.filter(owner=self.name).update(owner="", heartbeat_at=None, state=ConsumerState.STOPPED)
        except Exception:  # noqa: BLE001  (stopping without a database: the lease lapses by itself)
            log.exception("consume %s: could not give its consumers up", self.name)
        self.runners.clear()
        log.info("consume %s: stopped", self.name)

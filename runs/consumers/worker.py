"""One consuming loop: take a batch, dead-letter what cannot be read, put the rest in a run, acknowledge.

The order is the guarantee: a message is acknowledged only after the transaction that put it in a run
committed (``ackMode`` RUN_CREATED), or after that run COMPLETED (RUN_COMPLETED); a dead letter only after
the dead-letter queue confirmed it and its row is written. Whatever dies in between (this process, the
database, the broker connection), the message is still the broker's and comes back; ``intake`` makes the
second delivery find the run of the first.
"""

from __future__ import annotations

import logging
import threading
import time

from django.db import IntegrityError, InterfaceError, OperationalError, close_old_connections, connections

from pipelines.adapters.base import AdapterContext
from pipelines.connections import resolve_connection
from pipelines.errors import ConfigError
from pipelines.secrets import resolve_secret
from runs.consumers import intake
from runs.consumers.brokers import Broker, BrokerError, Message, open_broker
from runs.consumers.config import MessageSettings
from runs.consumers.decode import Malformed, decode
from runs.consumers.models import Consumer, ConsumerState
from runs.models import ENDED_STATUSES, RunStatus

log = logging.getLogger(__name__)

WAIT_POLL_S = 0.5  # how often a RUN_COMPLETED batch looks at its runs
LAG_EVERY_S = 5.0
MAX_BACKOFF_S = 30.0
MAX_REMEMBERED_FAILURES = 10_000
TRANSIENT_DB_ERRORS = (OperationalError, InterfaceError, IntegrityError)


class ConsumerWorker:
    """The loop of one thread of a consumer, one batch per ``poll_once`` (tests call it directly)."""

    def __init__(self, consumer: Consumer, settings: MessageSettings, broker: Broker, stop: threading.Event):
        self.consumer = consumer
        self.settings = settings
        self.broker = broker
        self.stop = stop
        # Failed attempts to start a run, per message key (a run that cannot be created leaves no row to count
        # in); kept in this process only, so a restart gives such messages their retries again.
        self.start_failures: dict[str, int] = {}

    def poll_once(self) -> int:
        """Handle one batch; returns how many messages it took (0: none arrived within batchWaitMs)."""
        messages = self.broker.fetch(self.settings.batch_size, self.settings.batch_wait_s, self.stop)
        if not messages:
            return 0
        intake.count(self.consumer, received=len(messages))
        readable: list[tuple[Message, list[dict]]] = []
        for m in messages:
            try:
                if m.problem:
                    raise Malformed(m.problem)
                readable.append((m, decode(m.body, operation=m.operation)))
            except Malformed as exc:
                self._dead_letter(m, f"malformed message: {exc}", 1)
        if readable:
            self._seed(readable)
        return len(messages)

    def _seed(self, readable: list[tuple[Message, list[dict]]]) -> None:
        messages = [m for m, _ in readable]
        completed_mode = self.settings.ack_mode == "RUN_COMPLETED"
        try:
            result = intake.take_batch(self.consumer, [(m.key, records) for m, records in readable],
                                       max_retries=self.settings.max_retries, retry_failed_runs=completed_mode)
        except Exception as exc:  # noqa: BLE001  (a database or definition problem: the messages go back)
            self._start_failed(messages, exc)
            return
        for m in messages:
            self.start_failures.pop(m.key, None)
        for m in messages:
            if m.key in result.exhausted:
                self._dead_letter(m, *result.exhausted[m.key])
        placed = [m for m in messages if m.key in result.runs]
        if completed_mode:
            self._await_runs(placed, result.runs)
        else:
            self._ack(placed)

    def _ack(self, messages: list[Message]) -> None:
        if messages:
            self.broker.ack(messages)
            intake.count(self.consumer, acked=len(messages))

    def _dead_letter(self, message: Message, reason: str, attempts: int) -> None:
        self.broker.dead_letter(message, reason, attempts)
        intake.record_dead_letter(self.consumer, message.key, message.body, reason, attempts)
        self.broker.ack([message])
        log.warning("consumer %s: message %s is a dead letter: %s", self.consumer, message.key, reason)

    def _start_failed(self, messages: list[Message], exc: Exception) -> None:
        why = f"{type(exc).__name__}: {exc}" if not isinstance(exc, ConfigError) else str(exc)
        log.warning("consumer %s: could not start a run for %d messages: %s", self.consumer, len(messages), why)
        intake.count(self.consumer, errors=1, last_error=f"could not start a run: {why}")
        if isinstance(exc, TRANSIENT_DB_ERRORS):
            # The database is away, or another consumer put the same message in a run a moment ago: nothing
            # about the messages is wrong, so they go back without using up a retry.
            self.broker.release(messages)
            self.stop.wait(1.0)
            return
        if len(self.start_failures) > MAX_REMEMBERED_FAILURES:
            self.start_failures.clear()
        back = []
        for m in messages:
            tries = self.start_failures[m.key] = self.start_failures.get(m.key, 0) + 1
            if tries > self.settings.max_retries:
                self.start_failures.pop(m.key)
                self._dead_letter(m, f"could not start a run after {tries} attempts: {why}", tries)
            else:
                back.append(m)
        self.broker.release(back)
        self.stop.wait(1.0)  # the cause (a database down, a definition being fixed) needs a moment

    def _await_runs(self, messages: list[Message], runs: dict[str, int]) -> None:
        """RUN_COMPLETED: ack each message when its run COMPLETED; a failed run's messages go back for another
        run, or become dead letters after maxRetries retries. Stopping gives back what is still waited for."""
        waiting = list(messages)
        while waiting and not self.stop.is_set():
            found = intake.run_statuses(runs[m.key] for m in waiting)
            ended = [m for m in waiting if runs[m.key] not in found or found[runs[m.key]].status in ENDED_STATUSES]
            if ended:
                waiting = [m for m in waiting if m not in ended]
                good = [m for m in ended if runs[m.key] not in found
                        or found[runs[m.key]].status == RunStatus.COMPLETED]
                self._ack(good)
                failed = [m for m in ended if m not in good]
                attempts = intake.attempts_of(self.consumer, [m.key for m in failed])
                back = []
                for m in failed:
                    run = found[runs[m.key]]
                    tries = attempts.get(m.key, 1)
                    if tries > self.settings.max_retries:
                        reason = (f"{intake.run_failure(run)}; gave up after {tries} runs "
                                  f"(maxRetries {self.settings.max_retries})")
                        self._dead_letter(m, reason, tries)
                    else:
                        back.append(m)
                if back:
                    intake.count(self.consumer, errors=1,
                                 last_error=f"run {runs[back[0].key]} did not complete; {len(back)} messages retried")
                    self.broker.release(back)
            if waiting:
                self.broker.keep_alive(waiting)
                self.stop.wait(WAIT_POLL_S)
        if waiting:
            self.broker.release(waiting)


def adapter_context(consumer: Consumer) -> AdapterContext:
    return AdapterContext(step_key=consumer.trigger_key, pipeline_code=consumer.pipeline.code,
                          secret=resolve_secret, connection=resolve_connection)


def run_loop(consumer: Consumer, settings: MessageSettings, stop: threading.Event, *, measures_lag: bool) -> None:
    """A consuming thread until ``stop``: connects, polls, and after a failure reconnects with a growing pause
    (1 s doubling to 30 s). Nothing escapes: every failure is counted on the consumer and shown."""
    backoff = 1.0
    try:
        while not stop.is_set():
            broker = None
            try:
                close_old_connections()
                broker = open_broker(settings, adapter_context(consumer))
                Consumer.objects.filter(pk=consumer.pk).exclude(state=ConsumerState.RUNNING).update(
                    state=ConsumerState.RUNNING)
                worker = ConsumerWorker(consumer, settings, broker, stop)
                next_lag = 0.0
                while not stop.is_set():
                    if measures_lag and time.monotonic() >= next_lag:
                        Consumer.objects.filter(pk=consumer.pk).update(lag=broker.lag())
                        next_lag = time.monotonic() + LAG_EVERY_S
                    close_old_connections()
                    worker.poll_once()
                    backoff = 1.0
            except (BrokerError, ConfigError) as exc:
                _failing(consumer, str(exc))
            except (OperationalError, InterfaceError) as exc:  # the database is away; the broker keeps the messages
                _failing(consumer, f"database: {type(exc).__name__}: {exc}")
            except Exception as exc:  # noqa: BLE001  (a bug must not end the consumer silently)
                log.exception("consumer %s crashed; restarting it", consumer)
                _failing(consumer, f"internal error: {type(exc).__name__}: {exc}")
            finally:
                if broker is not None:
                    broker.close()
            stop.wait(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
    finally:
        connections.close_all()


def _failing(consumer: Consumer, why: str) -> None:
    log.warning("consumer %s: %s", consumer, why)
    try:
        close_old_connections()
        intake.count(consumer, errors=1, last_error=why)
        Consumer.objects.filter(pk=consumer.pk).update(state=ConsumerState.FAILING)
    except Exception:  # noqa: BLE001  (the database may be what failed)
        log.exception("consumer %s: cannot record its failure", consumer)

"""Optional OpenTelemetry export: a trace per run execution, a span per step, over OTLP/HTTP.

Off unless ``DATAHUB_OTLP_ENDPOINT`` names a collector's traces URL (``http://collector:4318/v1/traces``).
Then :class:`RunTracer`, beside the run log in :class:`runs.store.DjangoRunStore`, turns the executor's
events into spans through the OpenTelemetry SDK:

- ``run <pipeline code>``: from RunStarted to RunFinished (or the pause), attributes ``datahub.run.id``,
  ``datahub.pipeline.code``, ``datahub.run.trigger``, ``datahub.run.dry_run``, ``datahub.run.status``;
  status ERROR when the run failed.
- ``step <key>`` under it: from the step's first start to its end, attributes ``datahub.step.key``,
  ``datahub.step.status``, ``datahub.step.attempts`` and the record counts ``datahub.records.in``,
  ``.out``, ``.error``, ``.dropped``; status ERROR with the error when the step failed.

Spans leave in batches from a background thread of the SDK (``BatchSpanProcessor``), so a slow or absent
collector never slows a run; the SDK drops what it cannot send. The endpoint comes from the environment
only (an operator's setting, not user input), so the exporter's own HTTP client is used, not the guarded
one. A tracing failure is logged and never fails a run.
"""

from __future__ import annotations

import logging
import threading
import time
from urllib.parse import urlsplit

from django.conf import settings

from runs.engine.events import Event, RunFinished, RunPaused, RunStarted, StepFinished, StepStarted
from runs.models import Run

log = logging.getLogger(__name__)

_lock = threading.Lock()
_state: dict = {"endpoint": None, "provider": None, "refused": None}


def configuration_problem(endpoint: str) -> str | None:
    """What is wrong with exporting to ``endpoint`` (the system check ``datahub.E030`` reports it at start),
    or None: it must be an http(s) URL with a host, and the ``otel`` extra must be installed."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return (f"DATAHUB_OTLP_ENDPOINT {endpoint!r} is not an http(s) URL with a host "
                "(for example http://collector:4318/v1/traces)")
    try:
        import opentelemetry.exporter.otlp.proto.http.trace_exporter  # noqa: F401
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError:
        return ("DATAHUB_OTLP_ENDPOINT is set but the OpenTelemetry SDK is not installed: "
                "pip install 'datahub[otel]'")
    return None


def provider():
    """The process's TracerProvider for the configured endpoint, or None when export is off (or cannot
    work: :func:`configuration_problem`, logged once per endpoint; a run never fails for it)."""
    endpoint = getattr(settings, "DATAHUB_OTLP_ENDPOINT", "")
    if not endpoint:
        return None
    with _lock:
        if _state["endpoint"] == endpoint:
            return _state["provider"]
        if _state["refused"] == endpoint:
            return None
        problem = configuration_problem(endpoint)
        if problem:
            log.error("traces are not exported: %s", problem)
            _state["refused"] = endpoint
            return None
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        if _state["provider"] is not None:
            _state["provider"].shutdown()
        made = TracerProvider(resource=Resource.create({"service.name": "datahub"}))
        made.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, timeout=10)))
        _state.update(endpoint=endpoint, provider=made)
        return made


def flush(timeout_ms: int = 10_000) -> bool:
    """Send what is waiting now (tests, and a worker that is stopping)."""
    made = _state["provider"]
    return made.force_flush(timeout_ms) if made is not None else True


class RunTracer:
    """Spans of one run execution from its events; does nothing when export is off."""

    def __init__(self, run: Run):
        made = provider()
        self.tracer = made.get_tracer("datahub.runs") if made is not None else None
        self.run = run
        self.run_span = None
        self.steps: dict = {}

    def record(self, event: Event) -> None:
        if self.tracer is None:
            return
        try:
            self._record(event, time.time_ns())
        except Exception:  # tracing must never cost a run
            log.exception("tracing run %s failed", self.run.pk)

    def _record(self, event: Event, now: int) -> None:
        from opentelemetry import trace
        from opentelemetry.trace import Status, StatusCode

        if isinstance(event, RunStarted) and self.run_span is None:
            self.run_span = self.tracer.start_span(f"run {self.run.pipeline.code}", start_time=now, attributes={
                "datahub.run.id": self.run.pk, "datahub.pipeline.code": self.run.pipeline.code,
                "datahub.run.trigger": self.run.trigger, "datahub.run.dry_run": self.run.dry_run})
        elif isinstance(event, StepStarted) and self.run_span is not None and event.step_key not in self.steps:
            parent = trace.set_span_in_context(self.run_span)
            self.steps[event.step_key] = self.tracer.start_span(
                f"step {event.step_key}", context=parent, start_time=now,
                attributes={"datahub.step.key": event.step_key})
        elif isinstance(event, StepFinished):
            span = self.steps.pop(event.step_key, None)
            if span is None and self.run_span is not None:  # skipped: never started
                span = self.tracer.start_span(f"step {event.step_key}", start_time=now,
                                              context=trace.set_span_in_context(self.run_span),
                                              attributes={"datahub.step.key": event.step_key})
            if span is None:
                return
            c = event.counts
            span.set_attributes({"datahub.step.status": event.status, "datahub.step.attempts": event.attempts,
                                 "datahub.records.in": c.records_in, "datahub.records.out": c.records_out,
                                 "datahub.records.error": c.errors, "datahub.records.dropped": c.dropped})
            if event.status == "FAILED":
                span.set_status(Status(StatusCode.ERROR, (event.error or "")[:500]))
            span.end(end_time=now)
        elif isinstance(event, RunPaused | RunFinished) and self.run_span is not None:
            status = "PAUSED" if isinstance(event, RunPaused) else event.status
            self.run_span.set_attribute("datahub.run.status", status)
            if status == "FAILED":
                self.run_span.set_status(Status(StatusCode.ERROR, (getattr(event, "error", "") or "")[:500]))
            for span in self.steps.values():
                span.end(end_time=now)
            self.steps.clear()
            self.run_span.end(end_time=now)
            self.run_span = None

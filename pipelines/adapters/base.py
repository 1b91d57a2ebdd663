"""How extractors and writers (loaders, exporters, feeds, sinks) are written. [pure]

An extractor yields batches; a writer takes batches and says, per batch, which records failed. Both are
constructed once per step with their (schema-checked) config and an :class:`AdapterContext`, and closed
when the step ends, so a connection or a file handle lives exactly as long as the step.

Errors: raise :class:`~pipelines.errors.ConfigError` for config that cannot work (not retried),
:class:`~pipelines.errors.StepError` for a failure of the whole step (``retryable=True`` for a 503 or a
timeout, so the step's ``retries`` apply). A record that fails alone goes into ``WriteResult.failed``.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipelines.records import Batch, Record


@dataclass
class AdapterContext:
    step_key: str = ""
    pipeline_code: str = ""
    run_id: Any = None
    dry_run: bool = False
    batch_size: int = 1000
    # The step's own checkpoint (a file offset, an incremental cursor); saved when the step succeeds.
    checkpoint: dict = field(default_factory=dict)
    # Stop after this many records (previews and dry runs on the first N records).
    record_limit: int | None = None
    http: Any = None
    storage: Any = None
    secret: Callable[[str], str] | None = None
    connection: Callable[[str], dict] | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    # An extractor's input: the batches its predecessors passed on (a FILE trigger's files), read on demand.
    upstream: Callable[[], Iterator[Batch]] | None = None
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        if len(self.warnings) < 1000:
            self.warnings.append(message)


class Extractor(ABC):
    def __init__(self, config: dict, ctx: AdapterContext):
        self.config = config
        self.ctx = ctx

    @abstractmethod
    def batches(self) -> Iterator[Batch]:
        """Yield lists of records (at most ``ctx.batch_size`` each, ideally)."""

    def close(self) -> None:
        """Release what the extractor holds; called once, also after a failure."""


@dataclass
class WriteResult:
    written: int = 0
    failed: list[tuple[Record, str]] = field(default_factory=list)
    # Records to pass on to the next step; None means "the input minus the failed ones".
    output: Batch | None = None


class Writer(ABC):
    """A loader, exporter, feed or sink."""

    # True when nothing leaves the run before finish() (a file written to a temporary file first): such a
    # writer may consume a stream, since a producer failing half way leaves nothing published.
    publishes_at_finish = False

    def __init__(self, config: dict, ctx: AdapterContext):
        self.config = config
        self.ctx = ctx

    @abstractmethod
    def write(self, batch: Batch) -> WriteResult:
        """Write one batch; report the records that failed alone."""

    def finish(self) -> None:
        """Called after the last batch of a successful step (exporters write their file here)."""

    def close(self) -> None:
        """Called once when the step ends, successful or not."""

"""The typed errors of the engine. [pure]

Every error a user can cause names *where* it happened (step key, field path, operator index) so that
pages, the API and the CLI can show it next to what caused it. None of them carries a stack trace to
the user; the executor logs those.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field


class DatahubError(Exception):
    """Base of every error the engine raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a definition or a config. ``field`` is a dotted path inside the step."""

    message: str
    step: str | None = None
    field: str | None = None
    code: str = "invalid"

    def as_dict(self) -> dict:
        return {"step": self.step, "field": self.field, "message": self.message, "code": self.code}

    def __str__(self) -> str:
        where = []
        if self.step is not None:
            where.append(f"step '{self.step}'")
        if self.field:
            where.append(f"field '{self.field}'")
        return f"{', '.join(where)}: {self.message}" if where else self.message


class DefinitionError(DatahubError):
    """A pipeline definition (or a part of it) is invalid. Holds every problem found, not just the first."""

    def __init__(self, problems: list[Problem] | Problem | str):
        if isinstance(problems, str):
            problems = [Problem(problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems))

    def as_list(self) -> list[dict]:
        return [p.as_dict() for p in self.problems]


class ConfigError(DatahubError):
    """An operator's args or an adapter's config cannot work (found at validation or at run time).

    Not retryable: running the same config again gives the same error.
    """

    def __init__(self, message: str, *, field: str | None = None):
        self.field = field
        super().__init__(message)


class StepError(DatahubError):
    """A step failed as a whole. ``retryable`` says whether running it again may help (a 503, a timeout)."""

    def __init__(self, message: str, *, retryable: bool = False):
        self.retryable = retryable
        super().__init__(message)


class StepCancelled(StepError):
    """The step noticed that it was told to stop (the run was cancelled, or FAIL_FAST stopped it)."""

    def __init__(self, message: str = "cancelled"):
        super().__init__(message, retryable=False)


class HttpError(DatahubError):
    """An outbound request failed or was refused. ``retryable`` says whether trying again may help."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ):
        self.status = status
        self.retryable = retryable
        # Seconds the server asked us to wait (Retry-After of a 429/503), when it said so.
        self.retry_after = retry_after
        super().__init__(message)


class RecordError(DatahubError):
    """One record cannot be processed. The executor sends it to the record-error list; the batch goes on."""

    def __init__(self, message: str, *, retryable: bool = True):
        self.retryable = retryable
        super().__init__(message)


@dataclass
class UnknownCode(DatahubError):
    """A code that no registry entry has. The message suggests the nearest known code."""

    kind: str
    code: str
    known: list[str] = field(default_factory=list)

    def __post_init__(self):
        Exception.__init__(self, self.message)

    @property
    def suggestion(self) -> str | None:
        close = difflib.get_close_matches(str(self.code), self.known, n=1, cutoff=0.6)
        if not close:
            lowered = {k.lower(): k for k in self.known}
            hit = lowered.get(str(self.code).lower())
            return hit
        return close[0]

    @property
    def message(self) -> str:
        text = f"unknown {self.kind} '{self.code}'"
        if self.suggestion:
            text += f"; did you mean '{self.suggestion}'?"
        return text

    def __str__(self) -> str:
        return self.message

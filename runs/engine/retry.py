"""Per-record retry in TRANSFORM steps (``config.retryPerRecord``). [pure]

A record that fails is processed again from its original value through the step's whole operator chain,
up to ``maxRetries`` more times; after the last attempt it goes to the record-error list with its attempt
count, and the step goes on. Retries run in *rounds*: every record that failed in round n is retried
in round n+1 after one delay, without the records that passed, so a thousand records failing once with a
100 ms delay cost about 100 ms of waiting, not 100 s. Records keep their input order in the output.

Every operator kind takes part: per-record operators, custom operators (called one record at a time) and
batch operators that trace each output to its input (httpLookup, whose failed lookups then fail the
record instead of writing the default). A chain with an operator that combines records (aggregate,
deduplicateRecords, multiJoin, deltaFilter, expand) cannot retry one record alone: such a definition is
refused (:func:`retry_problems`) rather than retrying silently nothing.

``retryableErrors`` lists message patterns (regular expressions, matched with search); an error that
matches none is not retried. Empty means every error is retried, except errors an operator marks as not
retryable.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from pipelines.errors import ConfigError
from pipelines.operators.chain import ChainResult, OperatorChain, RecordFailure, whole_batch_operators
from pipelines.records import Batch, Record

MAX_RETRIES = 20
MAX_DELAY_MS = 60_000

RETRY_SCHEMA = {
    "type": "object",
    "description": "Retry each failing record through the whole operator chain before it becomes a record error.",
    "properties": {
        "maxRetries": {"type": "integer", "minimum": 0, "maximum": MAX_RETRIES, "default": 0,
                       "description": "How many more times a failing record is tried."},
        "retryDelayMs": {"type": "integer", "minimum": 0, "maximum": MAX_DELAY_MS, "default": 100,
                         "description": "Wait before each retry round (the first one for EXPONENTIAL)."},
        "backoff": {"enum": ["FIXED", "EXPONENTIAL"], "default": "FIXED",
                    "description": "FIXED waits retryDelayMs every round; EXPONENTIAL doubles it each round."},
        "retryableErrors": {"type": "array", "items": {"type": "string"}, "default": [],
                            "description": "Regular expressions; only errors whose message matches one are "
                            "retried. Empty: every error."},
    },
    "additionalProperties": False,
}


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 0
    delay_ms: int = 100
    exponential: bool = False
    patterns: tuple[re.Pattern, ...] = ()

    @classmethod
    def from_config(cls, config: object) -> RetryPolicy | None:
        if config is None:
            return None
        if not isinstance(config, dict):
            raise ConfigError("must be an object", field="retryPerRecord")
        try:
            patterns = tuple(re.compile(p) for p in config.get("retryableErrors") or [])
        except (re.error, TypeError) as exc:
            raise ConfigError(f"invalid pattern: {exc}", field="retryPerRecord.retryableErrors") from None
        policy = cls(
            max_retries=int(config.get("maxRetries", 0)),
            delay_ms=int(config.get("retryDelayMs", 100)),
            exponential=config.get("backoff", "FIXED") == "EXPONENTIAL",
            patterns=patterns,
        )
        return policy if policy.max_retries > 0 else None

    def delay_before(self, round_number: int) -> float:
        """Seconds to wait before retry round ``round_number`` (1-based)."""
        ms = self.delay_ms * (2 ** (round_number - 1) if self.exponential else 1)
        return min(ms, MAX_DELAY_MS) / 1000

    def retries(self, failure: RecordFailure) -> bool:
        if not failure.retryable or failure.position is None:
            return False
        return not self.patterns or any(p.search(failure.message) for p in self.patterns)


def retry_problems(config: dict) -> list[tuple[str, str]]:
    """(field, message) when a TRANSFORM config asks for per-record retry over an operator that works on
    the whole batch: its outputs have no single input record to retry from."""
    retry = config.get("retryPerRecord")
    if not isinstance(retry, dict) or not isinstance(retry.get("maxRetries"), int) or retry["maxRetries"] <= 0:
        return []
    return [("retryPerRecord", f"operators[{index}] ('{code}') works on the whole batch, so a failing record "
             "cannot be retried on its own; put it in a TRANSFORM step of its own, without retryPerRecord")
            for index, code in whole_batch_operators(config.get("operators"))]


@dataclass(frozen=True)
class Attempt:
    """One failed attempt of one record, for the audit."""

    record: Record
    attempt: int
    error: str
    at: float


def apply_with_retry(
    chain: OperatorChain,
    batch: Batch,
    policy: RetryPolicy,
    *,
    on_attempt: Callable[[Attempt], None],
    cancelled: Callable[[], bool] = lambda: False,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[ChainResult, dict[int, int]]:
    """Apply ``chain`` with retry rounds. Returns the merged result and, per final failure's position,
    its attempt count."""
    first = chain.apply(batch)
    if not first.failures:
        return first, {}
    positional = first.positions is not None
    slots: list[tuple[int, Record]] = list(zip(first.positions, first.records, strict=True)) if positional else []
    tail: Batch = [] if positional else list(first.records)
    final: list[RecordFailure] = []
    attempts: dict[int, int] = {}
    pending: list[RecordFailure] = []
    for f in first.failures:
        on_attempt(Attempt(f.record, 1, f.message, time.time()))
        (pending if policy.retries(f) else final).append(f)
        if f.position is not None:
            attempts[f.position] = 1
    dropped = first.dropped
    for round_number in range(1, policy.max_retries + 1):
        if not pending or cancelled():
            break
        sleep(policy.delay_before(round_number))
        originals = [batch[f.position] for f in pending]
        again = chain.apply(originals)
        dropped += again.dropped
        origin = [f.position for f in pending]
        if positional:
            slots.extend((origin[i], r) for i, r in zip(again.positions, again.records, strict=True))
        else:
            tail.extend(again.records)
        pending = []
        for f in again.failures:
            position = origin[f.position] if f.position is not None else None
            moved = RecordFailure(batch[position] if position is not None else f.record, f.message, f.op_index,
                                  f.op, f.retryable, position)
            if position is not None:
                attempts[position] += 1
            on_attempt(Attempt(moved.record, attempts.get(position, 1), f.message, time.time()))
            (pending if policy.retries(moved) else final).append(moved)
    final.extend(pending)
    records = [r for _, r in sorted(slots, key=lambda s: s[0])] if positional else tail
    final.sort(key=lambda f: -1 if f.position is None else f.position)
    return ChainResult(records=records, failures=final, dropped=dropped), attempts

"""The one outbound HTTP policy, beside the guarded client (:mod:`pipelines.http`). [pure]

:mod:`pipelines.http` decides *whether* a request may be made (no private targets, bounded size and time);
this module decides what every caller does around it, so that httpLookup, the HTTP extractors and writers,
graphqlMutation, image URLs and run hooks agree:

* **What is retried:** network errors and timeouts (``HttpError.retryable``), and the statuses of
  :func:`is_retryable_status`: 408, 429 and every 5xx except 501 (Not Implemented does not pass on another
  try). Any other 4xx is final. The list is the plugin's (``isRetryableStatus`` of its retry utilities).
* **How long to wait:** :class:`Backoff`, ``initialDelayMs × backoffMultiplier^(attempt-1)`` capped at
  ``maxDelayMs``; a server's ``Retry-After`` (seconds or an HTTP date) wins over it, cut to
  :data:`MAX_RETRY_AFTER_S` so that one header cannot park a run for an hour.
* **When an endpoint counts as down:** :class:`CircuitBreaker`, per origin, the plugin's numbers: 5
  failures within 60 s open it for 30 s (calls fail at once instead of waiting out timeouts × retries);
  then calls go through again ("half open") and 3 successes in a row close it, while one failure opens it
  again at once. Only failures that say something about the endpoint's health count: those a retry could
  have cured (:func:`is_retryable_status`, network errors), after their retries.
* **Pacing:** :class:`RateLimiter`, at most N requests a second per key (an origin, or a step), spaced
  evenly, retries included; a wait ends early when the step is cancelled.
* **Credential headers:** :func:`check_headers` refuses, in headers written into a config, the ones that
  carry credentials (:func:`is_credential_header`: Authorization, Cookie, API keys, tokens, secrets,
  signatures): those values belong in a secret. It also refuses headers the HTTP client sets itself.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pipelines.errors import ConfigError, HttpError, StepCancelled

if TYPE_CHECKING:
    from pipelines.http import HttpClient, HttpResponse

__all__ = [
    "Backoff",
    "CircuitBreaker",
    "RateLimiter",
    "check_headers",
    "is_credential_header",
    "is_retryable_status",
    "origin_of",
    "request_with_retry",
    "retry_after_seconds",
]

# A Retry-After longer than this is cut to it: a run should not sleep for an hour on one header.
MAX_RETRY_AFTER_S = 120.0

# The circuit breaker's numbers (the plugin's httpLookup breaker).
BREAKER_FAILURES = 5
BREAKER_WINDOW_S = 60.0
BREAKER_OPEN_S = 30.0
BREAKER_CLOSE_AFTER = 3

MAX_HEADERS = 50
MAX_HEADER_VALUE = 8192
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# A header whose name says it carries a credential: never accepted inline, only from a secret.
_CREDENTIAL_HEADER = re.compile(
    r"(?:^|[-_])(?:authorization|api[-_]?key|auth[-_]?token|access[-_]?token|refresh[-_]?token|"
    r"security[-_]?token|client[-_]?secret|private[-_]?key|secret|signature|cookie)(?:$|[-_])",
    re.IGNORECASE,
)
# Headers the HTTP client sets itself (framing and hop-by-hop): a config that sets them breaks requests.
CLIENT_HEADERS = frozenset({
    "connection", "content-length", "host", "keep-alive", "proxy-connection", "te", "trailer",
    "transfer-encoding", "upgrade",
})


# -- what is retried, and when ---------------------------------------------------------------------

def is_retryable_status(status: int) -> bool:
    """Whether another try may get another answer: 408, 429 and 5xx except 501."""
    return status in (408, 429) or (status >= 500 and status != 501)


def retry_after_seconds(value: str | None) -> float | None:
    """The wait a ``Retry-After`` header asks for (delta seconds or an HTTP date), at most
    :data:`MAX_RETRY_AFTER_S`; None when there is none or it cannot be read."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


@dataclass(frozen=True)
class Backoff:
    """``attempts`` tries in all; the wait before try n+1 is ``initial_ms * multiplier**(n-1)``, capped."""

    attempts: int = 3
    initial_ms: float = 1000
    max_ms: float = 30_000
    multiplier: float = 2.0

    @classmethod
    def from_retry_config(cls, retry: Mapping | None, *, default_attempts: int = 3) -> Backoff:
        """The shape the extractors and hooks configure: ``{maxAttempts, initialDelayMs, maxDelayMs,
        backoffMultiplier}``."""
        retry = retry or {}
        return cls(
            attempts=int(retry.get("maxAttempts", default_attempts)),
            initial_ms=float(retry.get("initialDelayMs", 1000)),
            max_ms=float(retry.get("maxDelayMs", 30_000)),
            multiplier=float(retry.get("backoffMultiplier", 2.0)),
        )

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed try ``attempt`` (1-based)."""
        return min(self.initial_ms * self.multiplier ** (attempt - 1), self.max_ms) / 1000

    def wait(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed try ``attempt``: the server's Retry-After when it gave one."""
        return self.delay(attempt) if retry_after is None else min(retry_after, MAX_RETRY_AFTER_S)


def request_with_retry(
    client: HttpClient,
    method: str,
    url: str,
    *,
    backoff: Backoff,
    cancelled: threading.Event,
    limiter: RateLimiter | None = None,
    prepare: Callable[[dict[str, str]], dict[str, str]] | None = None,
    retry_response: Callable[[HttpResponse], bool] | None = None,
    on_retry: Callable[[int, str, float], None] | None = None,
    headers: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> HttpResponse:
    """Send one request, trying again what may pass on another try, at most ``backoff.attempts`` times.

    Returns the last response (any status); raises the last :class:`HttpError` when the transport failed
    on every try, or at once when trying again cannot help (a refused private target, a bad URL, TLS).
    ``retry_response`` says which responses are tried again (default: :func:`is_retryable_status`);
    ``prepare`` adds per-try headers (a signature with a timestamp); ``on_retry(attempt, reason, wait)``
    hears of each retry. Raises :class:`StepCancelled` as soon as ``cancelled`` is set.
    """
    should_retry = retry_response or (lambda r: is_retryable_status(r.status))
    attempt = 0
    while True:
        attempt += 1
        if cancelled.is_set():
            raise StepCancelled()
        if limiter is not None and limiter.wait(cancelled, origin_of(url)):
            raise StepCancelled()
        send_headers = dict(headers or {})
        if prepare is not None:
            send_headers = prepare(send_headers)
        try:
            response = client.request(method, url, headers=send_headers, **kwargs)
        except HttpError as exc:
            if not exc.retryable or attempt >= backoff.attempts:
                raise
            wait, reason = backoff.wait(attempt, exc.retry_after), str(exc)
        else:
            if attempt >= backoff.attempts or not should_retry(response):
                return response
            wait = backoff.wait(attempt, retry_after_seconds(response.headers.get("Retry-After")))
            reason = f"HTTP {response.status}"
        if on_retry is not None:
            on_retry(attempt, reason, wait)
        if wait > 0 and cancelled.wait(wait):
            raise StepCancelled()


# -- when an endpoint counts as down ---------------------------------------------------------------

class CircuitBreaker:
    """Per-key (origin) failure counts; see the module docstring for the states. Thread-safe: the
    worker threads of one httpLookup share one."""

    def __init__(self, *, failures: int = BREAKER_FAILURES, window_s: float = BREAKER_WINDOW_S,
                 open_s: float = BREAKER_OPEN_S, close_after: int = BREAKER_CLOSE_AFTER):
        self.threshold, self.window_s, self.open_s, self.close_after = failures, window_s, open_s, close_after
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}
        self._open_until: dict[str, float] = {}
        self._half_open: dict[str, int] = {}  # key -> successes since it was last open
        self._last: dict[str, str] = {}

    def refusal(self, key: str) -> str | None:
        """Why a call to ``key`` is not made now, or None when it may be."""
        with self._lock:
            until = self._open_until.get(key)
            if until is None:
                return None
            left = until - time.monotonic()
            if left <= 0:
                return None
            return (f"not sent: {key} failed {self.threshold} times within {self.window_s:g} s "
                    f"(last: {self._last.get(key, '?')}); trying it again in {left:.0f} s")

    def failure(self, key: str, why: str) -> None:
        """A call to ``key`` failed for a reason that says the endpoint is unwell."""
        with self._lock:
            now = time.monotonic()
            self._last[key] = why
            if key in self._half_open:  # it failed again right after being let through: open again
                self._open(key, now)
                return
            recent = self._failures.setdefault(key, deque())
            recent.append(now)
            while recent and recent[0] < now - self.window_s:
                recent.popleft()
            if len(recent) >= self.threshold:
                self._open(key, now)

    def success(self, key: str) -> None:
        with self._lock:
            if key in self._open_until:  # the first call after the open period: half open
                if self._open_until[key] > time.monotonic():
                    return
                del self._open_until[key]
                self._half_open[key] = 0
            if key in self._half_open:
                self._half_open[key] += 1
                if self._half_open[key] >= self.close_after:
                    del self._half_open[key]
            self._failures.pop(key, None)

    def _open(self, key: str, now: float) -> None:
        self._open_until[key] = now + self.open_s
        self._half_open[key] = 0
        self._failures.pop(key, None)


# -- pacing ----------------------------------------------------------------------------------------

class RateLimiter:
    """At most ``per_second`` requests a second per key, spaced evenly. Thread-safe."""

    def __init__(self, per_second: float | None):
        self.interval = 1.0 / per_second if per_second else 0.0
        self._lock = threading.Lock()
        self._next: dict[str, float] = {}

    def wait(self, cancelled: threading.Event, key: str = "") -> bool:
        """Wait for the next slot of ``key``; True when ``cancelled`` was set meanwhile."""
        if not self.interval:
            return cancelled.is_set()
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next.get(key, now))
            self._next[key] = slot + self.interval
        if slot > now:
            return cancelled.wait(slot - now)
        return cancelled.is_set()


# -- credential headers ----------------------------------------------------------------------------

def is_credential_header(name: str) -> bool:
    """Whether a header named so carries a credential (Authorization, X-Api-Key, Cookie, Client-Secret...)."""
    return bool(_CREDENTIAL_HEADER.search(name))


def check_headers(headers: Any, field: str, *, allow_credentials: bool = False,
                  secret_hint: str = "auth.secretCode, bearerTokenSecretCode, apiKeySecretCode or "
                  "headerSecretCodes") -> dict[str, str]:
    """Plain headers from a config: names checked, values made single-line strings, the client's own
    headers and (unless ``allow_credentials``) credential headers refused, naming ``field``.
    ``secret_hint`` names where the caller takes credentials from instead."""
    if headers in (None, {}):
        return {}
    if not isinstance(headers, Mapping):
        raise ConfigError("headers must be an object of name -> value", field=field)
    if len(headers) > MAX_HEADERS:
        raise ConfigError(f"at most {MAX_HEADERS} headers", field=field)
    out: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in headers.items():
        where = f"{field}.{name}"
        if not isinstance(name, str) or not HEADER_NAME.match(name):
            raise ConfigError(f"'{name}' is not a valid header name", field=where)
        lowered = name.lower()
        if lowered in seen:
            raise ConfigError(f"header '{name}' is given twice", field=where)
        seen.add(lowered)
        if lowered in CLIENT_HEADERS:
            raise ConfigError(f"header '{name}' is set by the HTTP client and cannot be configured", field=where)
        if not allow_credentials and is_credential_header(lowered):
            raise ConfigError(
                f"header '{name}' carries a credential and may not be written into the config; store it as a "
                f"secret and name its secret code ({secret_hint})",
                field=where,
            )
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, int | float):
            value = str(value)
        if not isinstance(value, str):
            raise ConfigError(f"header '{name}' must be a string", field=where)
        if "\r" in value or "\n" in value:
            raise ConfigError(f"header '{name}' contains a line break", field=where)
        if len(value) > MAX_HEADER_VALUE:
            raise ConfigError(f"header '{name}' is longer than {MAX_HEADER_VALUE} characters", field=where)
        out[name] = value
    return out


def origin_of(url: str) -> str:
    """``scheme://host:port`` of ``url``, lower case: the key of breakers and rate limits, and what a
    connection's credentials are bound to."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    port = port or {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"

"""Keeping credentials out of what Datahub stores, shows and logs. [pure]

A remote server may echo what it was sent (an ``Authorization`` header, an API key) in an error body, and
error bodies become messages: a run's error, a record's error, a step's warnings, a log line. Rather than
guard every place that quotes a response, a run scrubs every message on its way out:

* One :class:`Redactor` per run learns each credential as the run uses it: every secret value resolved
  (:meth:`Redactor.watch` wraps the run's secret resolver), and every credential the guarded HTTP client
  sends (:meth:`Redactor.sent`: the values of credential headers, and for ``Basic`` the encoded and the
  decoded ``user:password``; a URL's password; query parameters named like keys and tokens).
* The executor hands every event to the store through :class:`runs.engine.store.RedactingStore`, which
  scrubs its texts: what reaches the database, and so every page and API answer, is scrubbed. Records
  themselves are data, not messages, and are kept as they are (a dead letter must replay unchanged).
* :class:`RedactingFilter` (on the console handler in settings.LOGGING) scrubs log lines, tracebacks
  included, with every redactor alive in the process.

A credential shorter than :data:`MIN_LENGTH` characters is not scrubbed (it would blank out ordinary
words); such a value is no secret anyway.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import threading
import weakref
from collections.abc import Callable, Mapping
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit

REDACTED = "[redacted]"
MIN_LENGTH = 4
# Header and query-parameter names whose values are credentials (an API key under a custom name too).
_CREDENTIAL_NAME = re.compile(r"auth|token|secret|passw|api[-_]?key|^key$|cookie|session|signature|credential",
                              re.IGNORECASE)

_LIVE: weakref.WeakSet[Redactor] = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()


class Redactor:
    """The credentials one run uses, and :meth:`scrub` to take them out of a text. Thread-safe."""

    def __init__(self):
        self._values: set[str] = set()
        self._lock = threading.Lock()
        self._pattern: re.Pattern | None = None
        with _LIVE_LOCK:
            _LIVE.add(self)

    # -- learning ---------------------------------------------------------------------------------

    def add(self, value: object) -> None:
        """A credential, with the forms it takes when echoed inside a URL or a JSON string."""
        if not isinstance(value, str) or len(value.strip()) < MIN_LENGTH:
            return
        forms = {value, value.strip(), quote(value, safe=""), quote_plus(value, safe=""), json.dumps(value)[1:-1]}
        try:  # a secret that is a URL (redis://:pw@host/0): its password may be quoted alone
            password = urlsplit(value.strip()).password
        except ValueError:
            password = None
        if password:
            forms |= {password, unquote(password)}
        forms = {f for f in forms if len(f) >= MIN_LENGTH}
        with self._lock:
            if forms <= self._values:
                return
            self._values |= forms
            alternatives = sorted(self._values, key=len, reverse=True)  # the longest form wins
            self._pattern = re.compile("|".join(re.escape(v) for v in alternatives))

    def watch(self, resolve: Callable[[str], str]) -> Callable[[str], str]:
        """``resolve`` (a secret code -> its value) that also learns every value it returns."""

        def resolved(code: str) -> str:
            value = resolve(code)
            self.add(value)
            return value

        return resolved

    def sent(self, url: str, headers: Mapping[str, str], params: object = None) -> None:
        """The credentials of an outbound request: credential headers, URL password, key-like parameters."""
        for name, value in headers.items():
            if isinstance(value, str) and _CREDENTIAL_NAME.search(str(name)):
                self._add_header(value)
        try:
            parts = urlsplit(url)
            self.add(parts.password)
            query = parse_qsl(parts.query, keep_blank_values=False)
        except ValueError:
            query = []
        if isinstance(params, Mapping):
            query += [(str(k), v) for k, v in params.items()]
        elif isinstance(params, list | tuple):
            query += [p for p in params if isinstance(p, tuple) and len(p) == 2]
        for name, value in query:
            if _CREDENTIAL_NAME.search(str(name)):
                self.add(value if isinstance(value, str) else str(value))

    @property
    def active(self) -> bool:
        """Whether there is anything to scrub yet."""
        return self._pattern is not None

    def _add_header(self, value: str) -> None:
        self.add(value)
        scheme, _, token = value.strip().partition(" ")
        token = token.strip()
        if not token:
            return
        self.add(token)
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(token, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return
            self.add(decoded)
            self.add(decoded.partition(":")[2])

    # -- scrubbing --------------------------------------------------------------------------------

    def scrub(self, text: str) -> str:
        pattern = self._pattern
        if pattern is None or not text:
            return text
        return pattern.sub(REDACTED, text)

    def scrub_value(self, value: object) -> object:
        """A JSON-like value with every string in it scrubbed (keys too)."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {self.scrub(k) if isinstance(k, str) else k: self.scrub_value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.scrub_value(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.scrub_value(v) for v in value)
        return value


def scrub_everywhere(text: str) -> str:
    """``text`` scrubbed by every redactor alive in this process (for log lines, which name no run)."""
    with _LIVE_LOCK:
        redactors = list(_LIVE)
    for redactor in redactors:
        text = redactor.scrub(text)
    return text


class RedactingFilter(logging.Filter):
    """Scrubs a log record's message and traceback with every live redactor before a handler writes it."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        with _LIVE_LOCK:
            if not _LIVE:
                return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: let the handler report it as usual
            return True
        scrubbed = scrub_everywhere(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub_everywhere(record.exc_text)
        return True

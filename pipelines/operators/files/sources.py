"""Where a source image comes from: a data URI, an http(s) URL (the guarded client), a stored file or
base64; see :mod:`pipelines.operators.files`."""

from __future__ import annotations

import base64
import binascii
import urllib.parse

from pipelines.errors import RecordError
from pipelines.http_policy import is_retryable_status
from pipelines.operators.base import OperatorContext
from pipelines.operators.files._writer import positive_int

DEFAULT_MAX_SOURCE_BYTES = 25 * 1024 * 1024


# --------------------------------------------------------------------------------------------- sources


def _padded(text: str) -> str:
    return text + "=" * (-len(text) % 4)


def _decode_base64(text: str, field: str, limit: int) -> bytes:
    if len(text) * 3 // 4 > limit:
        raise RecordError(
            f"'{field}': the image is larger than maxSourceBytes ({limit} bytes)", retryable=False
        )
    try:  # the common case first: one strict pass in C (a regex pass over megabytes costs more than the decode)
        return base64.b64decode(_padded(text), validate=True)
    except (binascii.Error, ValueError):
        pass
    compact = "".join(text.split())  # line-wrapped base64 (MIME style)
    try:
        if "-" in compact or "_" in compact:
            return base64.b64decode(_padded(compact), altchars=b"-_", validate=True)
        return base64.b64decode(_padded(compact), validate=True)
    except (binascii.Error, ValueError):
        raise RecordError(
            f"'{field}' holds neither a data URI, an http(s) URL, a stored file name nor base64 data",
            retryable=False,
        ) from None


def _decode_data_uri(text: str, field: str, limit: int) -> bytes:
    comma = text.find(",")
    if comma < 0:
        raise RecordError(f"'{field}' holds a malformed data URI (no comma)", retryable=False)
    header, payload = text[5:comma], text[comma + 1 :]
    if header.lower().endswith(";base64"):
        return _decode_base64(payload, field, limit)
    data = urllib.parse.unquote_to_bytes(payload)
    if len(data) > limit:
        raise RecordError(
            f"'{field}': the image is larger than maxSourceBytes ({limit} bytes)", retryable=False
        )
    return data


class SourceReader:
    """Turns a source field's string into bytes (see the module docstring for the accepted forms)."""

    def __init__(self, args: dict, ctx: OperatorContext, field: str):
        self.http = ctx.http
        self.storage = ctx.storage
        self.field = field
        self.limit = positive_int(args, "maxSourceBytes", DEFAULT_MAX_SOURCE_BYTES)
        timeout_ms = args.get("timeoutMs")
        self.timeout = timeout_ms / 1000 if timeout_ms else None

    def read(self, value: str) -> bytes:
        lowered = value[:8].lower()
        if lowered.startswith("data:"):
            data = _decode_data_uri(value, self.field, self.limit)
        elif lowered.startswith(("http://", "https://")):
            data = self._fetch(value)
        elif self.storage is not None and len(value) <= 1024 and self._stored(value):
            data = self._open(value)
        elif self.storage is not None and "." in value[-10:]:
            # Base64 has no '.', so 'uploads/photo.jpg' is a file name, and that file is not there.
            raise RecordError(f"'{self.field}': stored file '{value}' does not exist", retryable=False)
        else:
            data = _decode_base64(value, self.field, self.limit)
        if not data:
            raise RecordError(f"'{self.field}': the source is empty", retryable=False)
        return data

    def _fetch(self, url: str) -> bytes:
        if self.http is None:
            raise RecordError(
                f"'{self.field}': {url} is a URL and outbound HTTP is not available", retryable=False
            )
        try:
            response = self.http.request("GET", url, timeout=self.timeout)
        except Exception as exc:  # pipelines.http.HttpError: refused target, timeout, size cap, network
            raise RecordError(
                f"'{self.field}': could not fetch {url}: {exc}", retryable=getattr(exc, "retryable", True)
            ) from exc
        status = getattr(response, "status", 200)
        if status >= 400:
            raise RecordError(
                f"'{self.field}': GET {url} answered HTTP {status}"
                + (" (not found)" if status == 404 else ""),
                retryable=is_retryable_status(status),
            )
        body = response.body or b""
        if len(body) > self.limit:
            raise RecordError(
                f"'{self.field}': {url} is larger than maxSourceBytes ({self.limit} bytes)", retryable=False
            )
        return body

    def _stored(self, name: str) -> bool:
        try:
            return bool(self.storage.exists(name))
        except Exception:  # a name the storage refuses (SuspiciousFileOperation, bad characters)
            return False

    def _open(self, name: str) -> bytes:
        try:
            with self.storage.open(name, "rb") as fh:
                data = fh.read(self.limit + 1)
        except OSError as exc:
            raise RecordError(f"'{self.field}': could not read stored file '{name}': {exc}") from exc
        if len(data) > self.limit:
            raise RecordError(
                f"'{self.field}': stored file '{name}' is larger than maxSourceBytes ({self.limit} bytes)",
                retryable=False,
            )
        return data



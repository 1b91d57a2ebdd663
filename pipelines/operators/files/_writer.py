"""Where a produced file goes (``output``): storage, a data URI or base64; the option helpers the image
and PDF operators share."""

from __future__ import annotations

import base64
import hashlib
import io
import threading
from typing import Any

from pipelines.errors import ConfigError
from pipelines.operators.base import OperatorContext
from pipelines.records import Path, PathError, dumps

OUTPUTS = ("storage", "dataUri", "base64")
# Part of every stored name's digest (images and PDFs): bumped when the same options would produce different
# bytes (a new resampling or PDF rendering, say), so stored files made by an older version are not mistaken
# for the new result.
ALGORITHM_VERSION = 2  # 2: JPEGs decoded at the smallest DCT scale still at least the target size

OUTPUT_PROPS: dict[str, Any] = {
    "output": {
        "type": "string",
        "enum": list(OUTPUTS),
        "description": "storage: save the file in the run's storage and write its name; dataUri: write a data "
        "URI; base64: write bare base64 (the plugin's form). Default: storage when the run has one, "
        "otherwise dataUri.",
    },
    "urlField": {
        "type": "string",
        "description": "With output 'storage', also write the file's public URL (storage.url) into this field.",
    },
}

# --------------------------------------------------------------------------------------------- helpers


def compile_path(args: dict, key: str, *, required: bool = False) -> Path | None:
    text = args.get(key)
    if text is None or text == "":
        if required:
            raise ConfigError(f"'{key}' is required", field=key)
        return None
    try:
        return Path(text)
    except PathError as exc:
        raise ConfigError(str(exc), field=key) from None


def _output_mode(args: dict, ctx: OperatorContext) -> str:
    output = args.get("output") or ("storage" if ctx.storage is not None else "dataUri")
    if output not in OUTPUTS:
        raise ConfigError(f"must be one of {', '.join(OUTPUTS)}", field="output")
    if output == "storage" and ctx.storage is None:
        raise ConfigError("output 'storage' needs a file storage and this run has none", field="output")
    return output


def positive_int(args: dict, key: str, default: int) -> int:
    value = args.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError("must be a positive integer", field=key)
    return value


def stored_digest(payload: bytes, options: dict) -> str:
    h = hashlib.sha256()
    h.update(dumps(options))
    h.update(b"\0")
    h.update(payload)
    return h.hexdigest()[:32]


class Writer:
    """Writes a produced file into a record: into storage (once per name) or as a data URI / base64."""

    def __init__(self, args: dict, ctx: OperatorContext, target: Path, directory: str):
        self.mode = _output_mode(args, ctx)
        self.storage = ctx.storage
        self.target = target
        self.url_field = compile_path(args, "urlField")
        self.directory = directory
        self.dry_run = ctx.dry_run
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def lock(self, name: str) -> threading.Lock:
        """One lock per stored name, so parallel records never make the same file twice."""
        with self._locks_lock:
            return self._locks.setdefault(name, threading.Lock())

    def stored_name(self, digest: str, ext: str) -> str:
        return f"{self.directory}{digest}.{ext}"

    def already_stored(self, record: dict, name: str) -> bool:
        """Write ``name`` and return True when the storage already has it (a re-run: no work to do)."""
        if self.mode != "storage" or not self.storage.exists(name):
            return False
        self._write_name(record, name)
        return True

    def write(self, record: dict, data: bytes, mime: str, name: str | None) -> None:
        if self.mode == "storage":
            if not self.dry_run:
                # Two workers may race to the same name; a Django storage then stores the second copy under
                # a suffixed name. Both hold the same bytes, and each record gets the name actually saved.
                name = self.storage.save(name, io.BytesIO(data))
            self._write_name(record, name)
        elif self.mode == "dataUri":
            self.target.set(record, f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}")
        else:
            self.target.set(record, base64.b64encode(data).decode("ascii"))

    def _write_name(self, record: dict, name: str) -> None:
        self.target.set(record, name)
        if self.url_field is not None:
            try:
                self.url_field.set(record, self.storage.url(name))
            except NotImplementedError:
                pass  # a storage without public URLs: the name is all there is



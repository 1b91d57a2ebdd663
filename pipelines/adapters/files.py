"""File extractors: ``csv`` (and TSV), ``json`` (and NDJSON), ``xml`` and ``xlsx``. [pure; reads two Django
settings lazily]

Where a file comes from (the same config names for every file extractor; give exactly one):

- inline text: ``csvText`` / ``jsonText`` / ``xmlText`` (``rows`` too for csv: objects, or arrays with a
  header row first), for small data and tests;
- ``fileId`` or ``storagePath``: a name in the run's Django storage (``ctx.storage``), where uploads are
  saved; the two names mean the same (``fileId`` is the plugin's);
- ``path``: a file on the worker's disk, which must resolve, after following symlinks, inside one of the
  folders of the setting ``DATAHUB_FILE_ROOTS`` (a relative path is tried under each of them). With no
  folders configured, ``path`` is refused: files never come from anywhere on disk.

Every file is capped at the setting ``DATAHUB_MAX_FILE_BYTES`` (default 100 MiB): a larger file is a
ConfigError naming the file and the limit, checked before reading and again while reading.

CSV, NDJSON and XML are read incrementally and handed on in batches of ``ctx.batch_size``, so a large
file is never whole in memory (XML through ``defusedxml.ElementTree.iterparse``, clearing each record's
elements once converted). A JSON document (not NDJSON) is parsed whole, within the size cap; an XLSX
workbook is read with openpyxl in read-only mode, row by row.

A malformed row (a CSV row with the wrong number of fields, a broken quote, an NDJSON line that is not a
JSON object) fails the step with ``line N: ...``; with ``onBadRow: "skip"`` it is skipped with a warning
on the step instead.

Checkpoint (``resumable: true``): the step keeps ``checkpoint["offset"]``, the number of records already
read from the source, and the next run skips that many (the plugin checkpoints the file offset the same
way, to read only rows appended since). The offset counts records, not bytes, so a resumed read re-parses
the skipped rows: cheaper than it sounds, and right for quoted CSV fields that span lines. It is kept
with the source's identity, so a different file starts from the beginning; ``resetCheckpoint: true``
starts from the beginning once. Dry runs and previews (a record limit) never move the offset. Without
``resumable`` the checkpoint is not touched.

XML security: every XML parse goes through defusedxml: entity declarations (the "billion laughs" bomb,
external entities) and external references are refused, never expanded. openpyxl parses the sheets of an
XLSX file with defusedxml too when it is installed (it is a dependency).

Why one module of this size: the four extractors share the source resolution (inline text or a stored
file, size-capped), the schema pieces and the extractor machinery (encoding, limits, record errors); each
format is one marked section over them. Next step if it grows: a package with sources, the machinery and
one module per format.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import IO, Any

import orjson

from pipelines.adapters.base import Extractor
from pipelines.errors import ConfigError, StepError
from pipelines.filestores import FileStore, open_store
from pipelines.filestores.limits import allowed_roots, max_file_bytes
from pipelines.filestores.limits import human_size as _human
from pipelines.records import MISSING, Batch, PathError, Record, deep_copy
from pipelines.records import path as field_path
from pipelines.registry import extractors

_READ_CHUNK = 64 * 1024


def _too_big(label: str, limit: int, size: int | None = None) -> ConfigError:
    what = f"is {size} bytes," if size is not None else "is"
    return ConfigError(f"{label} {what} larger than the limit of {_human(limit)} (setting DATAHUB_MAX_FILE_BYTES)")


# --- sources ----------------------------------------------------------------------------------------------


class _CappedReader(io.RawIOBase):
    """Reads from ``raw`` and refuses to go past ``limit`` bytes (a file that grows, a storage that lies)."""

    def __init__(self, raw: IO[bytes], limit: int, label: str):
        self._raw = raw
        self._limit = limit
        self._label = label
        self._count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._raw.read(len(buffer))
        if not data:
            return 0
        n = len(data)
        buffer[:n] = data
        self._count += n
        if self._count > self._limit:
            raise _too_big(self._label, self._limit)
        return n

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()


@dataclass
class Source:
    """One resolved file: where it is, and how to open it."""

    label: str  # for messages: "file 'products.csv'", "inline csvText"
    identity: str  # kept with a resumable checkpoint
    name: str  # a file name, for the extension
    size: int | None
    text: str | None = None  # inline text
    _open: Callable[[], IO[bytes]] | None = None

    def open_binary(self) -> IO[bytes]:
        """A buffered binary stream, capped at the size limit."""
        limit = max_file_bytes()
        if self.text is not None:
            return io.BytesIO(self.text.encode("utf-8"))
        raw = self._open()
        return io.BufferedReader(_CappedReader(raw, limit, self.label), buffer_size=_READ_CHUNK)

    def open_raw(self) -> IO[bytes]:
        """The underlying stream (size already checked); seekable for a disk file."""
        return self._open()

    def open_text(self, encoding: str) -> IO[str]:
        """Text with universal newlines left alone (the csv module wants ``newline=""``), BOM stripped."""
        if self.text is not None:
            return io.StringIO(self.text[1:] if self.text.startswith("\ufeff") else self.text, newline="")
        return io.TextIOWrapper(self.open_binary(), encoding=_bom_aware(encoding), errors="strict", newline="")


def _bom_aware(encoding: str) -> str:
    return "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding


INLINE_SOURCES = {"csv": ("csvText", "rows"), "json": ("jsonText",), "xml": ("xmlText",), "xlsx": ()}
FILE_SOURCES = ("fileId", "storagePath", "path")


def resolve_source(config: dict, ctx, kind: str) -> tuple[str, Source | None]:
    """Which source key the config uses and the resolved file (None for ``rows``)."""
    inline = INLINE_SOURCES[kind]
    keys = [k for k in (*inline, *FILE_SOURCES) if config.get(k) is not None]
    choices = ", ".join((*inline, *FILE_SOURCES))
    if not keys:
        raise ConfigError(f"no source: give one of {choices}", field=(inline or FILE_SOURCES)[0])
    if len(keys) > 1:
        raise ConfigError(f"give one source, not {' and '.join(keys)}", field=keys[1])
    key = keys[0]
    value = config[key]
    limit = max_file_bytes()
    if key == "rows":
        return key, None
    if key in inline:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string", field=key)
        size = len(value.encode("utf-8"))
        if size > limit:
            raise _too_big(f"inline {key}", limit, size)
        return key, Source(label=f"inline {key}", identity=f"inline:{key}", name="", size=size, text=value)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key} must be a non-empty string", field=key)
    if key == "path":
        return key, _disk_source(value, limit)
    return key, _storage_source(key, value, ctx, limit)


def _storage_source(key: str, name: str, ctx, limit: int) -> Source:
    storage = ctx.storage
    if storage is None:
        raise ConfigError(f"{key} names a file in storage, but this run has no file storage", field=key)
    clean = name.replace("\\", "/")
    if clean.startswith("/") or any(part == ".." for part in clean.split("/")):
        raise ConfigError(f"{key} must be a relative name inside the storage, without '..'", field=key)
    label = f"file '{name}'"
    try:
        exists = storage.exists(name)
    except Exception as exc:  # SuspiciousFileOperation, an unreachable remote storage
        if type(exc).__name__ == "SuspiciousFileOperation":
            raise ConfigError(f"{key} '{name}' is not a valid storage name", field=key) from None
        raise StepError(f"cannot reach the file storage for {label}: {exc}", retryable=True) from exc
    if not exists:
        raise ConfigError(f"file '{name}' not found in storage", field=key)
    try:
        size = storage.size(name)
    except (OSError, NotImplementedError):
        size = None
    if size is not None and size > limit:
        raise _too_big(label, limit, size)

    def opener() -> IO[bytes]:
        try:
            return storage.open(name, "rb")
        except FileNotFoundError:
            raise ConfigError(f"file '{name}' not found in storage", field=key) from None
        except OSError as exc:
            raise StepError(f"cannot open {label}: {exc}", retryable=True) from exc

    return Source(label=label, identity=f"storage:{name}", name=name, size=size, _open=opener)


def _disk_source(raw: str, limit: int) -> Source:
    roots = allowed_roots()
    if not roots:
        raise ConfigError("path sources are off: no allowed folders are configured (setting DATAHUB_FILE_ROOTS)",
                          field="path")
    given = Path(raw).expanduser()
    candidates = [given] if given.is_absolute() else [root / given for root in roots]
    outside = False
    found: Path | None = None
    for candidate in candidates:
        resolved = candidate.resolve()  # follows symlinks: the real place is what is checked
        if not any(resolved == root or resolved.is_relative_to(root) for root in roots):
            outside = True
            continue
        if resolved.is_file():
            found = resolved
            break
    if found is None:
        if outside:
            raise ConfigError("path is outside the allowed folders", field="path")
        raise ConfigError(f"file not found: {raw}", field="path")
    size = found.stat().st_size
    label = f"file '{raw}'"
    if size > limit:
        raise _too_big(label, limit, size)

    def opener() -> IO[bytes]:
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
        try:
            fd = os.open(found, flags)
        except FileNotFoundError:
            raise ConfigError(f"file not found: {raw}", field="path") from None
        except OSError as exc:
            raise StepError(f"cannot open {label}: {exc}", retryable=False) from exc
        return os.fdopen(fd, "rb")

    return Source(label=label, identity=f"path:{found}", name=found.name, size=size, _open=opener)


# --- schema pieces ----------------------------------------------------------------------------------------


def _split_glob(glob: Any) -> tuple[str, str]:
    """``in/*.csv`` -> folder ``in``, pattern ``*.csv``: the folder part is listed, the last part matched."""
    if not isinstance(glob, str) or not glob.strip():
        raise ConfigError("glob must be a non-empty pattern such as 'incoming/*.csv'", field="glob")
    folder, _, pattern = glob.strip().rpartition("/")
    if any(ch in folder for ch in "*?["):
        raise ConfigError("only the last part of glob may hold wildcards ('in/*.csv'; use recursive for "
                          "subfolders)", field="glob")
    return folder or ".", pattern


def _source_properties(inline: dict) -> dict:
    return {
        **inline,
        "fileId": {"type": "string", "minLength": 1,
                   "description": "An uploaded file: its name in the file storage (the plugin's file id)."},
        "storagePath": {"type": "string", "minLength": 1,
                        "description": "A file's name in the file storage (same as fileId)."},
        "path": {"type": "string", "minLength": 1,
                 "description": "A file on the worker's disk; it must resolve (after symlinks) inside one of "
                 "the folders of the setting DATAHUB_FILE_ROOTS. A relative path is tried under each folder. "
                 "With connectionCode: a file under the connection's root."},
        "connectionCode": {"type": "string", "minLength": 1,
                           "description": "Read from a FOLDER, SFTP or FTP connection: the file at path, every "
                           "file matching glob, or (with neither) the files a FILE trigger passed in."},
        "glob": {"type": "string", "minLength": 1,
                 "description": "With connectionCode: every file matching this pattern, read in path order "
                 "('incoming/*.csv'; wildcards in the last part only)."},
        "recursive": {"type": "boolean", "default": False,
                      "description": "With glob: match in subfolders too."},
        "resumable": {"type": "boolean", "default": False,
                      "description": "Keep checkpoint.offset (records already read) and skip them on the next "
                      "run, to read only records appended since."},
        "resetCheckpoint": {"type": "boolean", "default": False,
                            "description": "With resumable: start from the first record this time."},
    }


_ENCODING = {"type": "string", "default": "utf-8", "minLength": 1,
             "description": "Text encoding of the file (a BOM is stripped)."}
_ON_BAD_ROW = {"enum": ["fail", "skip"], "default": "fail",
               "description": "A malformed row: fail the step naming its line, or skip it with a warning."}
_HEADER_PROPS = {
    "hasHeader": {"type": "boolean", "default": True,
                  "description": "The first row (after skipped ones) names the fields; without it the fields "
                  "are col1..colN."},
    "headerRow": {"type": "integer", "minimum": 1,
                  "description": "The row number (1 = first) that holds the header; rows above it are skipped "
                  "(CSV counts rows, not blank lines; XLSX counts sheet rows). Give headerRow or skipRows, not "
                  "both."},
    "skipRows": {"type": "integer", "minimum": 0, "default": 0,
                 "description": "Rows to skip at the top of the file, before the header (or the data)."},
}


# --- the shared extractor machinery -----------------------------------------------------------------------


_JSON_TYPES = {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean",
               type(None): "null"}


class FileExtractor(Extractor):
    """Resolves where the file(s) come from, then hands each to ``read(key, source)``, the format's own."""

    kind = ""

    def __init__(self, config: dict, ctx):
        super().__init__(config, ctx)
        self._closers: list[Callable[[], None]] = []
        self.skipped = 0

    def read(self, key: str, source: Source | None) -> Iterator[Batch]:
        raise NotImplementedError

    def batches(self) -> Iterator[Batch]:
        if self.config.get("connectionCode") is None:
            key, source = resolve_source(self.config, self.ctx, self.kind)
            yield from self.read(key, source)
            return
        for source in self._connection_sources():
            mark = len(self._closers)
            yield from self.read("connectionCode", source)
            # Done with this file: close its streams before the next one (an FTP connection carries one
            # transfer at a time).
            while len(self._closers) > mark:
                self._closers.pop()()

    def _connection_sources(self) -> Iterator[Source]:
        """The files of a connection (a folder, an SFTP or FTP server): ``path`` (one file under its root),
        ``glob`` (every match, by path; ``recursive`` for subfolders) or, with neither, the files named by
        the step's input records, as a FILE trigger seeds them (``{"path": ...}``)."""
        config, code = self.config, self.config["connectionCode"]
        other = [k for k in (*INLINE_SOURCES[self.kind], "fileId", "storagePath") if config.get(k) is not None]
        if other:
            raise ConfigError(f"connectionCode reads files from a connection; {other[0]} cannot be given with it",
                              field=other[0])
        if config.get("path") is not None and config.get("glob") is not None:
            raise ConfigError("give path or glob, not both", field="glob")
        if config.get("resumable") and config.get("path") is None:
            raise ConfigError("resumable needs one file (path), not a glob or the trigger's files", field="resumable")
        store = open_store(code, self.ctx.connection, self.ctx.secret)
        self._closers.append(store.close)
        if config.get("path") is not None:
            yield self._remote_source(store, config["path"])
        elif config.get("glob") is not None:
            folder, pattern = _split_glob(config["glob"])
            for info in store.list(folder, pattern, bool(config.get("recursive"))):
                yield self._remote_source(store, info.path, info.size)
        else:
            yield from self._input_sources(store, code)

    def _input_sources(self, store: FileStore, code: str) -> Iterator[Source]:
        if self.ctx.upstream is None:
            raise ConfigError("with connectionCode, give path or glob (or put the step after a FILE trigger, "
                              "whose files it then reads)", field="path")
        found = False
        for batch in self.ctx.upstream():
            for record in batch:
                path = record.get("path") if isinstance(record, dict) else None
                if not isinstance(path, str) or not path:
                    raise ConfigError("an input record has no 'path' naming the file to read (give path or glob "
                                      "to read fixed files)", field="path")
                if record.get("connectionCode") not in (None, code):
                    raise ConfigError(f"the file '{path}' is on connection '{record['connectionCode']}', not on "
                                      f"'{code}'", field="connectionCode")
                found = True
                yield self._remote_source(store, path)
        if not found:
            raise ConfigError("no file to read: give path or glob, or let a FILE trigger start the run (its "
                              "files are read then)", field="path")

    def _remote_source(self, store: FileStore, path: str, size: int | None = None) -> Source:
        if not isinstance(path, str) or not path.strip():
            raise ConfigError("path must be a non-empty string", field="path")
        if size is None:
            size = store.stat(path).size
        label = f"file '{path}' on connection '{store.code}'"
        limit = max_file_bytes()
        if size > limit:
            raise _too_big(label, limit, size)
        clean = store.path(path)
        return Source(label=label, identity=f"connection:{store.code}:{clean}", name=clean, size=size,
                      _open=lambda: store.open_read(clean))

    def close(self) -> None:
        while self._closers:
            try:
                self._closers.pop()()
            except Exception:  # closing must not hide the step's own error
                pass

    def _hold(self, stream):
        self._closers.append(stream.close)
        return stream

    def _encoding(self) -> str:
        encoding = self.config.get("encoding", "utf-8")
        try:
            codecs.lookup(encoding)
        except (LookupError, TypeError):
            raise ConfigError(f"unknown encoding '{encoding}'", field="encoding") from None
        return encoding

    def _bad_row(self, where: str, message: str, label: str) -> None:
        """A row that cannot become a record: fail the step, or (onBadRow: skip) warn and go on."""
        if self.config.get("onBadRow", "fail") == "skip":
            self.skipped += 1
            self.ctx.warn(f"{where}: {message} (skipped)")
            return
        raise StepError(f"{where}: {message} ({label})", retryable=False)

    def _header_skip(self) -> int:
        if self.config.get("headerRow") is not None and self.config.get("skipRows"):
            raise ConfigError("give headerRow or skipRows, not both", field="headerRow")
        if self.config.get("headerRow") is not None:
            if not self.config.get("hasHeader", True):
                raise ConfigError("headerRow needs hasHeader: true", field="headerRow")
            return int(self.config["headerRow"]) - 1
        return int(self.config.get("skipRows") or 0)

    def _emit(self, records: Iterator[Record], identity: str) -> Iterator[Batch]:
        """Batches of ``ctx.batch_size``; honours the record limit, cancellation and the resumable offset."""
        ctx = self.ctx
        resumable = bool(self.config.get("resumable"))
        track = resumable and not ctx.dry_run and ctx.record_limit is None
        skip = 0
        if resumable and not self.config.get("resetCheckpoint"):
            saved = ctx.checkpoint.get("source")
            if saved == identity:
                skip = int(ctx.checkpoint.get("offset") or 0)
            elif saved is not None:
                ctx.warn("the source changed since the last checkpoint; reading from the first record")
        limit = ctx.record_limit
        size = max(1, int(ctx.batch_size))
        read = emitted = 0
        batch: Batch = []
        for record in records:
            read += 1
            if read <= skip:
                if read % 1000 == 0 and ctx.cancelled.is_set():
                    return
                continue
            batch.append(record)
            emitted += 1
            done = limit is not None and emitted >= limit
            if len(batch) >= size or done:
                if ctx.cancelled.is_set():
                    return
                if track:
                    ctx.checkpoint.update(source=identity, offset=read)
                yield batch
                batch = []
            if done:
                return
        if batch and not ctx.cancelled.is_set():
            if track:
                ctx.checkpoint.update(source=identity, offset=read)
            yield batch
        if track:
            if read < skip:
                ctx.warn(f"the source has {read} records, fewer than the checkpoint offset {skip}; "
                         "the offset is set back to it")
            ctx.checkpoint.update(source=identity, offset=read)
        if skip and read >= skip:
            ctx.warn(f"resumed after {skip} records read before")
        if self.skipped:
            ctx.warn(f"{self.skipped} bad rows skipped")


# --- csv --------------------------------------------------------------------------------------------------


def _delimiter(value: Any, field: str = "delimiter") -> str:
    if value in ("tab", "\\t", "TAB"):
        return "\t"
    if not isinstance(value, str) or len(value) != 1:
        raise ConfigError(f"delimiter must be one character (or 'tab'), got {value!r}", field=field)
    if value in "\r\n":
        raise ConfigError("delimiter cannot be a line break", field=field)
    return value


@extractors.register(
    "csv",
    name="CSV / TSV file",
    category="file",
    builtin=True,
    description="Rows of a CSV or TSV file (inline, from storage, or a path in an allowed folder), streamed.",
    schema={
        "type": "object",
        "properties": _source_properties({
            "csvText": {"type": "string", "description": "The CSV text itself."},
            "rows": {"type": "array", "items": {"type": ["object", "array"]},
                     "description": "Inline rows: objects, or arrays (the first one the header when hasHeader)."},
        }) | {
            "delimiter": {"type": "string", "default": ",", "pattern": "^(?:.|tab|\\\\t)$",
                          "description": "Field separator: one character, or 'tab' for TSV (a .tsv file "
                          "defaults to tab)."},
            "quoteChar": {"type": "string", "default": "\"", "maxLength": 1,
                          "description": "Quote character; an empty string turns quoting off."},
            **_HEADER_PROPS,
            "trim": {"type": "boolean", "default": False,
                     "description": "Strip spaces around header names and values."},
            "encoding": _ENCODING,
            "onBadRow": _ON_BAD_ROW,
        },
        "additionalProperties": False,
    },
)
class CsvExtractor(FileExtractor):
    """Values stay strings, as in the file; convert them with operators (toNumber, ...)."""

    kind = "csv"

    def read(self, key: str, source: Source | None) -> Iterator[Batch]:
        delimiter, quote = self._dialect(source)
        skip_top = self._header_skip()
        if key == "rows":
            yield from self._emit(self._inline_rows(self.config["rows"], skip_top), "inline:rows")
            return
        encoding = self._encoding()
        text = self._hold(source.open_text(encoding))
        reader = csv.reader(text, delimiter=delimiter, strict=True, skipinitialspace=bool(self.config.get("trim")),
                            **({"quotechar": quote} if quote else {"quoting": csv.QUOTE_NONE}))
        yield from self._emit(self._records(reader, skip_top, source.label, encoding), source.identity)

    def _dialect(self, source: Source | None) -> tuple[str, str]:
        if "delimiter" in self.config:
            delimiter = _delimiter(self.config["delimiter"])
        elif source is not None and source.name.lower().endswith((".tsv", ".tab")):
            delimiter = "\t"
        else:
            delimiter = ","
        quote = self.config.get("quoteChar", '"')
        if quote is None:
            quote = ""
        if not isinstance(quote, str) or len(quote) > 1:
            raise ConfigError("quoteChar must be one character, or empty for no quoting", field="quoteChar")
        if quote and quote == delimiter:
            raise ConfigError("quoteChar and delimiter must differ", field="quoteChar")
        if quote in ("\r", "\n"):
            raise ConfigError("quoteChar cannot be a line break", field="quoteChar")
        return delimiter, quote

    def _header(self, row: list[str], where: str, label: str) -> list[str]:
        names = []
        seen = set()
        for i, cell in enumerate(row):
            name = cell.strip() if self.config.get("trim") else cell
            if not name.strip():
                name = f"col{i + 1}"
            if name in seen:
                raise StepError(f"{where}: the header names '{name}' twice ({label})", retryable=False)
            seen.add(name)
            names.append(name)
        return names

    def _records(self, reader, skip_top: int, label: str, encoding: str) -> Iterator[Record]:
        has_header = self.config.get("hasHeader", True)
        trim = bool(self.config.get("trim"))
        names: list[str] | None = None
        rows_seen = 0
        first = True
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                self._bad_row(f"line {reader.line_num}", str(exc), label)
                continue
            except UnicodeDecodeError as exc:
                raise StepError(f"{label} is not valid {encoding} text after line {reader.line_num}: "
                                f"{exc.reason}", retryable=False) from None
            if first and row:
                row[0] = row[0].lstrip("\ufeff")
                first = False
            if not row:  # a blank line
                continue
            rows_seen += 1
            if rows_seen <= skip_top:
                continue
            if names is None:
                if has_header:
                    names = self._header(row, f"line {reader.line_num}", label)
                    continue
                names = [f"col{i + 1}" for i in range(len(row))]
            if len(row) != len(names):
                self._bad_row(f"line {reader.line_num}", f"expected {len(names)} fields, got {len(row)}", label)
                continue
            if trim:
                row = [cell.strip() for cell in row]
            yield dict(zip(names, row, strict=True))

    def _inline_rows(self, rows: Any, skip_top: int) -> Iterator[Record]:
        if not isinstance(rows, list):
            raise ConfigError("rows must be a list", field="rows")
        if all(isinstance(r, dict) for r in rows):
            for r in rows[skip_top:]:
                yield deep_copy(r)
            return
        if not all(isinstance(r, list) for r in rows):
            raise ConfigError("rows must be all objects or all arrays", field="rows")
        rows = rows[skip_top:]
        if self.config.get("hasHeader", True):
            if not rows:
                return
            header = self._header([str(c) if c is not None else "" for c in rows[0]], "rows[0]", "inline rows")
            body = rows[1:]
            start = skip_top + 1
        else:
            width = len(rows[0]) if rows else 0
            header = [f"col{i + 1}" for i in range(width)]
            body = rows
            start = skip_top
        for i, row in enumerate(body):
            if len(row) != len(header):
                self._bad_row(f"rows[{start + i}]", f"expected {len(header)} fields, got {len(row)}", "inline rows")
                continue
            yield dict(zip(header, deep_copy(row), strict=True))


# --- json / ndjson ----------------------------------------------------------------------------------------


@extractors.register(
    "json",
    name="JSON / NDJSON file",
    category="file",
    builtin=True,
    description="Records from a JSON document (at itemsPath) or an NDJSON file (one object a line, streamed).",
    schema={
        "type": "object",
        "properties": _source_properties({
            "jsonText": {"type": "string", "description": "The JSON (or NDJSON) text itself."},
        }) | {
            "itemsPath": {"type": "string", "minLength": 1,
                          "description": "Dotted path to the records inside the document (data.items); without "
                          "it the document is the list of records (an object is one record)."},
            "format": {"enum": ["JSON", "NDJSON"],
                       "description": "JSON (one document) or NDJSON (one object a line); default: NDJSON for a "
                       ".ndjson or .jsonl file, JSON otherwise."},
            "encoding": _ENCODING,
            "onBadRow": _ON_BAD_ROW,
        },
        "additionalProperties": False,
    },
)
class JsonExtractor(FileExtractor):
    kind = "json"

    def read(self, key: str, source: Source | None) -> Iterator[Batch]:
        fmt = self.config.get("format")
        if fmt is None:
            fmt = "NDJSON" if source.name.lower().endswith((".ndjson", ".jsonl")) else "JSON"
        items_path = self.config.get("itemsPath")
        if items_path is not None:
            if fmt == "NDJSON":
                raise ConfigError("itemsPath does not apply to NDJSON (each line is a record)", field="itemsPath")
            try:
                compiled = field_path(items_path)
            except PathError as exc:
                raise ConfigError(str(exc), field="itemsPath") from None
        else:
            compiled = None
        encoding = self._encoding()
        if fmt == "NDJSON":
            text = self._hold(source.open_text(encoding))
            yield from self._emit(self._lines(text, source.label, encoding), source.identity)
            return
        document = self._load(source, encoding)
        items = document if compiled is None else compiled.get(document)
        if items is MISSING:
            raise ConfigError(f"itemsPath '{items_path}' is not in the document", field="itemsPath")
        if isinstance(items, dict):
            items = [items]
        elif not isinstance(items, list):
            where = f"itemsPath '{items_path}'" if items_path else "the document"
            raise ConfigError(f"{where} holds {_JSON_TYPES.get(type(items), 'a value')}, not a list of objects",
                              field="itemsPath")
        yield from self._emit(self._items(items, items_path or "", source.label), source.identity)

    def _load(self, source: Source, encoding: str) -> Any:
        if source.text is not None:
            data: bytes | str = source.text
        else:
            stream = self._hold(source.open_binary())
            data = stream.read()
            stream.close()
            if codecs.lookup(encoding).name == "utf-8":
                data = data.removeprefix(codecs.BOM_UTF8)
            else:
                try:
                    data = data.decode(encoding).lstrip("\ufeff")
                except UnicodeDecodeError as exc:
                    raise StepError(f"{source.label} is not valid {encoding} text: {exc.reason}",
                                    retryable=False) from None
        if isinstance(data, str):
            data = data.lstrip("\ufeff")
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise StepError(f"invalid JSON in {source.label}: line {exc.lineno}, column {exc.colno}: {exc.msg}",
                            retryable=False) from None

    def _items(self, items: list, where: str, label: str) -> Iterator[Record]:
        for i, item in enumerate(items):
            if isinstance(item, dict):
                yield item
            else:
                self._bad_row(f"{where or 'items'}[{i}]", f"expected an object, got {_JSON_TYPES.get(type(item))}",
                              label)

    def _lines(self, text: IO[str], label: str, encoding: str) -> Iterator[Record]:
        number = 0
        while True:
            try:
                line = text.readline()
            except UnicodeDecodeError as exc:
                raise StepError(f"{label} is not valid {encoding} text after line {number}: {exc.reason}",
                                retryable=False) from None
            if not line:
                return
            number += 1
            if number == 1:
                line = line.lstrip("\ufeff")
            if not line.strip():
                continue
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                self._bad_row(f"line {number}", f"invalid JSON: {exc.msg} (column {exc.colno})", label)
                continue
            if not isinstance(value, dict):
                self._bad_row(f"line {number}", f"expected an object, got {_JSON_TYPES.get(type(value))}", label)
                continue
            yield value


# --- xml --------------------------------------------------------------------------------------------------


@extractors.register(
    "xml",
    name="XML file",
    category="file",
    builtin=True,
    description="Records from the elements at recordPath of an XML document, streamed; parsed with defusedxml "
    "(no entity expansion, no external entities).",
    schema={
        "type": "object",
        "properties": _source_properties({
            "xmlText": {"type": "string", "description": "The XML text itself."},
        }) | {
            "recordPath": {"type": "string", "minLength": 1,
                           "description": "Which elements are records: 'products/product' or '//product' (at "
                           "any depth, matched from the end), '/catalog/products/product' (from the root); "
                           "dots separate too when there is no slash; '*' matches any name. Default: the root's "
                           "children."},
            "attributePrefix": {"type": "string", "default": "@",
                                "description": "Prefix of the fields made from attributes (@id)."},
            "encoding": {"type": "string", "minLength": 1,
                         "description": "Decode the file with this encoding instead of the one the document "
                         "declares (default: the declared one, UTF-8 without a declaration)."},
        },
        "additionalProperties": False,
    },
)
class XmlExtractor(FileExtractor):
    """An element becomes an object: attributes as ``<prefix>name``, children by name (repeated children as a
    list), text as ``#text`` next to attributes or children; a child with only text becomes that text. Names
    keep their namespace prefix (``g:price``)."""

    kind = "xml"

    def read(self, key: str, source: Source | None) -> Iterator[Batch]:
        self.prefix = self.config.get("attributePrefix", "@")
        self.match = self._matcher(self.config.get("recordPath"))
        if source.text is not None:
            stream: IO = io.StringIO(source.text)
        elif self.config.get("encoding"):
            stream = source.open_text(self._encoding())
        else:
            stream = source.open_binary()
        self._hold(stream)
        yield from self._emit(self._records(stream, source.label), source.identity)

    @staticmethod
    def _matcher(record_path: str | None) -> Callable[[list[tuple[str, str]]], bool]:
        if record_path is None:
            return lambda stack: len(stack) == 2
        text = record_path.strip()
        anchored = text.startswith("/") and not text.startswith("//")
        sep = "/" if "/" in text else "."
        segments = [s for s in text.strip("/").split(sep) if s]
        if not segments:
            raise ConfigError("recordPath names no element", field="recordPath")
        n = len(segments)

        def hit(seg: str, names: tuple[str, str]) -> bool:
            return seg == "*" or seg in names

        def match(stack: list[tuple[str, str]]) -> bool:
            if len(stack) < n or (anchored and len(stack) != n):
                return False
            return all(hit(seg, names) for seg, names in zip(segments, stack[-n:], strict=True))

        return match

    def _name(self, tag: str) -> tuple[str, str]:
        """(name with its prefix, local name)."""
        if tag[:1] == "{":
            uri, local = tag[1:].split("}", 1)
            prefix = self.namespaces.get(uri)
            return (f"{prefix}:{local}" if prefix else local), local
        return tag, tag

    def _records(self, stream: IO, label: str) -> Iterator[Record]:
        from defusedxml import DefusedXmlException
        from defusedxml.ElementTree import ParseError, iterparse

        self.namespaces: dict[str, str] = {}
        names: list[tuple[str, str]] = []
        elements: list = []
        inside: Any = None  # the record element being read
        try:
            for event, item in iterparse(stream, events=("start", "end", "start-ns"),
                                         forbid_dtd=False, forbid_entities=True, forbid_external=True):
                if event == "start-ns":
                    prefix, uri = item
                    self.namespaces.setdefault(uri, prefix)
                    continue
                if event == "start":
                    names.append(self._name(item.tag))
                    elements.append(item)
                    if inside is None and self.match(names):
                        inside = item
                    continue
                names.pop()
                elements.pop()
                if item is inside:
                    value = self._convert(item)
                    inside = None
                    yield value if isinstance(value, dict) else {"#text": value}
                if inside is None:
                    item.clear()  # done with it: keep memory bounded
                    if elements:
                        elements[-1].remove(item)
        except DefusedXmlException as exc:
            raise StepError(f"{label} refused: XML with entity declarations or external references is not "
                            f"allowed ({type(exc).__name__})", retryable=False) from None
        except ParseError as exc:
            line, column = getattr(exc, "position", (0, 0))
            raise StepError(f"invalid XML in {label}: line {line}, column {column}: {exc}",
                            retryable=False) from None
        except UnicodeDecodeError as exc:
            raise StepError(f"{label} is not valid text in its encoding: {exc.reason}", retryable=False) from None

    def _convert(self, elem) -> Any:
        children = list(elem)
        text = elem.text or ""
        if not elem.attrib and not children:
            return text
        out: dict[str, Any] = {}
        for key, value in elem.attrib.items():
            out[self.prefix + self._name(key)[0]] = value
        lists: set[str] = set()
        for child in children:
            key = self._name(child.tag)[0]
            value = self._convert(child)
            if key in lists:
                out[key].append(value)
            elif key in out:
                out[key] = [out[key], value]
                lists.add(key)
            else:
                out[key] = value
            if child.tail:
                text += child.tail
        if text.strip():
            out["#text"] = text.strip()
        return out


# --- xlsx -------------------------------------------------------------------------------------------------


@extractors.register(
    "xlsx",
    name="Excel workbook (XLSX)",
    category="file",
    builtin=True,
    description="Rows of one sheet of an XLSX workbook (from storage or a path in an allowed folder), read "
    "row by row in openpyxl's read-only mode.",
    schema={
        "type": "object",
        "properties": _source_properties({}) | {
            "sheetName": {"type": ["string", "integer"],
                          "description": "The sheet: its name, or its zero-based index. Default: the first."},
            **_HEADER_PROPS,
            "trim": {"type": "boolean", "default": False,
                     "description": "Strip spaces around header names and text values."},
        },
        "additionalProperties": False,
    },
)
class XlsxExtractor(FileExtractor):
    """Cell values keep their type (numbers, booleans); dates and times become ISO 8601 text; formulas give
    their last computed value. Empty rows are skipped; a cell under no header becomes colN when it is set."""

    kind = "xlsx"

    def read(self, key: str, source: Source | None) -> Iterator[Batch]:
        skip_top = self._header_skip()
        workbook = self._open(source)
        sheet = self._sheet(workbook)
        yield from self._emit(self._records(sheet, skip_top), source.identity)

    def _open(self, source: Source):
        from openpyxl import load_workbook

        raw = self._hold(source.open_raw())
        seekable = getattr(raw, "seekable", lambda: False)()
        if not seekable or source.size is None:
            spool = self._hold(tempfile.TemporaryFile())
            capped = io.BufferedReader(_CappedReader(raw, max_file_bytes(), source.label))
            shutil.copyfileobj(capped, spool, _READ_CHUNK)
            spool.seek(0)
            raw = spool
        try:
            workbook = load_workbook(raw, read_only=True, data_only=True)
        except Exception as exc:  # BadZipFile, InvalidFileException, KeyError for a missing part
            raise StepError(f"{source.label} is not a readable XLSX workbook: {type(exc).__name__}: {exc}",
                            retryable=False) from None
        self._closers.append(workbook.close)
        return workbook

    def _sheet(self, workbook):
        wanted = self.config.get("sheetName")
        names = workbook.sheetnames
        listed = ", ".join(f"'{n}'" for n in names)
        if wanted is None:
            return workbook[names[0]]
        if isinstance(wanted, str) and wanted in names:
            return workbook[wanted]
        if isinstance(wanted, int) or (isinstance(wanted, str) and wanted.strip().isdigit()):
            index = int(wanted)
            if 0 <= index < len(names):
                return workbook[names[index]]
            raise ConfigError(f"sheet index {index} is out of range: the workbook has {len(names)} sheets "
                              f"({listed})", field="sheetName")
        raise ConfigError(f"sheet '{wanted}' not found; the workbook has {listed}", field="sheetName")

    def _records(self, sheet, skip_top: int) -> Iterator[Record]:
        has_header = self.config.get("hasHeader", True)
        trim = bool(self.config.get("trim"))
        names: list[str | None] | None = None
        for number, row in enumerate(sheet.iter_rows(min_row=1, values_only=True), start=1):
            if number <= skip_top:
                continue
            values = [_cell(v, trim) for v in row]
            if all(v is None or v == "" for v in values):
                continue
            if names is None and has_header:
                names = self._header(values, number)
                continue
            if names is None:
                names = []
            record: Record = {}
            for i, value in enumerate(values):
                name = names[i] if i < len(names) else None
                if name is None:
                    if value is None:
                        continue
                    name = f"col{i + 1}"
                record[name] = value
            yield record

    def _header(self, values: list, number: int) -> list[str | None]:
        names: list[str | None] = []
        seen = set()
        for value in values:
            if value is None or str(value).strip() == "":
                names.append(None)
                continue
            name = str(value).strip() if self.config.get("trim") else str(value)
            if name in seen:
                raise StepError(f"row {number}: the header names '{name}' twice", retryable=False)
            seen.add(name)
            names.append(name)
        return names


def _cell(value: Any, trim: bool) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if trim and isinstance(value, str):
        return value.strip()
    return value


"""What every file extractor shares: the schema pieces (sources, encoding, bad rows, headers) and
:class:`FileExtractor` (reading, batching, errors)."""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

from pipelines.adapters.base import Extractor
from pipelines.adapters.files.sources import INLINE_SOURCES, Source, resolve_source, too_big
from pipelines.errors import ConfigError, StepError
from pipelines.filestores import FileStore, open_store
from pipelines.filestores.limits import max_file_bytes
from pipelines.records import Batch, Record

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


def source_properties(inline: dict) -> dict:
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


ENCODING_PROP = {"type": "string", "default": "utf-8", "minLength": 1,
             "description": "Text encoding of the file (a BOM is stripped)."}
ON_BAD_ROW_PROP = {"enum": ["fail", "skip"], "default": "fail",
               "description": "A malformed row: fail the step naming its line, or skip it with a warning."}
HEADER_PROPS = {
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


JSON_TYPES = {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean",
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
            raise too_big(label, limit, size)
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
        """Batches of ``ctx.batch_size`` out of ``records``: see :meth:`_emit_taken`."""
        return self._emit_taken(lambda n: list(islice(records, n)), identity)

    def _emit_taken(self, take: Callable[[int], list[Record]], identity: str) -> Iterator[Batch]:
        """Batches of ``ctx.batch_size``; honours the record limit, cancellation and the resumable offset.

        ``take(n)`` gives the next ``n`` records (fewer only at the end of the source), so a batch is gathered
        in one call rather than record by record. It is never asked for a record past the limit: a bad row
        after the last record a preview needs must not fail it."""
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
        read = 0
        while read < skip:
            want = min(size, skip - read)
            got = len(take(want))
            read += got
            if ctx.cancelled.is_set():
                return
            if got < want:
                break
        emitted = 0
        while limit is None or emitted < limit:
            want = size if limit is None else min(size, limit - emitted)
            batch = take(want)
            if batch:
                read += len(batch)
                emitted += len(batch)
                if ctx.cancelled.is_set():
                    return
                if track:
                    ctx.checkpoint.update(source=identity, offset=read)
                yield batch
            if len(batch) < want:
                break  # the source ended
        else:
            return  # the limit is reached: nothing more is read
        if track:
            if read < skip:
                ctx.warn(f"the source has {read} records, fewer than the checkpoint offset {skip}; "
                         "the offset is set back to it")
            ctx.checkpoint.update(source=identity, offset=read)
        if skip and read >= skip:
            ctx.warn(f"resumed after {skip} records read before")
        if self.skipped:
            ctx.warn(f"{self.skipped} bad rows skipped")

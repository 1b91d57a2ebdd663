"""FOLDER connections: a folder on the worker's disk. [pure]

Connection config: ``{"root": "/srv/datahub/incoming"}``. The root must be inside one of the folders of
the setting ``DATAHUB_FILE_ROOTS`` (the same rule as the extractors' ``path`` sources), so a connection
cannot open the rest of the disk. Every path is resolved with symlinks followed and must still be under
the root: a symlink pointing outside is treated as not there.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import IO

from pipelines.filestores.base import (
    NOT_FOUND,
    PERMISSION_DENIED,
    FileInfo,
    FileStore,
    FileStoreError,
    matches,
    temporary_name,
)
from pipelines.filestores.limits import allowed_roots


class LocalStore(FileStore):
    kind = "FOLDER"

    def __init__(self, code: str, conn: dict, secret=None):
        raw = str(conn.get("root") or "").strip()
        super().__init__(code, raw or "(no root)")
        if not raw:
            raise FileStoreError(f"{self.label}: set root, the folder this connection reads and writes",
                                 kind=NOT_FOUND)
        roots = allowed_roots()
        root = Path(raw).expanduser().resolve()
        if not any(root == r or root.is_relative_to(r) for r in roots):
            allowed = ", ".join(str(r) for r in roots) or "none configured"
            raise FileStoreError(f"{self.label}: root is outside the folders of the setting DATAHUB_FILE_ROOTS "
                                 f"({allowed})", kind=PERMISSION_DENIED)
        if not root.is_dir():
            raise FileStoreError(f"{self.label}: no such folder: {raw}", kind=NOT_FOUND)
        self.root = root

    def _real(self, path: str, *, folder: bool = False) -> Path:
        rel = self.path(path, folder=folder)
        real = (self.root / rel).resolve()
        if real != self.root and not real.is_relative_to(self.root):
            # A symlink leading out of the root: as far as this connection is concerned, nothing is there.
            raise FileStoreError(f"{self.label}: {rel} leads outside the connection's root", kind=PERMISSION_DENIED)
        return real

    def _info(self, real: Path, st: os.stat_result) -> FileInfo:
        return FileInfo(real.relative_to(self.root).as_posix(), st.st_size, st.st_mtime)

    def list(self, folder=".", pattern=None, recursive=False) -> list[FileInfo]:
        base = self._real(folder, folder=True)
        if not base.is_dir():
            raise FileStoreError(f"{self.label}: no such folder: {self.path(folder, folder=True)}", kind=NOT_FOUND)
        found: list[FileInfo] = []
        pending = [base]
        while pending:
            current = pending.pop()
            try:
                entries = list(os.scandir(current))
            except PermissionError:
                raise FileStoreError(f"{self.label}: permission denied listing "
                                     f"{current.relative_to(self.root).as_posix() or '.'}",
                                     kind=PERMISSION_DENIED) from None
            for entry in entries:
                if entry.name.startswith("."):
                    continue  # hidden, and where uploads wait before their rename
                real = Path(entry.path).resolve()
                if real != self.root and not real.is_relative_to(self.root):
                    continue
                if entry.is_dir():
                    if recursive:
                        pending.append(Path(entry.path))
                    continue
                if not entry.is_file():
                    continue
                info = self._info(Path(entry.path), entry.stat())
                if matches(Path(entry.path).relative_to(base).as_posix(), pattern):
                    found.append(info)
        return sorted(found, key=lambda f: f.path)

    def stat(self, path: str) -> FileInfo:
        real = self._real(path)
        if not real.is_file():
            raise FileStoreError(f"{self.label}: no such file: {self.path(path)}", kind=NOT_FOUND)
        st = real.stat()
        return FileInfo(self.path(path), st.st_size, st.st_mtime)

    def open_read(self, path: str) -> IO[bytes]:
        real = self._real(path)
        try:
            return open(real, "rb")  # the caller closes it
        except FileNotFoundError:
            raise FileStoreError(f"{self.label}: no such file: {self.path(path)}", kind=NOT_FOUND) from None
        except IsADirectoryError:
            raise FileStoreError(f"{self.label}: {self.path(path)} is a folder", kind=NOT_FOUND) from None
        except PermissionError:
            raise FileStoreError(f"{self.label}: permission denied reading {self.path(path)}",
                                 kind=PERMISSION_DENIED) from None

    def write(self, path: str, stream: IO[bytes]) -> None:
        rel = self.path(path)
        target = self._real(rel)
        tmp = self._real(temporary_name(rel, uuid.uuid4().hex[:12]))
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as out:
                shutil.copyfileobj(stream, out, 64 * 1024)
            os.replace(tmp, target)
        except PermissionError:
            tmp.unlink(missing_ok=True)
            raise FileStoreError(f"{self.label}: permission denied writing {rel}", kind=PERMISSION_DENIED) from None
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise FileStoreError(f"{self.label}: cannot write {rel}: {exc.strerror or exc}",
                                 kind=PERMISSION_DENIED) from None

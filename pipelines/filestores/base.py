"""One small interface over where files live: list, stat, open for reading, write. [pure]

A :class:`FileStore` is opened from a connection (a local folder, an SFTP server, an FTP server) and
sees only what is under the connection's ``root``: every path it is given is relative to that root and
checked by :func:`clean_path` first, so no configured path, pattern or file name found on the server can
reach outside it (``..`` is refused, never clamped). Paths it returns are relative to the root too, with
``/`` as separator, whatever the server.

Every failure is a :class:`FileStoreError` naming the connection and saying which of a few things went
wrong (``kind``): the host cannot be reached (retryable: trying later may help), authentication failed,
permission denied, no such path, the server's host key does not match, or the file is over the size
limit. Callers never see a paramiko or ftplib exception.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO

from pipelines.errors import StepError

UNREACHABLE = "unreachable"
AUTH_FAILED = "auth_failed"
PERMISSION_DENIED = "permission_denied"
NOT_FOUND = "not_found"
HOST_KEY = "host_key"
TOO_BIG = "too_big"
PROTOCOL = "protocol"


class FileStoreError(StepError):
    """A file store could not do what was asked. Only an unreachable host is worth retrying."""

    def __init__(self, message: str, *, kind: str):
        self.kind = kind
        super().__init__(message, retryable=kind == UNREACHABLE)


@dataclass(frozen=True)
class FileInfo:
    """A file under a store's root: its path relative to the root, size in bytes, modification time
    (seconds since the epoch, UTC)."""

    path: str
    size: int
    mtime: float

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)

    @property
    def modified(self) -> str:
        return datetime.fromtimestamp(self.mtime, UTC).isoformat()


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def clean_path(path: str, label: str, *, folder: bool = False) -> str:
    """``path`` as a normalized relative path under the root ('.' for the root itself).

    A leading ``/`` means the root (the root is the top of what the connection may see); ``..`` is refused
    outright, so a path can never leave the root; backslashes and control characters are refused too.
    """
    if not isinstance(path, str):
        raise FileStoreError(f"{label}: a path must be a string", kind=NOT_FOUND)
    if _CONTROL.search(path) or "\\" in path:
        raise FileStoreError(f"{label}: path {path!r} has a backslash or a control character", kind=NOT_FOUND)
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise FileStoreError(f"{label}: path {path!r} must not contain '..' (it cannot leave the connection's "
                             "root)", kind=PERMISSION_DENIED)
    if not parts:
        if folder:
            return "."
        raise FileStoreError(f"{label}: the path is empty", kind=NOT_FOUND)
    return "/".join(parts)


def matches(relative: str, pattern: str | None) -> bool:
    """A glob (``*.csv``, ``orders-2026-*.json``, ``in/*.csv``) against a path relative to the listed
    folder: a pattern without ``/`` is matched against the file name only, one with ``/`` against the
    whole relative path. Case-sensitive, as the servers are."""
    if not pattern:
        return True
    target = relative if "/" in pattern else posixpath.basename(relative)
    return fnmatch.fnmatchcase(target, pattern)


class FileStore(ABC):
    """Where a connection's files are. Opened per step or per poll and closed after (``with`` works)."""

    kind = ""

    def __init__(self, code: str, where: str):
        self.code = code
        # For every message: "connection 'partner-sftp' (SFTP bob@sftp.example.com:22)".
        self.label = f"connection '{code}' ({self.kind} {where})"

    def path(self, path: str, *, folder: bool = False) -> str:
        return clean_path(path, self.label, folder=folder)

    @abstractmethod
    def list(self, folder: str = ".", pattern: str | None = None, recursive: bool = False) -> list[FileInfo]:
        """The files (not folders) in ``folder`` matching ``pattern``, in subfolders too when
        ``recursive``; sorted by path."""

    @abstractmethod
    def stat(self, path: str) -> FileInfo:
        """The file at ``path``; NOT_FOUND when there is none (or it is a folder)."""

    @abstractmethod
    def open_read(self, path: str) -> IO[bytes]:
        """A binary stream of the file's bytes; the caller closes it (and enforces its size limit)."""

    @abstractmethod
    def write(self, path: str, stream: IO[bytes]) -> None:
        """Store ``stream`` at ``path`` (folders created as needed), replacing a file already there.
        Written under a temporary name and renamed into place, so a reader never sees half a file."""

    def close(self) -> None:
        """Release the connection; called once."""

    def __enter__(self) -> FileStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def temporary_name(path: str, token: str) -> str:
    """The name a file is uploaded under before it is renamed to ``path``: hidden, in the same folder
    (a rename across folders may not be atomic), and not matching the file's own extension."""
    folder, name = posixpath.split(path)
    return posixpath.join(folder, f".{name}.{token}.part")

"""File locations as connections: a folder on the worker's disk, an SFTP server, an FTP server. [pure]

:data:`STORES` is the one table of connection types that hold files; :func:`open_store` opens the store
of a connection code inside a step or a poll (connections and secrets resolved through the context, so a
definition never holds a credential). See :mod:`pipelines.filestores.base` for the interface.
"""

from __future__ import annotations

from collections.abc import Callable

from pipelines.errors import ConfigError
from pipelines.filestores.base import FileInfo, FileStore, FileStoreError, clean_path, matches
from pipelines.filestores.ftp import FtpStore
from pipelines.filestores.local import LocalStore
from pipelines.filestores.sftp import SftpStore

STORES: dict[str, type[FileStore]] = {
    "FOLDER": LocalStore,
    "SFTP": SftpStore,
    "FTP": FtpStore,
}

__all__ = ["STORES", "FileInfo", "FileStore", "FileStoreError", "clean_path", "matches", "open_store"]


def open_store(code: str, connection: Callable[[str], dict] | None, secret: Callable[[str], str] | None,
               *, field: str = "connectionCode") -> FileStore:
    """The file store of connection ``code``: ConfigError (naming ``field``) when the connection is
    unknown or not a file connection or a secret cannot be had; FileStoreError when the store cannot be
    opened (host unreachable, authentication failed, no such folder)."""
    if not isinstance(code, str) or not code:
        raise ConfigError("a connection code is required", field=field)
    if connection is None:
        raise ConfigError(f"connection '{code}' cannot be resolved here (no connection store)", field=field)
    try:
        conn = connection(code)
    except ConfigError as exc:
        raise ConfigError(str(exc), field=field) from None
    kind = str(conn.get("type", "")).upper()
    store = STORES.get(kind)
    if store is None:
        raise ConfigError(f"connection '{code}' is a {conn.get('type')} connection; files need one of "
                          f"{', '.join(STORES)}", field=field)

    def read_secret(secret_code: str) -> str:
        if secret is None:
            raise ConfigError(f"connection '{code}': secret '{secret_code}' cannot be resolved here", field=field)
        try:
            value = secret(secret_code)
        except ConfigError as exc:
            raise ConfigError(f"connection '{code}': {exc}", field=field) from None
        if not value:
            raise ConfigError(f"connection '{code}': secret '{secret_code}' is empty", field=field)
        return value

    try:
        return store(code, conn, read_secret)
    except (TypeError, ValueError) as exc:  # a port that is not a number, a timeout that is not one
        raise ConfigError(f"connection '{code}': {exc}", field=field) from None

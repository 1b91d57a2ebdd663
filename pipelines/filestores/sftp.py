"""SFTP connections, through paramiko. [pure]

Connection config::

    {"host": "sftp.example.com", "port": 22, "username": "datahub", "root": "/incoming",
     "passwordSecretCode": "partner-sftp-password"            # or:
     "privateKeySecretCode": "partner-sftp-key", "privateKeyPassphraseSecretCode": "...",
     "hostKey": "SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8", "timeoutSec": 30}

The password or the private key (OpenSSH or PEM text: Ed25519, ECDSA or RSA) come from secrets, never
from the connection itself. The server's host key is checked against ``hostKey`` (its SHA256 fingerprint
as ``ssh-keygen -lf`` prints it, or its public key line ``ssh-ed25519 AAAA...``); without one the
connection is refused unless ``acceptAnyHostKey: true`` says, in so many words, that anyone able to
intercept the network may pose as the server. ``root`` (default: the login folder) is the top of what the
connection sees; the server's own permissions (and chroot) apply as well.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import hmac
import io
import posixpath
import socket
import stat as statmod
import uuid
from typing import IO

import paramiko

from pipelines.filestores.base import (
    AUTH_FAILED,
    HOST_KEY,
    NOT_FOUND,
    PERMISSION_DENIED,
    PROTOCOL,
    UNREACHABLE,
    FileInfo,
    FileStore,
    FileStoreError,
    matches,
    temporary_name,
)

_KEY_TYPES = (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey)


def fingerprint(key: paramiko.PKey) -> str:
    """``SHA256:<base64 without padding>``, as OpenSSH shows a key."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")


def _load_private_key(text: str, passphrase: str | None, label: str) -> paramiko.PKey:
    for kind in _KEY_TYPES:
        try:
            return kind.from_private_key(io.StringIO(text), password=passphrase)
        except paramiko.PasswordRequiredException:
            raise FileStoreError(f"{label}: the private key is encrypted; set privateKeyPassphraseSecretCode",
                                 kind=AUTH_FAILED) from None
        except (paramiko.SSHException, ValueError):
            continue
    raise FileStoreError(f"{label}: the private key secret holds no readable Ed25519, ECDSA or RSA key "
                         "(or its passphrase is wrong)", kind=AUTH_FAILED)


class SftpStore(FileStore):
    kind = "SFTP"

    def __init__(self, code: str, conn: dict, secret):
        host = str(conn.get("host") or "").strip()
        port = int(conn.get("port") or 22)
        user = str(conn.get("username") or conn.get("user") or "").strip()
        super().__init__(code, f"{user or '?'}@{host or '?'}:{port}")
        if not host or not user:
            raise FileStoreError(f"{self.label}: set host and username", kind=NOT_FOUND)
        root = str(conn.get("root") or "").strip()
        self.root = "/" if root == "/" else root.rstrip("/")
        timeout = float(conn.get("timeoutSec") or 30)
        password = secret(conn["passwordSecretCode"]) if conn.get("passwordSecretCode") else None
        key = None
        if conn.get("privateKeySecretCode"):
            passphrase = (secret(conn["privateKeyPassphraseSecretCode"])
                          if conn.get("privateKeyPassphraseSecretCode") else None)
            key = _load_private_key(secret(conn["privateKeySecretCode"]), passphrase, self.label)
        if password is None and key is None:
            raise FileStoreError(f"{self.label}: set passwordSecretCode or privateKeySecretCode", kind=AUTH_FAILED)
        expected = str(conn.get("hostKey") or "").strip()
        if not expected and conn.get("acceptAnyHostKey") is not True:
            raise FileStoreError(f"{self.label}: set hostKey, the server's key fingerprint (SHA256:..., as "
                                 "`ssh-keygen -lf` prints it), or acceptAnyHostKey: true", kind=HOST_KEY)
        self._transport: paramiko.Transport | None = None
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise FileStoreError(f"{self.label}: cannot reach the host: {exc.strerror or exc}",
                                 kind=UNREACHABLE) from None
        try:
            transport = paramiko.Transport(sock)
            self._transport = transport
            transport.banner_timeout = timeout
            transport.start_client(timeout=timeout)
            self._check_host_key(transport.get_remote_server_key(), expected)
            if key is not None:
                transport.auth_publickey(user, key)
            else:
                transport.auth_password(user, password)
            self.sftp = paramiko.SFTPClient.from_transport(transport)
            self.sftp.get_channel().settimeout(timeout)
        except FileStoreError:
            self.close()
            raise
        except paramiko.AuthenticationException:
            self.close()
            raise FileStoreError(f"{self.label}: authentication failed for user '{user}'", kind=AUTH_FAILED) from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self.close()
            raise FileStoreError(f"{self.label}: cannot reach the host: SSH failed: {exc or type(exc).__name__}",
                                 kind=UNREACHABLE) from None

    def _check_host_key(self, key: paramiko.PKey, expected: str) -> None:
        if not expected:
            return
        if expected.startswith("SHA256:"):
            ok = hmac.compare_digest(fingerprint(key).rstrip("="), expected.rstrip("="))
        else:
            parts = expected.split()
            ok = len(parts) >= 2 and parts[0] == key.get_name() and hmac.compare_digest(parts[1], key.get_base64())
        if not ok:
            raise FileStoreError(f"{self.label}: the server's host key {fingerprint(key)} is not the configured "
                                 "hostKey; refusing to connect (someone may be posing as the server)", kind=HOST_KEY)

    def _remote(self, rel: str) -> str:
        if rel == ".":
            return self.root or "."
        return posixpath.join(self.root, rel) if self.root else rel

    def _error(self, exc: OSError, what: str, rel: str) -> FileStoreError:
        code = getattr(exc, "errno", None)
        if isinstance(exc, FileNotFoundError) or code == errno.ENOENT:
            return FileStoreError(f"{self.label}: no such path: {rel}", kind=NOT_FOUND)
        if isinstance(exc, PermissionError) or code == errno.EACCES:
            return FileStoreError(f"{self.label}: permission denied {what} {rel}", kind=PERMISSION_DENIED)
        if isinstance(exc, socket.timeout | EOFError) or not self._alive():
            return FileStoreError(f"{self.label}: the connection broke while {what} {rel}", kind=UNREACHABLE)
        return FileStoreError(f"{self.label}: {what} {rel} failed: {exc}", kind=PROTOCOL)

    def _alive(self) -> bool:
        return self._transport is not None and self._transport.is_active()

    def list(self, folder=".", pattern=None, recursive=False) -> list[FileInfo]:
        base = self.path(folder, folder=True)
        found: list[FileInfo] = []
        pending = [base]
        while pending:
            current = pending.pop()
            try:
                entries = self.sftp.listdir_attr(self._remote(current))
            except (OSError, EOFError) as exc:
                raise self._error(exc, "listing", current) from None
            for entry in entries:
                if entry.filename.startswith("."):
                    continue  # hidden, and where uploads wait before their rename
                rel = entry.filename if current == "." else f"{current}/{entry.filename}"
                if statmod.S_ISDIR(entry.st_mode or 0):
                    if recursive:
                        pending.append(rel)
                elif statmod.S_ISREG(entry.st_mode or 0):
                    inside = rel if base == "." else rel[len(base) + 1:]
                    if matches(inside, pattern):
                        found.append(FileInfo(rel, entry.st_size or 0, float(entry.st_mtime or 0)))
        return sorted(found, key=lambda f: f.path)

    def stat(self, path: str) -> FileInfo:
        rel = self.path(path)
        try:
            st = self.sftp.stat(self._remote(rel))
        except (OSError, EOFError) as exc:
            raise self._error(exc, "reading", rel) from None
        if not statmod.S_ISREG(st.st_mode or 0):
            raise FileStoreError(f"{self.label}: {rel} is not a file", kind=NOT_FOUND)
        return FileInfo(rel, st.st_size or 0, float(st.st_mtime or 0))

    def open_read(self, path: str) -> IO[bytes]:
        rel = self.path(path)
        try:
            handle = self.sftp.open(self._remote(rel), "rb")
            handle.prefetch()
        except (OSError, EOFError) as exc:
            raise self._error(exc, "reading", rel) from None
        return handle

    def _makedirs(self, rel_folder: str) -> None:
        if rel_folder in ("", "."):
            return
        done = ""
        for part in rel_folder.split("/"):
            done = f"{done}/{part}" if done else part
            try:
                self.sftp.stat(self._remote(done))
            except FileNotFoundError:
                try:
                    self.sftp.mkdir(self._remote(done))
                except (OSError, EOFError) as exc:
                    raise self._error(exc, "creating the folder", done) from None

    def write(self, path: str, stream: IO[bytes]) -> None:
        rel = self.path(path)
        tmp = temporary_name(rel, uuid.uuid4().hex[:12])
        try:
            self._makedirs(posixpath.dirname(rel))
            self.sftp.putfo(stream, self._remote(tmp), confirm=True)
            try:
                self.sftp.posix_rename(self._remote(tmp), self._remote(rel))
            except OSError:  # a server without the posix-rename extension: plain rename, over nothing
                try:
                    self.sftp.remove(self._remote(rel))
                except FileNotFoundError:
                    pass
                self.sftp.rename(self._remote(tmp), self._remote(rel))
        except (OSError, EOFError) as exc:
            try:
                self.sftp.remove(self._remote(tmp))
            except (OSError, EOFError):
                pass
            raise self._error(exc, "writing", rel) from None

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

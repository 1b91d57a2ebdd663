"""FTP connections (FTPS optional), through the standard library's ftplib. [pure]

Connection config::

    {"host": "ftp.example.com", "port": 21, "username": "datahub", "passwordSecretCode": "partner-ftp-password",
     "root": "/outgoing", "tls": true, "passive": true, "timeoutSec": 30}

``tls: true`` is explicit FTPS (AUTH TLS, then a protected data channel: PROT P), with the server's
certificate and name checked against the system's trust store, or against ``tlsCaCertificate`` (the PEM
of the CA, or of a self-signed server certificate, to trust); ``tlsVerify: false`` turns the check off. Without a username the login is anonymous. Listings use MLSD (type, size
and modification time in one answer); a server without it (vsftpd) is listed with NLST and asked SIZE
and MDTM per entry, an entry without a size being taken as a folder.
"""

from __future__ import annotations

import ftplib
import io
import posixpath
import ssl
import uuid
from calendar import timegm
from typing import IO

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

_BROKEN = (OSError, EOFError, ftplib.error_temp, ftplib.error_reply, ftplib.error_proto)


def _mtime(text: str) -> float:
    """An MLSD ``modify`` fact or an MDTM answer (YYYYMMDDHHMMSS[.fff], UTC) as epoch seconds."""
    text = text.strip()
    whole, _, fraction = text.partition(".")
    seconds = timegm((int(whole[0:4]), int(whole[4:6]), int(whole[6:8]), int(whole[8:10]), int(whole[10:12]),
                      int(whole[12:14]), 0, 0, 0))
    return seconds + (float("0." + fraction) if fraction.isdigit() else 0.0)


class _Download(io.RawIOBase):
    """The data connection of one RETR, read as a stream; closing it reads the server's final answer so
    the control connection is ready for the next command."""

    def __init__(self, ftp: ftplib.FTP, conn, label: str):
        self._ftp = ftp
        self._conn = conn
        self._label = label
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            n = self._conn.recv_into(buffer)
        except OSError as exc:
            raise FileStoreError(f"{self._label}: the download broke: {exc}", kind=UNREACHABLE) from None
        if n == 0:
            self._done = True
        return n

    def close(self) -> None:
        if self.closed:
            return
        try:
            if self._done and isinstance(self._conn, ssl.SSLSocket):
                self._conn.unwrap()
        except OSError:
            pass
        self._conn.close()
        try:
            self._ftp.voidresp()
        except (*_BROKEN, ftplib.error_perm):
            pass  # closed before the end (426 "transfer aborted") or the connection is gone: nothing to add
        super().close()


class FtpStore(FileStore):
    kind = "FTP"

    def __init__(self, code: str, conn: dict, secret):
        host = str(conn.get("host") or "").strip()
        port = int(conn.get("port") or 21)
        user = str(conn.get("username") or conn.get("user") or "").strip()
        tls = bool(conn.get("tls"))
        self.kind = "FTPS" if tls else "FTP"
        super().__init__(code, f"{user or 'anonymous'}@{host or '?'}:{port}")
        if not host:
            raise FileStoreError(f"{self.label}: set host", kind=NOT_FOUND)
        root = str(conn.get("root") or "").strip()
        self.root = "/" if root == "/" else root.rstrip("/")
        timeout = float(conn.get("timeoutSec") or 30)
        password = secret(conn["passwordSecretCode"]) if conn.get("passwordSecretCode") else ""
        if tls:
            context = ssl.create_default_context()
            if conn.get("tlsCaCertificate"):
                try:
                    context.load_verify_locations(cadata=str(conn["tlsCaCertificate"]))
                except (ssl.SSLError, ValueError) as exc:
                    raise FileStoreError(f"{self.label}: tlsCaCertificate is not a PEM certificate: {exc}",
                                         kind=HOST_KEY) from None
            if conn.get("tlsVerify") is False:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self.ftp: ftplib.FTP = ftplib.FTP_TLS(context=context, timeout=timeout, encoding="utf-8")
        else:
            self.ftp = ftplib.FTP(timeout=timeout, encoding="utf-8")
        try:
            self.ftp.connect(host, port)
        except (OSError, EOFError, ftplib.Error) as exc:
            raise FileStoreError(f"{self.label}: cannot reach the host: {getattr(exc, 'strerror', None) or exc}",
                                 kind=UNREACHABLE) from None
        try:
            if user:
                self.ftp.login(user, password)
            else:
                self.ftp.login()
            if tls:
                self.ftp.prot_p()
            self.ftp.set_pasv(conn.get("passive", True) is not False)
            self.ftp.voidcmd("TYPE I")
        except ftplib.error_perm as exc:
            self.close()
            raise FileStoreError(f"{self.label}: authentication failed for user '{user or 'anonymous'}': {exc}",
                                 kind=AUTH_FAILED) from None
        except ssl.SSLCertVerificationError as exc:
            self.close()
            raise FileStoreError(f"{self.label}: the server's TLS certificate is not trusted ({exc.verify_message}); "
                                 "refusing to log in (set tlsCaCertificate to the server's CA)", kind=HOST_KEY) from None
        except (ssl.SSLError, *_BROKEN) as exc:
            self.close()
            raise FileStoreError(f"{self.label}: cannot reach the host: {exc}", kind=UNREACHABLE) from None
        self._mlsd = True

    def _remote(self, rel: str) -> str:
        if rel == ".":
            return self.root or "."
        return posixpath.join(self.root, rel) if self.root else rel

    def _error(self, exc: Exception, what: str, rel: str) -> FileStoreError:
        if isinstance(exc, ftplib.error_perm):
            text = str(exc)
            # 550 means "not found" or "no access" (the protocol does not tell which): say both, with the
            # server's own words.
            if text.startswith("550"):
                return FileStoreError(f"{self.label}: no such path or permission denied {what} {rel}: {text}",
                                      kind=NOT_FOUND)
            if text.startswith(("530", "532", "553")):
                return FileStoreError(f"{self.label}: permission denied {what} {rel}: {text}",
                                      kind=PERMISSION_DENIED)
            return FileStoreError(f"{self.label}: {what} {rel} failed: {text}", kind=PROTOCOL)
        return FileStoreError(f"{self.label}: the connection broke while {what} {rel}: {exc}", kind=UNREACHABLE)

    def _entries(self, remote: str) -> list[tuple[str, bool, int, float]]:
        """(name, is_folder, size, mtime) of a folder's entries."""
        if self._mlsd:
            try:
                out = []
                for name, facts in self.ftp.mlsd(remote, facts=["type", "size", "modify"]):
                    kind = facts.get("type", "").lower()
                    if kind in ("cdir", "pdir") or name in (".", ".."):
                        continue
                    if kind == "dir":
                        out.append((name, True, 0, 0.0))
                    elif kind == "file":
                        out.append((name, False, int(facts.get("size") or 0), _mtime(facts.get("modify") or
                                                                                     "19700101000000")))
                return out
            except ftplib.error_perm as exc:
                if not str(exc).startswith(("500", "501", "502", "504")):
                    raise
                self._mlsd = False  # not understood: fall back for this session
        out = []
        for entry in self.ftp.nlst(remote):
            name = posixpath.basename(entry.rstrip("/"))
            if name in (".", ".."):
                continue
            full = posixpath.join(remote, name) if remote != "." else name
            try:
                self.ftp.voidcmd("TYPE I")  # SIZE is refused in ASCII mode, which listings leave on
                size = self.ftp.size(full)
            except ftplib.error_perm:
                out.append((name, True, 0, 0.0))
                continue
            out.append((name, False, int(size or 0), _mtime(self.ftp.sendcmd(f"MDTM {full}")[4:])))
        return out

    def list(self, folder=".", pattern=None, recursive=False) -> list[FileInfo]:
        base = self.path(folder, folder=True)
        found: list[FileInfo] = []
        pending = [base]
        while pending:
            current = pending.pop()
            try:
                entries = self._entries(self._remote(current))
            except (ftplib.Error, OSError, EOFError) as exc:
                raise self._error(exc, "listing", current) from None
            for name, is_folder, size, mtime in entries:
                if name.startswith("."):
                    continue  # hidden, and where uploads wait before their rename
                rel = name if current == "." else f"{current}/{name}"
                if is_folder:
                    if recursive:
                        pending.append(rel)
                    continue
                inside = rel if base == "." else rel[len(base) + 1:]
                if matches(inside, pattern):
                    found.append(FileInfo(rel, size, mtime))
        return sorted(found, key=lambda f: f.path)

    def stat(self, path: str) -> FileInfo:
        rel = self.path(path)
        try:
            self.ftp.voidcmd("TYPE I")  # SIZE is refused in ASCII mode, which listings leave on
            size = self.ftp.size(self._remote(rel))
            mtime = _mtime(self.ftp.sendcmd(f"MDTM {self._remote(rel)}")[4:])
        except (ftplib.Error, OSError, EOFError) as exc:
            raise self._error(exc, "reading", rel) from None
        return FileInfo(rel, int(size or 0), mtime)

    def open_read(self, path: str) -> IO[bytes]:
        rel = self.path(path)
        try:
            self.ftp.voidcmd("TYPE I")  # bytes as they are: ASCII mode would rewrite line ends
            conn = self.ftp.transfercmd(f"RETR {self._remote(rel)}")
        except (ftplib.Error, OSError, EOFError) as exc:
            raise self._error(exc, "reading", rel) from None
        return io.BufferedReader(_Download(self.ftp, conn, self.label), buffer_size=64 * 1024)

    def _makedirs(self, rel_folder: str) -> None:
        if rel_folder in ("", "."):
            return
        done = ""
        for part in rel_folder.split("/"):
            done = f"{done}/{part}" if done else part
            try:
                self.ftp.mkd(self._remote(done))
            except ftplib.error_perm:
                pass  # there already (or not allowed: the upload below says so)

    def write(self, path: str, stream: IO[bytes]) -> None:
        rel = self.path(path)
        tmp = temporary_name(rel, uuid.uuid4().hex[:12])
        try:
            self._makedirs(posixpath.dirname(rel))
            self.ftp.storbinary(f"STOR {self._remote(tmp)}", stream, blocksize=64 * 1024)
            try:
                self.ftp.rename(self._remote(tmp), self._remote(rel))
            except ftplib.error_perm:  # some servers will not rename over a file
                self.ftp.delete(self._remote(rel))
                self.ftp.rename(self._remote(tmp), self._remote(rel))
        except (ftplib.Error, OSError, EOFError) as exc:
            try:
                self.ftp.delete(self._remote(tmp))
            except (ftplib.Error, OSError, EOFError):
                pass
            raise self._error(exc, "writing", rel) from None

    def close(self) -> None:
        ftp = getattr(self, "ftp", None)
        if ftp is None:
            return
        try:
            ftp.quit()
        except (ftplib.Error, OSError, EOFError):
            ftp.close()
        self.ftp = None

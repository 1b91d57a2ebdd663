"""Real file servers on 127.0.0.1, started by the tests and stopped after each one: an FTP server
(pyftpdlib) and an SFTP server (asyncssh's), each serving a fresh temporary folder, in a thread of this
process (no root, no fixed port). Each test gets its own server and folder, so nothing leaks between them.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

FTP_USER, FTP_PASSWORD = "ftpuser", "ftp-secret-1"
SFTP_USER, SFTP_PASSWORD = "sftpuser", "sftp-secret-1"


@dataclass
class FileServer:
    root: Path
    host: str
    port: int
    user: str
    password: str
    host_key: str = ""  # SFTP: the server key's SHA256 fingerprint
    certificate: str = ""  # FTPS: the server's (self-signed) certificate, PEM
    client_key: str = ""  # SFTP: a private key (OpenSSH text) the server accepts for user


def _self_signed(tmp_path: Path) -> tuple[Path, Path, str]:
    """A certificate for 127.0.0.1 signed by itself: (certificate file, key file, certificate PEM)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "datahub test ftps")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (tmp_path / "cert.pem").write_bytes(pem)
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    return tmp_path / "cert.pem", tmp_path / "key.pem", pem.decode()


@pytest.fixture
def ftp_server(tmp_path):
    yield from _ftp_server(tmp_path, tls=False)


@pytest.fixture
def old_ftp_server(tmp_path):
    """An FTP server without MLSD and MLST, as vsftpd is: listings fall back to NLST, SIZE and MDTM."""
    yield from _ftp_server(tmp_path, tls=False, mlsd=False)


@pytest.fixture
def ftps_server(tmp_path):
    """An FTP server that requires TLS on both channels, with a self-signed certificate."""
    pytest.importorskip("OpenSSL", reason="pyOpenSSL (a test dependency) gives pyftpdlib its FTPS handler")
    yield from _ftp_server(tmp_path, tls=True)


def _ftp_server(tmp_path, *, tls: bool, mlsd: bool = True):
    pytest.importorskip("pyftpdlib", reason="pyftpdlib (a test dependency) runs the FTP server these tests use")
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import FTPServer

    root = tmp_path / "ftp-root"
    root.mkdir()
    authorizer = DummyAuthorizer()
    authorizer.add_user(FTP_USER, FTP_PASSWORD, str(root), perm="elradfmwMT")
    authorizer.add_user("reader", "reader-secret", str(root), perm="elr")
    attrs = {"authorizer": authorizer, "banner": "datahub test ftp", "auth_failed_timeout": 0}
    certificate = ""
    base = FTPHandler
    if tls:
        from pyftpdlib.handlers import TLS_FTPHandler

        cert_file, key_file, certificate = _self_signed(tmp_path)
        attrs.update(certfile=str(cert_file), keyfile=str(key_file), tls_control_required=True,
                     tls_data_required=True)
        base = TLS_FTPHandler
    if not mlsd:
        attrs["proto_cmds"] = {k: v for k, v in base.proto_cmds.items() if k not in ("MLSD", "MLST")}
    handler = type("Handler", (base,), attrs)
    logging.getLogger("pyftpdlib").setLevel(logging.WARNING)  # a log line per command otherwise
    server = FTPServer(("127.0.0.1", 0), handler)
    port = server.socket.getsockname()[1]
    stop = threading.Event()

    def serve():  # the IO loop turned here, so stopping it and closing happen in this thread
        while not stop.is_set():
            server.ioloop.loop(0.05, blocking=False)
        server.close_all()

    thread = threading.Thread(target=serve, name="test-ftp-server", daemon=True)
    thread.start()
    try:
        yield FileServer(root, "127.0.0.1", port, FTP_USER, FTP_PASSWORD, certificate=certificate)
    finally:
        stop.set()
        thread.join(5)


@pytest.fixture
def sftp_server(tmp_path):
    asyncssh = pytest.importorskip("asyncssh", reason="asyncssh (a test dependency) runs the SFTP server these "
                                   "tests use")
    logging.getLogger("asyncssh").setLevel(logging.WARNING)  # a log line per channel event otherwise
    root = tmp_path / "sftp-root"
    root.mkdir()
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    client_public = client_key.convert_to_public()

    connections: set = set()

    class Server(asyncssh.SSHServer):
        def connection_made(self, conn):
            self.conn = conn
            connections.add(conn)

        def connection_lost(self, exc):
            connections.discard(self.conn)

        def begin_auth(self, username):
            return True  # every login must authenticate

        def password_auth_supported(self):
            return True

        def validate_password(self, username, password):
            return username == SFTP_USER and password == SFTP_PASSWORD

        def public_key_auth_supported(self):
            return True

        def validate_public_key(self, username, key):
            return username == SFTP_USER and key.public_data == client_public.public_data

    class Sftp(asyncssh.SFTPServer):
        """Files and folders named private* are off limits, as on a server whose permissions say so (the
        tests run as root, so the disk's own permissions would not stop anything)."""

        def _guard(self, path: bytes) -> None:
            if any(part.startswith(b"private") for part in path.split(b"/")):
                raise asyncssh.SFTPPermissionDenied("permission denied")

        def open(self, path, pflags, attrs):
            self._guard(path)
            return super().open(path, pflags, attrs)

        def scandir(self, path):
            self._guard(path)
            return super().scandir(path)

    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict = {}

    async def start():
        holder["server"] = await asyncssh.listen(
            "127.0.0.1", 0, server_factory=Server, server_host_keys=[host_key],
            sftp_factory=lambda chan: Sftp(chan, chroot=str(root).encode()), allow_scp=False)

    def serve():
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(start())
        except Exception as exc:  # reported to the test below
            holder["error"] = exc
        ready.set()
        if "server" in holder:
            loop.run_forever()
        loop.close()

    thread = threading.Thread(target=serve, name="test-sftp-server", daemon=True)
    thread.start()
    ready.wait(10)
    if "error" in holder:
        raise holder["error"]
    server = holder["server"]
    port = server.sockets[0].getsockname()[1]
    try:
        yield FileServer(root, "127.0.0.1", port, SFTP_USER, SFTP_PASSWORD,
                         host_key=host_key.get_fingerprint("sha256"),
                         client_key=client_key.export_private_key("openssh").decode())
    finally:
        async def shutdown():
            server.close()
            for conn in list(connections):
                conn.close()
                await conn.wait_closed()
            await server.wait_closed()

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


@pytest.fixture
def secrets_of():
    """A ``secret`` callable over a dict, for engine-level tests that need no database."""
    def make(values: dict):
        from pipelines.errors import ConfigError

        def secret(code: str) -> str:
            if code not in values:
                raise ConfigError(f"unknown secret '{code}'")
            return values[code]

        return secret

    return make


def ftp_connection(server: FileServer, **extra) -> dict:
    return {"type": "FTP", "host": server.host, "port": server.port, "username": server.user,
            "passwordSecretCode": "ftp-password", **extra}


def sftp_connection(server: FileServer, **extra) -> dict:
    return {"type": "SFTP", "host": server.host, "port": server.port, "username": server.user,
            "passwordSecretCode": "sftp-password", "hostKey": server.host_key, **extra}


def server_secrets(ftp: FileServer | None = None, sftp: FileServer | None = None) -> dict:
    values = {}
    if ftp is not None:
        values["ftp-password"] = ftp.password
    if sftp is not None:
        values["sftp-password"] = sftp.password
        values["sftp-key"] = sftp.client_key
    return values


@pytest.fixture
def save_connections():
    """Store connections and secrets in the database, as an admin would (the test's django_db mark must be
    transactional when a run reads them: steps run in threads with their own database connections)."""
    def save(connections: dict, secrets: dict) -> None:
        from pipelines.models import Connection, Secret
        from pipelines.secrets import set_secret_value

        for code, config in connections.items():
            config = dict(config)
            Connection.objects.update_or_create(code=code, defaults={"type": config.pop("type"), "config": config})
        for code, value in secrets.items():
            secret = Secret.objects.filter(code=code).first() or Secret(code=code)
            set_secret_value(secret, value)
            secret.save()

    return save


def upload(server: FileServer, kind: str, path: str, data: bytes) -> None:
    """Put a file on the server over its own protocol (plain paramiko / ftplib, not the code under test)."""
    import ftplib
    import io as _io

    if kind == "ftp":
        with ftplib.FTP() as ftp:
            ftp.connect(server.host, server.port, timeout=10)
            ftp.login(server.user, server.password)
            ftp.storbinary(f"STOR {path}", _io.BytesIO(data))
        return
    import paramiko

    transport = paramiko.Transport((server.host, server.port))
    try:
        transport.connect(username=server.user, password=server.password)
        sftp = paramiko.SFTPClient.from_transport(transport)
        sftp.putfo(_io.BytesIO(data), path)
    finally:
        transport.close()

"""The one file-store interface (list, stat, open for reading, write) on a local folder, a real SFTP server
and a real FTP server; and every way opening or using one goes wrong, named by the connection."""

import io
import os
import socket

import pytest

from pipelines.errors import ConfigError
from pipelines.filestores import FileStoreError, open_store
from pipelines.filestores.base import AUTH_FAILED, HOST_KEY, NOT_FOUND, PERMISSION_DENIED, UNREACHABLE
from tests.files.conftest import ftp_connection, server_secrets, sftp_connection


@pytest.fixture(params=["folder", "sftp", "ftp"])
def store_on(request, tmp_path, settings):
    """(open a store of the connection, the folder on disk the server serves)."""
    kind = request.param
    if kind == "folder":
        root = tmp_path / "folder-root"
        root.mkdir()
        settings.DATAHUB_FILE_ROOTS = [str(tmp_path)]
        conn, secrets = {"type": "FOLDER", "root": str(root)}, {}
    elif kind == "sftp":
        server = request.getfixturevalue("sftp_server")
        root, conn, secrets = server.root, sftp_connection(server), server_secrets(sftp=server)
    else:
        server = request.getfixturevalue("ftp_server")
        root, conn, secrets = server.root, ftp_connection(server), server_secrets(ftp=server)

    def opener(**extra):
        return open_store("files", {"files": {**conn, **extra}}.__getitem__, secrets.__getitem__)

    return opener, root


def test_it_lists_stats_reads_and_writes_the_same_way_on_every_kind(store_on):
    opener, root = store_on
    (root / "a.csv").write_bytes(b"sku\nA-1\n")
    (root / "b.json").write_bytes(b"[]")
    (root / ".hidden.csv").write_bytes(b"x")
    (root / "sub").mkdir()
    (root / "sub" / "c.csv").write_bytes(b"sku\nC-1\nC-2\n")
    os.utime(root / "a.csv", (1_700_000_000, 1_700_000_000))
    with opener() as store:
        assert [f.path for f in store.list(".", "*.csv")] == ["a.csv"]
        assert [f.path for f in store.list(".", "*.csv", recursive=True)] == ["a.csv", "sub/c.csv"]
        assert [f.path for f in store.list("sub")] == ["sub/c.csv"]
        info = store.stat("a.csv")
        assert (info.path, info.size, int(info.mtime)) == ("a.csv", 8, 1_700_000_000)
        with store.open_read("sub/c.csv") as stream:
            assert stream.read() == b"sku\nC-1\nC-2\n"
        with store.open_read("/a.csv") as stream:  # a leading / is the connection's root
            assert stream.read() == b"sku\nA-1\n"
        store.write("out/deep/x.csv", io.BytesIO(b"first"))
        store.write("out/deep/x.csv", io.BytesIO(b"second"))  # replaces it
        assert [f.path for f in store.list("out", recursive=True)] == ["out/deep/x.csv"]
    assert (root / "out" / "deep" / "x.csv").read_bytes() == b"second"
    assert sorted(p.name for p in (root / "out" / "deep").iterdir()) == ["x.csv"]  # no temporary file left


@pytest.mark.parametrize("path", ["../secret.txt", "in/../../secret.txt", "..", "a\\..\\b", "a\x00b"])
def test_no_path_can_leave_the_connection_root(store_on, path):
    opener, root = store_on
    (root.parent / "secret.txt").write_text("outside")
    with opener() as store:
        for action in (lambda: store.stat(path), lambda: store.open_read(path),
                       lambda: store.write(path, io.BytesIO(b"x")), lambda: store.list(path)):
            with pytest.raises(FileStoreError) as caught:
                action()
            assert "connection 'files'" in str(caught.value)
    assert (root.parent / "secret.txt").read_text() == "outside"


def test_a_missing_folder_or_file_is_named(store_on):
    opener, _ = store_on
    with opener() as store:
        with pytest.raises(FileStoreError) as caught:
            store.list("no-such-folder")
        assert caught.value.kind == NOT_FOUND and "no-such-folder" in str(caught.value)
        assert "connection 'files'" in str(caught.value) and not caught.value.retryable
        with pytest.raises(FileStoreError) as caught:
            store.stat("missing.csv")
        assert caught.value.kind == NOT_FOUND and "missing.csv" in str(caught.value)
        with pytest.raises(FileStoreError):
            store.open_read("missing.csv").read()


@pytest.mark.parametrize("kind", ["sftp", "ftp"])
def test_bad_credentials_say_authentication_failed_and_name_the_connection(request, kind):
    server = request.getfixturevalue(f"{kind}_server")
    conn = sftp_connection(server) if kind == "sftp" else ftp_connection(server)
    with pytest.raises(FileStoreError) as caught:
        open_store("partner", {"partner": conn}.__getitem__, lambda code: "wrong-password")
    message = str(caught.value)
    assert caught.value.kind == AUTH_FAILED and not caught.value.retryable
    assert message.startswith(f"connection 'partner' ({kind.upper()} {server.user}@127.0.0.1:{server.port})")
    assert f"authentication failed for user '{server.user}'" in message and "wrong-password" not in message


def test_sftp_logs_in_with_a_private_key_from_a_secret(sftp_server):
    (sftp_server.root / "k.csv").write_bytes(b"k\n1\n")
    conn = sftp_connection(sftp_server, passwordSecretCode=None, privateKeySecretCode="sftp-key")
    with open_store("keyed", {"keyed": conn}.__getitem__, server_secrets(sftp=sftp_server).__getitem__) as store:
        assert [f.path for f in store.list()] == ["k.csv"]
    with pytest.raises(FileStoreError) as caught:
        open_store("keyed", {"keyed": conn}.__getitem__, lambda code: "not a key")
    assert caught.value.kind == AUTH_FAILED and "private key" in str(caught.value)


def test_sftp_refuses_a_server_whose_host_key_is_not_the_configured_one(sftp_server):
    secrets = server_secrets(sftp=sftp_server).__getitem__
    other = "SHA256:" + "A" * 43
    with pytest.raises(FileStoreError) as caught:
        open_store("s", {"s": sftp_connection(sftp_server, hostKey=other)}.__getitem__, secrets)
    assert caught.value.kind == HOST_KEY and sftp_server.host_key in str(caught.value)
    with pytest.raises(FileStoreError) as caught:  # no hostKey at all: refused unless said explicitly
        open_store("s", {"s": sftp_connection(sftp_server, hostKey="")}.__getitem__, secrets)
    assert caught.value.kind == HOST_KEY and "acceptAnyHostKey" in str(caught.value)
    with open_store("s", {"s": sftp_connection(sftp_server, hostKey="", acceptAnyHostKey=True)}.__getitem__,
                    secrets) as store:
        assert store.list() == []


@pytest.mark.parametrize("kind", ["SFTP", "FTP"])
def test_an_unreachable_host_is_a_retryable_error_naming_the_connection(kind):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conn = {"type": kind, "host": "127.0.0.1", "port": port, "username": "u", "passwordSecretCode": "p",
            "hostKey": "SHA256:x", "timeoutSec": 3}
    with pytest.raises(FileStoreError) as caught:
        open_store("gone", {"gone": conn}.__getitem__, lambda code: "pw")
    assert caught.value.kind == UNREACHABLE and caught.value.retryable
    assert str(caught.value).startswith(f"connection 'gone' ({kind} u@127.0.0.1:{port}): cannot reach the host")


def test_ftp_without_write_permission_says_so(ftp_server):
    conn = ftp_connection(ftp_server, username="reader")
    with open_store("ro", {"ro": conn}.__getitem__, lambda code: "reader-secret") as store:
        with pytest.raises(FileStoreError) as caught:
            store.write("x.csv", io.BytesIO(b"x"))
    assert "permission denied" in str(caught.value) and "x.csv" in str(caught.value)
    assert not (ftp_server.root / "x.csv").exists()


def test_a_folder_connection_must_stay_inside_the_allowed_folders(tmp_path, settings):
    (tmp_path / "allowed").mkdir()
    (tmp_path / "elsewhere").mkdir()
    settings.DATAHUB_FILE_ROOTS = [str(tmp_path / "allowed")]
    with pytest.raises(FileStoreError) as caught:
        open_store("f", {"f": {"type": "FOLDER", "root": str(tmp_path / "elsewhere")}}.__getitem__, None)
    assert caught.value.kind == PERMISSION_DENIED and "DATAHUB_FILE_ROOTS" in str(caught.value)
    root = tmp_path / "allowed"
    (root / "link.csv").symlink_to(tmp_path / "elsewhere" / "target.csv")
    (tmp_path / "elsewhere" / "target.csv").write_text("outside")
    with open_store("f", {"f": {"type": "FOLDER", "root": str(root)}}.__getitem__, None) as store:
        assert store.list() == []  # the symlink out is not listed
        with pytest.raises(FileStoreError) as caught:
            store.open_read("link.csv")
        assert caught.value.kind == PERMISSION_DENIED


def test_only_file_connections_open_a_store():
    with pytest.raises(ConfigError) as caught:
        open_store("api", {"api": {"type": "HTTP", "baseUrl": "https://x"}}.__getitem__, None)
    assert "connection 'api' is a HTTP connection; files need one of FOLDER, SFTP, FTP" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        open_store("s", {"s": {"type": "SFTP", "host": "h", "username": "u", "passwordSecretCode": "nope",
                               "acceptAnyHostKey": True}}.__getitem__,
                   lambda code: (_ for _ in ()).throw(ConfigError(f"unknown secret '{code}'")))
    assert str(caught.value) == "connection 's': unknown secret 'nope'" and caught.value.field == "connectionCode"


def test_ftps_checks_the_servers_certificate_and_encrypts_both_channels(ftps_server):
    (ftps_server.root / "a.csv").write_bytes(b"sku\nA-1\n")
    secrets = server_secrets(ftp=ftps_server).__getitem__
    with pytest.raises(FileStoreError) as caught:  # self-signed: not in the system's trust store
        open_store("t", {"t": ftp_connection(ftps_server, tls=True)}.__getitem__, secrets)
    assert caught.value.kind == HOST_KEY and "TLS certificate is not trusted" in str(caught.value)
    assert str(caught.value).startswith("connection 't' (FTPS ftpuser@127.0.0.1:")
    trusted = ftp_connection(ftps_server, tls=True, tlsCaCertificate=ftps_server.certificate)
    with open_store("t", {"t": trusted}.__getitem__, secrets) as store:
        assert [f.path for f in store.list()] == ["a.csv"]
        with store.open_read("a.csv") as stream:
            assert stream.read() == b"sku\nA-1\n"
        store.write("out/b.csv", io.BytesIO(b"over tls"))
    assert (ftps_server.root / "out" / "b.csv").read_bytes() == b"over tls"
    with pytest.raises(FileStoreError) as caught:  # plain FTP to a server that requires TLS
        open_store("t", {"t": ftp_connection(ftps_server)}.__getitem__, secrets)
    assert caught.value.kind == AUTH_FAILED and "TLS" in str(caught.value)


def test_an_ftp_server_without_mlsd_is_listed_with_nlst_size_and_mdtm(old_ftp_server):
    root = old_ftp_server.root
    (root / "in" / "deep").mkdir(parents=True)
    (root / "in" / "a.csv").write_bytes(b"12345")
    (root / "in" / "deep" / "b.csv").write_bytes(b"1")
    os.utime(root / "in" / "a.csv", (1_700_000_000, 1_700_000_000))
    conn = ftp_connection(old_ftp_server)
    with open_store("old", {"old": conn}.__getitem__, server_secrets(ftp=old_ftp_server).__getitem__) as store:
        found = store.list("in", "*.csv", recursive=True)
        assert [(f.path, f.size) for f in found] == [("in/a.csv", 5), ("in/deep/b.csv", 1)]
        assert found[0].mtime == 1_700_000_000 and not store._mlsd
        assert [f.path for f in store.list("in")] == ["in/a.csv"]


def test_sftp_says_permission_denied(sftp_server):
    (sftp_server.root / "private").mkdir()
    (sftp_server.root / "private-orders.csv").write_bytes(b"x")
    conn = sftp_connection(sftp_server)
    with open_store("s", {"s": conn}.__getitem__, server_secrets(sftp=sftp_server).__getitem__) as store:
        with pytest.raises(FileStoreError) as caught:
            store.open_read("private-orders.csv")
        assert caught.value.kind == PERMISSION_DENIED
        assert str(caught.value).endswith("permission denied reading private-orders.csv")
        with pytest.raises(FileStoreError) as caught:
            store.list("private")
        assert caught.value.kind == PERMISSION_DENIED and "listing private" in str(caught.value)
        with pytest.raises(FileStoreError) as caught:
            store.write("private/x.csv", io.BytesIO(b"x"))
        assert caught.value.kind == PERMISSION_DENIED and "x.csv" in str(caught.value)

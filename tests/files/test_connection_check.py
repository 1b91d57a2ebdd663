"""Testing a file connection from the connections page: a real login and listing, or why not."""

from pipelines.connection_checks import check
from tests.files.conftest import ftp_connection, server_secrets, sftp_connection


def test_it_logs_in_to_sftp_and_ftp_and_lists_the_root(sftp_server, ftp_server):
    (sftp_server.root / "a.csv").write_text("x")
    result = check({**sftp_connection(sftp_server), "code": "s"}, secret=server_secrets(sftp=sftp_server).__getitem__,
                   http=None)
    assert result.ok and result.message.endswith("logged in and listed the root (1 files)")
    result = check({**ftp_connection(ftp_server), "code": "f"}, secret=server_secrets(ftp=ftp_server).__getitem__,
                   http=None)
    assert result.ok and result.message.startswith(f"connection 'f' (FTP {ftp_server.user}@127.0.0.1:")


def test_it_says_why_a_file_connection_fails_without_showing_the_password(ftp_server):
    result = check({**ftp_connection(ftp_server), "code": "f"}, secret=lambda code: "Wrong-Pa55word", http=None)
    assert not result.ok
    assert "authentication failed for user 'ftpuser'" in result.message and "Wrong-Pa55word" not in result.message

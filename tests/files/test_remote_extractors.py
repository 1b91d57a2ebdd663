"""The csv/json/xml/xlsx extractors reading from connections: a real SFTP server, a real FTP server and a
local folder, through the real executor (connections and secrets resolved as a worker does)."""

import io

import pytest
from openpyxl import Workbook

from pipelines.definition import parse
from runs.engine.buffers import buffer_of
from runs.engine.context import RunOptions
from runs.engine.executor import execute
from runs.engine.store import InMemoryStore
from tests.files.conftest import ftp_connection, server_secrets, sftp_connection, upload

CSV = b"sku,qty\nA-1,2\nB-2,5\n"


def run(config, connections, secrets, adapter="csv", seed=None):
    d = {"steps": [{"key": "read", "type": "EXTRACT", "adapterCode": adapter, "config": config},
                   {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}}]}
    if seed is not None:
        d["steps"].insert(0, {"key": "files", "type": "TRIGGER", "config": {}})
    options = RunOptions(keep_outputs=True, connection=connections.__getitem__, secret=secrets.__getitem__,
                         seed_step="files" if seed is not None else None,
                         seed_records=buffer_of([seed]) if seed is not None else None)
    store = InMemoryStore()
    result = execute(parse(d), store, options)
    return result, store.finished()


@pytest.mark.parametrize("kind", ["sftp", "ftp"])
def test_csv_is_read_from_a_path_and_from_a_glob_on_the_server(request, kind):
    server = request.getfixturevalue(f"{kind}_server")
    conn = sftp_connection(server) if kind == "sftp" else ftp_connection(server)
    connections, secrets = {"partner": conn}, server_secrets(**{kind: server})
    (server.root / "in").mkdir()
    upload(server, kind, "in/2026-01.csv", CSV)
    upload(server, kind, "in/2026-02.csv", b"sku,qty\nC-3,1\n")
    upload(server, kind, "in/readme.txt", b"skip me")
    result, _ = run({"connectionCode": "partner", "path": "in/2026-01.csv"}, connections, secrets)
    assert result.status == "COMPLETED", result.error
    assert result.output("out") == [{"sku": "A-1", "qty": "2"}, {"sku": "B-2", "qty": "5"}]
    result, _ = run({"connectionCode": "partner", "glob": "in/*.csv"}, connections, secrets)
    assert [r["sku"] for r in result.output("out")] == ["A-1", "B-2", "C-3"]


def test_an_extractor_after_a_file_trigger_reads_the_files_it_passes_in(sftp_server):
    upload(sftp_server, "sftp", "orders.ndjson", b'{"id": 1}\n{"id": 2}\n')
    result, _ = run({"connectionCode": "partner"}, {"partner": sftp_connection(sftp_server)},
                    server_secrets(sftp=sftp_server), adapter="json",
                    seed={"path": "orders.ndjson", "connectionCode": "partner", "size": 20})
    assert result.status == "COMPLETED", result.error
    assert result.output("out") == [{"id": 1}, {"id": 2}]
    result, steps = run({"connectionCode": "partner"}, {"partner": sftp_connection(sftp_server)},
                        server_secrets(sftp=sftp_server), adapter="json",
                        seed={"path": "orders.ndjson", "connectionCode": "elsewhere"})
    assert result.status == "FAILED"
    assert "the file 'orders.ndjson' is on connection 'elsewhere', not on 'partner'" in steps["read"].error


def test_xml_and_xlsx_are_read_from_ftp(ftp_server):
    connections, secrets = {"partner": ftp_connection(ftp_server)}, server_secrets(ftp=ftp_server)
    upload(ftp_server, "ftp", "feed.xml", b"<feed><item><sku>X-1</sku></item><item><sku>X-2</sku></item></feed>")
    book = Workbook()
    book.active.append(["sku", "qty"])
    book.active.append(["W-1", 3])
    data = io.BytesIO()
    book.save(data)
    upload(ftp_server, "ftp", "sheet.xlsx", data.getvalue())
    result, _ = run({"connectionCode": "partner", "path": "feed.xml"}, connections, secrets, adapter="xml")
    assert result.output("out") == [{"sku": "X-1"}, {"sku": "X-2"}]
    result, _ = run({"connectionCode": "partner", "path": "sheet.xlsx"}, connections, secrets, adapter="xlsx")
    assert result.output("out") == [{"sku": "W-1", "qty": 3}]


@pytest.mark.parametrize("kind", ["sftp", "ftp"])
def test_an_oversized_file_a_missing_file_and_bad_credentials_fail_the_step_with_the_reason(request, kind,
                                                                                            settings):
    server = request.getfixturevalue(f"{kind}_server")
    conn = sftp_connection(server) if kind == "sftp" else ftp_connection(server)
    connections, secrets = {"partner": conn}, server_secrets(**{kind: server})
    upload(server, kind, "big.csv", CSV)
    settings.DATAHUB_MAX_FILE_BYTES = 10
    result, steps = run({"connectionCode": "partner", "path": "big.csv"}, connections, secrets)
    assert result.status == "FAILED"
    assert "file 'big.csv' on connection 'partner' is 20 bytes, larger than the limit of 10 bytes" in steps["read"].error
    settings.DATAHUB_MAX_FILE_BYTES = 1000
    _, steps = run({"connectionCode": "partner", "path": "nope.csv"}, connections, secrets)
    assert "connection 'partner'" in steps["read"].error and "nope.csv" in steps["read"].error
    _, steps = run({"connectionCode": "partner", "path": "../etc/passwd"}, connections, secrets)
    assert "must not contain '..'" in steps["read"].error
    _, steps = run({"connectionCode": "partner", "path": "big.csv"}, connections,
                   {k: "wrong" for k in secrets})
    assert f"connection 'partner' ({kind.upper()}" in steps["read"].error
    assert "authentication failed" in steps["read"].error


def test_connection_sources_refuse_mixed_or_unusable_configs(tmp_path, settings):
    settings.DATAHUB_FILE_ROOTS = [str(tmp_path)]
    connections = {"local": {"type": "FOLDER", "root": str(tmp_path)}}
    (tmp_path / "a.csv").write_bytes(CSV)
    for config, message in [
        ({"connectionCode": "local", "csvText": "a\n1\n"}, "csvText cannot be given with it"),
        ({"connectionCode": "local", "path": "a.csv", "glob": "*.csv"}, "give path or glob, not both"),
        ({"connectionCode": "local", "glob": "*/x/*.csv"}, "only the last part of glob may hold wildcards"),
        ({"connectionCode": "local", "glob": "*.csv", "resumable": True}, "resumable needs one file"),
        ({"connectionCode": "local"}, "no file to read: give path or glob, or let a FILE trigger start the run"),
    ]:
        _, steps = run(config, connections, {})
        assert message in steps["read"].error, (config, steps["read"].error)
    result, _ = run({"connectionCode": "local", "glob": "*.csv"}, connections, {})
    assert result.output("out") == [{"sku": "A-1", "qty": "2"}, {"sku": "B-2", "qty": "5"}]

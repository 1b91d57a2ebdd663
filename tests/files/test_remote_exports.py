"""File exports and feeds writing to connections: a real SFTP server, a real FTP server, a local folder."""

import csv
import io
import json
from datetime import UTC, datetime

import pytest

from pipelines.definition import parse
from runs.engine.context import RunOptions
from runs.engine.executor import execute
from runs.engine.store import InMemoryStore
from tests.files.conftest import ftp_connection, server_secrets, sftp_connection

NOW = datetime(2026, 3, 9, 14, 5, 7, tzinfo=UTC)
ROWS = [{"sku": "A-1", "name": "=cmd", "qty": 2}, {"sku": "B-2", "name": "Towel", "qty": 5}]


def export(code, config, connections, secrets, step_type="EXPORT", dry_run=False):
    d = {"steps": [{"key": "src", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": ROWS}},
                   {"key": "out", "type": step_type, "adapterCode": code, "config": config}]}
    store = InMemoryStore()
    result = execute(parse(d), store, RunOptions(keep_outputs=True, connection=connections.__getitem__,
                                                 secret=secrets.__getitem__, now=lambda: NOW, dry_run=dry_run))
    return result, store.finished()


@pytest.mark.parametrize("kind", ["sftp", "ftp"])
def test_csv_export_writes_to_the_server(request, kind):
    server = request.getfixturevalue(f"{kind}_server")
    conn = sftp_connection(server) if kind == "sftp" else ftp_connection(server)
    result, steps = export("csvExport", {"connectionCode": "partner", "path": "outgoing/daily",
                                         "filenamePattern": "stock-${date:YYYYMMDD}.csv"},
                           {"partner": conn}, server_secrets(**{kind: server}))
    assert result.status == "COMPLETED", result.error
    written = server.root / "outgoing" / "daily" / "stock-20260309.csv"
    rows = list(csv.DictReader(io.StringIO(written.read_text())))
    assert rows == [{"sku": "A-1", "name": "'=cmd", "qty": "2"}, {"sku": "B-2", "name": "Towel", "qty": "5"}]
    assert sorted(p.name for p in written.parent.iterdir()) == ["stock-20260309.csv"]
    assert "wrote outgoing/daily/stock-20260309.csv on connection 'partner' (2 records)" in steps["out"].warnings


def test_json_export_and_a_feed_write_to_a_local_folder_connection(tmp_path, settings):
    settings.DATAHUB_FILE_ROOTS = [str(tmp_path)]
    connections = {"drop": {"type": "FOLDER", "root": str(tmp_path)}}
    result, _ = export("jsonExport", {"connectionCode": "drop", "filenamePattern": "all.json"}, connections, {})
    assert result.status == "COMPLETED", result.error
    assert json.loads((tmp_path / "all.json").read_text()) == ROWS
    result, _ = export("customFeed", {"connectionCode": "drop", "outputPath": "feeds/feed.json", "format": "JSON",
                                      "fieldMapping": {"id": "sku"}},
                       connections, {}, step_type="FEED")
    assert result.status == "COMPLETED", result.error
    assert json.loads((tmp_path / "feeds" / "feed.json").read_text()) == [{"id": "A-1"}, {"id": "B-2"}]


def test_a_dry_run_writes_nothing_to_the_connection(sftp_server):
    result, _ = export("csvExport", {"connectionCode": "partner", "filenamePattern": "x.csv"},
                       {"partner": sftp_connection(sftp_server)}, server_secrets(sftp=sftp_server), dry_run=True)
    assert result.status == "COMPLETED" and list(sftp_server.root.iterdir()) == []


@pytest.mark.parametrize("kind", ["sftp", "ftp"])
def test_bad_credentials_or_a_path_out_of_the_root_fail_the_step_naming_the_connection(request, kind):
    server = request.getfixturevalue(f"{kind}_server")
    conn = sftp_connection(server) if kind == "sftp" else ftp_connection(server)
    result, steps = export("csvExport", {"connectionCode": "partner", "filenamePattern": "x.csv"},
                           {"partner": conn}, {k: "wrong" for k in server_secrets(**{kind: server})})
    assert result.status == "FAILED"
    assert f"connection 'partner' ({kind.upper()} {server.user}@" in steps["out"].error
    assert "authentication failed" in steps["out"].error
    _, steps = export("csvExport", {"connectionCode": "partner", "path": "../up"}, {"partner": conn},
                      server_secrets(**{kind: server}))
    assert "must not contain '..'" in steps["out"].error
    assert list(server.root.iterdir()) == []

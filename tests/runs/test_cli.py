import json

import pytest
from django.core.management import CommandError, call_command

from pipelines.models import Pipeline
from pipelines.services import save_definition
from runs.models import Run
from tests.fixtures import simple_definition

pytestmark = pytest.mark.django_db(transaction=True)


def cli(*args):
    from io import StringIO

    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_it_runs_a_pipeline_by_code_and_prints_json_with_step_output():
    save_definition(simple_definition())
    report = json.loads(cli("run_pipeline", "simple", "--sync", "--json", "--show-output", "out"))
    assert report["status"] == "COMPLETED"
    steps = {s["key"]: s for s in report["steps"]}
    assert steps["clean"]["recordsIn"] == 2 and steps["clean"]["status"] == "COMPLETED"
    assert steps["out"]["output"] == [{"sku": "a"}, {"sku": "b"}]
    assert "output" not in steps["clean"]
    assert report["runId"] == Run.objects.get().pk


def test_it_runs_a_definition_file(tmp_path):
    path = tmp_path / "from-file.json"
    path.write_text(json.dumps(simple_definition(code="from-file")))
    text = cli("run_pipeline", str(path), "--sync")
    assert "COMPLETED" in text
    assert Pipeline.objects.filter(code="from-file").exists()


def test_it_queues_without_sync():
    save_definition(simple_definition())
    text = cli("run_pipeline", "simple")
    assert "queued" in text
    assert Run.objects.get().status == "PENDING"


def test_it_runs_the_demo_pipelines(settings, tmp_path):
    settings.DATAHUB_SQLITE_DIRS = [str(tmp_path / "sqlite")]
    settings.MEDIA_ROOT = str(tmp_path / "media")
    cli("load_demo")
    for code in ("demo-products", "demo-parallel", "demo-csv-to-sql", "demo-csv-to-feed"):
        report = json.loads(cli("run_pipeline", code, "--sync", "--json"))
        assert report["status"] == "COMPLETED", report
    import sqlite3

    rows = sqlite3.connect(tmp_path / "sqlite" / "demo.sqlite3").execute(
        "SELECT sku, name, price_cents, stock FROM products ORDER BY sku").fetchall()
    assert rows == [("ABC-1", "Garden Chair", 1990, 12), ("ABC-2", "Beach Towel", 950, 0),
                    ("ABC-3", "Lantern LED", 2400, 3)]
    again = json.loads(cli("run_pipeline", "demo-csv-to-sql", "--sync", "--json"))
    assert again["status"] == "COMPLETED"  # an upsert: the second run updates the same rows


def test_it_dry_runs_and_limits():
    save_definition(simple_definition())
    report = json.loads(cli("run_pipeline", "simple", "--sync", "--json", "--dry-run", "--limit", "1"))
    assert report["dryRun"] is True
    assert {s["key"]: s["recordsOut"] for s in report["steps"]}["src"] == 1


def test_it_exports_and_imports(tmp_path):
    save_definition(simple_definition())
    exported = json.loads(cli("export_pipeline", "simple"))
    exported["name"] = "Renamed"
    path = tmp_path / "p.json"
    path.write_text(json.dumps(exported))
    assert "simple: revision 2" in cli("import_pipeline", str(path))
    assert Pipeline.objects.get(code="simple").name == "Renamed"


@pytest.mark.parametrize("args,message", [
    (("run_pipeline", "nope", "--sync"), "no pipeline 'nope'"),
    (("run_pipeline", "simple", "--show-output", "out"), "--show-output needs --sync"),
    (("run_pipeline", "simple", "--sync", "--show-output", "ghost"), "has no step 'ghost'"),
    (("run_pipeline", "simple", "--sync", "--limit", "0"), "--limit must be at least 1"),
    (("run_pipeline", "simple", "--sync", "--revision", "9"), "has no revision 9"),
    (("export_pipeline", "nope"), "no pipeline 'nope'"),
])
def test_it_explains_bad_arguments(args, message):
    save_definition(simple_definition())
    with pytest.raises(CommandError, match=message):
        cli(*args)


def test_it_names_the_line_of_a_broken_json_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "steps": [\n    {"key": "x",}\n  ]\n}')
    with pytest.raises(CommandError, match=r"line 3, column"):
        cli("import_pipeline", str(path))


def test_it_lists_every_problem_of_an_invalid_file(tmp_path):
    d = simple_definition()
    d["steps"][1]["config"]["operators"][0]["op"] = "trimm"
    d["edges"] = [{"from": "src", "to": "ghost"}]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(d))
    with pytest.raises(CommandError) as err:
        cli("import_pipeline", str(path))
    assert "unknown step 'ghost'" in str(err.value)


def test_it_refuses_a_second_active_run():
    save_definition(simple_definition())
    cli("run_pipeline", "simple")
    with pytest.raises(CommandError, match="already has an active run"):
        cli("run_pipeline", "simple", "--sync")

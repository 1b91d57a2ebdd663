import functools
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.custom import custom_operator, register_operator
from pipelines.definition import parse, problems_of
from pipelines.registry import RegistrationError
from runs.engine.context import RunOptions
from runs.engine.executor import execute
from runs.engine.store import InMemoryStore

ROOT = Path(__file__).resolve().parents[2]


def double(records, args, helpers):
    out = []
    for r in records:
        if r.get("n") == "boom":
            raise ValueError(f"cannot double {r['n']!r}")
        out.append({**r, "n": r["n"] * args.get("factor", 2)})
    return out


def pipeline(records, args=None):
    return {"steps": [
        {"key": "src", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": records}},
        {"key": "t", "type": "TRANSFORM", "config": {"operators": [{"op": "double", "args": args or {}}]}},
        {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}},
    ]}


SCHEMA = {"type": "object", "properties": {"factor": {"type": "integer", "minimum": 1}}, "additionalProperties": False}


def test_it_runs_a_registered_operator(registries):
    register_operator(code="double", name="Double", category="math", schema=SCHEMA, apply=double)
    store = InMemoryStore()
    result = execute(parse(pipeline([{"n": 1}, {"n": 2}], {"factor": 3})), store, RunOptions(keep_outputs=True))
    assert result.output("out") == [{"n": 3}, {"n": 6}]
    entry = registries.operators.get("double")
    assert (entry.category, entry.builtin, entry.name) == ("math", False, "Double")


def test_it_shows_no_description_when_none_was_given(registries):
    """Not a docstring picked up from what was passed (a functools.partial's is partial's own)."""
    register_operator(code="double", schema=SCHEMA, apply=functools.partial(double))
    register_operator(code="described", schema=SCHEMA, apply=double, description="Doubles n")
    assert registries.operators.get("double").description == ""
    assert registries.operators.get("described").description == "Doubles n"


def test_it_registers_with_the_decorator(registries):
    @custom_operator(code="double", schema=SCHEMA)
    def _double(records, args, helpers):
        return double(records, args, helpers)

    assert "double" in registries.operators


def test_it_fails_only_the_records_the_operator_raises_on(registries):
    register_operator(code="double", schema=SCHEMA, apply=double)
    records = [{"n": i} for i in range(50)]
    records[7] = {"n": "boom"}
    records[31] = {"n": "boom"}
    store = InMemoryStore()
    result = execute(parse(pipeline(records)), store, RunOptions(keep_outputs=True))
    assert result.status == "COMPLETED"
    assert [r["n"] for r in result.output("out")] == [i * 2 for i in range(50) if i not in (7, 31)]
    errors = store.record_errors()
    assert [(e.record, e.message) for e in errors] == [({"n": "boom"}, "cannot double 'boom'")] * 2


def test_it_validates_args_against_the_schema_before_the_run(registries):
    register_operator(code="double", schema=SCHEMA, apply=double)
    problems = problems_of(pipeline([{"n": 1}], {"factor": 0}))
    assert [(p.step, p.field) for p in problems] == [("t", "config.operators[0].args.factor")]


def test_it_refuses_a_clash_with_a_builtin_unless_replacing(registries):
    with pytest.raises(RegistrationError, match="'trim' is already built-in"):
        register_operator(code="trim", apply=double)
    register_operator(code="trim", apply=double, replace=True)
    assert registries.operators.get("trim").builtin is False


@pytest.mark.parametrize("kwargs,message", [
    ({"code": "", "apply": double}, "must start with a letter"),
    ({"code": "two words", "apply": double}, "must start with a letter"),
    ({"code": "x", "apply": "not callable"}, "apply must be callable"),
    ({"code": "x", "apply": lambda records: records}, "must take \\(records, args, helpers\\)"),
    ({"code": "x", "apply": double, "schema": {"type": "object", "properties": {"a": {"type": "nope"}}}},
     "invalid JSON schema"),
])
def test_it_refuses_broken_registrations(registries, kwargs, message):
    with pytest.raises(RegistrationError, match=message):
        register_operator(**kwargs)


def test_it_loads_operators_from_settings_modules(registries, tmp_path, monkeypatch):
    module = tmp_path / "my_plugin_mod.py"
    module.write_text(
        "from pipelines.custom import register_operator\n"
        "register_operator(code='fromSettings', apply=lambda records, args, helpers: records)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    from pipelines.plugins import load_plugins

    load_plugins(["my_plugin_mod"], entry_point_group=None)
    assert "fromSettings" in registries.operators


def test_it_loads_an_installed_package_through_its_entry_point(tmp_path):
    target = tmp_path / "site"
    source = tmp_path / "src"  # a copy: building writes build/ next to the sources
    shutil.copytree(ROOT / "examples" / "datahub-example-plugin", source)
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target",
         str(target), str(source)],
        capture_output=True, text=True,
    )
    assert install.returncode == 0, install.stderr
    script = (
        "from pipelines.plugins import load_plugins\n"
        "load_plugins(['runs.engine.handlers'])\n"
        "from pipelines.definition import parse\n"
        "from runs.engine.executor import execute\n"
        "from runs.engine.store import InMemoryStore\n"
        "from runs.engine.context import RunOptions\n"
        "d = {'steps': [{'key': 's', 'type': 'EXTRACT', 'adapterCode': 'inMemory', 'config': {'data': "
        "[{'net': 10}, {'net': 'x'}]}}, {'key': 't', 'type': 'TRANSFORM', 'config': {'operators': "
        "[{'op': 'addVat', 'args': {'rate': 0.2}}]}}]}\n"
        "store = InMemoryStore()\n"
        "r = execute(parse(d), store, RunOptions(keep_outputs=True))\n"
        "import json; print(json.dumps([r.output('t'), [e.message for e in store.record_errors()]]))\n"
    )
    env = {"PYTHONPATH": f"{target}:{ROOT}", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=str(ROOT))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [[{"net": 10, "gross": 12.0}], ["net must be a number, got 'x'"]]

"""The GATE step on its own, without Django: its config is checked when a definition is parsed, a dry run
passes through, and a pause says what the gate needs. The module imports no Django."""

import subprocess
import sys

import pytest

from gates.step import GATE_SCHEMA, GateHandler
from pipelines import registry
from pipelines.definition import parse
from pipelines.errors import DefinitionError
from pipelines.plugins import load_plugins
from runs.engine.context import RunOptions
from runs.engine.executor import execute
from runs.engine.store import InMemoryStore

load_plugins(["runs.engine.handlers", "gates.step"], entry_point_group=None)


def definition(**config):
    return {"steps": [
        {"key": "src", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": [{"n": 1}, {"n": 2}]}},
        {"key": "gate", "type": "GATE", "config": config},
        {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}},
    ]}


def problems(**config):
    try:
        parse(definition(**config))
    except DefinitionError as exc:
        return {(p.field, p.message.split(";")[0][:40]) for p in exc.problems}
    return set()


def test_it_is_registered_with_its_schema():
    entry = registry.step_types.get("GATE")
    assert isinstance(entry.impl, GateHandler) and entry.schema is GATE_SCHEMA
    assert "below errorThresholdPercent" in entry.schema["description"]


@pytest.mark.parametrize("config, field", [
    ({}, "config"),
    ({"approvalType": "SOMETIMES"}, "config.approvalType"),
    ({"approvalType": "TIMEOUT"}, "config"),
    ({"approvalType": "TIMEOUT", "timeoutSeconds": 0}, "config.timeoutSeconds"),
    ({"approvalType": "TIMEOUT", "timeoutSeconds": 31_536_001}, "config.timeoutSeconds"),
    ({"approvalType": "TIMEOUT", "timeoutSeconds": 1.5}, "config.timeoutSeconds"),
    ({"approvalType": "THRESHOLD"}, "config"),
    ({"approvalType": "THRESHOLD", "errorThresholdPercent": 101}, "config.errorThresholdPercent"),
    ({"approvalType": "MANUAL", "notifyWebhook": "ftp://example.com/x"}, "config.notifyWebhook"),
    ({"approvalType": "MANUAL", "notifyWebhook": "https://" + "a" * 2048}, "config.notifyWebhook"),
    ({"approvalType": "MANUAL", "notifyEmail": "not an address"}, "config.notifyEmail"),
    ({"approvalType": "MANUAL", "notifyEmail": ["a@example.com", "nope"]}, "config.notifyEmail.1"),
    ({"approvalType": "MANUAL", "previewCount": 101}, "config.previewCount"),
    ({"approvalType": "MANUAL", "previewcount": 5}, "config"),
])
def test_it_refuses_bad_config(config, field):
    assert field in {f for f, _ in problems(**config)}


def test_it_accepts_good_config():
    assert problems(approvalType="MANUAL") == set()
    assert problems(approvalType="TIMEOUT", timeoutSeconds=31_536_000, previewCount=100) == set()
    assert problems(approvalType="THRESHOLD", errorThresholdPercent=2.5, notifyEmail=["a@example.com"],
                    notifyWebhook="https://hooks.example.com/gate?x=1") == set()


def test_a_dry_run_passes_through_with_a_warning():
    store = InMemoryStore()
    result = execute(parse(definition(approvalType="MANUAL")), store, RunOptions(dry_run=True, keep_outputs=True))
    assert result.status == "COMPLETED"
    assert result.output("out") == [{"n": 1}, {"n": 2}]
    assert "dry run" in result.steps["gate"].warnings[0]


def test_a_pause_tells_what_the_gate_needs():
    result = execute(parse(definition(approvalType="TIMEOUT", timeoutSeconds=30, previewCount=3,
                                      notifyEmail="ops@example.com")), InMemoryStore(), RunOptions())
    assert result.status == "PAUSED" and result.statuses["out"] == "PENDING"
    assert result.pauses["gate"] == {
        "approvalType": "TIMEOUT", "timeoutSeconds": 30, "previewCount": 3, "notifyWebhook": None,
        "notifyEmail": ["ops@example.com"], "errorRatePercent": 0.0, "errorThresholdPercent": None,
        "extracted": 2, "errors": 0, "recordCount": 2,
    }
    assert result.output("gate") == [{"n": 1}, {"n": 2}]  # held, for the resume


def test_it_imports_no_django():
    code = "import sys; import gates.step; assert 'django' not in sys.modules, sorted(m for m in sys.modules if 'django' in m)"
    env = {"PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]))
    assert proc.returncode == 0, proc.stderr

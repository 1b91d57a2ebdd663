"""/api/adapters/: every registered operator, extractor, loader, exporter, feed, sink and step type with
its JSON schema, built-in and custom."""

import pytest

from pipelines import registry
from pipelines.custom import register_operator


@pytest.fixture
def registries():
    snap = registry.snapshot_all()
    yield registry
    registry.restore_all(snap)


def test_it_lists_every_kind_with_its_schema(as_bob):
    body = as_bob.get("/api/adapters/").json()
    listed = {(a["kind"], a["code"]) for a in body}
    for kind, reg in registry.ALL.items():
        assert {(kind, code) for code in reg.codes()} <= listed
    for kind in ("operator", "extractor", "loader", "exporter", "feed", "sink", "step type"):
        assert any(k == kind for k, _ in listed), kind
    trim = next(a for a in body if a["kind"] == "operator" and a["code"] == "trim")
    assert trim["builtin"] is True and trim["schema"]["type"] == "object"
    memory = next(a for a in body if a["kind"] == "extractor" and a["code"] == "inMemory")
    assert "data" in memory["schema"].get("properties", {})
    assert {a["code"] for a in body if a["kind"] == "step type"} >= {"EXTRACT", "TRANSFORM", "LOAD"}


def test_it_lists_custom_operators_too(registries, as_bob):
    register_operator(code="addVat", name="Add VAT", category="pricing", description="gross = net * (1 + rate)",
                      schema={"type": "object", "properties": {"rate": {"type": "number"}}},
                      apply=lambda records, args, helpers: records)
    body = as_bob.get("/api/adapters/", {"kind": "operator"}).json()
    vat = next(a for a in body if a["code"] == "addVat")
    assert vat["builtin"] is False and vat["name"] == "Add VAT" and vat["category"] == "pricing"
    assert vat["schema"]["properties"]["rate"] == {"type": "number"}
    assert {a["kind"] for a in body} == {"operator"}


def test_it_refuses_an_unknown_kind(as_bob):
    response = as_bob.get("/api/adapters/", {"kind": "widget"})
    assert response.status_code == 400
    assert response.json()["problems"][0]["field"] == "kind"

"""A finished run keeps a bounded sample of what it put out (runs.output_sample): the first records of each
final output (a step no edge leaves, a ROUTE branch no edge takes), with totals, scrubbed of secrets."""

import pytest

from pipelines.definition import parse
from pipelines.redaction import Redactor
from pipelines.services import save_definition
from runs import output_sample, services
from runs.engine.buffers import buffer_of
from runs.models import Run
from tests.fixtures import simple_definition

pytestmark = pytest.mark.django_db


def run_of(definition, **kw):
    return services.run_now(services.create_run(save_definition(definition)), **kw)


def routed(code="routed"):
    """src -> route: 'big' goes to a sink; the 'default' branch goes nowhere (a final output too)."""
    d = simple_definition(code, records=[{"n": 5}, {"n": 50}, {"n": 500}])
    d["steps"] = [d["steps"][0],
                  {"key": "route", "type": "ROUTE", "config": {"branches": [
                      {"name": "big", "when": [{"field": "n", "cmp": "gt", "value": 10}]}]}},
                  {"key": "big-out", "type": "SINK", "adapterCode": "records", "config": {}}]
    d["edges"] = [{"from": "src", "to": "route"}, {"from": "route", "to": "big-out", "branch": "big"}]
    return d


def test_it_keeps_the_final_steps_records_with_the_run():
    outcome = run_of(simple_definition("simple"))
    assert outcome.run.status == "COMPLETED"
    assert Run.objects.get(pk=outcome.run.pk).output_sample == [
        {"step": "out", "branch": None, "total": 2, "records": [{"sku": "a"}, {"sku": "b"}], "columns": ["sku"],
         "truncated": False}]
    # kept only for the sample: closed, not handed to a caller that did not ask for outputs
    assert "out" not in outcome.result.outputs


def test_it_still_hands_the_outputs_to_a_caller_that_asked():
    outcome = run_of(simple_definition("simple"), keep_outputs=True)
    assert outcome.result.output("out") == [{"sku": "a"}, {"sku": "b"}]
    assert outcome.run.output_sample[0]["records"] == [{"sku": "a"}, {"sku": "b"}]


def test_it_samples_each_route_branch_no_edge_takes():
    run = run_of(routed()).run
    sample = {(e["step"], e["branch"]): e for e in Run.objects.get(pk=run.pk).output_sample}
    assert set(sample) == {("route", "default"), ("big-out", None)}  # 'big' is read by big-out
    assert sample[("route", "default")]["records"] == [{"n": 5}]
    assert sample[("big-out", None)]["records"] == [{"n": 50}, {"n": 500}]


def test_final_outputs_reads_the_graph():
    assert output_sample.final_outputs(parse(simple_definition("simple"))) == {"out": frozenset()}
    assert output_sample.final_outputs(parse(routed())) == {"route": frozenset({"big"}), "big-out": frozenset()}


def test_it_bounds_the_sample_per_output_per_record_and_in_all():
    records = [{"n": n} for n in range(250)]
    run = run_of(simple_definition("many", records=records)).run
    entry = Run.objects.get(pk=run.pk).output_sample[0]
    assert (entry["total"], len(entry["records"]), entry["truncated"]) == (250, 100, True)
    assert entry["records"][:2] == [{"n": 0}, {"n": 1}]

    huge = {"sku": "x" * (output_sample.RECORD_BYTES + 1)}
    outputs = {"out": {None: buffer_of([{"sku": "small"}, huge])}}
    [entry] = output_sample.take(outputs, {"out": frozenset()})
    assert entry["records"][0] == {"sku": "small"}
    assert entry["records"][1] == {"_note": f"a record of {output_sample.RECORD_BYTES + 12:,} bytes, too large to keep"}

    big = [{"sku": "y" * 10_000} for _ in range(100)]  # 1 MB across outputs: the budget stops at 512 KiB
    outputs = {f"s{n}": {None: buffer_of(big)} for n in range(3)}
    entries = output_sample.take(outputs, {f"s{n}": frozenset() for n in range(3)})
    kept = sum(len(e["records"]) for e in entries)
    assert 40 <= kept <= 53 and [e["total"] for e in entries] == [100, 100, 100]
    assert entries[2]["records"] == [] and entries[2]["truncated"]


def test_it_scrubs_secrets_and_keeps_values_json_cannot_hold():
    from datetime import date
    from decimal import Decimal

    redactor = Redactor()
    redactor.add("s3cr3t-token-value")
    outputs = {"out": {None: buffer_of([{"auth": "Bearer s3cr3t-token-value", "on": date(2026, 12, 4),
                                          "price": Decimal("1.50")}])}}
    [entry] = output_sample.take(outputs, {"out": frozenset()}, redactor.scrub_value)
    record = entry["records"][0]
    assert "s3cr3t" not in record["auth"] and record["on"] == "2026-12-04" and record["price"] == "1.50"


def test_a_resumed_run_keeps_what_an_earlier_part_put_out():
    earlier = [{"step": "a", "branch": None, "total": 1, "records": [1], "truncated": False},
               {"step": "b", "branch": None, "total": 1, "records": [2], "truncated": False}]
    now = [{"step": "b", "branch": None, "total": 3, "records": [3], "truncated": True}]
    assert output_sample.merged(earlier, now, ["a", "b"]) == [earlier[0], now[0]]

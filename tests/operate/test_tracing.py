"""OpenTelemetry export: with DATAHUB_OTLP_ENDPOINT set, a run sends a trace (a run span, a span per step
with the records counts) over OTLP/HTTP to a real local receiver; without it nothing is sent."""

import logging
import sys

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from datahub_project.checks import check_trace_export
from pipelines.services import save_definition
from runs import services, tracing
from tests.fixtures import simple_definition

pytestmark = pytest.mark.django_db


def spans_received(httpserver) -> list:
    out = []
    for request, _ in httpserver.log:
        assert request.path == "/v1/traces" and request.headers["Content-Type"] == "application/x-protobuf"
        body = ExportTraceServiceRequest.FromString(request.get_data())
        for resource in body.resource_spans:
            for scope in resource.scope_spans:
                out.extend(scope.spans)
    return out


def attributes(span) -> dict:
    return {a.key: (a.value.int_value if a.value.HasField("int_value") else a.value.string_value or
                    a.value.bool_value) for a in span.attributes}


def run(definition):
    return services.run_now(services.create_run(save_definition(definition))).run


def test_a_run_is_traced_with_its_steps(settings, httpserver):
    httpserver.expect_request("/v1/traces", method="POST").respond_with_data(b"", content_type="application/x-protobuf")
    settings.DATAHUB_OTLP_ENDPOINT = httpserver.url_for("/v1/traces")
    d = simple_definition("traced", records=[{"sku": " a "}, {"sku": None}, {"sku": "c"}])
    d["steps"].insert(2, {"key": "check", "type": "VALIDATE", "config": {"fields": {"sku": {"required": True}}}})
    r = run(d)
    assert tracing.flush()
    spans = {s.name: s for s in spans_received(httpserver)}
    assert set(spans) == {"run traced", "step src", "step clean", "step check", "step out"}
    root = spans["run traced"]
    assert attributes(root) == {"datahub.run.id": r.pk, "datahub.pipeline.code": "traced",
                                     "datahub.run.trigger": "manual", "datahub.run.dry_run": False,
                                     "datahub.run.status": "COMPLETED"}
    check = spans["step check"]
    assert check.parent_span_id == root.span_id and check.trace_id == root.trace_id
    assert attributes(check)["datahub.records.in"] == 3 and attributes(check)["datahub.records.out"] == 2
    assert attributes(check)["datahub.records.error"] == 1 and attributes(check)["datahub.step.status"] == "COMPLETED"
    assert root.start_time_unix_nano <= check.start_time_unix_nano <= check.end_time_unix_nano <= root.end_time_unix_nano


def test_a_failed_step_marks_its_span_and_the_run(settings, httpserver):
    httpserver.expect_request("/v1/traces", method="POST").respond_with_data(b"")
    settings.DATAHUB_OTLP_ENDPOINT = httpserver.url_for("/v1/traces")
    settings.DATAHUB_HTTP_ALLOW = []
    d = simple_definition("failing")
    d["steps"][0] = {"key": "src", "type": "EXTRACT", "adapterCode": "httpApi",
                     "config": {"url": "http://127.0.0.1:1/items"}}
    assert run(d).status == "FAILED"
    tracing.flush()
    spans = {s.name: s for s in spans_received(httpserver)}
    assert spans["step src"].status.code == 2 and "127.0.0.1" in spans["step src"].status.message  # ERROR
    assert spans["run failing"].status.code == 2


def test_nothing_is_sent_without_an_endpoint(settings, httpserver):
    settings.DATAHUB_OTLP_ENDPOINT = ""
    run(simple_definition("quiet"))
    tracing.flush()
    assert httpserver.log == []


def test_a_bad_endpoint_is_a_check_error_and_runs_go_on_without_traces(settings, caplog):
    settings.DATAHUB_OTLP_ENDPOINT = "collector:4318/v1/traces"
    [error] = check_trace_export(None)
    assert error.id == "datahub.E030"
    assert "DATAHUB_OTLP_ENDPOINT 'collector:4318/v1/traces' is not an http(s) URL with a host" in error.msg
    with caplog.at_level(logging.ERROR, logger="runs.tracing"):
        assert run(simple_definition("untraced")).status == "COMPLETED"
    assert "traces are not exported: DATAHUB_OTLP_ENDPOINT 'collector:4318/v1/traces'" in caplog.text


def test_without_the_sdk_the_check_says_what_to_install_and_runs_go_on(settings, monkeypatch, caplog):
    settings.DATAHUB_OTLP_ENDPOINT = "http://127.0.0.1:9/no-sdk/v1/traces"
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)  # what an import finds when not installed
    [error] = check_trace_export(None)
    assert error.id == "datahub.E030" and "pip install 'datahub[otel]'" in error.msg
    with caplog.at_level(logging.ERROR, logger="runs.tracing"):
        assert run(simple_definition("no-sdk")).status == "COMPLETED"
    assert "the OpenTelemetry SDK is not installed" in caplog.text


def test_the_check_passes_when_export_is_off_or_can_work(settings, httpserver):
    settings.DATAHUB_OTLP_ENDPOINT = ""
    assert check_trace_export(None) == []
    settings.DATAHUB_OTLP_ENDPOINT = httpserver.url_for("/v1/traces")
    assert check_trace_export(None) == []

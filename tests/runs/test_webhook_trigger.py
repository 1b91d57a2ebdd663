"""POST /hooks/<code>/: authentication, bodies, idempotency keys, and every way a request is refused."""

import base64
import hashlib
import hmac
import json

import pytest
from django.test import Client

from pipelines.models import Pipeline, Secret
from pipelines.secrets import set_secret_value
from pipelines.services import save_definition
from runs import services
from runs.models import Run, RunStatus, WebhookDelivery

pytestmark = pytest.mark.django_db


def secret(code, value):
    s = Secret(code=code)
    set_secret_value(s, value)
    s.save()


def pipeline(code="orders", allow_concurrent=False, **trigger):
    d = {
        "version": 1, "code": code, "name": code,
        "steps": [
            {"key": "hook", "type": "TRIGGER", "config": {"type": "WEBHOOK", **trigger}},
            {"key": "nightly", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": [{"sku": "x"}]}},
            {"key": "clean", "type": "TRANSFORM", "config": {"operators": [{"op": "trim", "args": {"path": "sku"}}]}},
            {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}},
        ],
        "edges": [{"from": "hook", "to": "clean"}, {"from": "nightly", "to": "clean"}, {"from": "clean", "to": "out"}],
        "context": {"allowConcurrentRuns": allow_concurrent},
    }
    p = save_definition(d)
    if allow_concurrent:
        Pipeline.objects.filter(pk=p.pk).update(allow_concurrent_runs=True)
    return p


def api_key_pipeline(**extra):
    secret("orders-key", "k-123")
    return pipeline(authentication="API_KEY", apiKeySecretCode="orders-key", **extra)


def post(path, body=b"", **headers):
    client = headers.pop("client", None) or Client()
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(path, data=data, content_type="application/json", headers=headers)


def test_it_starts_a_seeded_run_with_the_body_and_answers_202():
    api_key_pipeline()
    response = post("/hooks/orders/", [{"sku": " a "}, {"sku": "b"}], **{"x-api-key": "k-123"})
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] is True and body["duplicate"] is False
    run = Run.objects.get(pk=body["runId"])
    assert (run.trigger, run.seed_step, run.seed_records) == ("webhook", "hook", [{"sku": " a "}, {"sku": "b"}])
    outcome = services.run_now(run, keep_outputs=True)
    assert outcome.run.status == RunStatus.COMPLETED
    assert outcome.result.output("out") == [{"sku": "a"}, {"sku": "b"}]
    assert outcome.run.step_runs.get(step_key="nightly").status == "SKIPPED"  # only what follows the trigger


def test_it_takes_a_single_object_and_an_empty_body_and_needs_no_trailing_slash():
    api_key_pipeline(allow_concurrent=True)
    one = post("/hooks/orders", {"sku": "one"}, **{"x-api-key": "k-123"})
    assert one.status_code == 202
    assert Run.objects.get(pk=one.json()["runId"]).seed_records == [{"sku": "one"}]
    empty = post("/hooks/orders/", b"", **{"x-api-key": "k-123"})
    assert empty.status_code == 202
    assert Run.objects.get(pk=empty.json()["runId"]).seed_records == []


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "k-12"}, {"x-api-key": "k-1234"}, {"x-api-key": ""},
                                     {"authorization": "k-123"}])
def test_it_refuses_a_wrong_or_missing_api_key_with_401(headers):
    api_key_pipeline()
    response = post("/hooks/orders/", {"sku": "a"}, **headers)
    assert response.status_code == 401
    assert response.json() == {"accepted": False, "error": "authentication failed"}
    assert not Run.objects.exists()


def test_it_reads_the_api_key_from_the_configured_header_with_its_prefix():
    api_key_pipeline(apiKeyHeaderName="X-Partner-Token", apiKeyPrefix="Token ")
    assert post("/hooks/orders/", {}, **{"X-Partner-Token": "k-123"}).status_code == 401
    assert post("/hooks/orders/", {}, **{"x-api-key": "Token k-123"}).status_code == 401
    assert post("/hooks/orders/", {}, **{"X-Partner-Token": "Token k-123"}).status_code == 202


def hmac_pipeline(**extra):
    secret("orders-hmac", "signing-secret")
    return pipeline(authentication="HMAC", secretCode="orders-hmac", **extra)


def signature(body: bytes, key=b"signing-secret", algorithm=hashlib.sha256):
    return hmac.new(key, body, algorithm).hexdigest()


def test_it_checks_an_hmac_signature_of_the_exact_body_prefixed_or_bare():
    hmac_pipeline(allow_concurrent=True)
    body = b'{"sku": "a",  "n": 1}'
    assert post("/hooks/orders/", body, **{"x-datahub-signature": "sha256=" + signature(body)}).status_code == 202
    assert post("/hooks/orders/", body, **{"X-DataHub-Signature": signature(body).upper()}).status_code == 202
    # The same JSON written differently is another body, and the signature no longer fits.
    assert post("/hooks/orders/", b'{"sku": "a", "n": 1}',
                **{"x-datahub-signature": "sha256=" + signature(body)}).status_code == 401
    assert post("/hooks/orders/", body, **{"x-datahub-signature": "sha256=" + signature(body, b"other")}).status_code == 401
    assert post("/hooks/orders/", body, **{"x-datahub-signature": "sha256="}).status_code == 401
    assert post("/hooks/orders/", body).status_code == 401
    assert Run.objects.count() == 2


def test_it_checks_sha512_signatures_in_a_custom_header():
    hmac_pipeline(hmacAlgorithm="SHA512", hmacHeaderName="X-Sig")
    body = b'[{"sku": "a"}]'
    assert post("/hooks/orders/", body, **{"X-Sig": "sha256=" + signature(body)}).status_code == 401
    assert post("/hooks/orders/", body, **{"X-Sig": "sha512=" + signature(body, algorithm=hashlib.sha512)}).status_code == 202


def basic(user_password: str) -> str:
    return "Basic " + base64.b64encode(user_password.encode()).decode()


def test_it_checks_basic_auth():
    secret("orders-basic", "shop:pa:ss")
    pipeline(authentication="BASIC", basicSecretCode="orders-basic", allow_concurrent=True)
    assert post("/hooks/orders/", {}, authorization=basic("shop:pa:ss")).status_code == 202
    for header in (basic("shop:pass"), basic("shop2:pa:ss"), "Basic !!!notbase64", "Bearer c2hvcDpwYTpzcw==", ""):
        response = post("/hooks/orders/", {}, authorization=header)
        assert response.status_code == 401, header
        assert response["WWW-Authenticate"] == 'Basic realm="datahub"'


def test_it_accepts_anyone_only_when_none_is_written_out():
    from pipelines.errors import DefinitionError
    from pipelines.models import PipelineRevision

    pipeline("open", authentication="NONE")
    assert post("/hooks/open/", {"a": 1}).status_code == 202
    with pytest.raises(DefinitionError, match="needs authentication"):
        pipeline("unset")
    with pytest.raises(DefinitionError, match="authentication"):
        pipeline("oauth", authentication="OAUTH")
    # A trigger stored before these checks existed is still refused at the door.
    stored = pipeline("stored", authentication="NONE")
    d = stored.current_revision.definition
    del d["steps"][0]["config"]["authentication"]
    PipelineRevision.objects.filter(pk=stored.current_revision.pk).update(definition=d)
    response = post("/hooks/stored/", {"a": 1})
    assert response.status_code == 401
    assert "no usable authentication configured" in response.json()["error"]


def test_it_answers_503_when_the_triggers_secret_is_missing():
    pipeline(authentication="API_KEY", apiKeySecretCode="never-created")
    response = post("/hooks/orders/", {}, **{"x-api-key": "anything"})
    assert response.status_code == 503
    assert "never-created" not in response.json()["error"]
    pipeline("nocode", authentication="HMAC")
    assert post("/hooks/nocode/", {}).status_code == 503


def test_it_answers_404_for_an_unknown_pipeline_or_one_without_an_enabled_webhook_trigger():
    assert post("/hooks/nope/", {}).status_code == 404
    save_definition({"version": 1, "code": "manual", "steps": [
        {"key": "t", "type": "TRIGGER", "config": {"type": "MANUAL"}},
        {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}}]})
    assert "no enabled webhook trigger" in post("/hooks/manual/", {}).json()["error"]
    d = {"version": 1, "code": "off", "steps": [
        {"key": "t", "type": "TRIGGER", "disabled": True, "config": {"type": "WEBHOOK", "authentication": "NONE"}},
        {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}}]}
    save_definition(d)
    assert post("/hooks/off/", {}).status_code == 404
    assert post("/hooks/Bad%20Code/", {}).status_code == 404


def test_it_needs_the_trigger_key_when_a_pipeline_has_several_webhook_triggers():
    d = {"version": 1, "code": "two", "steps": [
        {"key": "a", "type": "TRIGGER", "config": {"type": "WEBHOOK", "authentication": "NONE"}},
        {"key": "b", "type": "TRIGGER", "config": {"type": "WEBHOOK", "authentication": "NONE"}},
        {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}}],
         "edges": [{"from": "a", "to": "out"}, {"from": "b", "to": "out"}]}
    save_definition(d)
    response = post("/hooks/two/", {})
    assert response.status_code == 404 and "/hooks/two/<key>/" in response.json()["error"]
    response = post("/hooks/two/b/", {"x": 1})
    assert response.status_code == 202
    assert Run.objects.get(pk=response.json()["runId"]).seed_step == "b"
    assert post("/hooks/two/c/", {}).status_code == 404


def test_it_answers_409_for_a_disabled_pipeline_but_only_after_authentication():
    p = api_key_pipeline()
    Pipeline.objects.filter(pk=p.pk).update(enabled=False)
    assert post("/hooks/orders/", {}).status_code == 401
    response = post("/hooks/orders/", {}, **{"x-api-key": "k-123"})
    assert response.status_code == 409 and "disabled" in response.json()["error"]


def test_it_answers_405_to_anything_but_post():
    api_key_pipeline()
    for method in ("get", "put", "delete"):
        response = getattr(Client(), method)("/hooks/orders/")
        assert response.status_code == 405 and response["Allow"] == "POST"


@pytest.mark.parametrize("body, message", [
    (b'{"sku": "a",}', "malformed JSON at line 1, column 13 (position 12)"),
    (b'[{"sku": "a"},\n {"sku": ]', "malformed JSON at line 2, column 10 (position 24)"),
    (b'{"n": NaN}', "NaN is not valid JSON"),
    (b'"just a string"', "not a string"),
    (b"42", "not a number"),
    (b"null", "not null"),
    (b'[{"a": 1}, 2]', "item 1 of the array is a number, not an object"),
    (b'[{"a": 1}, [1]]', "item 1 of the array is an array"),
    (b'{"a": "\xff"}', "not UTF-8 (byte 7)"),
    (b"[" * 100_000, "nested too deeply"),
])
def test_it_answers_400_to_a_body_that_is_not_records(body, message):
    api_key_pipeline()
    response = post("/hooks/orders/", body, **{"x-api-key": "k-123"})
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert not Run.objects.exists()


def test_it_refuses_a_body_over_the_size_cap_and_compressed_bodies(settings):
    settings.DATAHUB_WEBHOOK_MAX_BYTES = 100
    api_key_pipeline()
    big = json.dumps([{"sku": "x" * 20}] * 5).encode()
    response = post("/hooks/orders/", big, **{"x-api-key": "k-123"})
    assert response.status_code == 413 and "at most 100" in response.json()["error"]
    response = post("/hooks/orders/", b"\x1f\x8b...", **{"x-api-key": "k-123", "content-encoding": "gzip"})
    assert response.status_code == 415


def test_it_takes_bodies_above_djangos_form_upload_limit(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    api_key_pipeline()
    records = [{"sku": f"{i:06d}", "text": "y" * 100} for i in range(100)]
    response = post("/hooks/orders/", records, **{"x-api-key": "k-123"})
    assert response.status_code == 202
    assert len(Run.objects.get().seed_records) == 100


def test_it_starts_one_run_per_idempotency_key():
    api_key_pipeline(allow_concurrent=True)
    headers = {"x-api-key": "k-123", "x-idempotency-key": "order-77"}
    first = post("/hooks/orders/", {"sku": "a"}, **headers)
    again = post("/hooks/orders/", {"sku": "a"}, **headers)
    assert first.status_code == 202 and again.status_code == 200
    assert again.json() == {"accepted": True, "duplicate": True, "runId": first.json()["runId"]}
    assert Run.objects.count() == 1
    other = post("/hooks/orders/", {"sku": "b"}, **headers)
    assert other.status_code == 409 and "different body" in other.json()["error"]
    assert post("/hooks/orders/", {"sku": "b"}, **dict(headers, **{"x-idempotency-key": "order-78"})).status_code == 202
    assert Run.objects.count() == 2


def test_it_answers_a_duplicate_even_while_its_run_is_still_active():
    api_key_pipeline()  # one active run at a time
    headers = {"x-api-key": "k-123", "x-idempotency-key": "k1"}
    first = post("/hooks/orders/", {"sku": "a"}, **headers)
    assert post("/hooks/orders/", {"sku": "a"}, **headers).json()["runId"] == first.json()["runId"]
    busy = post("/hooks/orders/", {"sku": "a"}, **{"x-api-key": "k-123"})
    assert busy.status_code == 409 and "already has an active run" in busy.json()["error"]
    # A refused delivery leaves no key behind: the sender may try again with it.
    refused_key = {"x-api-key": "k-123", "x-idempotency-key": "k2"}
    assert post("/hooks/orders/", {"sku": "c"}, **refused_key).status_code == 409
    Run.objects.update(status=RunStatus.COMPLETED)
    assert post("/hooks/orders/", {"sku": "c"}, **refused_key).status_code == 202


def test_it_can_require_an_idempotency_key_in_a_header_of_its_choice():
    api_key_pipeline(requireIdempotencyKey=True, idempotencyKeyHeader="Idempotency-Key")
    response = post("/hooks/orders/", {}, **{"x-api-key": "k-123", "x-idempotency-key": "a"})
    assert response.status_code == 400 and "Idempotency-Key header" in response.json()["error"]
    too_long = post("/hooks/orders/", {}, **{"x-api-key": "k-123", "idempotency-key": "k" * 201})
    assert too_long.status_code == 400
    assert post("/hooks/orders/", {}, **{"x-api-key": "k-123", "idempotency-key": "a"}).status_code == 202


def test_it_forgets_an_idempotency_key_after_its_time_to_live():
    api_key_pipeline(allow_concurrent=True, idempotencyTtlSec=60)
    headers = {"x-api-key": "k-123", "x-idempotency-key": "old"}
    assert post("/hooks/orders/", {"sku": "a"}, **headers).status_code == 202
    from django.utils import timezone

    WebhookDelivery.objects.update(created_at=timezone.now() - timezone.timedelta(seconds=61))
    assert post("/hooks/orders/", {"sku": "other"}, **headers).status_code == 202
    assert Run.objects.count() == 2


def test_it_needs_no_csrf_token_but_still_its_authentication():
    api_key_pipeline(allow_concurrent=True)
    client = Client(enforce_csrf_checks=True)
    assert post("/hooks/orders/", {}, client=client).status_code == 401
    assert post("/hooks/orders/", {}, client=client, **{"x-api-key": "k-123"}).status_code == 202


def test_it_limits_the_rate_per_address_when_asked():
    api_key_pipeline(allow_concurrent=True, rateLimit=2, rateLimitWindow=60)
    codes = [post("/hooks/orders/", {}, **{"x-api-key": "wrong"}).status_code for _ in range(2)]
    assert codes == [401, 401]
    response = post("/hooks/orders/", {}, **{"x-api-key": "k-123"})
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1

"""The webhook rate limit: per trigger and client, counted in the database, 429 with Retry-After."""

import threading

import pytest
from django.core.cache import cache
from django.db import connections
from django.test import Client

from pipelines.services import save_definition
from runs import webhook_rate
from runs.models import Run, WebhookRateCount
from tests.runs.test_webhook_trigger import api_key_pipeline, post

KEY = {"x-api-key": "k-123"}


@pytest.mark.django_db
def test_it_answers_429_with_retry_after_past_the_limit_and_counts_refused_requests_too():
    api_key_pipeline(allow_concurrent=True, rateLimit=3, rateLimitWindow=60)
    assert post("/hooks/orders/", {}, **{"x-api-key": "wrong"}).status_code == 401
    assert [post("/hooks/orders/", {}, **KEY).status_code for _ in range(2)] == [202, 202]
    # The default cache is per process: forgetting it changes nothing, the count is in the database.
    cache.clear()
    refused = post("/hooks/orders/", {}, **KEY)
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert "at most 3 per 60 s from one client" in refused.json()["error"]
    assert Run.objects.count() == 2
    assert WebhookRateCount.objects.get().count == 4


@pytest.mark.django_db
def test_it_counts_each_client_and_each_trigger_apart(settings):
    settings.DATAHUB_PROXY_COUNT = 1
    save_definition({"version": 1, "code": "two", "steps": [
        {"key": "a", "type": "TRIGGER", "config": {"type": "WEBHOOK", "authentication": "NONE", "rateLimit": 1}},
        {"key": "b", "type": "TRIGGER", "config": {"type": "WEBHOOK", "authentication": "NONE", "rateLimit": 1}},
        {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}}],
        "edges": [{"from": "a", "to": "out"}, {"from": "b", "to": "out"}], "context": {}})
    from pipelines.models import Pipeline

    Pipeline.objects.filter(code="two").update(allow_concurrent_runs=True)

    def send(trigger, forwarded):
        return post(f"/hooks/two/{trigger}/", {}, **{"X-Forwarded-For": forwarded}).status_code

    assert send("a", "203.0.113.7") == 202
    assert send("a", "203.0.113.7") == 429
    # The proxy's own entry (the last) names the client, whatever the client wrote before it.
    assert send("a", "198.51.100.1, 203.0.113.7") == 429
    assert send("a", "203.0.113.8") == 202  # another client
    assert send("b", "203.0.113.7") == 202  # another trigger
    assert Run.objects.count() == 3


@pytest.mark.django_db
def test_a_new_window_starts_a_new_count_and_ended_windows_are_swept():
    config = {"rateLimit": 2, "rateLimitWindow": 10}
    api = api_key_pipeline()
    t0 = 1_000_000.0
    assert [webhook_rate.count_delivery(api.pk, "hook", "c", config, now=t0 + i) for i in range(3)] == [None, None, 8]
    assert webhook_rate.count_delivery(api.pk, "hook", "c", config, now=t0 + 3.5) == 7  # rounds up
    assert webhook_rate.count_delivery(api.pk, "hook", "c", config, now=t0 + 10) is None  # next window
    assert WebhookRateCount.objects.count() == 1  # the ended window was swept when the next one opened
    assert webhook_rate.count_delivery(api.pk, "hook", "c", {"rateLimit": 0}, now=t0) is None  # 0: no limit


@pytest.mark.django_db(transaction=True)
def test_it_holds_the_limit_exactly_under_concurrent_deliveries():
    """Threads with their own database connections stand in for web processes."""
    api_key_pipeline(allow_concurrent=True, rateLimit=5, rateLimitWindow=3600)
    codes, lock = [], threading.Lock()

    def deliver():
        try:
            for _ in range(3):
                status = Client().post("/hooks/orders/", data=b"{}", content_type="application/json",
                                       headers=KEY).status_code
                with lock:
                    codes.append(status)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(codes) == [202] * 5 + [429] * 7
    assert Run.objects.count() == 5

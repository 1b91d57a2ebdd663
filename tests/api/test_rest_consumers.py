"""REST for the MESSAGE triggers' consumers (runs.consumers.api): list, one, dead letters paged newest
first, start and stop; permissions before lookups, another team's consumer a 404, bad input a 400/404."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission
from django.utils import timezone

from pipelines.services import save_definition
from runs.consumers.models import Consumer, DeadLetter
from runs.consumers.services import configured_consumers
from tests.api.conftest import client_for

pytestmark = pytest.mark.django_db


def message_pipeline(code, queue="orders"):
    return save_definition({"version": 1, "code": code, "name": f"Pipeline {code}", "steps": [
        {"key": "inbox", "type": "TRIGGER", "config": {
            "type": "MESSAGE", "queueType": "REDIS_STREAMS", "connectionCode": "redis", "queueName": queue}},
        {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}}]})


@pytest.fixture
def consumer():
    [c] = configured_consumers([message_pipeline("orders-in").code])
    Consumer.objects.filter(pk=c.consumer.pk).update(received=12, runs_started=3, errors=1, dead_letters=130, lag=7,
                                                     rate=0.5, last_error="Redis is down")
    return c.consumer


@pytest.fixture
def many_dead_letters(consumer):
    now = timezone.now()
    DeadLetter.objects.bulk_create(DeadLetter(consumer=consumer, key=f"{n}-0", body=f'{{"n": {n}}}',
                                              reason=f"malformed message {n}") for n in range(130))
    # created_at is auto_now_add: spread them out so "newest first" is a real order.
    for dead in DeadLetter.objects.filter(consumer=consumer):
        DeadLetter.objects.filter(pk=dead.pk).update(created_at=now - timedelta(seconds=1000 - int(dead.key[:-2])))
    return consumer


def test_it_lists_consumers_with_their_counters(as_bob, consumer):
    response = as_bob.get("/api/consumers/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1 and body["next"] is None
    [item] = body["results"]
    assert item["id"] == consumer.pk and item["pipeline"] == "orders-in" and item["trigger"] == "inbox"
    assert item["queueType"] == "REDIS_STREAMS" and item["queueName"] == "orders"
    assert (item["received"], item["runsStarted"], item["errors"], item["deadLetters"], item["lag"]) == (12, 3, 1, 130, 7)
    assert item["rate"] == 0.5 and item["lastError"] == "Redis is down"
    assert item["desired"] == "RUNNING" and item["state"] == "NOT RUNNING" and item["owner"] == ""
    assert as_bob.get(f"/api/consumers/{consumer.pk}/").json() == item


def test_the_dead_letters_come_paged_newest_first(as_bob, many_dead_letters):
    url = f"/api/consumers/{many_dead_letters.pk}/dead-letters/"
    first = as_bob.get(url).json()
    assert first["count"] == 130 and len(first["results"]) == 50 and first["previous"] is None
    assert [d["key"] for d in first["results"][:3]] == ["129-0", "128-0", "127-0"]
    assert set(first["results"][0]) == {"id", "key", "body", "reason", "attempts", "createdAt"}
    last = as_bob.get(url, {"limit": 50, "offset": 100}).json()
    assert [d["key"] for d in last["results"]][-1] == "0-0" and len(last["results"]) == 30 and last["next"] is None
    assert "offset=50" in last["previous"]
    everything = as_bob.get(url, {"limit": 500}).json()["results"]
    assert [d["key"] for d in everything] == [f"{n}-0" for n in range(129, -1, -1)]


def test_start_and_stop_need_the_run_permission(as_alice, as_bob, consumer):
    assert as_bob.post(f"/api/consumers/{consumer.pk}/stop/").status_code == 403
    assert Consumer.objects.get(pk=consumer.pk).desired == "RUNNING"
    response = as_alice.post(f"/api/consumers/{consumer.pk}/stop/")
    assert response.status_code == 200 and response.json()["desired"] == "STOPPED"
    assert response.json()["state"] == "STOPPED"
    assert Consumer.objects.get(pk=consumer.pk).desired == "STOPPED"
    response = as_alice.post(f"/api/consumers/{consumer.pk}/start/")
    assert response.status_code == 200 and response.json()["desired"] == "RUNNING"
    assert Consumer.objects.get(pk=consumer.pk).desired == "RUNNING"
    assert as_alice.get(f"/api/consumers/{consumer.pk}/start/").status_code == 405


def test_it_asks_for_a_login_and_permissions_before_looking_anything_up(anonymous, as_charlie, consumer):
    for client, code in ((anonymous, 401), (as_charlie, 403)):
        for path in ("/api/consumers/", f"/api/consumers/{consumer.pk}/", f"/api/consumers/{consumer.pk}/dead-letters/",
                     "/api/consumers/999999/"):
            assert client.get(path).status_code == code, path
        for path in (f"/api/consumers/{consumer.pk}/start/", "/api/consumers/999999/stop/"):
            assert client.post(path).status_code == code, path


def test_another_teams_consumer_is_not_found(django_user_model, consumer, bob):
    other = message_pipeline("theirs", queue="theirs")
    [theirs] = configured_consumers([other.code])
    other.teams.add(Group.objects.create(name="team-b"))
    as_bob = client_for(bob)
    assert [c["pipeline"] for c in as_bob.get("/api/consumers/").json()["results"]] == ["orders-in"]
    assert as_bob.get(f"/api/consumers/{theirs.consumer.pk}/").status_code == 404
    assert as_bob.get(f"/api/consumers/{theirs.consumer.pk}/dead-letters/").status_code == 404
    bob.user_permissions.add(Permission.objects.get(codename="run_pipeline"))  # may control, not theirs
    assert client_for(bob).post(f"/api/consumers/{theirs.consumer.pk}/stop/").status_code == 404
    assert Consumer.objects.get(pk=theirs.consumer.pk).desired == "RUNNING"
    member = django_user_model.objects.create_user("member", password=None)
    member.user_permissions.set(Permission.objects.filter(codename__in=["view_pipeline", "view_run"]))
    member.groups.add(Group.objects.get(name="team-b"))
    assert client_for(member).get(f"/api/consumers/{theirs.consumer.pk}/").status_code == 200


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "limit=abc", "offset=-1", "limit=", "offset=1.5"])
def test_bad_paging_is_a_400_naming_the_parameter(as_bob, consumer, query):
    for path in ("/api/consumers/", f"/api/consumers/{consumer.pk}/dead-letters/"):
        response = as_bob.get(f"{path}?{query}")
        assert response.status_code == 400, (path, query)
        assert response.json()["problems"][0]["field"] == query.split("=")[0]


@pytest.mark.parametrize("path", ["/api/consumers/0/", f"/api/consumers/{2**70}/", "/api/consumers/abc/",
                                  "/api/consumers/-1/", f"/api/consumers/{2**63}/dead-letters/"])
def test_an_id_that_cannot_be_one_is_a_404(as_bob, consumer, path):
    response = as_bob.get(path)
    assert response.status_code == 404


def test_a_consumer_whose_trigger_is_gone_is_not_found(as_alice, consumer):
    save_definition({"version": 1, "code": "orders-in", "name": "no trigger now", "steps": [
        {"key": "src", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": []}},
        {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}}]})
    assert as_alice.get(f"/api/consumers/{consumer.pk}/").status_code == 404
    assert as_alice.post(f"/api/consumers/{consumer.pk}/start/").status_code == 404


def test_a_wrong_method_is_refused_and_start_reads_no_body(as_alice, consumer):
    assert as_alice.delete(f"/api/consumers/{consumer.pk}/").status_code == 405
    assert as_alice.post("/api/consumers/").status_code == 405
    assert as_alice.put(f"/api/consumers/{consumer.pk}/dead-letters/").status_code == 405
    response = as_alice.post(f"/api/consumers/{consumer.pk}/stop/", "not json", content_type="application/json")
    assert response.status_code == 200 and response.json()["desired"] == "STOPPED"

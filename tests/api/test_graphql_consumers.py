"""GraphQL for the MESSAGE triggers' consumers (runs.consumers.schema): consumers, consumer(id) with its
dead letters paged newest first, startConsumer and stopConsumer; the same permissions as the page and REST."""

import pytest
from django.contrib.auth.models import Group

from runs.consumers.models import Consumer, DeadLetter
from runs.consumers.services import configured_consumers
from tests.api.conftest import codes, gql
from tests.api.test_rest_consumers import message_pipeline

pytestmark = pytest.mark.django_db

LIST = "{ consumers { id pipeline trigger queueType queueName desired state canRun whyNot received deadLetterCount lag rate } }"
ONE = """query($id: ID!, $limit: Int, $offset: Int) {
  consumer(id: $id) { id pipeline lastError deadLetters(limit: $limit, offset: $offset) { id key body reason attempts createdAt } }
}"""
STOP = "mutation($id: ID!) { stopConsumer(id: $id) { ok consumer { id desired state } } }"
START = "mutation($id: ID!) { startConsumer(id: $id) { ok consumer { id desired } } }"


@pytest.fixture
def consumer():
    [c] = configured_consumers([message_pipeline("orders-in").code])
    Consumer.objects.filter(pk=c.consumer.pk).update(received=12, dead_letters=60, lag=7, rate=0.5,
                                                     last_error="Redis is down")
    DeadLetter.objects.bulk_create(DeadLetter(consumer=c.consumer, key=f"{n}-0", body="<b>x</b>", reason=f"bad {n}")
                                   for n in range(60))
    return c.consumer


def test_it_lists_consumers(as_bob, consumer):
    status, body = gql(as_bob, LIST)
    assert status == 200 and "errors" not in body, body
    [item] = body["data"]["consumers"]
    assert item == {"id": str(consumer.pk), "pipeline": "orders-in", "trigger": "inbox", "queueType": "REDIS_STREAMS",
                    "queueName": "orders", "desired": "RUNNING", "state": "NOT RUNNING", "canRun": True, "whyNot": "",
                    "received": 12.0, "deadLetterCount": 60.0, "lag": 7.0, "rate": 0.5}


def test_one_consumer_with_its_dead_letters_paged_newest_first(as_bob, consumer):
    _, body = gql(as_bob, ONE, {"id": consumer.pk})
    found = body["data"]["consumer"]
    assert found["lastError"] == "Redis is down" and len(found["deadLetters"]) == 50
    assert [d["key"] for d in found["deadLetters"][:2]] == ["59-0", "58-0"]  # same second: the newest id first
    assert found["deadLetters"][0]["body"] == "<b>x</b>"  # data, not HTML: the client escapes
    _, body = gql(as_bob, ONE, {"id": consumer.pk, "limit": 20, "offset": 50})
    assert [d["key"] for d in body["data"]["consumer"]["deadLetters"]] == [f"{n}-0" for n in range(9, -1, -1)]


def test_stop_and_start_need_the_run_permission(as_alice, as_bob, consumer):
    _, body = gql(as_bob, STOP, {"id": consumer.pk})
    assert codes(body) == ["FORBIDDEN"] and Consumer.objects.get(pk=consumer.pk).desired == "RUNNING"
    _, body = gql(as_alice, STOP, {"id": consumer.pk})
    assert body["data"]["stopConsumer"] == {"ok": True, "consumer": {"id": str(consumer.pk), "desired": "STOPPED",
                                                                       "state": "STOPPED"}}
    assert Consumer.objects.get(pk=consumer.pk).desired == "STOPPED"
    _, body = gql(as_alice, START, {"id": consumer.pk})
    assert body["data"]["startConsumer"]["consumer"]["desired"] == "RUNNING"
    assert Consumer.objects.get(pk=consumer.pk).desired == "RUNNING"


def test_it_asks_for_a_login_and_permissions_first(anonymous, as_charlie, consumer):
    for client, code in ((anonymous, "UNAUTHENTICATED"), (as_charlie, "FORBIDDEN")):
        assert codes(gql(client, LIST)[1]) == [code]
        assert codes(gql(client, ONE, {"id": 999999})[1]) == [code]  # before any lookup: nothing learnt
        assert codes(gql(client, START, {"id": consumer.pk})[1]) == [code]
    assert Consumer.objects.get(pk=consumer.pk).desired == "RUNNING"


@pytest.mark.parametrize("value", ["abc", "0", "-1", str(2**63), "1" * 30, " ", "1.5"])
def test_an_id_that_cannot_be_one_is_not_found(as_alice, consumer, value):
    for query in (ONE, STOP):
        _, body = gql(as_alice, query, {"id": value})
        assert codes(body) == ["NOT_FOUND"], (value, body)
        assert "no consumer" in body["errors"][0]["message"]


@pytest.mark.parametrize("limit,offset", [(0, 0), (501, 0), (10, -1)])
def test_bad_paging_of_dead_letters_is_bad_input(as_bob, consumer, limit, offset):
    _, body = gql(as_bob, ONE, {"id": consumer.pk, "limit": limit, "offset": offset})
    assert codes(body) == ["BAD_INPUT"], body


def test_another_teams_consumer_is_not_found(as_alice, consumer):
    other = message_pipeline("theirs", queue="theirs")
    [theirs] = configured_consumers([other.code])
    other.teams.add(Group.objects.create(name="team-b"))
    assert [c["pipeline"] for c in gql(as_alice, LIST)[1]["data"]["consumers"]] == ["orders-in"]
    assert codes(gql(as_alice, ONE, {"id": theirs.consumer.pk})[1]) == ["NOT_FOUND"]
    assert codes(gql(as_alice, STOP, {"id": theirs.consumer.pk})[1]) == ["NOT_FOUND"]
    assert Consumer.objects.get(pk=theirs.consumer.pk).desired == "RUNNING"

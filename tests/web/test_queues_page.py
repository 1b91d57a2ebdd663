"""The Queues page: login, permissions, CSRF on start/stop, the htmx partial, dead letters escaped."""

import pytest

from pipelines.services import save_definition
from runs.consumers.models import Consumer, DeadLetter
from runs.consumers.services import configured_consumers

pytestmark = pytest.mark.django_db


@pytest.fixture
def consumer():
    p = save_definition({"version": 1, "code": "orders-in", "name": "Orders in", "steps": [
        {"key": "inbox", "type": "TRIGGER", "config": {
            "type": "MESSAGE", "queueType": "REDIS_STREAMS", "connectionCode": "redis", "queueName": "orders"}},
        {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}}]})
    [c] = configured_consumers([p.code])
    return c.consumer


def test_it_asks_for_a_login(client, consumer):
    for path in ("/queues/", f"/queues/{consumer.pk}/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_it_refuses_someone_without_permission(as_charlie, consumer):
    assert as_charlie.get("/queues/").status_code == 403
    assert as_charlie.get(f"/queues/{consumer.pk}/").status_code == 403
    assert as_charlie.post(f"/queues/{consumer.pk}/stop/").status_code == 403
    assert Consumer.objects.get(pk=consumer.pk).desired == "RUNNING"


def test_it_shows_each_consumer_with_its_counters_to_a_viewer_without_the_buttons(as_bob, consumer):
    Consumer.objects.filter(pk=consumer.pk).update(received=12, runs_started=3, errors=1, dead_letters=2, lag=7,
                                                   rate=0.5, last_error="2026-12-04 10:00:00 UTC: Redis is down")
    html = as_bob.get("/queues/").content.decode()
    assert 'data-consumer="orders-in/inbox"' in html
    assert "NOT RUNNING" in html and "no consume process holds it" in html
    for cell in ('data-lag>7<', 'data-rate>0.50/s<', 'data-received>12<', 'data-runs>3<'):
        assert cell in html
    assert "Redis is down" in html
    assert 'data-action="stop"' not in html and "you may look" in html
    assert as_bob.post(f"/queues/{consumer.pk}/stop/").status_code == 403


def test_it_stops_and_starts_a_consumer_with_csrf(csrf_alice, consumer):
    assert csrf_alice.post(f"/queues/{consumer.pk}/stop/").status_code == 403  # no CSRF token
    token = csrf_alice.get("/queues/").cookies["csrftoken"].value
    response = csrf_alice.post(f"/queues/{consumer.pk}/stop/", HTTP_X_CSRFTOKEN=token, HTTP_HX_REQUEST="true",
                               HTTP_HX_TARGET="consumers")
    assert response.status_code == 200
    assert Consumer.objects.get(pk=consumer.pk).desired == "STOPPED"
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="consumers"') and 'data-action="start"' in html
    response = csrf_alice.post(f"/queues/{consumer.pk}/start/", {"csrfmiddlewaretoken": token, "next": "detail"})
    assert response.status_code == 302 and response["Location"] == f"/queues/{consumer.pk}/"
    assert Consumer.objects.get(pk=consumer.pk).desired == "RUNNING"
    assert csrf_alice.get(f"/queues/{consumer.pk}/stop/").status_code == 405


def test_it_answers_the_polling_partial_alone(as_alice, consumer):
    html = as_alice.get("/queues/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="consumers").content.decode()
    assert html.lstrip().startswith('<div id="consumers"') and "<html" not in html


def test_it_lists_dead_letters_with_their_reasons_escaped(as_bob, consumer):
    DeadLetter.objects.create(consumer=consumer, key="1-0", body='<script>alert(1)</script>',
                              reason="malformed message: not JSON: Expecting value at line 1, column 1")
    html = as_bob.get(f"/queues/{consumer.pk}/").content.decode()
    assert "malformed message: not JSON: Expecting value at line 1, column 1" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    assert as_bob.get("/queues/999999/").status_code == 404



def test_the_dead_letters_are_paged_newest_first(as_bob, consumer):
    DeadLetter.objects.bulk_create(DeadLetter(consumer=consumer, key=f"{n}-0", body="{}", reason=f"reason {n}")
                                   for n in range(120))
    first = as_bob.get(f"/queues/{consumer.pk}/").content.decode()
    assert first.count("<td data-reason>") == 50
    assert "120 in all, newest first; 1–50 shown" in first
    assert "reason 119<" in first and "reason 70<" in first and "reason 69<" not in first
    assert 'href="?page=2"' in first and "Page 1 of 3" in first
    last = as_bob.get(f"/queues/{consumer.pk}/?page=3").content.decode()
    assert last.count("<td data-reason>") == 20 and "reason 19<" in last and "reason 0<" in last
    assert "101–120 shown" in last
    assert as_bob.get(f"/queues/{consumer.pk}/?page=x").status_code == 200  # the first page
    assert "Page 3 of 3" in as_bob.get(f"/queues/{consumer.pk}/?page=999").content.decode()


def test_another_teams_consumer_is_neither_listed_nor_found(as_bob, consumer):
    from django.contrib.auth.models import Group

    consumer.pipeline.teams.add(Group.objects.create(name="team-b"))
    assert 'data-consumer="orders-in/inbox"' not in as_bob.get("/queues/").content.decode()
    assert as_bob.get(f"/queues/{consumer.pk}/").status_code == 404

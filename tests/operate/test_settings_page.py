"""/settings/: admins see retention, run log level and the environment-only settings; they change what
the environment does not set, with bad input named at the field; retention uses what they saved."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from pipelines import hub_settings
from pipelines.models import HubSetting
from runs import retention
from runs.models import Run
from tests.fixtures import simple_definition


@pytest.fixture
def viewer(django_user_model):
    user = django_user_model.objects.create_user(username="vic", password="x")
    user.user_permissions.add(Permission.objects.get(codename="view_hubsetting"))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin(admin_user):
    client = Client()
    client.force_login(admin_user)
    return client


def test_it_needs_a_login_and_the_permission(db, alice):
    assert Client().get("/settings/")["Location"].startswith("/accounts/login/")
    client = Client()
    client.force_login(alice)
    assert client.get("/settings/").status_code == 403


def test_it_shows_every_setting_and_where_it_comes_from(admin, settings, monkeypatch):
    monkeypatch.setenv("DATAHUB_KEEP_RUNS_DAYS", "45")
    settings.DATAHUB_KEEP_RUNS_DAYS = 45
    settings.DATAHUB_HTTP_ALLOW = ["10.0.0.0/8", "api.internal"]
    page = admin.get("/settings/").content.decode()
    assert 'value="45" readonly' in page and "environment" in page
    assert "<code>10.0.0.0/8, api.internal</code>" in page
    assert 'name="keepRecordErrorsDays" value="90"' in page
    assert "Save settings" in page


def test_it_saves_what_the_environment_does_not_set(admin, monkeypatch, settings):
    monkeypatch.delenv("DATAHUB_KEEP_RECORD_ERRORS_DAYS", raising=False)
    monkeypatch.setenv("DATAHUB_KEEP_RUNS_DAYS", "45")
    response = admin.post("/settings/", {"keepRecordErrorsDays": "7", "runLogLevel": "debug",
                                         "keepRunsDays": "1"}, follow=True)
    assert "Settings saved." in response.content.decode()
    assert hub_settings.value("keepRecordErrorsDays") == 7 and hub_settings.value("runLogLevel") == "DEBUG"
    assert not HubSetting.objects.filter(key="keepRunsDays").exists()  # from the environment: not taken
    assert hub_settings.save({"keepRunsDays": "2"}, None)[0].message.startswith("comes from the environment")


def test_it_names_bad_input_and_saves_nothing(admin):
    page = admin.post("/settings/", {"keepRecordErrorsDays": "-3", "runLogLevel": "LOUD"}).content.decode()
    assert "Nothing was saved" in page and "from 0 to 36500 days" in page and "one of ERROR, PIPELINE" in page
    assert 'value="-3"' in page  # what was typed stays
    assert not HubSetting.objects.exists()


def test_a_viewer_may_look_but_not_change(viewer):
    page = viewer.get("/settings/").content.decode()
    assert "Retention and run logs" in page and "Save settings" not in page
    assert viewer.post("/settings/", {"keepRunsDays": "1"}).status_code == 403
    assert not HubSetting.objects.exists()


def test_it_refuses_a_post_without_csrf(admin_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.post("/settings/", {"keepRunsDays": "1"}).status_code == 403


def test_retention_uses_the_saved_period(db, monkeypatch, admin_user):
    from pipelines.services import save_definition
    from runs import services

    monkeypatch.delenv("DATAHUB_KEEP_RUNS_DAYS", raising=False)
    run = services.run_now(services.create_run(save_definition(simple_definition("old")))).run
    Run.objects.filter(pk=run.pk).update(finished_at=timezone.now() - timedelta(days=10))
    assert retention.prune()["runs"] == 0  # the default keeps 30 days
    hub_settings.save({"keepRunsDays": "5"}, admin_user)
    assert retention.prune()["runs"] == 1

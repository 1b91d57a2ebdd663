"""A user's permissions are read in one query (datahub_project.permission_cache), and the answers are
ModelBackend's own: the same sets, for own and group permissions, active and inactive users."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

pytestmark = pytest.mark.django_db

MODEL_BACKEND_ONLY = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]


def perm(app, codename):
    return Permission.objects.get(content_type__app_label=app, codename=codename)


@pytest.fixture
def people(django_user_model):
    viewers = Group.objects.create(name="viewers")
    viewers.permissions.add(perm("runs", "view_run"), perm("pipelines", "view_pipeline"))
    both = django_user_model.objects.create_user("both", password=None)
    both.user_permissions.add(perm("gates", "approve_gate"), perm("runs", "view_run"))  # view_run twice
    both.groups.add(viewers)
    own = django_user_model.objects.create_user("own", password=None)
    own.user_permissions.add(perm("pipelines", "run_pipeline"))
    grouped = django_user_model.objects.create_user("grouped", password=None)
    grouped.groups.add(viewers)
    nobody = django_user_model.objects.create_user("nobody", password=None)
    gone = django_user_model.objects.create_user("gone", password=None, is_active=False)
    gone.user_permissions.add(perm("runs", "view_run"))
    return [both, own, grouped, nobody, gone]


ASKED = ["runs.view_run", "pipelines.view_pipeline", "gates.approve_gate", "pipelines.run_pipeline",
         "pipelines.change_pipeline"]


def answers(django_user_model, user):
    fresh = django_user_model.objects.get(pk=user.pk)  # no permission cache yet
    return ({p: fresh.has_perm(p) for p in ASKED}, fresh.get_user_permissions(), fresh.get_group_permissions(),
            fresh.get_all_permissions())


def test_the_answers_are_model_backends(people, django_user_model, settings):
    ours = [answers(django_user_model, u) for u in people]
    settings.AUTHENTICATION_BACKENDS = MODEL_BACKEND_ONLY
    theirs = [answers(django_user_model, u) for u in people]
    assert ours == theirs
    both = ours[0]
    assert both[1] == {"gates.approve_gate", "runs.view_run"}
    assert both[2] == {"runs.view_run", "pipelines.view_pipeline"}
    assert ours[4] == ({p: False for p in ASKED}, set(), set(), set())  # inactive: nothing


def test_one_query_instead_of_two_then_none(people, django_user_model, settings):
    def count(backends):
        settings.AUTHENTICATION_BACKENDS = backends
        user = django_user_model.objects.get(username="both")
        with CaptureQueriesContext(connection) as first:
            assert user.has_perm("runs.view_run")
        with CaptureQueriesContext(connection) as later:
            assert not user.has_perm("pipelines.change_pipeline")
            assert user.has_perm("gates.approve_gate")
        return len(first), len(later)

    configured = list(settings.AUTHENTICATION_BACKENDS)
    assert "datahub_project.permission_cache.OneQueryPermissions" in configured
    assert count(MODEL_BACKEND_ONLY) == (2, 0)
    assert count(configured) == (1, 0)


def test_a_change_counts_from_the_next_request(people, django_user_model):
    own = people[1]
    client = Client()
    client.force_login(own)
    assert client.get("/runs/").status_code == 403  # no view permissions
    own.groups.add(Group.objects.get(name="viewers"))
    assert client.get("/runs/").status_code == 200
    own.groups.clear()
    assert client.get("/runs/").status_code == 403


def test_sessions_still_name_model_backend(people):
    """The primer never logs anyone in: sessions keep naming ModelBackend, so no one is logged out."""
    client = Client()
    client.force_login(people[0])
    assert client.session["_auth_user_backend"] == "django.contrib.auth.backends.ModelBackend"
    assert client.get("/runs/").status_code == 200

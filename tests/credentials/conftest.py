"""Personas for connections and secrets: olga operates them (every permission), vera only looks."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from tests.conftest import PASSWORD

SECRET_VALUE = "pa55-VALUE-never-shown-8d1f"
OPERATE = [f"{action}_{model}" for model in ("connection", "secret") for action in ("view", "add", "change", "delete")]


def _user(django_user_model, name: str, codenames: list[str], runs: list[str] = ()):
    user = django_user_model.objects.create_user(username=name, password=PASSWORD, email=f"{name}@example.com")
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="pipelines", codename__in=codenames))
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="runs", codename__in=runs))
    return user


@pytest.fixture
def olga(django_user_model):
    return _user(django_user_model, "olga", [*OPERATE, "view_pipeline"], ["view_run"])


@pytest.fixture
def vera(django_user_model):
    return _user(django_user_model, "vera", ["view_connection", "view_secret"])


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def as_olga(olga):
    return logged_in(olga)


@pytest.fixture
def as_vera(vera):
    return logged_in(vera)

"""Weak passwords are refused wherever a password is set, and a weak superuser stops the production profile."""

import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError
from django.test import Client

from datahub_project.checks import check_weak_superuser_passwords
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_hashes(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.mark.parametrize("weak", ["admin", "password", "12345678901", "Password123"])
def test_it_refuses_ensure_admin_with_a_weak_password(weak):
    with pytest.raises(CommandError, match="the password for admin is refused"):
        call_command("ensure_admin", "--password", weak, stdout=io.StringIO())
    assert not get_user_model().objects.exists()


def test_it_creates_the_admin_with_a_strong_password():
    call_command("ensure_admin", "--password", PASSWORD, stdout=io.StringIO())
    assert get_user_model().objects.get(username="admin").check_password(PASSWORD)


def test_it_offers_a_one_time_setup_link_that_works_once():
    out = io.StringIO()
    call_command("ensure_admin", "--username", "root", stdout=out)
    user = get_user_model().objects.get(username="root")
    assert user.is_superuser and not user.has_usable_password()
    link = re.search(r"https?://\S+", out.getvalue()).group(0)
    path = link.split("://", 1)[1].split("/", 1)[1]

    client = Client()
    form = client.get("/" + path, follow=True)
    assert b'id="set-password"' in form.content
    weak = client.post(form.redirect_chain[-1][0], {"new_password1": "admin", "new_password2": "admin"})
    assert b"too short" in weak.content or b"too common" in weak.content
    done = client.post(form.redirect_chain[-1][0], {"new_password1": PASSWORD, "new_password2": PASSWORD})
    assert done.status_code == 302
    user.refresh_from_db()
    assert user.check_password(PASSWORD)

    again = Client().get("/" + path, follow=True)
    assert b'id="link-used"' in again.content


def test_it_refuses_a_weak_password_in_createsuperuser(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "password")
    with pytest.raises(CommandError):
        call_command("createsuperuser", "--noinput", "--username", "boss", "--email", "b@example.com",
                     stdout=io.StringIO(), stderr=io.StringIO())
    assert not get_user_model().objects.filter(username="boss").exists()


def test_it_refuses_a_weak_password_when_an_admin_sets_one(django_user_model, alice):
    admin = Client()
    admin.force_login(django_user_model.objects.create_superuser("root", password=PASSWORD))
    response = admin.post(f"/admin/auth/user/{alice.pk}/password/",
                          {"password1": "qwerty", "password2": "qwerty"})
    assert response.status_code == 200  # the form again, with the validators' messages
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)


@pytest.mark.parametrize("weak", ["admin", "root", "changeme"])
def test_it_refuses_to_start_production_with_a_weak_superuser(settings, django_user_model, weak):
    settings.DATAHUB_REFUSE_WEAK_SUPERUSER_PASSWORDS = True
    django_user_model.objects.create_superuser("root", password=weak)
    errors = check_weak_superuser_passwords(None)
    assert [e.id for e in errors] == ["datahub.E010"]
    assert "superuser 'root'" in errors[0].msg
    with pytest.raises(SystemCheckError, match="datahub.E010"):
        call_command("check", stdout=io.StringIO(), stderr=io.StringIO())


def test_it_starts_production_with_strong_or_unset_superuser_passwords(settings, django_user_model):
    settings.DATAHUB_REFUSE_WEAK_SUPERUSER_PASSWORDS = True
    django_user_model.objects.create_superuser("root", password=PASSWORD)
    django_user_model.objects.create_superuser("setup-pending", password=None)
    django_user_model.objects.create_user("plain", password="admin")  # not a superuser
    assert check_weak_superuser_passwords(None) == []


def test_it_is_on_in_the_production_profile_only():
    import subprocess
    import sys

    code = ("import django, os; django.setup(); from django.conf import settings; "
            "print(settings.DATAHUB_REFUSE_WEAK_SUPERUSER_PASSWORDS)")
    env = {"DJANGO_SETTINGS_MODULE": "datahub_project.settings_production", "DATAHUB_SECRET_KEY": "x" * 50,
           "DATAHUB_ALLOWED_HOSTS": "example.com", "DATAHUB_MASTER_KEY": "k" * 32, "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_it_stops_gunicorn_from_starting_with_a_weak_superuser(settings, django_user_model):
    import runpy
    from pathlib import Path

    settings.DATAHUB_REFUSE_WEAK_SUPERUSER_PASSWORDS = True
    django_user_model.objects.create_superuser("root", password="password")
    conf = runpy.run_path(str(Path(settings.BASE_DIR) / "deploy" / "gunicorn.conf.py"))
    with pytest.raises(SystemCheckError, match="datahub.E010"):
        conf["on_starting"](None)

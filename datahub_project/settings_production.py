"""The production profile: ``DJANGO_SETTINGS_MODULE=datahub_project.settings_production``.

Everything in :mod:`datahub_project.settings` (database, broker, mail from env), plus what a server on the
internet needs; ``manage.py check --deploy`` passes with no warnings. Required, or the process refuses to
start:

* ``DATAHUB_SECRET_KEY``: not the development key (generate one with
  ``python -c "import secrets; print(secrets.token_urlsafe(50))"``);
* ``DATAHUB_ALLOWED_HOSTS``: the host names people and load balancers use, comma-separated;
* ``DATAHUB_MASTER_KEY``: the key(s) that encrypt stored secrets, newest first, not the secret key.

Optional:

* ``DATAHUB_PROXY_SSL_HEADER=true`` when a proxy in front terminates TLS and sets ``X-Forwarded-Proto``
  (only then: otherwise a client could claim https by sending the header itself);
* ``DATAHUB_SSL_REDIRECT`` (true), ``DATAHUB_HSTS_SECONDS`` (one year), ``DATAHUB_HSTS_INCLUDE_SUBDOMAINS``
  (true), ``DATAHUB_HSTS_PRELOAD`` (true: the header allows a submission to the browsers' preload list;
  nothing is submitted by itself).

Static files are served by WhiteNoise from ``STATIC_ROOT`` (run ``manage.py collectstatic --noinput`` on
each deploy): compressed, with hashed names cached for ever. ``/healthz`` and ``/metrics`` are not
redirected to https, so load balancers and Prometheus may reach them on the plain port.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from datahub_project.env import env_bool, env_int, env_list, env_str
from datahub_project.settings import *  # noqa: F403
from datahub_project.settings import MIDDLEWARE

_DEVELOPMENT_KEY = "insecure-development-key-set-DATAHUB_SECRET_KEY-in-production"

DEBUG = False

SECRET_KEY = env_str("DATAHUB_SECRET_KEY", "").strip()
if not SECRET_KEY or SECRET_KEY == _DEVELOPMENT_KEY:
    raise ImproperlyConfigured(
        "DATAHUB_SECRET_KEY must be set to a long random value in production "
        '(python -c "import secrets; print(secrets.token_urlsafe(50))")'
    )

# Stored secrets need their own master key: never SECRET_KEY (rotating that would make them unreadable).
DATAHUB_MASTER_KEYS = env_list("DATAHUB_MASTER_KEY", [])
if not DATAHUB_MASTER_KEYS:
    raise ImproperlyConfigured(
        "DATAHUB_MASTER_KEY must be set in production: the key that encrypts stored secrets "
        '(python -c "import secrets; print(secrets.token_urlsafe(32))"); several, comma-separated, newest first')
if SECRET_KEY in DATAHUB_MASTER_KEYS:
    raise ImproperlyConfigured("DATAHUB_MASTER_KEY must not be DATAHUB_SECRET_KEY: give stored secrets a key of their own")
if any(len(key) < 16 for key in DATAHUB_MASTER_KEYS):
    raise ImproperlyConfigured("every key in DATAHUB_MASTER_KEY must be at least 16 characters long")

ALLOWED_HOSTS = env_list("DATAHUB_ALLOWED_HOSTS", [])
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("DATAHUB_ALLOWED_HOSTS must list the host names this Datahub answers to")

# Refuse to start (system check datahub.E010: migrate, manage.py worker and gunicorn's start run the checks)
# while a superuser's password is a well-known weak one.
DATAHUB_REFUSE_WEAK_SUPERUSER_PASSWORDS = True

# --- https ---------------------------------------------------------------------------------------------
if env_bool("DATAHUB_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("DATAHUB_SSL_REDIRECT", True)
# Health checks and scrapes come from inside the network, often to the plain port.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("DATAHUB_HSTS_SECONDS", 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DATAHUB_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("DATAHUB_HSTS_PRELOAD", True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- static files: WhiteNoise, right after SecurityMiddleware (so redirects and headers come first) -------
MIDDLEWARE = list(MIDDLEWARE)
MIDDLEWARE.insert(MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
                  "whitenoise.middleware.WhiteNoiseMiddleware")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

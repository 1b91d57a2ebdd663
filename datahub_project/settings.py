"""Datahub settings: every knob comes from an environment variable (12-factor).

Defaults run on one machine with nothing installed: SQLite (WAL, busy timeout, IMMEDIATE transactions so
the web server and workers can write at once) and django-q2's ORM broker. ``DATABASE_URL`` switches to
PostgreSQL or MySQL/MariaDB, ``REDIS_URL`` the broker to Redis, ``EMAIL_URL`` mail to SMTP.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONCE
from django.core.exceptions import ImproperlyConfigured

from datahub_project.cache_config import caches_and_sessions
from datahub_project.env import env_bool, env_int, env_list, env_rate, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("DATAHUB_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DATAHUB_DEBUG", False)
SECRET_KEY = env_str("DATAHUB_SECRET_KEY", "") or "insecure-development-key-set-DATAHUB_SECRET_KEY-in-production"
ALLOWED_HOSTS = env_list("DATAHUB_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DATAHUB_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    # First, so that its createsuperuser (which checks the password validators also with --noinput)
    # takes the place of django.contrib.auth's.
    "datahub_project",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "graphene_django",
    "django_q",
    "axes",
    "csp",
    "audit",
    "pipelines",
    "runs",
    "gates",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # A chunked body without Content-Length would be read as empty: 411 instead.
    "datahub_project.body_length.body_length_middleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Tells the audit trail who and where for changes recorded from model signals (audit.trail).
    "audit.trail.audit_middleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last: turns a lock-out flagged during authentication into the lock-out page (datahub_project.lockout).
    "axes.middleware.AxesMiddleware",
]

# django-axes first: it refuses a locked-out client before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    # Reads a user's own and group permissions in one query for ModelBackend, which answers from them.
    "datahub_project.permission_cache.OneQueryPermissions",
    "django.contrib.auth.backends.ModelBackend",
    # Owners and teams on pipelines, connections and secrets (pipelines.access).
    "rules.permissions.ObjectPermissionBackend",
]

ROOT_URLCONF = "datahub_project.urls"
WSGI_APPLICATION = "datahub_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "csp.context_processors.nonce",
            ],
        },
    }
]


def _database() -> dict:
    url = env_str("DATABASE_URL", "")
    if url:
        config = dj_database_url.parse(url, conn_max_age=env_int("DATAHUB_DB_CONN_MAX_AGE", 0))
        if config["ENGINE"] == "django.db.backends.mysql":
            config.setdefault("OPTIONS", {}).update({"charset": "utf8mb4", "isolation_level": "read committed"})
        if config["ENGINE"] == "django.db.backends.sqlite3":
            config["OPTIONS"] = _SQLITE_OPTIONS
        return config
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(VAR_DIR / "datahub.sqlite3"),
        "OPTIONS": _SQLITE_OPTIONS,
        # A file, not Django's default in-memory test database: workers' threads must see the same data
        # and the locking behaviour under test must be SQLite's real one. One file per test process, so
        # two test runs on one machine never share (and wipe) each other's database.
        "TEST": {"NAME": str(VAR_DIR / f"test-datahub-{os.getpid()}.sqlite3")},
    }


# WAL lets readers (the run page) read while a worker writes; IMMEDIATE takes the write lock at BEGIN so
# two writers queue on the busy timeout instead of failing with "database is locked" on lock upgrade.
_SQLITE_OPTIONS = {
    "timeout": 30,
    "transaction_mode": "IMMEDIATE",
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;",
}

DATABASES = {"default": _database()}

try:  # PyMySQL stands in for mysqlclient, which needs a C toolchain and client headers.
    import pymysql

    pymysql.install_as_MySQLdb()
except ImportError:  # pragma: no cover
    pass

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Every path that sets a password checks these: the login-protected password change and the one-time
# setup/reset link, the admin, createsuperuser, changepassword and ensure_admin.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": env_int("DATAHUB_PASSWORD_MIN_LENGTH", 10, minimum=8)}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# The production profile refuses to start while an active superuser's password is one of these (or
# their user name): datahub_project.checks.check_weak_superuser_passwords.
DATAHUB_REFUSE_WEAK_SUPERUSER_PASSWORDS = False

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("DATAHUB_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("DATAHUB_STATIC_ROOT", str(VAR_DIR / "static")))
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env_str("DATAHUB_MEDIA_ROOT", str(VAR_DIR / "media")))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        # Token failures count toward the lock-out like wrong passwords (datahub_project.lockout).
        "datahub_project.lockout.LockoutTokenAuthentication",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "datahub_project.lockout.AnonRateThrottle",
        "datahub_project.lockout.UserRateThrottle",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Datahub API",
    "DESCRIPTION": "Pipelines, runs and gates of Datahub.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Request and response components apart, so a request's non-blank strings carry minLength 1.
    "COMPONENT_SPLIT_REQUEST": True,
    # Two "status" fields with different choices (a submission's, a gate's): each its own component name.
    "ENUM_NAME_OVERRIDES": {
        "ReviewStatusEnum": "pipelines.models.ReviewStatus",
        "GateStatusEnum": "gates.models.GateStatus",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "datahub_project.openapi.postprocess",
    ],
}
GRAPHENE = {"SCHEMA": "datahub_project.schema.schema"}
# Request bodies larger than this are refused (API, forms, webhooks).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATAHUB_MAX_REQUEST_BYTES", 5 * 1024 * 1024, minimum=1024)

# --- Content-Security-Policy (django-csp) on every answer ------------------------------------------------
# Scripts and styles come only from our own static files: no inline <script>, no style="" attribute, no
# eval. A template that must inline a script writes <script nonce="{{ CSP_NONCE }}">: the nonce is then
# added to script-src for that answer only. Data-dependent sizes are set through the CSSOM (static/js/app.js).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", NONCE],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# --- login lock-out and request throttling (datahub_project.lockout) ------------------------------------
# After DATAHUB_LOGIN_FAILURE_LIMIT failed logins (login page, admin, wrong API tokens, webhook
# authentication failures), the client is refused for DATAHUB_LOGIN_COOLOFF_MINUTES (0: until an admin
# unlocks it). DATAHUB_LOCKOUT_BY says what is counted: "ip_address" (default), "username",
# "username+ip_address" (both together), or several of these comma-separated (any one locks).
AXES_ENABLED = env_bool("DATAHUB_LOGIN_LOCKOUT", True)
AXES_FAILURE_LIMIT = env_int("DATAHUB_LOGIN_FAILURE_LIMIT", 10, minimum=1)
_cooloff_minutes = env_int("DATAHUB_LOGIN_COOLOFF_MINUTES", 15, minimum=0)
AXES_COOLOFF_TIME = timedelta(minutes=_cooloff_minutes) if _cooloff_minutes else None
AXES_LOCKOUT_PARAMETERS = [
    group.split("+") if "+" in group else group for group in env_list("DATAHUB_LOCKOUT_BY", ["ip_address"])
]
for _part in (p for group in AXES_LOCKOUT_PARAMETERS for p in ([group] if isinstance(group, str) else group)):
    if _part not in ("ip_address", "username", "user_agent"):
        raise ImproperlyConfigured(f"DATAHUB_LOCKOUT_BY: {_part!r} is not ip_address, username or user_agent")
AXES_RESET_ON_SUCCESS = True
# Not "AXES: BEGIN version ..." on the stderr of every manage.py command (the CLI prints what it was asked for).
AXES_VERBOSE = False
AXES_LOCKOUT_CALLABLE = "datahub_project.lockout.lockout_response"
AXES_CLIENT_IP_CALLABLE = "datahub_project.lockout.client_ip"
# How many proxies in front of Datahub append to X-Forwarded-For (0: the client is REMOTE_ADDR). The
# client address is then taken that many entries from the right, where a client cannot forge it.
DATAHUB_PROXY_COUNT = env_int("DATAHUB_PROXY_COUNT", 0, minimum=0)
# Request rates ("N/second|minute|hour|day"; empty: no limit) for the REST API, GraphQL and creating
# API tokens; over them the answer is 429 with Retry-After.
DATAHUB_RATE_LIMITS = {
    "anon": env_rate("DATAHUB_RATE_ANON", "60/minute"),
    "user": env_rate("DATAHUB_RATE_USER", "1200/minute"),
    "token": env_rate("DATAHUB_RATE_TOKEN_CREATE", "10/hour"),
}

# --- cache and sessions (datahub_project.cache_config) ---------------------------------------------------
# DATAHUB_CACHE_URL (redis://...): a cache shared by every process, and sessions read from it (no session
# query per request). Unset: a per-process cache and sessions in the database.
CACHES, SESSION_ENGINE = caches_and_sessions(env_str("DATAHUB_CACHE_URL", ""),
                                             env_str("DATAHUB_CACHE_KEY_PREFIX", "datahub"))
# The page cache (datahub_project.page_cache): the run and gate pages and the REST lists, served from the
# shared cache while nothing they show has changed. It needs that cache to be shared: a write by a worker
# invalidates entries through it (datahub_project.generations), so it is refused without one.
DATAHUB_PAGE_CACHE = env_bool("DATAHUB_PAGE_CACHE", bool(env_str("DATAHUB_CACHE_URL", "")))
if DATAHUB_PAGE_CACHE and not env_str("DATAHUB_CACHE_URL", ""):
    raise ImproperlyConfigured("DATAHUB_PAGE_CACHE needs DATAHUB_CACHE_URL: without a cache every process shares, "
                               "a write by one process could not invalidate the pages another one cached")
# The most a cached page may be behind: relative times ("3 minutes ago") and writes Django did not make.
DATAHUB_PAGE_CACHE_SECONDS = env_int("DATAHUB_PAGE_CACHE_SECONDS", 30, minimum=1)

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# --- the worker (django-q2) -------------------------------------------------------------------------
# `timeout` (how long a task may run) must stay below `retry` (when an unacknowledged task is delivered
# again), or a long run would be started a second time while it still runs; datahub_project.checks says so.
Q_TIMEOUT = env_int("DATAHUB_TASK_TIMEOUT", 3600, minimum=10)
Q_CLUSTER = {
    "name": "datahub",
    "workers": env_int("DATAHUB_WORKERS", 2, minimum=1),
    "timeout": Q_TIMEOUT,
    "retry": env_int("DATAHUB_TASK_RETRY", Q_TIMEOUT + 600, minimum=11),
    "max_attempts": 1,
    "ack_failures": True,
    "catch_up": False,
    "save_limit": 1000,
    "label": "Django Q2",
    "sync": env_bool("DATAHUB_SYNC_TASKS", False),
    # A run's CPU-heavy steps may run in worker processes of their own (runs.engine.processes), and
    # multiprocessing refuses children to a daemonic process. Stopping is unchanged: the sentinel waits for
    # its workers either way, and a step's process ends with the worker that started it.
    "daemonize_workers": False,
}
_redis_url = env_str("REDIS_URL", "")
if _redis_url:
    Q_CLUSTER["redis"] = _redis_url
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["poll"] = 0.5

# --- mail ---------------------------------------------------------------------------------------------
_email_url = env_str("EMAIL_URL", "")
if _email_url:
    from urllib.parse import unquote, urlparse

    _mail = urlparse(_email_url)
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = _mail.hostname or "localhost"
    EMAIL_PORT = _mail.port or 25
    EMAIL_HOST_USER = unquote(_mail.username or "")
    EMAIL_HOST_PASSWORD = unquote(_mail.password or "")
    EMAIL_USE_TLS = _mail.scheme in ("smtp+tls", "submission")
    EMAIL_USE_SSL = _mail.scheme == "smtps"
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env_str("DATAHUB_FROM_EMAIL", "datahub@localhost")

# --- Datahub ------------------------------------------------------------------------------------------
# Cross-app plugins, like INSTALLED_APPS: the one visible list of what registers into pipelines' registries.
DATAHUB_PLUGIN_MODULES = ["runs.engine.handlers", "gates.step", *env_list("DATAHUB_PLUGIN_MODULES", [])]
# OpenTelemetry: traces of runs and steps go over OTLP/HTTP to this URL (e.g. http://collector:4318/v1/traces)
# when it is set (runs.tracing); empty: no export.
DATAHUB_OTLP_ENDPOINT = env_str("DATAHUB_OTLP_ENDPOINT", "")
# One-click Approve/Reject links in gate emails (gates.action_links): how long they work, and whether they
# work without logging in first (then the link is the credential; off by default).
DATAHUB_GATE_LINK_MAX_AGE = env_int("DATAHUB_GATE_LINK_MAX_AGE", 3 * 24 * 3600, minimum=60)
DATAHUB_GATE_LINKS_WITHOUT_LOGIN = env_bool("DATAHUB_GATE_LINKS_WITHOUT_LOGIN", False)
# A run whose worker has not written a heartbeat (every 5 s) for this long is taken back and resumed on
# another worker; every `manage.py worker` looks every DATAHUB_REAPER_SECONDS (docs/operations.md).
DATAHUB_HEARTBEAT_TIMEOUT = env_int("DATAHUB_HEARTBEAT_TIMEOUT", 15, minimum=10)
DATAHUB_REAPER_SECONDS = env_int("DATAHUB_REAPER_SECONDS", 5, minimum=1)
# A run taken back from dead workers this many times is failed the next time instead (a run that kills
# its worker, say by running it out of memory, must not take the fleet down one worker after another).
DATAHUB_MAX_RESUMES = env_int("DATAHUB_MAX_RESUMES", 3, minimum=0)
# `manage.py worker` on SIGTERM/SIGINT: stop taking tasks, hand runs back at their next step boundary,
# interrupt what still runs near the end of this window, and exit within it.
DATAHUB_DRAIN_SECONDS = env_int("DATAHUB_DRAIN_SECONDS", 10, minimum=1)
# A `manage.py consume` process that has not renewed its hold on a MESSAGE consumer for this long is taken
# to be dead: another consume process takes the consumer over.
DATAHUB_CONSUMER_LEASE_SECONDS = env_int("DATAHUB_CONSUMER_LEASE_SECONDS", 30, minimum=2)
# Step outputs larger than this many records spill from memory to a temporary file.
DATAHUB_SPILL_RECORDS = env_int("DATAHUB_SPILL_RECORDS", 50_000, minimum=1)
# A step streaming into its consumer holds at most this much (MiB, estimated) of batches the consumer has not
# taken yet; past it the producer waits for the consumer (docs/streaming.md).
DATAHUB_STREAM_MEMORY_MB = env_int("DATAHUB_STREAM_MEMORY_MB", 16, minimum=1)
# CPU-heavy TRANSFORM steps of a run with parallel execution run in worker processes of their own
# (runs.engine.processes), so parallel branches use every core: "auto" for inputs of at least
# DATAHUB_STEP_PROCESS_MIN_RECORDS records, "off" never (threads only).
DATAHUB_STEP_PROCESSES = env_str("DATAHUB_STEP_PROCESSES", "auto").strip().lower()
if DATAHUB_STEP_PROCESSES not in ("auto", "off"):
    raise ImproperlyConfigured(f"DATAHUB_STEP_PROCESSES: {DATAHUB_STEP_PROCESSES!r} is not auto or off")
DATAHUB_STEP_PROCESS_MIN_RECORDS = env_int("DATAHUB_STEP_PROCESS_MIN_RECORDS", 50_000, minimum=1)
# The most a multiJoin's hashed right side may hold (MiB): the default and the maximum of its memoryBudgetMb.
DATAHUB_JOIN_MEMORY_MB = env_int("DATAHUB_JOIN_MEMORY_MB", 512, minimum=1)
# Outbound HTTP: private, loopback and link-local targets are refused unless listed here (host or CIDR).
DATAHUB_HTTP_ALLOW = env_list("DATAHUB_HTTP_ALLOW", [])
DATAHUB_HTTP_MAX_BYTES = env_int("DATAHUB_HTTP_MAX_BYTES", 20 * 1024 * 1024, minimum=1024)
# File extractors may read `path` sources only inside these folders (comma-separated); uploads and
# Django storage need no listing. Larger files are refused.
DATAHUB_FILE_ROOTS = env_list("DATAHUB_FILE_ROOTS", [])
DATAHUB_MAX_FILE_BYTES = env_int("DATAHUB_MAX_FILE_BYTES", 100 * 1024 * 1024, minimum=1024)
# Folders SQLite connections may point into (":"-separated); Datahub's own database is always refused.
DATAHUB_SQLITE_DIRS = [p for p in env_str("DATAHUB_SQLITE_DIRS", str(VAR_DIR / "sqlite")).split(":") if p]
# Django models the modelQuery/modelUpsert/modelDelete adapters may touch ("app_label.Model", comma-separated).
DATAHUB_MODEL_ALLOWLIST = env_list("DATAHUB_MODEL_ALLOWLIST", [])
# Django models EVENT triggers may subscribe to ("app_label.Model" or "app_label.*", comma-separated).
DATAHUB_EVENT_MODELS = env_list("DATAHUB_EVENT_MODELS", [])
# How people reach this Datahub: links in emails and webhook notices.
DATAHUB_BASE_URL = env_str("DATAHUB_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
# Master keys of stored secrets, comma-separated, newest first: the first encrypts, all decrypt
# (pipelines.secrets; rotate with manage.py rotate_secrets). Unset, the development profile derives one
# from SECRET_KEY; the production profile requires it.
DATAHUB_MASTER_KEYS = env_list("DATAHUB_MASTER_KEY", [])
DATAHUB_DEMO_PIPELINES_DIR = BASE_DIR / "pipelines" / "demo"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Log lines are scrubbed of the credentials runs use (a server may echo them in an error body).
    "filters": {"redact": {"()": "pipelines.redaction.RedactingFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["redact"]}},
    "root": {"handlers": ["console"], "level": env_str("DATAHUB_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- operations (datahub_project.ops, runs.retention) -------------------------------------------------
# A daily schedule deletes ended runs (their step runs, record errors, attempts, hook deliveries and
# saved files) this many days after they ended, and record errors after DATAHUB_KEEP_RECORD_ERRORS_DAYS;
# a run is kept while it still holds record errors, so they stay replayable. 0 keeps them for ever.
DATAHUB_KEEP_RUNS_DAYS = env_int("DATAHUB_KEEP_RUNS_DAYS", 30, minimum=0)
DATAHUB_KEEP_RECORD_ERRORS_DAYS = env_int("DATAHUB_KEEP_RECORD_ERRORS_DAYS", 90, minimum=0)
# The audit trail (audit.models.AuditEvent, the /audit/ page) is kept this many days; 0 keeps it for ever.
DATAHUB_KEEP_AUDIT_DAYS = env_int("DATAHUB_KEEP_AUDIT_DAYS", 365, minimum=0)
# Run log lines (runs.run_logs) are deleted this many days after they were written (0: kept for ever);
# runs write lines at DATAHUB_RUN_LOG_LEVEL (ERROR, PIPELINE, STEP, DEBUG) unless a pipeline sets its own.
# Both may also be changed on the settings page (/settings/) when the variable is not set.
DATAHUB_KEEP_RUN_LOGS_DAYS = env_int("DATAHUB_KEEP_RUN_LOGS_DAYS", 14, minimum=0)
DATAHUB_RUN_LOG_LEVEL = env_str("DATAHUB_RUN_LOG_LEVEL", "STEP").upper()
# /metrics answers only requests with "Authorization: Bearer <this token>" when it is set.
DATAHUB_METRICS_TOKEN = env_str("DATAHUB_METRICS_TOKEN", "")
# /healthz reports the workers down when none has shown life (finished a task, or written a run's
# heartbeat) for this many seconds. The reaper schedule finishes a task every minute on an idle cluster.
DATAHUB_HEALTH_WORKER_SECONDS = env_int("DATAHUB_HEALTH_WORKER_SECONDS", 180, minimum=10)

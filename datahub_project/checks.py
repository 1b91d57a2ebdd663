"""System checks that catch configuration which would break runs in production."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


@register(Tags.compatibility)
def check_task_timeouts(app_configs, **kwargs):
    errors = []
    q = getattr(settings, "Q_CLUSTER", {})
    timeout, retry = q.get("timeout"), q.get("retry")
    if timeout is None or retry is None or timeout >= retry:
        errors.append(Error(
            f"Q_CLUSTER timeout ({timeout}) must be set and below retry ({retry})",
            hint="Otherwise django-q2 delivers a long run a second time while it still runs. "
            "Set DATAHUB_TASK_TIMEOUT below DATAHUB_TASK_RETRY.",
            id="datahub.E001",
        ))
    if q.get("max_attempts") != 1:
        errors.append(Error(
            "Q_CLUSTER max_attempts must be 1: a run is resumed or failed by Datahub itself, never re-delivered",
            id="datahub.E002",
        ))
    return errors


@register(Tags.compatibility)
def check_registries(app_configs, **kwargs):
    from pipelines import registry

    errors = []
    for kind in ("operator", "extractor", "step type"):
        if not len(registry.ALL[kind]):
            errors.append(Error(f"no {kind} is registered", hint="Check DATAHUB_PLUGIN_MODULES.", id="datahub.E003"))
    return errors


# Checked against each active superuser's hash: the passwords first tried by anyone guessing an admin
# login. Short on purpose: every candidate costs one slow hash per superuser at each start.
WEAK_PASSWORDS = ("admin", "password", "changeme", "datahub", "123456", "12345678", "qwerty", "letmein",
                  "admin123", "password1", "secret")


@register(Tags.security)
def check_weak_superuser_passwords(app_configs, databases=None, **kwargs):
    """datahub.E010: a superuser whose password is the user name or a well-known weak one."""
    if not getattr(settings, "DATAHUB_REFUSE_WEAK_SUPERUSER_PASSWORDS", False):
        return []
    from django.contrib.auth import get_user_model
    from django.db import DatabaseError

    try:
        superusers = list(get_user_model().objects.filter(is_superuser=True, is_active=True))
    except DatabaseError:  # not migrated yet: nobody to check
        return []
    errors = []
    for user in superusers:
        if not user.has_usable_password():
            continue
        if any(user.check_password(candidate) for candidate in (user.get_username(), *WEAK_PASSWORDS)):
            errors.append(Error(
                f"superuser '{user.get_username()}' has a weak password (a well-known one or the user name)",
                hint=f"Set a strong one: manage.py changepassword {user.get_username()}",
                id="datahub.E010",
            ))
    return errors


@register(Tags.compatibility)
def check_event_models(app_configs, **kwargs):
    """datahub.E020: DATAHUB_EVENT_MODELS names something that is not a model EVENT triggers may use."""
    from django.apps import apps

    from runs.model_events.config import REFUSED_APPS, REFUSED_MODELS

    errors = []
    for entry in getattr(settings, "DATAHUB_EVENT_MODELS", None) or []:
        app, _, model = str(entry).partition(".")
        try:
            if model == "*":
                apps.get_app_config(app)
            else:
                apps.get_model(str(entry))
        except (LookupError, ValueError):
            errors.append(Error(f"DATAHUB_EVENT_MODELS names {entry!r}, which is no installed model or app",
                                hint="Write app_label.Model or app_label.*", id="datahub.E020"))
            continue
        if app.lower() in REFUSED_APPS or str(entry).lower() in REFUSED_MODELS:
            errors.append(Error(f"DATAHUB_EVENT_MODELS names {entry!r}, which EVENT triggers may never use",
                                hint="Datahub writes these itself (a run would start runs) or they hold secrets.",
                                id="datahub.E020"))
    return errors


@register(Tags.security)
def check_stored_secrets_decrypt(app_configs, **kwargs):
    """datahub.W011: stored secrets that no master key decrypts. Shown when a worker starts (manage.py worker runs
    the checks), at migrate and at gunicorn's start; a warning, not an error, so the pipelines that do
    not use those secrets keep running."""
    from django.db import DatabaseError

    from pipelines.secrets import undecryptable

    try:
        codes = undecryptable()
    except DatabaseError:  # not migrated yet: nothing stored
        return []
    if not codes:
        return []
    return [Warning(
        f"{len(codes)} stored secret(s) cannot be decrypted by any master key: {', '.join(codes)}",
        hint="Put the master key they were stored under back into DATAHUB_MASTER_KEY (after the newest), "
        "run manage.py rotate_secrets, or set their values again.",
        id="datahub.W011",
    )]


@register(Tags.compatibility)
def check_trace_export(app_configs, **kwargs):
    """datahub.E030: DATAHUB_OTLP_ENDPOINT is set but traces could not be sent (see runs.tracing)."""
    endpoint = getattr(settings, "DATAHUB_OTLP_ENDPOINT", "")
    if not endpoint:
        return []
    from runs.tracing import configuration_problem

    problem = configuration_problem(endpoint)
    if problem is None:
        return []
    return [Error(problem, hint="Runs go on without traces until this is fixed.", id="datahub.E030")]

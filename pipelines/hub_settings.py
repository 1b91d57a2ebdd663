"""Operating settings an admin may change on the settings page, and the ones only shown there.

:data:`EDITABLE` is the one list of what the page may change. Each has an environment variable; where
that variable is set the environment wins and the page shows the value read-only (``source ==
"environment"``). Otherwise a value saved on the page (a :class:`~pipelines.models.HubSetting` row) is
used, else the default from ``settings``. :func:`value` is what code reads (retention, run logs).

:data:`SHOWN` are settings the page only shows: they come from the environment alone (the HTTP
allow-list decides which private addresses outbound HTTP may reach: changing it from a browser would let
a page open the SSRF guard).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from pipelines.definition import RUN_LOG_LEVELS
from pipelines.errors import Problem
from pipelines.models import HubSetting


@dataclass(frozen=True)
class Editable:
    key: str
    label: str
    env: str          # the environment variable (and the Django setting of the same name)
    help: str
    parse: Callable[[str], Any]  # text from the form -> value, or ValueError with the reason


def _days(text: str) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise ValueError("a whole number of days (0: keep for ever)") from None
    if not 0 <= value <= 36500:
        raise ValueError("from 0 to 36500 days")
    return value


def _level(text: str) -> str:
    value = str(text).strip().upper()
    if value not in RUN_LOG_LEVELS:
        raise ValueError(f"one of {', '.join(RUN_LOG_LEVELS)}")
    return value


EDITABLE = [
    Editable("keepRunsDays", "Keep ended runs", "DATAHUB_KEEP_RUNS_DAYS",
             "days after a run ended before it is deleted with its steps and files (0: for ever)", _days),
    Editable("keepRecordErrorsDays", "Keep failed records", "DATAHUB_KEEP_RECORD_ERRORS_DAYS",
             "days failed records stay replayable (0: for ever)", _days),
    Editable("keepRunLogsDays", "Keep run logs", "DATAHUB_KEEP_RUN_LOGS_DAYS",
             "days run log lines are kept (0: for ever)", _days),
    Editable("runLogLevel", "Run log level", "DATAHUB_RUN_LOG_LEVEL",
             "what runs write to their logs unless a pipeline says otherwise: ERROR (errors only), PIPELINE "
             "(the run's start and end), STEP (each step too), DEBUG (every batch)", _level),
]
BY_KEY = {e.key: e for e in EDITABLE}

SHOWN = [
    ("DATAHUB_LOG_LEVEL", "Process log level", "what the web and worker processes log to their console"),
    ("DATAHUB_HTTP_ALLOW", "HTTP allow-list", "private or loopback hosts outbound HTTP may reach (SSRF guard)"),
    ("DATAHUB_HTTP_MAX_BYTES", "Largest HTTP response", "bytes an outbound HTTP response may have"),
    ("DATAHUB_BASE_URL", "Base URL", "how people reach Datahub: links in emails and notices"),
    ("DATAHUB_GATE_LINKS_WITHOUT_LOGIN", "Gate links without login", "email Approve/Reject links work without a login"),
]


def from_environment(item: Editable) -> bool:
    return item.env in os.environ


def value(key: str) -> Any:
    """The setting's value now: the environment's, else the one saved here, else the default."""
    item = BY_KEY[key]
    if not from_environment(item):
        row = HubSetting.objects.filter(key=key).values_list("value", flat=True).first()
        if row is not None:
            return row
    return getattr(settings, item.env)


def rows() -> list[dict]:
    """Every setting as the page shows it: label, value, where it comes from, whether it may change."""
    saved = dict(HubSetting.objects.values_list("key", "value"))
    out = []
    for item in EDITABLE:
        env = from_environment(item)
        source = "environment" if env else ("set here" if item.key in saved else "default")
        shown = getattr(settings, item.env) if env or item.key not in saved else saved[item.key]
        out.append({"key": item.key, "label": item.label, "env": item.env, "help": item.help, "value": shown,
                    "source": source, "editable": not env})
    for env, label, help_text in SHOWN:
        shown = getattr(settings, env, None)
        if env == "DATAHUB_LOG_LEVEL":
            shown = os.environ.get(env, settings.LOGGING["root"]["level"])
        if isinstance(shown, list | tuple):
            shown = ", ".join(shown) or "(none)"
        out.append({"key": env, "label": label, "env": env, "help": help_text, "value": shown,
                    "source": "environment" if env in os.environ else "default", "editable": False})
    return out


def save(values: dict[str, str], user) -> list[Problem]:
    """Save the editable settings given as text; nothing is saved when any is wrong (the problems name
    them). A setting whose environment variable is set is refused."""
    problems: list[Problem] = []
    parsed: dict[str, Any] = {}
    for key, text in values.items():
        item = BY_KEY.get(key)
        if item is None:
            problems.append(Problem(f"'{key}' cannot be changed here", field=key))
        elif from_environment(item):
            problems.append(Problem(f"comes from the environment ({item.env}); change it there", field=key))
        else:
            try:
                parsed[key] = item.parse(text)
            except ValueError as exc:
                problems.append(Problem(str(exc), field=key))
    if problems:
        return problems
    for key, new in parsed.items():
        HubSetting.objects.update_or_create(key=key, defaults={"value": new, "updated_by": user})
    return []

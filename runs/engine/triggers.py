"""What a TRIGGER step's config must say to be usable. [pure]

Checked when a definition is saved (through the TRIGGER step type's ``check``) and again when its
schedule is synced (runs.schedules), with the same messages.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from runs.consumers.config import message_problems
from runs.engine.file_trigger import file_trigger_problems
from runs.engine.webhook_jwt import jwt_problems
from runs.model_events.config import event_problems

CATCH_UP_POLICIES = ("ALL", "LAST", "NONE")


def schedule_problems(config: dict, *, default_timezone: str = "UTC") -> list[tuple[str, str]]:
    """(field, message) for a SCHEDULE trigger's config; empty when it can be scheduled."""
    cron, interval = config.get("cron"), config.get("intervalSec")
    if (cron is None) == (interval is None):
        return [("cron", "a SCHEDULE trigger needs exactly one of cron and intervalSec")]
    if cron is not None and (not isinstance(cron, str) or len(cron.split()) != 5 or not croniter.is_valid(cron)):
        return [("cron", f"cron {cron!r} is not a valid 5-field cron expression (minute hour day month weekday)")]
    if interval is not None and (isinstance(interval, bool) or not isinstance(interval, int) or interval < 1):
        return [("intervalSec", "intervalSec must be a whole number of seconds, at least 1")]
    tz = config.get("timezone") or default_timezone
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return [("timezone", f"unknown time zone {tz!r} (use an IANA name like Europe/Berlin)")]
    policy = str(config.get("catchUp") or "LAST").upper()
    if policy not in CATCH_UP_POLICIES:
        return [("catchUp", f"catchUp must be one of {', '.join(CATCH_UP_POLICIES)}, got {config.get('catchUp')!r}")]
    return []


def webhook_problems(config: dict) -> list[tuple[str, str]]:
    """(field, message) for a WEBHOOK trigger's config."""
    if "authentication" not in config:
        return [("authentication", "a WEBHOOK trigger needs authentication: API_KEY, HMAC, BASIC, JWT, or NONE "
                 "written explicitly")]
    if str(config["authentication"]).upper() == "JWT":
        return jwt_problems(config)
    return []


# The semantic check of each trigger type (beyond the TRIGGER schema), in the type's own module where it
# has one. A type not listed needs nothing beyond the schema.
TRIGGER_CHECKS = {
    "SCHEDULE": schedule_problems,
    "WEBHOOK": webhook_problems,
    "MESSAGE": message_problems,
    "FILE": file_trigger_problems,
    "EVENT": event_problems,
}


def trigger_problems(config: dict) -> list[tuple[str, str]]:
    """The TRIGGER step type's semantic check (beyond its JSON schema)."""
    check = TRIGGER_CHECKS.get(str(config.get("type", "MANUAL")).upper())
    return check(config) if check is not None else []

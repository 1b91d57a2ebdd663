"""Tiny strict helpers that read settings from environment variables.

A value that is set but malformed stops the process with a message naming the variable, instead of
silently falling back to a default.
"""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def env_rate(name: str, default: str) -> str | None:
    """A request rate "N/second|minute|hour|day" (DRF's form); empty means no limit (None)."""
    raw = os.environ.get(name, default).strip()
    if not raw:
        return None
    count, _, period = raw.partition("/")
    if not count.isdigit() or int(count) < 1 or period.strip().lower()[:1] not in ("s", "m", "h", "d"):
        raise ImproperlyConfigured(f"{name} must look like 60/minute (N per second, minute, hour or day), got {raw!r}")
    return raw


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default or [])
    return [part.strip() for part in raw.split(",") if part.strip()]

"""Database values made JSON-safe, and incremental cursors kept in checkpoints. [pure]
"""

from __future__ import annotations

import base64
import math
import uuid
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal, InvalidOperation
from typing import Any

from pipelines.errors import ConfigError


def json_value(value: Any) -> Any:
    """A JSON-safe copy of a value read from a database."""
    t = type(value)
    if value is None or t is str or t is int or t is bool:
        return value
    if t is float:
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return format(value, "f") if value.is_finite() else str(value)
    if isinstance(value, datetime | date | dtime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return iso_duration(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_value(v) for v in value]
    if isinstance(value, int | float | str):  # bool/int/str subclasses (enums)
        return value
    return str(value)


def iso_duration(value: timedelta) -> str:
    """``P1DT2H3M4.5S`` (the form Django's DurationField and most parsers read back)."""
    sign = "-" if value < timedelta(0) else ""
    value = abs(value)
    days, seconds = value.days, value.seconds
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    secs = f"{seconds}.{value.microseconds:06d}".rstrip("0").rstrip(".") if value.microseconds else str(seconds)
    return f"{sign}P{days}DT{hours:02d}H{minutes:02d}M{secs}S"


def encode_cursor(value: Any) -> dict:
    """A value read from the database as ``{"value", "type"}`` for a checkpoint, so that the next run binds
    the same type again (a timestamp stays a timestamp, a Decimal keeps its digits)."""
    if isinstance(value, datetime):
        return {"value": value.isoformat(), "type": "datetime"}
    if isinstance(value, date):
        return {"value": value.isoformat(), "type": "date"}
    if isinstance(value, Decimal):
        return {"value": str(value), "type": "decimal"}
    if isinstance(value, bool | int | float | str) or value is None:
        return {"value": value, "type": "json"}
    return {"value": json_value(value), "type": "json"}


def decode_cursor(data: Mapping) -> Any:
    kind, value = data.get("type", "json"), data.get("value")
    try:
        if kind == "datetime":
            return datetime.fromisoformat(value)
        if kind == "date":
            return date.fromisoformat(value)
        if kind == "decimal":
            return Decimal(value)
    except (TypeError, ValueError, InvalidOperation):
        raise ConfigError(f"the saved checkpoint value {value!r} is not a valid {kind}") from None
    return value

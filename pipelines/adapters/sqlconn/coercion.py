"""A record's value made fit for a column of a given kind, or a ValueError naming column and value. [pure]
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipelines.adapters.sqlconn.dialects import Column, Dialect


_TRUE = frozenset({"true", "t", "yes", "y", "1", "on"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "off"})


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def coerce(d: Dialect, column: Column, value: Any) -> Any:
    kind = column.kind
    if value is None:
        return None
    where = f"column '{column.name}' ({column.data_type or 'untyped'})"
    if isinstance(value, dict | list):
        if kind in ("json", "array", "text", "other"):
            return d.json_param(column, value)
        raise ValueError(f"{where} cannot take {'an object' if isinstance(value, dict) else 'an array'}")
    if kind == "json":
        return d.json_param(column, value)
    if isinstance(value, str) and kind not in ("text", "other", "bytes") and not value.strip():
        return None  # a blank cell is no value
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError(f"{where} takes true or false, got {short(value)}")
    if kind == "int":
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                number = Decimal(value.strip())
            except InvalidOperation:
                number = None
            if number is not None and number.is_finite() and number == number.to_integral_value():
                return int(number)
        raise ValueError(f"{where} takes a whole number, got {short(value)}")
    if kind == "num":
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int | float | Decimal):
            return value
        if isinstance(value, str):
            try:
                number = Decimal(value.strip())
            except InvalidOperation:
                number = None
            if number is not None and number.is_finite():
                return number
        raise ValueError(f"{where} takes a number, got {short(value)}")
    if kind == "text":
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float | Decimal):
            return str(value)
        return value
    if kind in ("datetime", "date"):
        return d.datetime_param(column, value)
    return value

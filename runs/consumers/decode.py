"""A message's body to the records it seeds, or why it is a dead letter. [pure]

A body is UTF-8 JSON: an object is one record, an array of objects that many. Anything else (not UTF-8,
not JSON, a number, an array holding a string, an empty body) is malformed: ``Malformed`` carries the
reason the dead letter keeps. The queueProducer sink's DELETE messages come back as records with
``__operation: "DELETE"``, so a pipeline can pass them on to a loader that deletes.
"""

from __future__ import annotations

import json

MAX_REASON_SAMPLE = 80


class Malformed(ValueError):
    """The message cannot become records; its text is the dead letter's reason."""


def _no_constants(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _kind(value) -> str:
    return {str: "a string", bool: "a boolean", int: "a number", float: "a number", list: "an array",
            type(None): "null"}.get(type(value), type(value).__name__)


def _holds_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


def decode(body: bytes, *, operation: str | None = None) -> list[dict]:
    """The records of ``body``; ``operation`` DELETE (the producer's header or field) marks each one."""
    if not body.strip():
        raise Malformed("the message is empty")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Malformed(f"the message is not UTF-8 (byte {exc.start})") from None
    try:
        data = json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise Malformed(f"not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno} "
                        f"(starts {text[:MAX_REASON_SAMPLE]!r})") from None
    except ValueError as exc:
        raise Malformed(f"not JSON: {exc}") from None
    except RecursionError:
        raise Malformed("not JSON: nested too deeply") from None
    if isinstance(data, dict):
        records = [data]
    elif isinstance(data, list):
        for i, item in enumerate(data):
            if not isinstance(item, dict):
                raise Malformed(f"item {i} of the array is {_kind(item)}, not an object")
        records = data
    else:
        raise Malformed(f"the message must be a JSON object or an array of objects, not {_kind(data)}")
    try:
        holds_nul = "\\u0000" in text and _holds_nul(records)
    except RecursionError:
        raise Malformed("not JSON: nested too deeply") from None
    if holds_nul:
        raise Malformed("the message holds a NUL character (\\u0000), which the database cannot store")
    if operation and operation.upper() == "DELETE":
        records = [{**r, "__operation": "DELETE"} for r in records]
    return records

"""Helpers that several operator modules share: args schemas and field-path arguments. [pure]

:mod:`pipelines.operators.numbers` (``arg_path``, ``getter``, ``setter``) and
:mod:`pipelines.operators.json_ops` (``compile_path``) keep path helpers of their own: they differ from
:func:`field_path` in what they accept and in the message of a bad path, which users see.
"""

from __future__ import annotations

from pipelines.errors import ConfigError
from pipelines.records import Path, PathError, path


def args_schema(properties: dict, required: list[str]) -> dict:
    """An operator's args schema: an object of ``properties``, ``required`` ones, nothing else."""
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def path_prop(description: str) -> dict:
    """The schema of an argument that holds a field path."""
    return {"type": "string", "minLength": 1, "description": description}


def field_path(args: dict, name: str, *, required: bool = True) -> Path | None:
    """The compiled field path of argument ``name``; None when it is absent and not ``required``."""
    text = args.get(name)
    if text is None or text == "":
        if required:
            raise ConfigError(f"'{name}' is required (a field path)", field=name)
        return None
    if not isinstance(text, str):
        raise ConfigError("must be a field path (a string)", field=name)
    try:
        return path(text)
    except PathError as exc:
        raise ConfigError(str(exc), field=name) from None

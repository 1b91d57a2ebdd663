"""The schema-to-form engine: validation problems put next to the fields they are about."""

from __future__ import annotations

import re

from pipelines.errors import Problem
from pipelines.forms.fields import Field

_INDEX = re.compile(r"\[(\d+)\]")
_REQUIRED = re.compile(r"^'([^']+)' is required$")


def problem_path(problem: Problem) -> tuple[str, str]:
    """(field path in form names, message) for a problem; 'x is required' points at x itself."""
    path = _INDEX.sub(r".\1", problem.field or "").strip(".")
    m = _REQUIRED.match(problem.message)
    if m:
        path = f"{path}.{m.group(1)}" if path else m.group(1)
        return path, "is required"
    return path, problem.message


def walk(fields: list[Field]):
    for f in fields:
        yield f
        yield from walk(f.children)
        for item in f.items:
            yield item
            yield from walk(item.fields)


def attach(fields: list[Field], errors: dict[str, list[str]]) -> list[str]:
    """Put each error on the field with its name, or the nearest enclosing one; return the rest."""
    index = {x.name: x for x in walk(fields)}
    rest = []
    for name, messages in errors.items():
        path = name
        target = None
        while path:
            target = index.get(path)
            if target is not None:
                break
            path = path.rpartition(".")[0]
        if target is None:
            rest.extend(messages)
        else:
            for message in messages:
                if message not in target.errors:
                    target.errors.append(message)
    return rest

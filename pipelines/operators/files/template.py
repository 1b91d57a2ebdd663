"""The HTML template engine of ``pdfGenerate``: ``{{a.b}}`` (escaped) and ``{{#each}}`` blocks."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any

from pipelines.records import MISSING, Path, PathError, dumps

# --------------------------------------------------------------------------------------------- templates

_TAG = re.compile(r"\{\{\s*(.*?)\s*\}\}", re.DOTALL)


class TemplateError(ValueError):
    pass


@dataclass(frozen=True)
class _Var:
    name: str
    path: Path | None  # None for 'this' and '@index'


@dataclass(frozen=True)
class _Each:
    path: Path
    body: tuple


def _var(expr: str) -> _Var:
    if expr in ("this", "@index"):
        return _Var(expr, None)
    name = expr[5:] if expr.startswith("this.") else expr
    try:
        return _Var(expr, Path(name))
    except PathError as exc:
        raise TemplateError(f"'{{{{{expr}}}}}': {exc}") from None


class Template:
    """The plugin's ``{{a.b}}`` placeholders plus ``{{#each list}}...{{/each}}``; values are HTML-escaped."""

    def __init__(self, text: str):
        self.text = text
        stack: list[tuple[str, list]] = [("", [])]
        pos = 0
        for m in _TAG.finditer(text):
            if m.start() > pos:
                stack[-1][1].append(text[pos : m.start()])
            pos = m.end()
            expr = m.group(1)
            if expr.startswith("#each"):
                target = expr[5:].strip()
                if not target or not expr[5:6].isspace():
                    raise TemplateError(f"'{{{{{expr}}}}}' needs a list field, as in {{{{#each items}}}}")
                stack.append((target, []))
            elif expr == "/each":
                if len(stack) == 1:
                    raise TemplateError("'{{/each}}' without a matching '{{#each ...}}'")
                target, body = stack.pop()
                try:
                    each = _Each(Path(target[5:] if target.startswith("this.") else target), tuple(body))
                except PathError as exc:
                    raise TemplateError(f"'{{{{#each {target}}}}}': {exc}") from None
                stack[-1][1].append(each)
            elif expr[:1] in ("#", "/", ">", "!", "{"):
                raise TemplateError(
                    f"'{{{{{expr}}}}}' is not supported: use {{{{field}}}} or {{{{#each list}}}}"
                )
            elif not expr:
                raise TemplateError("'{{}}' names no field")
            else:
                stack[-1][1].append(_var(expr))
        if len(stack) > 1:
            raise TemplateError(f"'{{{{#each {stack[-1][0]}}}}}' is never closed with '{{{{/each}}}}'")
        if pos < len(text):
            stack[0][1].append(text[pos:])
        self.nodes = tuple(stack[0][1])

    def render(self, record: Any) -> str:
        out: list[str] = []
        self._render(self.nodes, [(record, None)], out)
        return "".join(out)

    def _render(self, nodes: tuple, scopes: list, out: list[str]) -> None:
        for node in nodes:
            if type(node) is str:
                out.append(node)
            elif type(node) is _Var:
                out.append(html.escape(as_text(self._lookup(node, scopes)), quote=True))
            else:
                items = self._resolve(node.path, scopes)
                if type(items) is not list:
                    continue
                for index, item in enumerate(items):
                    scopes.append((item, index))
                    self._render(node.body, scopes, out)
                    scopes.pop()

    def _lookup(self, var: _Var, scopes: list) -> Any:
        item, index = scopes[-1]
        if var.name == "this":
            return item
        if var.name == "@index":
            return index
        if var.name.startswith("this."):
            return var.path.get(item)
        return self._resolve(var.path, scopes)

    @staticmethod
    def _resolve(path: Path, scopes: list) -> Any:
        # Innermost scope first, then outwards: inside {{#each lines}}, {{sku}} is the line's and
        # {{currency}} (which a line lacks) the record's.
        for item, _ in reversed(scopes):
            value = path.get(item)
            if value is not MISSING:
                return value
        return MISSING


def as_text(value: Any) -> str:
    """A value as the plugin's String(value) would show it (missing and null: empty)."""
    if value is MISSING or value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is float and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    if type(value) in (dict, list):
        return dumps(value).decode()
    return str(value)



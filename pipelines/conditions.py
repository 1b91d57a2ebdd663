"""Conditions: ``{field, cmp, value}`` and the 19 comparators shared by ``when``, ``ifThenElse`` and ROUTE. [pure]

A condition reads one field of a record and compares it with a fixed value. ``operator`` is accepted as an
alias of ``cmp`` (the plugin reads both); ``cmp`` defaults to ``eq``. A list of conditions is ANDed.

The comparators follow the plugin's ``compare`` (its ``src/operators/helpers.ts``), which is JavaScript:

* a missing field reads as ``null`` (so ``{field: "x", cmp: "eq", value: null}`` matches a record without x);
* ``eq``/``ne`` are strict (``===``): no coercion, ``1`` is not ``"1"`` and ``true`` is not ``1``, while
  ``1`` equals ``1.0`` because JSON has one number type;
* ``gt``/``gte``/``lt``/``lte`` compare numbers only (a boolean is not a number); anything else is false;
* ``contains``/``notContains``/``startsWith``/``endsWith``/``regex``/``matches`` apply to strings only (not
  lists: the plugin's ``contains`` is a substring test); a non-string field is false for all of them,
  ``notContains`` included;
* ``in``/``notIn`` test membership of the field's value in the ``value`` list;
* ``exists`` is "not null and not missing", ``notExists`` and ``isNull`` its opposite; ``isEmpty`` is
  ``''``, ``null``, missing or ``[]`` (not ``{}``, not whitespace), ``isNotEmpty`` its opposite.

Where we differ from the plugin, on purpose (it fails silently where we can say what is wrong):

* An unknown comparator is a :class:`ConfigError` naming the known ones (the plugin evaluates it to false).
* A ``value`` that can never match its comparator (``gt`` against a string, ``in`` without a list, a regex
  that does not compile or is unsafe) is a :class:`ConfigError` when the condition is compiled. The
  comparator functions in :data:`COMPARATORS` still return false for such values, as the plugin does,
  for callers that compare values they did not compile.
* ``eq``/``ne``/``in`` compare lists and objects by content (JavaScript compares them by reference, so in
  the plugin ``eq`` against a list or object is always false).
* ``exists``/``notExists`` mean what they say (the plugin's DSL helper emits them inverted).

Regular expressions in configs are written for JavaScript and compiled by :func:`pipelines.js.regex`.
"""

from __future__ import annotations

import difflib
import operator
from collections.abc import Callable
from typing import Any

from pipelines import js
from pipelines.errors import ConfigError
from pipelines.records import MISSING, PathError, Record, path

# ---------------------------------------------------------------------------------------------------------
# JavaScript value semantics the plugin's operators rely on
# ---------------------------------------------------------------------------------------------------------

_NUMBER_TYPES = (int, float)


def is_number(value: Any) -> bool:
    """A JSON number: an int or float, never a bool (``True`` is an ``int`` in Python, not in JSON)."""
    t = type(value)
    return t is int or t is float


def strict_equal(a: Any, b: Any) -> bool:
    """JavaScript ``===`` for JSON values, except that lists and objects compare by content.

    ``1 == 1.0`` (one number type), ``1 != True`` and ``0 != False`` (different types), ``"1" != 1``.
    """
    ta = type(a)
    tb = type(b)
    if ta is tb:
        if ta is dict:
            if len(a) != len(b):
                return False
            for key, value in a.items():
                if key not in b or not strict_equal(value, b[key]):
                    return False
            return True
        if ta is list:
            return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b, strict=True))
        return a == b
    if (ta is int or ta is float) and (tb is int or tb is float):
        return a == b
    return False


# ---------------------------------------------------------------------------------------------------------
# The 19 comparators: (actual, expected) -> bool. ``actual`` may be MISSING (read as null).
# ---------------------------------------------------------------------------------------------------------


def _eq(a: Any, b: Any) -> bool:
    if a is MISSING:
        a = None
    if b is MISSING:
        b = None
    return strict_equal(a, b)


def _ne(a: Any, b: Any) -> bool:
    return not _eq(a, b)


def _numbers(a: Any, b: Any) -> bool:
    return (type(a) is int or type(a) is float) and (type(b) is int or type(b) is float)


def _gt(a: Any, b: Any) -> bool:
    return _numbers(a, b) and a > b


def _gte(a: Any, b: Any) -> bool:
    return _numbers(a, b) and a >= b


def _lt(a: Any, b: Any) -> bool:
    return _numbers(a, b) and a < b


def _lte(a: Any, b: Any) -> bool:
    return _numbers(a, b) and a <= b


def _in(a: Any, b: Any) -> bool:
    if type(b) is not list:
        return False
    if a is MISSING:
        a = None
    return any(strict_equal(a, item) for item in b)


def _not_in(a: Any, b: Any) -> bool:
    return type(b) is list and not _in(a, b)


def _strings(a: Any, b: Any) -> bool:
    return type(a) is str and type(b) is str


def _contains(a: Any, b: Any) -> bool:
    return _strings(a, b) and b in a


def _not_contains(a: Any, b: Any) -> bool:
    return _strings(a, b) and b not in a


def _starts_with(a: Any, b: Any) -> bool:
    return _strings(a, b) and a.startswith(b)


def _ends_with(a: Any, b: Any) -> bool:
    return _strings(a, b) and a.endswith(b)


def _regex(a: Any, b: Any) -> bool:
    if not _strings(a, b):
        return False
    try:
        compiled = js.regex(b)
    except ValueError:
        return False
    return compiled.search(a) is not None


def _matches(a: Any, b: Any) -> bool:
    return _strings(a, b) and js.glob_regex(b).fullmatch(a) is not None


def _exists(a: Any, b: Any = None) -> bool:
    return a is not None and a is not MISSING


def _not_exists(a: Any, b: Any = None) -> bool:
    return a is None or a is MISSING


def _is_empty(a: Any, b: Any = None) -> bool:
    return a is None or a is MISSING or (type(a) is str and a == "") or (type(a) is list and not a)


def _is_not_empty(a: Any, b: Any = None) -> bool:
    return not _is_empty(a)


COMPARATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": _eq,
    "ne": _ne,
    "gt": _gt,
    "gte": _gte,
    "lt": _lt,
    "lte": _lte,
    "in": _in,
    "notIn": _not_in,
    "contains": _contains,
    "notContains": _not_contains,
    "startsWith": _starts_with,
    "endsWith": _ends_with,
    "regex": _regex,
    "matches": _matches,
    "exists": _exists,
    "notExists": _not_exists,
    "isNull": _not_exists,
    "isEmpty": _is_empty,
    "isNotEmpty": _is_not_empty,
}

# What each comparator's ``value`` must be; None: any JSON value; "ignored": not read.
_VALUE_KIND: dict[str, str | None] = {
    "eq": None,
    "ne": None,
    "gt": "number",
    "gte": "number",
    "lt": "number",
    "lte": "number",
    "in": "list",
    "notIn": "list",
    "contains": "string",
    "notContains": "string",
    "startsWith": "string",
    "endsWith": "string",
    "regex": "string",
    "matches": "string",
    "exists": "ignored",
    "notExists": "ignored",
    "isNull": "ignored",
    "isEmpty": "ignored",
    "isNotEmpty": "ignored",
}

CONDITION_SCHEMA: dict = {
    "type": "object",
    "description": (
        "One test of a record field: {field, cmp, value}. 'operator' is accepted as another name for 'cmp'."
    ),
    "properties": {
        "field": {
            "type": "string",
            "minLength": 1,
            "description": "Dot path of the field to test, e.g. 'price' or 'customer.email'.",
        },
        "cmp": {
            "type": "string",
            "enum": list(COMPARATORS),
            "default": "eq",
            "description": (
                "How to compare: eq/ne (strict, no type coercion), gt/gte/lt/lte (numbers only), in/notIn "
                "(value is a list), contains/notContains/startsWith/endsWith (strings), regex (JavaScript "
                "syntax), matches (glob: * and ?), exists/notExists (not null/missing), isNull, isEmpty "
                "('', null, missing or []), isNotEmpty. A missing field reads as null."
            ),
        },
        "operator": {
            "type": "string",
            "enum": list(COMPARATORS),
            "description": "Another name for 'cmp' (the plugin accepts both); give one of them.",
        },
        "value": {
            "description": "The value to compare with; not read by exists/notExists/isNull/isEmpty/isNotEmpty."
        },
    },
    "required": ["field"],
    "additionalProperties": False,
}


def _unknown_comparator(cmp: Any) -> str:
    known = list(COMPARATORS)
    text = f"unknown comparator {cmp!r}"
    close = difflib.get_close_matches(str(cmp), known, n=1, cutoff=0.6)
    if not close:
        close = [k for k in known if k.lower() == str(cmp).lower()]
    if close:
        text += f"; did you mean '{close[0]}'?"
    return text + f" (known: {', '.join(known)})"


def _check_value(cmp: str, value: Any, where: str) -> None:
    kind = _VALUE_KIND[cmp]
    if kind is None or kind == "ignored":
        return
    if kind == "number" and not is_number(value):
        raise ConfigError(f"'{cmp}' compares numbers, so value must be a number, got {value!r}", field=where)
    if kind == "list" and type(value) is not list:
        raise ConfigError(f"'{cmp}' needs value to be a list, got {value!r}", field=where)
    if kind == "string" and type(value) is not str:
        raise ConfigError(f"'{cmp}' compares strings, so value must be a string, got {value!r}", field=where)
    if cmp == "regex":
        try:
            js.regex(value)
        except ValueError as exc:
            raise ConfigError(f"regex {value!r} cannot be used: {exc}", field=where) from None


def _prefix(field: str | None, name: str) -> str:
    return f"{field}.{name}" if field else name


def compile_condition(cond: dict, *, field: str | None = None) -> Callable[[Record], bool]:
    """A predicate for one ``{field, cmp, value}``; ``field`` prefixes the error location (e.g. ``condition``).

    Raises :class:`ConfigError` for a bad shape, an unknown comparator or a value that cannot match.
    """
    if not isinstance(cond, dict):
        raise ConfigError(
            'a condition must be an object like {"field": "price", "cmp": "gt", "value": 0}', field=field
        )
    unknown = sorted(set(cond) - {"field", "cmp", "operator", "value"})
    if unknown:
        raise ConfigError(
            f"unknown key(s) {', '.join(map(repr, unknown))} in a condition; use field, cmp and value",
            field=field,
        )
    name = cond.get("field")
    if not isinstance(name, str) or not name:
        raise ConfigError(
            "a condition needs 'field', the dot path of the field to test", field=_prefix(field, "field")
        )
    try:
        p = path(name)
    except PathError as exc:
        raise ConfigError(str(exc), field=_prefix(field, "field")) from None
    if "cmp" in cond and "operator" in cond and cond["cmp"] != cond["operator"]:
        raise ConfigError(
            f"give either 'cmp' or 'operator', not both with different values ({cond['cmp']!r} and {cond['operator']!r})",
            field=_prefix(field, "cmp"),
        )
    key = "operator" if "operator" in cond and "cmp" not in cond else "cmp"
    cmp = cond.get(key)
    if cmp is None:
        cmp = "eq"
    where = _prefix(field, key)
    if not isinstance(cmp, str) or cmp not in COMPARATORS:
        raise ConfigError(_unknown_comparator(cmp), field=where)
    value = cond.get("value")
    _check_value(cmp, value, _prefix(field, "value"))
    return _specialise(p, cmp, value)


_SET_MEMBER_TYPES = frozenset({str, int, float, type(None)})


def _specialise(p: Any, cmp: str, value: Any) -> Callable[[Record], bool]:
    """The predicate, with the common cases written out so a million records pay one call each."""
    get = p.get
    if cmp == "eq" or cmp == "ne":
        positive = cmp == "eq"
        t = type(value)
        if value is None:

            def test(r: Record) -> bool:
                return get(r, None) is None
        elif t is str:

            def test(r: Record) -> bool:
                return get(r, None) == value  # only a str equals a str
        elif t is bool:

            def test(r: Record) -> bool:
                return get(r, None) is value
        elif t is int or t is float:

            def test(r: Record) -> bool:
                v = get(r, None)
                tv = type(v)
                return (tv is int or tv is float) and v == value
        else:

            def test(r: Record) -> bool:
                return strict_equal(get(r, None), value)

        if positive:
            return test
        return lambda r: not test(r)
    if cmp in ("gt", "gte", "lt", "lte"):
        op = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}[cmp]

        def compare(r: Record) -> bool:
            v = get(r, None)
            tv = type(v)
            return (tv is int or tv is float) and op(v, value)

        return compare
    if cmp in ("in", "notIn"):
        # Scalars (no bools: True == 1 in a Python set) go in a set; v's type is checked before the lookup.
        if all(type(x) in _SET_MEMBER_TYPES for x in value):
            members = frozenset(value)
            has_null = None in members

            def member(r: Record) -> bool:
                v = get(r, None)
                if v is None:
                    return has_null
                return type(v) in _SET_MEMBER_TYPES and v in members

            if cmp == "in":
                return member
            return lambda r: not member(r)
        fn = COMPARATORS[cmp]
        return lambda r: fn(get(r, None), value)
    if cmp == "regex":
        search = js.regex(value).search
        return lambda r: type(v := get(r, None)) is str and search(v) is not None
    if cmp == "matches":
        full = js.glob_regex(value).fullmatch
        return lambda r: type(v := get(r, None)) is str and full(v) is not None
    if cmp == "exists":
        return lambda r: get(r, None) is not None
    if cmp in ("notExists", "isNull"):
        return lambda r: get(r, None) is None
    fn = COMPARATORS[cmp]
    return lambda r: fn(get(r, None), value)


def compile_conditions(conds: list[dict], *, field: str | None = None) -> Callable[[Record], bool]:
    """A predicate that is true when every condition holds (an empty list is always true)."""
    if not isinstance(conds, list):
        raise ConfigError("conditions must be a list of {field, cmp, value} objects", field=field)
    tests = [compile_condition(c, field=f"{field}[{i}]" if field else f"[{i}]") for i, c in enumerate(conds)]
    if not tests:
        return lambda r: True
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        a, b = tests
        return lambda r: a(r) and b(r)
    return lambda r: all(t(r) for t in tests)

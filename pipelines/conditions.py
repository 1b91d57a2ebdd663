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

Regular expressions in configs are written for JavaScript; :func:`js_regex` compiles them with JavaScript's
meaning (``$`` is the end of the text, ``\\d``/``\\w``/``\\b`` are ASCII, ``.`` stops at any line break)
after the plugin's ReDoS checks (:func:`regex_problem`).
"""

from __future__ import annotations

import difflib
import math
import operator
import re
from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache
from typing import Any

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


def js_number(value: float | int) -> str:
    """``String(n)`` in JavaScript: ``1.0`` -> ``"1"``, ``1e-7`` -> ``"1e-7"``, ``1e21`` -> ``"1e+21"``."""
    if type(value) is int:
        if abs(value) < 10**21:
            return str(value)
        value = float(value)
    if value != value:
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"
    sign, digits_t, exponent = Decimal(repr(value)).normalize().as_tuple()
    digits = "".join(map(str, digits_t))
    k = len(digits)
    n = int(exponent) + k  # the decimal point sits after the n-th digit
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
        text = f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
    return "-" + text if sign else text


def js_string(value: Any) -> str:
    """``String(value)`` in JavaScript for JSON values (what the plugin's templates and ids use)."""
    t = type(value)
    if t is str:
        return value
    if t is bool:
        return "true" if value else "false"
    if t is int or t is float:
        return js_number(value)
    if value is None:
        return "null"
    if value is MISSING:
        return "undefined"
    if t is list:
        return ",".join("" if v is None or v is MISSING else js_string(v) for v in value)
    if t is dict:
        return "[object Object]"
    return str(value)


# ---------------------------------------------------------------------------------------------------------
# Regular expressions written for JavaScript
# ---------------------------------------------------------------------------------------------------------

MAX_PATTERN_LENGTH = 256
_NESTED_QUANTIFIER = re.compile(r"\([^)]*[+*][^)]*\)[+*{]")
_ADJACENT_QUANTIFIER = re.compile(r"[+*}][+*]")
_BACKREF_QUANTIFIER = re.compile(r"\\[1-9]\d*[+*{]")

_JS_SPACE = r"\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_WORD = "A-Za-z0-9_"
_OUTSIDE_CLASS = {
    "d": "[0-9]",
    "D": "[^0-9]",
    "w": f"[{_WORD}]",
    "W": f"[^{_WORD}]",
    "s": f"[{_JS_SPACE}]",
    "S": f"[^{_JS_SPACE}]",
    "b": f"(?:(?<=[{_WORD}])(?![{_WORD}])|(?<![{_WORD}])(?=[{_WORD}]))",
    "B": f"(?:(?<=[{_WORD}])(?=[{_WORD}])|(?<![{_WORD}])(?![{_WORD}]))",
}
_INSIDE_CLASS = {"d": "0-9", "w": _WORD, "s": _JS_SPACE, "b": r"\x08"}
# Escapes that mean the same in both dialects; any other escaped letter is that letter in JavaScript.
_SAME_ESCAPES = set("fnrtv")


def regex_problem(pattern: Any) -> str | None:
    """Why the plugin would refuse ``pattern`` (too long, or shaped for catastrophic backtracking), or None."""
    if not isinstance(pattern, str) or not pattern:
        return "the pattern must be a non-empty string"
    if len(pattern) > MAX_PATTERN_LENGTH:
        return f"the pattern is longer than {MAX_PATTERN_LENGTH} characters"
    if _NESTED_QUANTIFIER.search(pattern):
        return "the pattern nests quantifiers like (a+)+, which can backtrack catastrophically"
    if _ADJACENT_QUANTIFIER.search(pattern):
        return "the pattern has adjacent quantifiers like a*+, which can backtrack catastrophically"
    if _BACKREF_QUANTIFIER.search(pattern):
        return "the pattern repeats a backreference like \\1+, which can backtrack exponentially"
    return None


def _translate_js_regex(pattern: str, multiline: bool, dotall: bool) -> str:
    out: list[str] = []
    i = 0
    n = len(pattern)
    in_class = False
    line_breaks = r"\n\r\u2028\u2029"
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            e = pattern[i + 1]
            i += 2
            if in_class:
                if e in _INSIDE_CLASS:
                    out.append(_INSIDE_CLASS[e])
                elif e in "DWS" or e in _SAME_ESCAPES or e in "xuc" or not e.isascii() or not e.isalnum():
                    out.append("\\" + e)
                elif e == "0":
                    out.append(r"\x00")
                else:
                    out.append(re.escape(e))
                continue
            if e in _OUTSIDE_CLASS:
                out.append(_OUTSIDE_CLASS[e])
            elif e == "k" and i < n and pattern[i] == "<":
                end = pattern.find(">", i)
                if end == -1:
                    raise re.error("unterminated group name")
                out.append(f"(?P={pattern[i + 1 : end]})")
                i = end + 1
            elif e == "0" and not (i < n and pattern[i].isdigit()):
                out.append(r"\x00")
            elif e.isdigit() or e in _SAME_ESCAPES or e in "xuc" or not e.isascii() or not e.isalnum():
                out.append("\\" + e)
            else:
                out.append(re.escape(e))  # \e, \a, \A, \Z, ... are plain letters in JavaScript
            continue
        if in_class:
            if c == "]":
                in_class = False
            elif c == "[":
                c = r"\["
            out.append(c)
        elif c == "[":
            if pattern.startswith("[]", i):
                out.append("(?!)")  # an empty class matches nothing
                i += 2
                continue
            if pattern.startswith("[^]", i):
                out.append(r"[\s\S]")  # any character
                i += 3
                continue
            in_class = True
            out.append("[")
            if i + 1 < n and pattern[i + 1] == "^":
                out.append("^")
                i += 1
        elif c == "$":
            out.append(f"(?=[{line_breaks}]|\\Z)" if multiline else r"\Z")
        elif c == "^" and multiline:
            out.append(f"(?:(?<=[{line_breaks}])|\\A)")
        elif c == ".":
            out.append(r"[\s\S]" if dotall else f"[^{line_breaks}]")
        elif c == "(" and pattern.startswith("(?<", i) and not pattern.startswith(("(?<=", "(?<!"), i):
            out.append("(?P<")
            i += 3
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out)


@lru_cache(maxsize=1024)
def js_regex(pattern: str, flags: str = "") -> re.Pattern[str]:
    """Compile a JavaScript regular expression (flags ``i``, ``m``, ``s``; ``g``, ``u``, ``y`` ignored).

    Raises ``ValueError`` with a readable reason for an unsafe or invalid pattern.
    """
    problem = regex_problem(pattern)
    if problem:
        raise ValueError(problem)
    unknown = set(flags) - set("gimsuy")
    if unknown:
        raise ValueError(f"unknown regex flag(s) {''.join(sorted(unknown))!r}; use g, i, m, s, u or y")
    try:
        return re.compile(
            _translate_js_regex(pattern, "m" in flags, "s" in flags),
            re.IGNORECASE if "i" in flags else 0,
        )
    except re.error as exc:
        raise ValueError(f"the pattern does not compile: {exc}") from None


@lru_cache(maxsize=1024)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob (``*`` any run of characters, ``?`` one character, the rest literal) matched whole."""
    parts = []
    for c in pattern:
        parts.append(".*" if c == "*" else "." if c == "?" else re.escape(c))
    return re.compile("".join(parts), re.DOTALL)


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
        compiled = js_regex(b)
    except ValueError:
        return False
    return compiled.search(a) is not None


def _matches(a: Any, b: Any) -> bool:
    return _strings(a, b) and glob_regex(b).fullmatch(a) is not None


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
            js_regex(value)
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
        search = js_regex(value).search
        return lambda r: type(v := get(r, None)) is str and search(v) is not None
    if cmp == "matches":
        full = glob_regex(value).fullmatch
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

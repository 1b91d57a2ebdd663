"""JavaScript's value semantics, written once: the plugin runs on Node, and its pipelines mean them. [pure]

* :func:`string` is ``String(value)`` for JSON values (``20`` not ``20.0``, ``1.5e-5`` -> ``"0.000015"``,
  ``1e21`` -> ``"1e+21"``, a list joined with commas, an object ``"[object Object]"``, a missing value
  ``"undefined"``); :func:`number_text` is ``String(n)`` for a number. Integers below 10**21 keep all their
  digits (JavaScript prints every integer it holds exactly; a record here may hold a larger exact integer
  than a double can, and we would rather not round an id).
* :func:`normal_number` writes an integral float as an int, as the plugin's JSON shows it (``20``).
* :func:`parse_float` is ``parseFloat``: the leading decimal number of a string.
* :data:`WHITESPACE` is what ``String.prototype.trim`` removes (and regex ``\\s`` matches).
* :func:`regex` compiles a pattern written for JavaScript with JavaScript's meaning (``$`` is the end of the
  text, ``\\d``/``\\w``/``\\b`` are ASCII, ``.`` stops at any line break), after one safety guard
  (:func:`regex_problem`) against patterns that backtrack catastrophically.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

from pipelines.records import MISSING

MAX_SAFE_INTEGER = 9007199254740991

# JavaScript's WhiteSpace + LineTerminator (what String.prototype.trim and regex \s use).
WHITESPACE = (
    "\t\n\x0b\x0c\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)
# The same set as the body of a regex character class.
WHITESPACE_CLASS = "\\t\\n\\x0b\\x0c\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff"


# ---------------------------------------------------------------------------------------------------------
# Numbers and String()


def number_text(x: float | int) -> str:
    """JavaScript's ``String(n)``: shortest round-trip digits, exponent form below 1e-6 and from 1e21."""
    if type(x) is int:
        if -(10**21) < x < 10**21:
            return str(x)
        x = float(x)
    if x != x:
        return "NaN"
    if x == math.inf:
        return "Infinity"
    if x == -math.inf:
        return "-Infinity"
    if x == 0:
        return "0"
    if x.is_integer() and -1e21 < x < 1e21:
        return str(int(x))
    sign = "-" if x < 0 else ""
    mantissa, _, exp_text = repr(abs(x)).partition("e")
    exponent = int(exp_text) if exp_text else 0
    int_part, _, frac_part = mantissa.partition(".")
    digits = (int_part + frac_part).lstrip("0")
    stripped = digits.rstrip("0")
    # value = int(stripped) * 10 ** (n - k): k digits, decimal point after the n-th.
    k = len(stripped)
    n = exponent - len(frac_part) + (len(digits) - k) + k
    if k <= n <= 21:
        return sign + stripped + "0" * (n - k)
    if 0 < n <= 21:
        return sign + stripped[:n] + "." + stripped[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + stripped
    e = n - 1
    exp_str = ("e+" if e >= 0 else "e-") + str(abs(e))
    if k == 1:
        return sign + stripped + exp_str
    return sign + stripped[0] + "." + stripped[1:] + exp_str


def string(value: Any) -> str:
    """JavaScript's ``String(value)`` for JSON values (and ``undefined`` for a missing one)."""
    t = type(value)
    if t is str:
        return value
    if t is bool:
        return "true" if value else "false"
    if t is int or t is float:
        return number_text(value)
    if value is None:
        return "null"
    if value is MISSING:
        return "undefined"
    if t is list:
        return ",".join("" if v is None or v is MISSING else string(v) for v in value)
    if t is dict:
        return "[object Object]"
    return str(value)


def normal_number(value: float | int) -> float | int:
    """A float with no fractional part (within the safe-integer range) as an int; -0.0 becomes 0."""
    if type(value) is float and value.is_integer() and -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        return int(value)
    return value


_PARSE_FLOAT = re.compile(f"[{WHITESPACE_CLASS}]*([+-]?(?:[0-9]+(?:\\.[0-9]*)?|\\.[0-9]+)(?:[eE][+-]?[0-9]+)?)")
_FLOAT_START = frozenset("0123456789+-. \t\n\r\x0b\x0c")


def parse_float(text: str) -> float | int | None:
    """JavaScript's ``parseFloat``: the leading decimal number of ``text``, or None.

    ``Infinity`` (and overflowing exponents) give None: a JSON record cannot hold a non-finite number.
    """
    # Fast path: Python's float() agrees with parseFloat on plain ASCII numbers ('_' and the \x1c-\x1f
    # "whitespace" are Python-only, and inf/nan fall through to the check below).
    if text[:1] in _FLOAT_START and text.isascii() and "_" not in text:
        try:
            value = float(text)
        except ValueError:
            pass
        else:
            if value - value == 0:  # finite
                return normal_number(value)
    m = _PARSE_FLOAT.match(text)
    if m is None:
        return None
    value = float(m.group(1))
    if value - value != 0:  # inf
        return None
    return normal_number(value)


# parse_float's fast path and normal_number as statements a compiled loop writes in place
# (pipelines.operators.base.inline): they set ``v`` to ``parse_float(v)`` for the string ``v`` with no call
# where float() reads it as parseFloat does, and call parse_float for everything else (and for what
# float() reads as infinite). Two calls per string were most of toNumber's cost in a chain.
PARSE_FLOAT_INLINE = ("""if v and v[0] in {float_start} and v.isascii() and "_" not in v:
    try:
        n = {to_float}(v)
    except ValueError:
        v = {parse_float}(v)
    else:
        if n - n != 0:
            v = {parse_float}(v)
        elif n.is_integer() and {min_safe} <= n <= {max_safe}:
            v = {to_int}(n)
        else:
            v = n
else:
    v = {parse_float}(v)""", {"float_start": _FLOAT_START, "to_float": float, "to_int": int,
                                "parse_float": parse_float, "min_safe": -MAX_SAFE_INTEGER,
                                "max_safe": MAX_SAFE_INTEGER})


# ---------------------------------------------------------------------------------------------------------
# Regular expressions written for JavaScript

MAX_PATTERN_LENGTH = 256  # the plugin's limit
FLAGS = "gimsuy"
_NESTED_QUANTIFIER = re.compile(r"\([^)]*[+*][^)]*\)[+*{]")
_ADJACENT_QUANTIFIER = re.compile(r"[+*}][+*]")
_BACKREF_QUANTIFIER = re.compile(r"\\[1-9]\d*[+*{]")
_BOUNDED_REPEAT = re.compile(r"\{(\d+)(,(\d*))?\}")
_BIG_REPEAT = 10


class RegexError(ValueError):
    """A pattern or its flags cannot be used; ``part`` says which ("pattern" or "flags")."""

    def __init__(self, message: str, part: str = "pattern"):
        super().__init__(message)
        self.part = part


def regex_problem(pattern: Any) -> str | None:
    """Why ``pattern`` is refused, or None: not a non-empty string, too long, or shaped to backtrack
    catastrophically. The plugin's three checks first (nested quantifiers like ``(a+)+``, adjacent ones like
    ``a*+``, a repeated backreference), then a scan of the group structure that also finds what they miss
    (``((ab)+c){50}``, ``(\\w*x)*`` across classes and escapes).
    """
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
    return _nesting_problem(pattern)


def _quantifier_at(pattern: str, i: int) -> tuple[int, bool, bool]:
    """(length, repeats: may match more than once, unbounded or big) of the quantifier at ``i``."""
    if i >= len(pattern):
        return 0, False, False
    ch = pattern[i]
    if ch in "*+":
        return 1, True, True
    if ch == "?":
        return 1, False, False
    if ch == "{":
        m = _BOUNDED_REPEAT.match(pattern, i)
        if m:
            low = int(m.group(1))
            high = low if m.group(2) is None else (int(m.group(3)) if m.group(3) else None)
            return m.end() - i, high is None or high > 1, high is None or high > _BIG_REPEAT
    return 0, False, False


def _nesting_problem(pattern: str) -> str | None:
    """A group repeated without (a large) bound whose body can itself repeat without bound."""
    stack: list[bool] = [False]  # per open group: does its body contain an unbounded quantifier?
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "[":
            j = i + 1
            if j < n and pattern[j] == "^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            i = j + 1
            continue
        if ch == "(":
            stack.append(False)
            i += 1
            continue
        if ch == ")" and len(stack) > 1:
            inner_unbounded = stack.pop()
            i += 1
            length, repeats, unbounded = _quantifier_at(pattern, i)
            if length and repeats and unbounded and inner_unbounded:
                return ("the pattern repeats a group that itself contains an unbounded quantifier (like (a+)+), "
                        "which can backtrack catastrophically; rewrite it without the nesting")
            if inner_unbounded or (length and unbounded):
                stack[-1] = True
            i += length
            continue
        length, _repeats, unbounded = _quantifier_at(pattern, i)
        if length:
            if unbounded:
                stack[-1] = True
            i += length
            continue
        i += 1
    return None


def regex_flags(flags: str) -> frozenset[str]:
    """The flag letters, each once; ``g``, ``u`` and ``y`` are accepted and change nothing in matching."""
    seen: set[str] = set()
    for letter in flags:
        if letter not in FLAGS:
            raise RegexError(f"unsupported regex flag {letter!r}; use {', '.join(FLAGS)}", part="flags")
        if letter in seen:
            raise RegexError(f"regex flag {letter!r} is given twice", part="flags")
        seen.add(letter)
    return frozenset(seen)


@lru_cache(maxsize=1024)
def regex(pattern: str, flags: str = "") -> re.Pattern[str]:
    """Compile a JavaScript regular expression. Raises :class:`RegexError` with a readable reason."""
    letters = regex_flags(flags)
    problem = regex_problem(pattern)
    if problem:
        raise RegexError(problem)
    try:
        return re.compile(
            _translate(pattern, "m" in letters, "s" in letters), re.IGNORECASE if "i" in letters else 0
        )
    except re.error as exc:
        raise RegexError(f"the pattern does not compile: {exc}") from None
    except (OverflowError, RecursionError):
        raise RegexError("the pattern is too complex") from None


@lru_cache(maxsize=1024)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob (``*`` any run of characters, ``?`` one character, the rest literal) matched whole."""
    parts = []
    for c in pattern:
        parts.append(".*" if c == "*" else "." if c == "?" else re.escape(c))
    return re.compile("".join(parts), re.DOTALL)


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


def _translate(pattern: str, multiline: bool, dotall: bool) -> str:
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

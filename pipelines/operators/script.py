"""Script operator (1): ``script``, a small, safe expression language over one record. [pure]

The plugin runs JavaScript in a sandbox. Here ``code`` is one expression in Python syntax, parsed with
:mod:`ast` and turned into plain Python closures once per step; nothing the user wrote is ever passed to
``eval``, ``exec`` or ``compile``. Only the node types :class:`_Compiler` has a method for are accepted (literals,
names, arithmetic, comparisons, and/or/not, ``x if c else y``, subscripts and slices, list and object displays
with ``**`` spread, f-strings without format specs, calls of listed functions), so the language has no
attribute access (``().__class__``), no imports, no comprehensions or lambdas, and no calls other than the
functions in :data:`FUNCTIONS`. An expression cannot loop, so the work per record is bounded by its size;
limits on code length, node count, integer size, and repeated strings and lists keep it small.

What an expression sees: ``record`` (the record), each of the record's top-level fields by name (a missing
one reads as null), ``index`` (the record's position among those this operator has seen in the step) and
``context`` (``{"index": index, "data": <the context arg>}``). ``true``/``false``/``null`` may be written as
in JSON. The value of the expression is the new record (an object), or null to drop the record.

    {**record, "total": price * quantity}
    {**record, "name": upper(trim(name)), "tier": "gold" if spend > 1000 else "basic"}
    null if status == "deleted" else record

Reading ``record["a"]`` where there is no ``a``, or indexing null, gives null (as JavaScript's ``?.`` does).
A failing expression (division by zero, ``"a" < 1``) sends the record to the record-error list; with
``failOnError`` it fails the step. ``batch: true`` (code over all records) is refused: use the aggregation
operators, or register a Python operator (see :mod:`pipelines.operators.base`).

Why one module of this size: it is one small language: its values and guarded operations, its functions and
the compiler from AST to closures share the value semantics and the safety limits, and neither half reads on
its own.
"""

from __future__ import annotations

import ast
import difflib
import math
from collections.abc import Callable
from typing import Any

from pipelines import js
from pipelines.conditions import strict_equal
from pipelines.errors import ConfigError, RecordError
from pipelines.operators.base import record_operator
from pipelines.operators.json_ops import js_json
from pipelines.records import MISSING, PathError, path

MAX_CODE_LENGTH = 10_000
MAX_NODES = 2_000
# Nesting of the expression tree: keeps compiling and evaluating far from Python's recursion limit.
MAX_DEPTH = 200
MAX_INT_BITS = 100_000  # about 30,000 decimal digits
MAX_SEQUENCE = 1_000_000  # characters of a built string, items of a built list
_UNSAFE_KEYS = frozenset({"__proto__", "constructor", "prototype"})

Env = tuple  # (record, index, context)
Node = Callable[[Env], Any]


class ScriptError(RecordError):
    """The expression failed on one record."""


_equal = strict_equal


def _fail(message: str) -> Any:
    raise ScriptError(message)


# ---------------------------------------------------------------------------------------------------------
# Values and guarded operations
# ---------------------------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    """``str(x)``: text as the plugin's templates write it, lists and objects as JSON."""
    t = type(value)
    if t is str:
        return value
    if t is list or t is dict:
        return js_json(value)
    return js.string(value)


def _type_name(value: Any) -> str:
    t = type(value)
    if value is None:
        return "null"
    if t is bool:
        return "boolean"
    if t is int or t is float:
        return "number"
    if t is str:
        return "string"
    if t is list:
        return "list"
    if t is dict:
        return "object"
    return t.__name__


def _check_int(value: Any) -> Any:
    if type(value) is int and value.bit_length() > MAX_INT_BITS:
        _fail(f"the number is too large (over {MAX_INT_BITS} bits)")
    return value


def _check_size(value: Any) -> Any:
    if (type(value) is str or type(value) is list) and len(value) > MAX_SEQUENCE:
        _fail(f"the result is too long (over {MAX_SEQUENCE:,} items)")
    return value


def _add(a: Any, b: Any) -> Any:
    ta, tb = type(a), type(b)
    if (ta is str and tb is str) or (ta is list and tb is list):
        return a + b
    if ta in (int, float) and tb in (int, float):
        return _check_int(a + b)
    return _fail(f"cannot add {_type_name(a)} and {_type_name(b)} (use str() to join text)")


def _numeric(name: str, a: Any, b: Any) -> None:
    if type(a) not in (int, float) or type(b) not in (int, float):
        _fail(f"'{name}' needs numbers, got {_type_name(a)} and {_type_name(b)}")


def _sub(a: Any, b: Any) -> Any:
    _numeric("-", a, b)
    return a - b


def _mul(a: Any, b: Any) -> Any:
    ta, tb = type(a), type(b)
    if ta in (str, list) and tb is int:
        a, b, ta, tb = b, a, tb, ta
    if ta is int and tb in (str, list):
        if a > 0 and len(b) * a > MAX_SEQUENCE:
            _fail(f"repeating {len(b)} items {a} times is over the limit of {MAX_SEQUENCE:,}")
        return a * b
    _numeric("*", a, b)
    if ta is int and tb is int and a.bit_length() + b.bit_length() > MAX_INT_BITS:
        _fail(f"the number is too large (over {MAX_INT_BITS} bits)")
    return a * b


def _div(a: Any, b: Any) -> Any:
    _numeric("/", a, b)
    if b == 0:
        _fail("division by zero")
    return a / b


def _floordiv(a: Any, b: Any) -> Any:
    _numeric("//", a, b)
    if b == 0:
        _fail("division by zero")
    return a // b


def _mod(a: Any, b: Any) -> Any:
    _numeric("%", a, b)  # never str % x: that is printf formatting
    if b == 0:
        _fail("division by zero")
    return a % b


def _pow(a: Any, b: Any) -> Any:
    _numeric("**", a, b)
    if type(a) is int and type(b) is int and b > 0 and abs(a) > 1 and a.bit_length() * b > MAX_INT_BITS:
        _fail(f"the number is too large (over {MAX_INT_BITS} bits)")
    if type(b) is float and abs(b) > 10_000 and abs(a) > 1:
        _fail("the exponent is too large")
    try:
        result = a**b
    except (OverflowError, ZeroDivisionError) as exc:
        return _fail(f"'**' failed: {exc}")
    if type(result) is complex:
        return _fail("a negative number to a fractional power has no real value")
    return result


_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: _add,
    ast.Sub: _sub,
    ast.Mult: _mul,
    ast.Div: _div,
    ast.FloorDiv: _floordiv,
    ast.Mod: _mod,
    ast.Pow: _pow,
}


def _compare_op(op: ast.cmpop) -> Callable[[Any, Any], bool]:
    def ordered(name: str, fn: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
        def compare(a: Any, b: Any) -> bool:
            ta, tb = type(a), type(b)
            if (ta in (int, float) and tb in (int, float)) or (ta is str and tb is str):
                return fn(a, b)
            return _fail(f"cannot compare {_type_name(a)} {name} {_type_name(b)}")

        return compare

    def contains(a: Any, b: Any) -> bool:
        if type(b) is str:
            if type(a) is not str:
                _fail(f"'in' a string needs a string, got {_type_name(a)}")
            return a in b
        if type(b) is list:
            return any(_equal(a, x) for x in b)
        if type(b) is dict:
            return type(a) is str and a in b
        if b is None:
            return False
        return _fail(f"'in' needs a string, list or object on the right, got {_type_name(b)}")

    table: dict[type, Callable[[Any, Any], bool]] = {
        ast.Eq: _equal,
        ast.NotEq: lambda a, b: not _equal(a, b),
        ast.Lt: ordered("<", lambda a, b: a < b),
        ast.LtE: ordered("<=", lambda a, b: a <= b),
        ast.Gt: ordered(">", lambda a, b: a > b),
        ast.GtE: ordered(">=", lambda a, b: a >= b),
        ast.In: contains,
        ast.NotIn: lambda a, b: not contains(a, b),
        ast.Is: lambda a, b: a is b if (a is None or b is None) else _equal(a, b),
        ast.IsNot: lambda a, b: a is not b if (a is None or b is None) else not _equal(a, b),
    }
    return table[type(op)]


def _subscript(container: Any, key: Any) -> Any:
    t = type(container)
    if t is dict:
        if type(key) is not str:
            key = _text(key)
        return container.get(key)
    if t is list or t is str:
        if type(key) is not int:
            if type(key) is float and key.is_integer():
                key = int(key)
            else:
                return _fail(f"a {_type_name(container)} index must be a whole number, got {_type_name(key)}")
        if -len(container) <= key < len(container):
            return container[key]
        return None
    if container is None:
        return None
    return _fail(f"cannot index a {_type_name(container)}")


def _slice(container: Any, lower: Any, upper: Any, step: Any) -> Any:
    if container is None:
        return None
    if type(container) not in (str, list):
        return _fail(f"cannot slice a {_type_name(container)}")
    for bound in (lower, upper, step):
        if bound is not None and type(bound) is not int:
            return _fail("slice bounds must be whole numbers")
    if step == 0:
        return _fail("a slice step cannot be zero")
    return container[lower:upper:step]


# ---------------------------------------------------------------------------------------------------------
# Functions: called by name, never as methods
# ---------------------------------------------------------------------------------------------------------


def _to_number(value: Any, integer: bool) -> Any:
    t = type(value)
    if t is bool:
        return int(value)
    if t is int:
        return value
    if t is float:
        if not math.isfinite(value):
            return None
        return int(value) if integer else value
    if t is str:
        text = value.strip()
        try:
            number = (
                float(text) if text and text.lower().lstrip("+-") not in ("nan", "inf", "infinity") else None
            )
        except ValueError:
            return None
        if number is None or not math.isfinite(number):
            return None
        if integer:
            try:
                return int(text)
            except ValueError:
                return int(number)
        return number
    return None


def _round(value: Any, digits: Any = 0) -> Any:
    """JavaScript's Math.round (halves toward +infinity) at ``digits`` decimals, as the plugin rounds."""
    if type(value) not in (int, float) or type(digits) is not int:
        return _fail("round(x, digits) needs a number and a whole number of digits")
    if not -15 <= digits <= 15:
        return _fail("round() takes between -15 and 15 digits")
    if type(value) is int and digits >= 0:
        return value
    factor = 10.0**digits
    result = math.floor(value * factor + 0.5) / factor
    return int(result) if digits <= 0 else result


def _needs(name: str, kind: type | tuple[type, ...], *values: Any) -> None:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    for v in values:
        if type(v) not in kinds:
            expected = " or ".join(_type_name(k()) for k in kinds)
            _fail(f"{name}() needs {expected}, got {_type_name(v)}")


def _len(x: Any) -> int | None:
    if x is None:
        return None
    _needs("len", (str, list, dict), x)
    return len(x)


def _minmax(name: str, fn: Callable) -> Callable:
    def call(*args: Any) -> Any:
        items = args[0] if len(args) == 1 and type(args[0]) is list else list(args)
        if not items:
            return None
        if all(type(v) in (int, float) for v in items) or all(type(v) is str for v in items):
            return fn(items)
        return _fail(f"{name}() needs numbers, or strings, all of one kind")

    return call


def _sum(items: Any) -> Any:
    _needs("sum", list, items)
    if not all(type(v) in (int, float) for v in items):
        return _fail("sum() needs a list of numbers")
    return _check_int(sum(items))


def _replace(s: Any, old: Any, new: Any) -> str:
    _needs("replace", str, s, old, new)
    if not old:
        return _fail("replace() needs a non-empty text to replace")
    growth = s.count(old) * (len(new) - len(old))
    if len(s) + growth > MAX_SEQUENCE:
        return _fail(f"the result is too long (over {MAX_SEQUENCE:,} characters)")
    return s.replace(old, new)


def _split(s: Any, sep: Any = ",") -> Any:
    if s is None:
        return None
    _needs("split", str, s, sep)
    if not sep:
        return list(s)
    return s.split(sep)


def _join(items: Any, sep: Any = ",") -> Any:
    if items is None:
        return None
    _needs("join", list, items)
    _needs("join", str, sep)
    parts = ["" if v is None else _text(v) for v in items]
    if sum(map(len, parts)) + len(sep) * max(len(parts) - 1, 0) > MAX_SEQUENCE:
        return _fail(f"the result is too long (over {MAX_SEQUENCE:,} characters)")
    return sep.join(parts)


def _string_fn(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def call(s: Any, *rest: Any) -> Any:
        if s is None:
            return None
        _needs(name, str, s, *rest)
        return fn(s, *rest)

    return call


def _contains(container: Any, item: Any) -> bool:
    if type(container) is str:
        return type(item) is str and item in container
    if type(container) is list:
        return any(_equal(item, x) for x in container)
    if type(container) is dict:
        return type(item) is str and item in container
    return False


def _get(obj: Any, field_path: Any, default: Any = None) -> Any:
    _needs("get", str, field_path)
    try:
        value = path(field_path).get(obj)
    except PathError as exc:
        return _fail(f"get(): {exc}")
    return default if value is MISSING or value is None else value


def _keys(obj: Any) -> Any:
    _needs("keys", dict, obj)
    return list(obj)


def _values(obj: Any) -> Any:
    _needs("values", dict, obj)
    return list(obj.values())


def _coalesce(*args: Any) -> Any:
    return next((a for a in args if a is not None and a != ""), None)


def _float_fn(name: str, fn: Callable[[float], Any]) -> Callable[[Any], Any]:
    def call(x: Any) -> Any:
        if type(x) not in (int, float):
            return _fail(f"{name}() needs a number, got {_type_name(x)}")
        return fn(x)

    return call


# name -> (function, fewest arguments, most arguments)
FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int]] = {
    "len": (_len, 1, 1),
    "str": (_text, 1, 1),
    "int": (lambda x: _to_number(x, True), 1, 1),
    "float": (lambda x: _to_number(x, False), 1, 1),
    "number": (lambda x: _to_number(x, False), 1, 1),
    "bool": (lambda x: bool(x), 1, 1),
    "round": (_round, 1, 2),
    "floor": (_float_fn("floor", math.floor), 1, 1),
    "ceil": (_float_fn("ceil", math.ceil), 1, 1),
    "abs": (_float_fn("abs", abs), 1, 1),
    "min": (_minmax("min", min), 1, 100),
    "max": (_minmax("max", max), 1, 100),
    "sum": (_sum, 1, 1),
    "lower": (_string_fn("lower", str.lower), 1, 1),
    "upper": (_string_fn("upper", str.upper), 1, 1),
    "trim": (_string_fn("trim", str.strip), 1, 1),
    "startsWith": (_string_fn("startsWith", str.startswith), 2, 2),
    "endsWith": (_string_fn("endsWith", str.endswith), 2, 2),
    "replace": (_replace, 3, 3),
    "split": (_split, 1, 2),
    "join": (_join, 1, 2),
    "contains": (_contains, 2, 2),
    "get": (_get, 2, 3),
    "keys": (_keys, 1, 1),
    "values": (_values, 1, 1),
    "coalesce": (_coalesce, 1, 100),
}

_CONSTANT_NAMES = {"true": True, "false": False, "null": None}

# ---------------------------------------------------------------------------------------------------------
# The compiler: AST -> closures over env = (record, index, context)
# ---------------------------------------------------------------------------------------------------------

_JS_HINTS = (
    ("&&", "use 'and'"),
    ("||", "use 'or'"),
    ("===", "use '=='"),
    ("!==", "use '!='"),
    ("=>", "there are no functions to define"),
    ("...", "spread an object with {**record, ...}"),
)


def _syntax_hint(code: str) -> str:
    for token, hint in _JS_HINTS:
        if token in code:
            return f" ('{token}' is JavaScript: {hint})"
    if any(word in code.split() for word in ("const", "let", "var", "function", "if", "for", "while")):
        return ' (the script is one expression, not statements: e.g. {**record, "x": 1})'
    return ""


class _Compiler:
    def __init__(self) -> None:
        self.nodes = 0

    def refuse(self, node: ast.AST, message: str) -> ConfigError:
        col = getattr(node, "col_offset", None)
        where = f" (at column {col + 1})" if col is not None else ""
        return ConfigError(message + where, field="code")

    def compile(self, node: ast.AST) -> Node:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ConfigError(f"the expression is too large (over {MAX_NODES} parts)", field="code")
        method = getattr(self, "c_" + type(node).__name__, None)
        if method is None:
            raise self.refuse(node, self._not_allowed(node))
        return method(node)

    @staticmethod
    def _not_allowed(node: ast.AST) -> str:
        kind = type(node).__name__
        if isinstance(node, ast.Attribute):
            return (
                f"attribute access ('.{node.attr}') is not allowed; read fields with record[\"name\"] or by "
                "name, and call functions like lower(x) instead of methods"
            )
        if isinstance(node, ast.Lambda | ast.ListComp | ast.DictComp | ast.SetComp | ast.GeneratorExp):
            return "lambdas and comprehensions are not allowed (an expression cannot loop)"
        if isinstance(node, ast.NamedExpr):
            return "assignment (:=) is not allowed"
        if isinstance(node, ast.Await | ast.Yield | ast.YieldFrom):
            return f"'{kind}' is not allowed"
        if isinstance(node, ast.Starred):
            return "*unpacking is not allowed in lists or calls; use + to join lists"
        if isinstance(node, ast.Set):
            return "sets are not JSON; use a list"
        if isinstance(node, ast.operator):
            return f"the operator '{kind}' is not allowed; use + - * / // % **"
        return f"'{kind}' is not allowed in a script expression"

    # literals and names

    def c_Constant(self, node: ast.Constant) -> Node:
        value = node.value
        if type(value) not in (str, int, float, bool, type(None)):
            raise self.refuse(node, f"a {type(value).__name__} literal is not JSON")
        if type(value) is int and value.bit_length() > MAX_INT_BITS:
            raise self.refuse(node, "the number is too large")
        return lambda env: value

    def c_Name(self, node: ast.Name) -> Node:
        name = node.id
        if name == "record":
            return lambda env: env[0]
        if name == "index":
            return lambda env: env[1]
        if name == "context":
            return lambda env: env[2]
        if name in _CONSTANT_NAMES:
            value = _CONSTANT_NAMES[name]
            return lambda env: value
        if name.startswith("__"):
            raise self.refuse(node, f"the name '{name}' is not allowed")
        if name in FUNCTIONS:
            raise self.refuse(node, f"'{name}' is a function; call it like {name}(x)")
        return lambda env: env[0].get(name)

    def c_List(self, node: ast.List) -> Node:
        items = [self.compile(e) for e in node.elts]
        return lambda env: [item(env) for item in items]

    c_Tuple = c_List  # a tuple is written as a JSON list

    def c_Dict(self, node: ast.Dict) -> Node:
        parts: list[tuple[Node | None, Node]] = []
        for key, value in zip(node.keys, node.values, strict=True):
            parts.append((None if key is None else self.compile(key), self.compile(value)))

        def build(env: Env) -> dict:
            out: dict = {}
            for key, value in parts:
                if key is None:
                    spread = value(env)
                    if spread is None:
                        continue
                    if type(spread) is not dict:
                        _fail(f"only an object can be spread with **, got {_type_name(spread)}")
                    out.update(spread)
                else:
                    k = key(env)
                    if type(k) is not str:
                        _fail(f"object keys must be strings, got {_type_name(k)}")
                    out[k] = value(env)
            return out

        return build

    def c_JoinedStr(self, node: ast.JoinedStr) -> Node:
        parts = [self.compile(v) for v in node.values]
        return lambda env: "".join(part(env) for part in parts)

    def c_FormattedValue(self, node: ast.FormattedValue) -> Node:
        if node.format_spec is not None or node.conversion != -1:
            raise self.refuse(node, "format specs (f'{x:...}' and !r) are not allowed; use round() or str()")
        value = self.compile(node.value)
        return lambda env: _text(value(env))

    # operators

    def c_BinOp(self, node: ast.BinOp) -> Node:
        fn = _BINOPS.get(type(node.op))
        if fn is None:
            raise self.refuse(node, self._not_allowed(node.op))
        left, right = self.compile(node.left), self.compile(node.right)
        return lambda env: fn(left(env), right(env))

    def c_UnaryOp(self, node: ast.UnaryOp) -> Node:
        operand = self.compile(node.operand)
        if isinstance(node.op, ast.Not):
            return lambda env: not operand(env)

        def number(env: Env) -> Any:
            v = operand(env)
            if type(v) not in (int, float):
                _fail(f"unary minus or plus needs a number, got {_type_name(v)}")
            return -v if isinstance(node.op, ast.USub) else v

        if isinstance(node.op, ast.USub | ast.UAdd):
            return number
        raise self.refuse(node, "the operator '~' is not allowed")

    def c_BoolOp(self, node: ast.BoolOp) -> Node:
        values = [self.compile(v) for v in node.values]
        if isinstance(node.op, ast.And):

            def all_of(env: Env) -> Any:
                result = True
                for v in values:
                    result = v(env)
                    if not result:
                        return result
                return result

            return all_of

        def any_of(env: Env) -> Any:
            result = False
            for v in values:
                result = v(env)
                if result:
                    return result
            return result

        return any_of

    def c_Compare(self, node: ast.Compare) -> Node:
        left = self.compile(node.left)
        steps = [(_compare_op(op), self.compile(c)) for op, c in zip(node.ops, node.comparators, strict=True)]

        def compare(env: Env) -> bool:
            a = left(env)
            for op, right in steps:
                b = right(env)
                if not op(a, b):
                    return False
                a = b
            return True

        return compare

    def c_IfExp(self, node: ast.IfExp) -> Node:
        test, body, orelse = self.compile(node.test), self.compile(node.body), self.compile(node.orelse)
        return lambda env: body(env) if test(env) else orelse(env)

    def c_Subscript(self, node: ast.Subscript) -> Node:
        container = self.compile(node.value)
        if isinstance(node.slice, ast.Slice):
            s = node.slice
            lower = self.compile(s.lower) if s.lower else (lambda env: None)
            upper = self.compile(s.upper) if s.upper else (lambda env: None)
            step = self.compile(s.step) if s.step else (lambda env: None)
            return lambda env: _slice(container(env), lower(env), upper(env), step(env))
        key = self.compile(node.slice)
        return lambda env: _subscript(container(env), key(env))

    def c_Call(self, node: ast.Call) -> Node:
        if not isinstance(node.func, ast.Name):
            if isinstance(node.func, ast.Attribute):
                raise self.refuse(
                    node,
                    f"methods cannot be called ('.{node.func.attr}()'); use the functions: "
                    f"{', '.join(FUNCTIONS)}",
                )
            self.compile(node.func)  # says what is wrong with it, when something is
            raise self.refuse(node, "only the built-in functions can be called, by name")
        name = node.func.id
        if name.startswith("__"):
            raise self.refuse(node, f"the name '{name}' is not allowed")
        if name not in FUNCTIONS:
            close = difflib.get_close_matches(name, list(FUNCTIONS), n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise self.refuse(node, f"unknown function '{name}'{hint} (known: {', '.join(FUNCTIONS)})")
        if node.keywords:
            raise self.refuse(node, f"{name}() takes no keyword arguments")
        fn, fewest, most = FUNCTIONS[name]
        if not fewest <= len(node.args) <= most:
            count = str(fewest) if fewest == most else f"{fewest} to {most}"
            raise self.refuse(node, f"{name}() takes {count} argument(s), got {len(node.args)}")
        args = [self.compile(a) for a in node.args]
        self.nodes += 1
        if len(args) == 1:
            (a,) = args
            return lambda env: _check_size(fn(a(env)))
        return lambda env: _check_size(fn(*[a(env) for a in args]))


def compile_expression(code: Any) -> Node:
    """The closure for ``code``; :class:`ConfigError` (field ``code``) saying what is not allowed."""
    if not isinstance(code, str) or not code.strip():
        raise ConfigError("'code' must be a non-empty expression", field="code")
    if len(code) > MAX_CODE_LENGTH:
        raise ConfigError(f"the expression is longer than {MAX_CODE_LENGTH:,} characters", field="code")
    text = code.strip()
    # Allow the JavaScript habit of `return <expr>;` around a single expression.
    if text.startswith("return ") or text.startswith("return\n"):
        text = text[len("return") :].strip()
    text = text.rstrip(";").strip()
    try:
        tree = ast.parse(text, mode="eval")  # parsing only: the tree is walked below, never executed
    except SyntaxError as exc:
        raise ConfigError(
            f"the code is not a valid expression: {exc.msg}{_syntax_hint(text)}", field="code"
        ) from None
    except (RecursionError, MemoryError, ValueError):
        raise ConfigError("the expression is nested too deeply", field="code") from None
    _check_shape(tree.body)
    return _Compiler().compile(tree.body)


def _check_shape(root: ast.AST) -> None:
    """Size and nesting limits, checked without recursion before anything is compiled."""
    count = 0
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise ConfigError(f"the expression is too large (over {MAX_NODES} parts)", field="code")
        if depth > MAX_DEPTH:
            raise ConfigError(f"the expression is nested too deeply (over {MAX_DEPTH} levels)", field="code")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def _sanitize(value: Any) -> Any:
    """A copy of ``value`` that is plain JSON data: no shared lists or objects, no NaN or infinity, and
    without the keys the plugin strips (``__proto__``, ``constructor``, ``prototype``)."""
    t = type(value)
    if t is dict:
        return {k: _sanitize(v) for k, v in value.items() if k not in _UNSAFE_KEYS}
    if t is list:
        return [_sanitize(v) for v in value]
    if t is float and not math.isfinite(value):
        return None
    return value


@record_operator(
    "script",
    name="Script",
    category="script",
    description='Compute each record with a safe expression, e.g. {**record, "total": price * quantity}.',
    pure=False,
    schema={
        "type": "object",
        "properties": {
            "code": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_CODE_LENGTH,
                "description": (
                    "One expression in Python syntax whose value is the new record, or null to drop it. It sees "
                    "record, the record's fields by name, index and context ({index, data}); functions: "
                    + ", ".join(FUNCTIONS)
                    + ". No attribute access, imports or loops. The plugin's JavaScript does not run here."
                ),
            },
            "batch": {
                "type": "boolean",
                "default": False,
                "description": "Whole-batch scripts are not supported here (false only); use aggregation operators.",
            },
            "timeout": {
                "type": "integer",
                "minimum": 1,
                "maximum": 300_000,
                "default": 5000,
                "description": (
                    "Accepted for compatibility with the plugin (milliseconds). An expression cannot loop, so "
                    "its time per record is bounded by the record's size."
                ),
            },
            "context": {"description": 'JSON data the expression reads as context["data"].'},
        },
        "required": ["code"],
        "additionalProperties": False,
    },
)
def build_script(args: dict, ctx: Any):
    if args.get("batch"):
        raise ConfigError(
            "batch scripts are not supported: an expression works on one record at a time (use the aggregation "
            "operators for whole-batch work, or register a Python operator)",
            field="batch",
        )
    expression = compile_expression(args.get("code"))
    data = args.get("context")
    counter = [0]

    def script(record: dict) -> dict | None:
        i = counter[0]
        counter[0] = i + 1
        try:
            result = expression((record, i, {"index": i, "data": data}))
        except ScriptError:
            raise
        except RecursionError:
            raise ScriptError("the data is nested too deeply") from None
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise ScriptError(f"script failed: {exc}") from None
        if result is None:
            return None
        if type(result) is not dict:
            raise ScriptError(
                f"the script must give an object (the new record) or null, got {_type_name(result)}"
            )
        return _sanitize(result)

    return script

"""Numeric operators: math, currency, unit, toNumber, toString, parseNumber, formatNumber, toCents, round. [pure]

Behaviour follows the Vendure Data Hub plugin (research/vendure-data-hub.md §2.3), whose numbers are
JavaScript numbers. What that means here:

* Rounding is JavaScript's ``Math.round`` (halves go up, also for negatives: -2.5 -> -2) applied to
  ``value * 10**decimals`` and divided back, so 19.995 rounds to 20 at 2 decimals (19.995 * 100 is
  exactly 1999.5 in binary floating point) where Python's ``round`` would give 19.99.
* ``%`` is JavaScript's (the sign follows the dividend), ``String(n)`` is JavaScript's (``20`` not ``20.0``,
  ``1e-7``, ``1e+21``), and ``parseFloat`` reads the leading number of a string (``"12abc"`` -> 12).
* A float result with no fractional part is written as an ``int`` (JSON ``20``, not ``20.0``), as the
  plugin's JSON would show it.
* The operators that compute need the source to already be a number (not a bool, not a numeric string):
  anything else leaves the record unchanged. ``toNumber``/``parseNumber``/``toString`` convert and always
  write their target, like the plugin (``null`` or the ``default`` when nothing parses).

``formatNumber``/``parseNumber`` use a small built-in table of locales (separators, grouping, minus sign,
currency placement and symbols) in place of ICU; unknown locales fall back to their language, then to
en-US, as ``Intl`` falls back to the runtime default.

The helpers here (``getter``, ``setter``, ``plain_key``, ``numeric_fn``) are shared with :mod:`pipelines.operators.strings` and :mod:`pipelines.operators.dates`.

Why one module of this size: it is the catalogue's numeric family, nine operators over one set of helpers
(argument paths, JavaScript value semantics from pipelines.js, rounding, locales); each operator is a short
builder in its own marked section, and a module per operator would repeat the helpers' imports nine times
without separating concerns.
"""

from __future__ import annotations

import math
import operator
import textwrap
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any

from pipelines import js
from pipelines.errors import ConfigError
from pipelines.operators._common import args_schema, path_prop
from pipelines.operators.base import OperatorContext, inline, record_operator, top_level_only
from pipelines.records import MISSING, Path, PathError, path

# ---------------------------------------------------------------------------------------------------------
# Shared helpers: argument paths and JavaScript value semantics.

MAX_DECIMALS = 20  # the plugin's TRANSFORM_LIMITS.MAX_DECIMAL_PLACES



def arg_path(args: dict, name: str, *, default: str | None = None) -> Path | None:
    """The compiled path of argument ``name`` (an empty or absent value gives ``default``'s path or None)."""
    text = args.get(name)
    if text is None or text == "":
        text = default
    if text is None or text == "":
        return None
    try:
        return path(text)
    except PathError as exc:
        raise ConfigError(str(exc), field=name) from None


def getter(args: dict, name: str, *, default: str | None = None):
    """``get(record) -> value | MISSING`` for argument ``name``'s path (a plain key skips the path walk)."""
    field = arg_path(args, name, default=default)
    if field is None:
        raise ConfigError("is required", field=name)
    if len(field.parts) == 1 and isinstance(field.parts[0], str):
        key = field.parts[0]

        def get(record):
            return record.get(key, MISSING)

        return get
    return field.get


def setter(args: dict, name: str, *, default: str | None = None):
    """``put(record, value)`` for argument ``name``'s path (creating intermediate objects)."""
    field = arg_path(args, name, default=default)
    if field is None:
        raise ConfigError("is required", field=name)
    if len(field.parts) == 1 and isinstance(field.parts[0], str):
        key = field.parts[0]

        def put(record, value):
            record[key] = value

        return put
    return field.set


def plain_key(args: dict, name: str, *, default: str | None = None) -> str | None:
    """The key when argument ``name`` is a one-segment path (the common, fast case), else None."""
    field = arg_path(args, name, default=default)
    if field is not None and len(field.parts) == 1 and isinstance(field.parts[0], str):
        return field.parts[0]
    return None


def writes_top_level(fn, args: dict, name: str, *, default: str | None = None):
    """``fn`` declared :func:`~pipelines.operators.base.top_level_only` when the field it writes (argument
    ``name``) is a plain key: for an operator whose one change is writing a value it made (a string, a
    number) from what it read."""
    return top_level_only(fn) if plain_key(args, name, default=default) is not None else fn


def numeric_fn(args: dict, convert, *, target: str = "target", default_target: str | None = None):
    """The record function writing ``convert(source)`` to the target when the source is a number.

    Anything else at the source (missing, null, a string, a bool) leaves the record unchanged.
    """
    src, dst = plain_key(args, "source"), plain_key(args, target, default=default_target)
    if src is not None and dst is not None:

        def fn(record):
            value = record.get(src)
            if type(value) is float or type(value) is int:
                record[dst] = convert(value)
            return record

        form = getattr(convert, "inline_convert", None)
        if form is None:
            return top_level_only(inline(
                fn, "v = r.get({src})\nif type(v) is float or type(v) is int:\n    r[{dst}] = {convert}(v)",
                src=src, dst=dst, convert=convert))
        statements, names = form  # they turn the number ``v`` into the value to write
        body = "\n".join("    " + line for line in statements.splitlines())
        return top_level_only(inline(
            fn, f"v = r.get({{src}})\nif type(v) is float or type(v) is int:\n{body}\n    r[{{dst}}] = v",
            src=src, dst=dst, **names))
    get, put = getter(args, "source"), setter(args, target, default=default_target)

    def fn(record):
        value = get(record)
        if type(value) is float or type(value) is int:
            put(record, convert(value))
        return record

    return fn


def is_number(value: Any) -> bool:
    """A JavaScript ``typeof value === 'number'``: int or float, never bool."""
    t = type(value)
    return t is int or t is float


def js_round(x: float) -> int:
    """JavaScript's ``Math.round``: nearest integer, halves towards +infinity."""
    r = math.floor(x)
    return r + 1 if x - r >= 0.5 else r


_ROUNDERS = {"round": js_round, "floor": math.floor, "ceil": math.ceil}


_ROUND_HALF_UP_INLINE = """s = v * {factor}
try:
    w = {floor}(s)
except (OverflowError, ValueError):
    w = None
if w is not None:
    if s - w >= 0.5:
        w += 1
    w = w / {factor}
    v = int(w) if w.is_integer() and -{safe} <= w <= {safe} else w"""

_BINARY_INLINE = """v = {op}(v, {constant})
if type(v) is float and v.is_integer() and -{safe} <= v <= {safe}:
    v = int(v)"""


def make_rounder(decimals: int, mode: str = "round"):
    """``fn(value)``: ``mode(value * 10**decimals) / 10**decimals`` as the plugin computes it.

    An integral result comes back as an int; a value too large to scale comes back unchanged.
    """
    base = _ROUNDERS[mode]
    if decimals <= 0:

        def round_whole(value):
            # Past 2**53 a float is already whole; keeping it a float keeps it JSON-serialisable as a
            # 64-bit-safe value (an int from floor(1e300) would not be).
            if -js.MAX_SAFE_INTEGER <= value <= js.MAX_SAFE_INTEGER:
                return base(value)
            return value

        return round_whole
    factor = 10.0**decimals
    floor = math.floor

    if mode == "round":

        def round_half_up(value):
            scaled = value * factor
            try:
                whole = floor(scaled)
            except (OverflowError, ValueError):
                return value
            if scaled - whole >= 0.5:
                whole += 1
            result = whole / factor
            if result.is_integer() and -js.MAX_SAFE_INTEGER <= result <= js.MAX_SAFE_INTEGER:
                return int(result)
            return result

        # The same, as statements on ``v`` for the chain's compiled loop (see numeric_fn).
        round_half_up.inline_convert = (_ROUND_HALF_UP_INLINE, {"factor": factor, "floor": floor,  # type: ignore[attr-defined]
                                                               "safe": js.MAX_SAFE_INTEGER})
        return round_half_up

    def round_mode(value):
        try:
            result = base(value * factor) / factor
        except (OverflowError, ValueError):
            return value
        if result.is_integer() and -js.MAX_SAFE_INTEGER <= result <= js.MAX_SAFE_INTEGER:
            return int(result)
        return result

    return round_mode


def _clamp_decimals(value: Any, default: int = 0) -> int:
    if value is None:
        return default
    return max(0, min(MAX_DECIMALS, int(value)))


_ROUND_MODE = {
    "type": "string",
    "enum": ["round", "floor", "ceil"],
    "default": "round",
    "description": "Rounding: round (nearest, halves up), floor (down) or ceil (up).",
}

# ---------------------------------------------------------------------------------------------------------
# math

_MATH_OPERATIONS = [
    "add",
    "subtract",
    "multiply",
    "divide",
    "modulo",
    "power",
    "round",
    "floor",
    "ceil",
    "abs",
]


def _power(a, b):
    try:
        result = math.pow(a, b)
    except (OverflowError, ValueError):  # JavaScript gives Infinity or NaN: the plugin keeps the value
        return a
    return result if math.isfinite(result) else a


# The operand-taking operations; a zero divisor (and a non-finite power) keeps the value, as in the plugin.
_BINARY = {
    "add": operator.add,
    "subtract": operator.sub,
    "multiply": operator.mul,
    "divide": operator.truediv,
    "modulo": math.fmod,  # JavaScript's %: the sign follows the dividend
    "power": _power,
}


@record_operator(
    "math",
    name="Math",
    category="numeric",
    description="Add, subtract, multiply, divide, modulo, power, round, floor, ceil or abs a number field.",
    schema=args_schema(
        {
            "operation": {
                "type": "string",
                "enum": _MATH_OPERATIONS,
                "description": "The operation to apply to the source number.",
            },
            "source": path_prop(
                "Field holding the number (a string is left unchanged: use toNumber first)."
            ),
            "operand": {
                "type": ["string", "number"],
                "description": "Second operand: a number (or number string), or '$path' to read a number "
                "from the record. Without one the source value is copied unchanged. Unused by "
                "round, floor, ceil and abs.",
            },
            "target": path_prop("Field to write the result to."),
            "decimals": {
                "type": "integer",
                "description": "Round the result to this many decimals (0-20). For round, floor and ceil it "
                "is the precision they work at. Negative means no rounding.",
            },
        },
        ["operation", "source", "target"],
    ),
)
def build_math(args: dict, ctx: OperatorContext):
    operation = args["operation"]
    decimals = args.get("decimals")
    decimals = None if decimals is None or decimals < 0 else min(int(decimals), MAX_DECIMALS)
    if operation in ("round", "floor", "ceil"):
        return numeric_fn(args, make_rounder(decimals or 0, operation))
    finish = js.normal_number if decimals is None else make_rounder(decimals)
    if operation == "abs":
        return numeric_fn(args, lambda value: finish(abs(value)))

    op = _BINARY[operation]
    operand = args.get("operand")
    if isinstance(operand, str) and operand.startswith("$"):
        if len(operand) == 1:
            raise ConfigError("'$' must be followed by a field path, e.g. '$quantity'", field="operand")
        get_operand = getter({"operand": operand[1:]}, "operand")
        get, put = getter(args, "source"), setter(args, "target")
        keep_on_zero = operation in ("divide", "modulo")

        def fn(record):
            value = get(record)
            if type(value) is float or type(value) is int:
                other = get_operand(record)
                if (type(other) is float or type(other) is int) and not (keep_on_zero and other == 0):
                    value = op(value, other)
                put(record, finish(value))
            return record

        return fn

    if operand is None or operand == "":
        constant = None
    elif is_number(operand):
        constant = operand
    else:
        constant = js.parse_float(operand)
        if constant is None:
            raise ConfigError(
                f"'{operand}' is not a number; write a number like '2.5' or a field as '$price'",
                field="operand",
            )
    if constant is None or (constant == 0 and operation in ("divide", "modulo")):
        return numeric_fn(args, finish)  # the plugin copies the value unchanged
    if decimals is not None:
        return numeric_fn(args, lambda value: finish(op(value, constant)))

    def compute(value):
        result = op(value, constant)
        if type(result) is float and result.is_integer() and -js.MAX_SAFE_INTEGER <= result <= js.MAX_SAFE_INTEGER:
            return int(result)
        return result

    compute.inline_convert = (_BINARY_INLINE, {"op": op, "constant": constant,  # type: ignore[attr-defined]
                                               "safe": js.MAX_SAFE_INTEGER})
    return numeric_fn(args, compute)


# ---------------------------------------------------------------------------------------------------------
# currency, toCents, round


@record_operator(
    "currency",
    name="Currency to minor units",
    category="numeric",
    description="Convert an amount to minor units (value × 10^decimals), rounded by the chosen mode.",
    schema=args_schema(
        {
            "source": path_prop("Field holding the amount in major units, e.g. 19.99."),
            "target": path_prop("Field to write the minor units to, e.g. 1999."),
            "decimals": {
                "type": "integer",
                "minimum": 0,
                "maximum": MAX_DECIMALS,
                "description": "Minor-unit digits of the currency (2 for EUR/USD, 0 for JPY, 3 for KWD).",
            },
            "round": _ROUND_MODE,
        },
        ["source", "target", "decimals"],
    ),
)
def build_currency(args: dict, ctx: OperatorContext):
    return _minor_units(args, 10.0 ** int(args["decimals"]), args.get("round") or "round")


@record_operator(
    "toCents",
    name="To cents",
    category="numeric",
    description="Convert a decimal amount to cents (value × 100), rounded by the chosen mode.",
    schema=args_schema(
        {
            "source": path_prop("Field holding the decimal amount, e.g. 19.99."),
            "target": path_prop("Field to write the cents to, e.g. 1999."),
            "round": _ROUND_MODE,
        },
        ["source", "target"],
    ),
)
def build_to_cents(args: dict, ctx: OperatorContext):
    return _minor_units(args, 100.0, args.get("round") or "round")


def _minor_units(args: dict, factor: float, mode: str):
    rounder = _ROUNDERS[mode]

    def convert(value):
        scaled = value * factor
        if -js.MAX_SAFE_INTEGER <= scaled <= js.MAX_SAFE_INTEGER:
            return rounder(scaled)
        return scaled  # already whole (or infinite); kept a float, as JavaScript would

    return numeric_fn(args, convert)


@record_operator(
    "round",
    name="Round",
    category="numeric",
    description="Round a number to a number of decimal places (round, floor or ceil).",
    schema=args_schema(
        {
            "source": path_prop("Field holding the number."),
            "target": {"type": "string", "description": "Field to write the result to; defaults to source."},
            "decimals": {
                "type": "integer",
                "default": 0,
                "description": "Decimal places to keep; clamped to 0-20.",
            },
            "mode": _ROUND_MODE,
        },
        ["source"],
    ),
)
def build_round(args: dict, ctx: OperatorContext):
    rounder = make_rounder(_clamp_decimals(args.get("decimals")), args.get("mode") or "round")
    return numeric_fn(args, rounder, default_target=args["source"])


# ---------------------------------------------------------------------------------------------------------
# unit

_UNIT_CATEGORY = {
    "g": "weight", "kg": "weight", "lb": "weight", "oz": "weight",
    "mm": "length", "cm": "length", "m": "length", "in": "length", "ft": "length",
    "ml": "volume", "l": "volume", "gal": "volume",
}  # fmt: skip

# The plugin's conversion factors (src/constants/units.ts), so results match it digit for digit.
_UNIT_FACTORS = {
    "g": {"g": 1, "kg": 0.001, "lb": 0.00220462, "oz": 0.035274},
    "kg": {"g": 1000, "kg": 1, "lb": 2.20462, "oz": 35.274},
    "lb": {"g": 453.592, "kg": 0.453592, "lb": 1, "oz": 16},
    "oz": {"g": 28.3495, "kg": 0.0283495, "lb": 0.0625, "oz": 1},
    "mm": {"mm": 1, "cm": 0.1, "m": 0.001, "in": 0.0393701, "ft": 0.00328084},
    "cm": {"mm": 10, "cm": 1, "m": 0.01, "in": 0.393701, "ft": 0.0328084},
    "m": {"mm": 1000, "cm": 100, "m": 1, "in": 39.3701, "ft": 3.28084},
    "in": {"mm": 25.4, "cm": 2.54, "m": 0.0254, "in": 1, "ft": 0.0833333},
    "ft": {"mm": 304.8, "cm": 30.48, "m": 0.3048, "in": 12, "ft": 1},
    "ml": {"ml": 1, "l": 0.001, "gal": 0.000264172},
    "l": {"ml": 1000, "l": 1, "gal": 0.264172},
    "gal": {"ml": 3785.41, "l": 3.78541, "gal": 1},
}

_UNIT_PROP = {
    "type": "string",
    "enum": list(_UNIT_CATEGORY),
    "description": "Unit: weight g, kg, lb, oz; length mm, cm, m, in, ft; volume ml, l, gal (US gallon).",
}


@record_operator(
    "unit",
    name="Unit conversion",
    category="numeric",
    description="Convert a number between units of one kind (weight, length or volume).",
    schema=args_schema(
        {
            "source": path_prop("Field holding the number."),
            "target": path_prop("Field to write the converted number to."),
            "from": {**_UNIT_PROP, "description": "Unit of the source value. " + _UNIT_PROP["description"]},
            "to": {**_UNIT_PROP, "description": "Unit to convert to, of the same kind as 'from'."},
        },
        ["source", "target", "from", "to"],
    ),
)
def build_unit(args: dict, ctx: OperatorContext):
    unit_from, unit_to = args["from"], args["to"]
    if _UNIT_CATEGORY[unit_from] != _UNIT_CATEGORY[unit_to]:
        raise ConfigError(
            f"cannot convert {_UNIT_CATEGORY[unit_from]} ({unit_from}) to {_UNIT_CATEGORY[unit_to]} ({unit_to})",
            field="to",
        )
    factor = _UNIT_FACTORS[unit_from][unit_to]
    return numeric_fn(args, lambda value: js.normal_number(value * factor))


# ---------------------------------------------------------------------------------------------------------
# toNumber, toString, parseNumber


# Strings first: they are what toNumber is for (a CSV column), and a number is left as it is.
_TO_NUMBER_INLINE = """v = r.get({src})
t = type(v)
if t is str:
""" + textwrap.indent(js.PARSE_FLOAT_INLINE[0], " " * 4) + """
    if v is None:
        v = {default}
elif t is bool:
    v = 1 if v else 0
elif t is not int and t is not float:
    v = {default}
r[{dst}] = v"""


@record_operator(
    "toNumber",
    name="To number",
    category="numeric",
    description="Convert a value to a number (leading number of a string, true/false to 1/0), else the default.",
    schema=args_schema(
        {
            "source": path_prop("Field holding the value to convert."),
            "target": {"type": "string", "description": "Field to write the number to; defaults to source."},
            "default": {
                "type": "number",
                "description": "Written when nothing parses (null, missing, 'abc'); without it null is written.",
            },
        },
        ["source"],
    ),
)
def build_to_number(args: dict, ctx: OperatorContext):
    default = args.get("default")

    def convert(value):
        t = type(value)
        if t is int or t is float:
            return value
        if t is str:
            number = js.parse_float(value)
        elif t is bool:
            number = 1 if value else 0
        else:
            number = None
        return default if number is None else number

    src, dst = plain_key(args, "source"), plain_key(args, "target", default=args["source"])
    if src is not None and dst is not None:

        def fn(record):
            record[dst] = convert(record.get(src))
            return record

        return top_level_only(inline(fn, _TO_NUMBER_INLINE, src=src, dst=dst, default=default,
                                     **js.PARSE_FLOAT_INLINE[1]))
    get, put = getter(args, "source"), setter(args, "target", default=args["source"])

    def fn(record):
        put(record, convert(get(record)))
        return record

    return fn


@record_operator(
    "toString",
    name="To string",
    category="numeric",
    description="Convert a value to its string form (20 → '20', true → 'true'); null or missing gives ''.",
    schema=args_schema(
        {
            "source": path_prop("Field holding the value to convert."),
            "target": {"type": "string", "description": "Field to write the string to; defaults to source."},
        },
        ["source"],
    ),
)
def build_to_string(args: dict, ctx: OperatorContext):
    get = getter(args, "source")
    put = setter(args, "target", default=args["source"])

    def fn(record):
        value = get(record)
        if type(value) is str:
            put(record, value)
        elif value is None or value is MISSING:
            put(record, "")
        else:
            put(record, js.string(value))
        return record

    return writes_top_level(fn, args, "target", default=args["source"])


@dataclass(frozen=True)
class Locale:
    """How one locale writes numbers (what ``Intl.NumberFormat`` would do for it)."""

    group: str = ","
    decimal: str = "."
    minus: str = "-"
    min_grouping: int = 1  # CLDR minimumGroupingDigits: 2 means 1234 stays ungrouped, 12345 is grouped
    indian: bool = False  # 12,34,567 grouping
    percent: str = "%"  # written after the number
    currency_first: bool = True
    currency_space: str = ""  # between a leading symbol and the number
    minus_after_symbol: bool = False  # "€ -1,00" (nl)
    symbols: dict[str, str] = field(default_factory=dict)


NBSP, NNBSP = "\u00a0", "\u202f"

# Currency symbols as CLDR's root/English data has them; a locale overrides its own.
_SYMBOLS = {
    "USD": "US$", "EUR": "€", "GBP": "£", "JPY": "JP¥", "CNY": "CN¥", "INR": "₹", "KRW": "₩",
    "BRL": "R$", "CAD": "CA$", "AUD": "A$", "MXN": "MX$", "NZD": "NZ$", "HKD": "HK$", "ILS": "₪",
    "TWD": "NT$", "VND": "₫", "PHP": "₱",
}  # fmt: skip

# ISO 4217 minor-unit digits, for currency style without 'decimals' (default 2).
_CURRENCY_DIGITS = {
    "JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "PYG": 0, "UGX": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    "RWF": 0, "KMF": 0, "DJF": 0, "GNF": 0, "VUV": 0, "BIF": 0,
    "KWD": 3, "BHD": 3, "OMR": 3, "JOD": 3, "TND": 3, "LYD": 3, "IQD": 3,
}  # fmt: skip

_SPACE_GROUPED = dict(group=NBSP, decimal=",", currency_first=False)

LOCALES: dict[str, Locale] = {
    "en-US": Locale(symbols={"USD": "$", "JPY": "¥"}),
    "en-GB": Locale(),
    "en-IE": Locale(),
    "en-CA": Locale(symbols={"CAD": "$", "USD": "US$"}),
    "en-AU": Locale(symbols={"AUD": "$"}),
    "en-NZ": Locale(symbols={"NZD": "$"}),
    "en-IN": Locale(indian=True, symbols={"USD": "$", "JPY": "¥"}),
    "hi-IN": Locale(indian=True, symbols={"USD": "$", "JPY": "¥"}),
    "de-DE": Locale(group=".", decimal=",", percent=NBSP + "%", currency_first=False,
                    symbols={"USD": "$", "JPY": "¥"}),
    "de-CH": Locale(group="’", currency_space=NBSP, symbols={"USD": "$", "JPY": "¥"}),
    "fr-FR": Locale(group=NNBSP, decimal=",", percent=NNBSP + "%", currency_first=False,
                    symbols={"USD": "$US", "GBP": "£GB"}),
    "fr-CA": Locale(group=NBSP, decimal=",", percent=NBSP + "%", currency_first=False,
                    symbols={"CAD": "$", "USD": "$" + NBSP + "US"}),
    "es-ES": Locale(group=".", decimal=",", min_grouping=2, percent=NBSP + "%", currency_first=False),
    "es-MX": Locale(symbols={"MXN": "$", "USD": "USD"}),
    "it-IT": Locale(group=".", decimal=",", currency_first=False, symbols={"USD": "USD"}),
    "nl-NL": Locale(group=".", decimal=",", currency_space=NBSP, minus_after_symbol=True),
    "pt-BR": Locale(group=".", decimal=",", currency_space=NBSP),
    "pt-PT": Locale(min_grouping=2, **_SPACE_GROUPED),
    "sv-SE": Locale(minus="\u2212", percent=NBSP + "%", symbols={"SEK": "kr"}, **_SPACE_GROUPED),
    "nb-NO": Locale(minus="\u2212", percent=NBSP + "%", symbols={"NOK": "kr"}, **_SPACE_GROUPED),
    "fi-FI": Locale(minus="\u2212", percent=NBSP + "%", **_SPACE_GROUPED),
    "da-DK": Locale(group=".", decimal=",", percent=NBSP + "%", currency_first=False, symbols={"DKK": "kr."}),
    "pl-PL": Locale(min_grouping=2, symbols={"PLN": "zł"}, **_SPACE_GROUPED),
    "cs-CZ": Locale(percent=NBSP + "%", symbols={"CZK": "Kč"}, **_SPACE_GROUPED),
    "ru-RU": Locale(percent=NBSP + "%", symbols={"RUB": "₽"}, **_SPACE_GROUPED),
    "tr-TR": Locale(group=".", decimal=",", symbols={"TRY": "₺"}),
    "ja-JP": Locale(symbols={"JPY": "￥", "USD": "$"}),
    "zh-CN": Locale(symbols={"CNY": "¥", "USD": "US$"}),
    "ko-KR": Locale(symbols={"KRW": "₩", "USD": "US$"}),
}  # fmt: skip

# A bare language (or an unknown region) uses the locale Intl would pick for it.
_LANGUAGE_DEFAULT = {
    "en": "en-US", "de": "de-DE", "fr": "fr-FR", "es": "es-ES", "it": "it-IT", "nl": "nl-NL",
    "pt": "pt-BR", "sv": "sv-SE", "nb": "nb-NO", "no": "nb-NO", "fi": "fi-FI", "da": "da-DK",
    "pl": "pl-PL", "cs": "cs-CZ", "ru": "ru-RU", "tr": "tr-TR", "ja": "ja-JP", "zh": "zh-CN",
    "ko": "ko-KR", "hi": "hi-IN",
}  # fmt: skip

_LOCALES_LOWER = {k.lower(): v for k, v in LOCALES.items()}
_LOCALE_PATTERN = "^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$"


def resolve_locale(tag: str | None, ctx: OperatorContext | None = None) -> Locale:
    """The table entry for a BCP 47 tag: exact, then by language, then en-US (with a warning)."""
    if not tag:
        return LOCALES["en-US"]
    normal = tag.replace("_", "-").lower()
    hit = _LOCALES_LOWER.get(normal)
    if hit is not None:
        return hit
    language = normal.split("-", 1)[0]
    fallback = _LANGUAGE_DEFAULT.get(language)
    if fallback is not None:
        return LOCALES[fallback]
    if ctx is not None:
        ctx.warn(f"locale '{tag}' is not in the number-format table; en-US is used")
    return LOCALES["en-US"]


_LOCALE_PROP = {
    "type": "string",
    "pattern": _LOCALE_PATTERN,
    "description": "BCP 47 locale such as en-US, de-DE, fr-FR, es-ES, it-IT, nl-NL, pt-BR, sv-SE or ja-JP.",
}

_SPACES = (" ", NBSP, NNBSP)


@record_operator(
    "parseNumber",
    name="Parse number",
    category="numeric",
    description="Parse a localized number string ('1.234,56' in de-DE) to a number, else the default.",
    schema=args_schema(
        {
            "source": path_prop("Field holding the string to parse."),
            "target": {"type": "string", "description": "Field to write the number to; defaults to source."},
            "locale": {
                **_LOCALE_PROP,
                "description": "Locale whose group separator is removed and whose decimal separator "
                "becomes '.'. Without it, commas are removed. " + _LOCALE_PROP["description"],
            },
            "default": {"type": "number", "description": "Written when nothing parses; without it null."},
        },
        ["source"],
    ),
)
def build_parse_number(args: dict, ctx: OperatorContext):
    get = getter(args, "source")
    put = setter(args, "target", default=args["source"])
    default = args.get("default")
    if args.get("locale"):
        loc = resolve_locale(args["locale"], ctx)
        # Space-like group separators are all removed: people type a plain space for fr-FR's narrow one.
        removed = (
            _SPACES if loc.group in _SPACES else ((loc.group, "'") if loc.group == "’" else (loc.group,))
        )
        decimal = loc.decimal
    else:
        removed, decimal = (",",), "."

    def clean(text: str) -> str:
        text = text.strip(js.WHITESPACE)
        for sep in removed:
            text = text.replace(sep, "")
        if decimal != ".":
            text = text.replace(decimal, ".")
        return text

    def fn(record):
        value = get(record)
        t = type(value)
        if t is int or t is float:
            number = value
        elif t is str:
            number = js.parse_float(clean(value))
        else:
            number = None
        put(record, default if number is None else number)
        return record

    return writes_top_level(fn, args, "target", default=args["source"])


# ---------------------------------------------------------------------------------------------------------
# formatNumber

_DECIMAL_CONTEXT = Context(prec=1000)
_QUANTUM = [Decimal(1).scaleb(-d) for d in range(MAX_DECIMALS + 1)]


def _group_digits(digits: str, loc: Locale) -> str:
    if len(digits) < 3 + loc.min_grouping:
        return digits
    if loc.indian:
        head, tail = digits[:-3], digits[-3:]
        parts = []
        while len(head) > 2:
            parts.append(head[-2:])
            head = head[:-2]
        parts.append(head)
        return loc.group.join(reversed(parts)) + loc.group + tail
    first = len(digits) % 3 or 3
    return loc.group.join([digits[:first]] + [digits[i : i + 3] for i in range(first, len(digits), 3)])


def format_number(
    value: float | int,
    loc: Locale,
    *,
    min_digits: int,
    max_digits: int,
    grouping: bool = True,
    percent: bool = False,
    symbol: str | None = None,
) -> str:
    """``Intl.NumberFormat`` for one number: half-away-from-zero rounding of its shortest decimal form."""
    if not math.isfinite(value):
        return js.string(value)
    number = Decimal(repr(value)) if type(value) is float else Decimal(value)
    negative = number < 0 or (number == 0 and math.copysign(1.0, value) < 0)
    number = abs(number)
    if percent:
        number = number.scaleb(2, context=_DECIMAL_CONTEXT)
    text = format(
        number.quantize(_QUANTUM[max_digits], rounding=ROUND_HALF_UP, context=_DECIMAL_CONTEXT), "f"
    )
    int_part, _, frac = text.partition(".")
    while len(frac) > min_digits and frac[-1] == "0":
        frac = frac[:-1]
    if grouping:
        int_part = _group_digits(int_part, loc)
    body = int_part + (loc.decimal + frac if frac else "")
    sign = loc.minus if negative else ""
    if percent:
        return sign + body + loc.percent
    if symbol is None:
        return sign + body
    if not loc.currency_first:
        return sign + body + NBSP + symbol
    space = loc.currency_space or (NBSP if symbol[-1].isalpha() else "")
    if loc.minus_after_symbol:
        return symbol + space + sign + body
    return sign + symbol + space + body


@record_operator(
    "formatNumber",
    name="Number format",
    category="numeric",
    description="Format a number as a localized string, as a decimal, a currency amount or a percentage.",
    schema=args_schema(
        {
            "source": path_prop("Field holding the number."),
            "target": path_prop("Field to write the formatted string to."),
            "locale": {**_LOCALE_PROP, "default": "en-US"},
            "decimals": {
                "type": "integer",
                "minimum": 0,
                "maximum": MAX_DECIMALS,
                "description": "Exact number of decimals. Without it: up to 3 for decimal, 0 for percent, "
                "the currency's own digits (2 for USD, 0 for JPY) for currency.",
            },
            "style": {
                "type": "string",
                "enum": ["decimal", "currency", "percent"],
                "default": "decimal",
                "description": "decimal (1,234.5), currency (needs 'currency'; $1,234.50) or percent "
                "(0.25 → 25%).",
            },
            "currency": {
                "type": "string",
                "pattern": "^[A-Za-z]{3}$",
                "description": "ISO 4217 code such as USD or EUR, for style currency (without it, decimal "
                "style is used).",
            },
            "useGrouping": {
                "type": "boolean",
                "default": True,
                "description": "Use thousands separators.",
            },
        },
        ["source", "target"],
    ),
)
def build_format_number(args: dict, ctx: OperatorContext):
    get = getter(args, "source")
    put = setter(args, "target")
    loc = resolve_locale(args.get("locale") or "en-US", ctx)
    style = args.get("style") or "decimal"
    decimals = args.get("decimals")
    grouping = args.get("useGrouping", True) is not False
    symbol = None
    percent = style == "percent"
    if style == "currency":
        code = (args.get("currency") or "").upper()
        if code:
            symbol = loc.symbols.get(code) or _SYMBOLS.get(code) or code
            default_min = default_max = _CURRENCY_DIGITS.get(code, 2)
        else:
            ctx.warn("formatNumber: style 'currency' without a 'currency' code formats as a decimal")
            default_min, default_max = 0, 3
    elif percent:
        default_min = default_max = 0
    else:
        default_min, default_max = 0, 3
    if decimals is not None:
        default_min = default_max = int(decimals)
    min_digits, max_digits = default_min, default_max

    def fn(record):
        value = get(record)
        if type(value) is float or type(value) is int:
            put(
                record,
                format_number(
                    value,
                    loc,
                    min_digits=min_digits,
                    max_digits=max_digits,
                    grouping=grouping,
                    percent=percent,
                    symbol=symbol,
                ),
            )
        return record

    return writes_top_level(fn, args, "target")

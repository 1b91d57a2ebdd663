"""Date operators: dateFormat, dateParse, dateAdd, dateDiff, now. [pure, except ``now``]

Behaviour follows the Vendure Data Hub plugin (research/vendure-data-hub.md §2.2):

* Everything is UTC. A date is held as JavaScript holds it, milliseconds since the epoch; dates written
  to records are ``toISOString()`` strings (``2024-02-14T00:00:00.000Z``).
* A date value is an epoch-milliseconds number, an ISO-8601 string (``2024-01-15``, which is UTC
  midnight, ``2024-01-15T10:30``, ``...:45.123Z``, ``...+02:00``; a time without an offset is UTC), or a
  ``datetime``/``date`` object (extractors that read databases produce those).
* Formats use only the tokens ``YYYY MM DD HH mm ss``. A format used to *parse* must hold each token
  at most once and at least one; impossible dates (31/02, 24:00:00) do not parse. Formats are at most
  ``MAX_FORMAT_LENGTH`` characters. A format that cannot work is a ConfigError when the step starts.
* A value that does not parse leaves the record unchanged (``dateDiff`` writes ``null``).
* ``timezone`` is accepted where the plugin has it, and ignored (with a warning unless it is UTC).

Why one module of this size: the five date operators share one concern, JavaScript Date semantics: civil-
calendar arithmetic, ISO parsing and the format compilers every operator uses.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from operator import itemgetter

from pipelines import js
from pipelines.errors import ConfigError
from pipelines.operators._common import args_schema, path_prop
from pipelines.operators.base import OperatorContext, record_operator
from pipelines.operators.numbers import getter, setter
from pipelines.records import MISSING

MAX_FORMAT_LENGTH = 64
MAX_DATE_VALUE_LENGTH = 100
MAX_TIME_MS = 8_640_000_000_000_000  # JavaScript's Date range: ±100,000,000 days around the epoch

SECOND_MS = 1000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

_UNITS = ["seconds", "minutes", "hours", "days", "weeks", "months", "years"]
# dateDiff divisors exactly as the plugin computes them (months 30.44 days, years 365.25 days).
_DIFF_DIVISOR = {
    "seconds": 1000,
    "minutes": 1000 * 60,
    "hours": 1000 * 60 * 60,
    "days": 1000 * 60 * 60 * 24,
    "weeks": 1000 * 60 * 60 * 24 * 7,
    "months": 1000 * 60 * 60 * 24 * 30.44,
    "years": 1000 * 60 * 60 * 24 * 365.25,
}
_UTC_NAMES = {"utc", "etc/utc", "gmt", "etc/gmt", "z", "+00:00", "zulu", "universal"}

# ---------------------------------------------------------------------------------------------------------
# Calendar arithmetic on epoch milliseconds (proleptic Gregorian, like JavaScript; no datetime range limit).


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a (year, month 1-12, day); day may overflow the month."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def civil_from_days(days: int) -> tuple[int, int, int]:
    days += 719468
    era = days // 146097
    doe = days - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + (3 if mp < 10 else -9)
    return yoe + era * 400 + (month <= 2), month, day


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _valid_ms(year, month, day, hour, minute, second, milli=0) -> int | None:
    if not (1 <= month <= 12 and 1 <= day <= _days_in_month(year, month)):
        return None
    if hour > 23 or minute > 59 or second > 59:
        return None
    return (
        days_from_civil(year, month, day) * DAY_MS
        + hour * HOUR_MS
        + minute * MINUTE_MS
        + second * 1000
        + milli
    )


def split_ms(ms: int) -> tuple[int, int, int, int, int, int, int]:
    """(year, month, day, hour, minute, second, millisecond) in UTC."""
    days, rest = divmod(ms, DAY_MS)
    year, month, day = civil_from_days(days)
    hour, rest = divmod(rest, HOUR_MS)
    minute, rest = divmod(rest, MINUTE_MS)
    second, milli = divmod(rest, 1000)
    return year, month, day, hour, minute, second, milli


def iso_string(ms: int) -> str:
    """JavaScript's ``Date.prototype.toISOString()``."""
    year, month, day, hour, minute, second, milli = split_ms(ms)
    y = f"{year:04d}" if 0 <= year <= 9999 else ("-" if year < 0 else "+") + f"{abs(year):06d}"
    return f"{y}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}.{milli:03d}Z"


_ISO = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:T([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,9}))?)?(Z|[+-][0-9]{2}:?[0-9]{2})?)?"
)


def parse_iso(text: str) -> int | None:
    """Epoch ms of an ISO-8601 date or date-time string (UTC when no offset is given), or None."""
    if len(text) > MAX_DATE_VALUE_LENGTH:
        return None
    m = _ISO.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = m.groups()
    if hour is None:
        return _valid_ms(int(year), int(month), int(day), 0, 0, 0)
    ms = _valid_ms(
        int(year),
        int(month),
        int(day),
        int(hour),
        int(minute),
        int(second or 0),
        int((fraction or "0")[:3].ljust(3, "0")),
    )
    if ms is None or offset is None or offset == "Z":
        return ms
    sign = -1 if offset[0] == "-" else 1
    off_h, off_m = int(offset[1:3]), int(offset[-2:])
    if off_h > 23 or off_m > 59:
        return None
    return ms - sign * (off_h * HOUR_MS + off_m * MINUTE_MS)


def datetime_ms(value: datetime | date) -> int:
    """Epoch ms of a datetime (naive means UTC) or a date (UTC midnight)."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            offset = value.utcoffset()
            value = value.replace(tzinfo=None) - offset if offset else value.replace(tzinfo=None)
        days = days_from_civil(value.year, value.month, value.day)
        return (
            days * DAY_MS
            + value.hour * HOUR_MS
            + value.minute * MINUTE_MS
            + value.second * 1000
            + value.microsecond // 1000
        )
    return days_from_civil(value.year, value.month, value.day) * DAY_MS


def to_ms(value) -> int | None:
    """Epoch ms of a date value (number of ms, ISO string, datetime or date), or None."""
    t = type(value)
    if t is str:
        return parse_iso(value)
    if t is int or t is float:
        if not (-MAX_TIME_MS <= value <= MAX_TIME_MS):  # also false for NaN
            return None
        return int(value)  # JavaScript's TimeClip truncates towards zero
    if isinstance(value, datetime | date):
        return datetime_ms(value)
    return None


# ---------------------------------------------------------------------------------------------------------
# Formats

_TOKEN = re.compile("YYYY|MM|DD|HH|mm|ss")
_TOKEN_INDEX = {"YYYY": 0, "MM": 1, "DD": 2, "HH": 3, "mm": 4, "ss": 5}


def _check_format_text(fmt, field: str) -> str:
    if not isinstance(fmt, str) or not fmt:
        raise ConfigError("a date format is required, e.g. 'YYYY-MM-DD'", field=field)
    if len(fmt) > MAX_FORMAT_LENGTH:
        raise ConfigError(f"a date format is at most {MAX_FORMAT_LENGTH} characters", field=field)
    return fmt


def compile_output_format(fmt: str, field: str = "format"):
    """A function (year, month, day, hour, minute, second) -> text for a token format."""
    _check_format_text(fmt, field)
    pieces, order, last = [], [], 0
    for m in _TOKEN.finditer(fmt):
        pieces.append(fmt[last : m.start()].replace("%", "%%"))
        pieces.append("%04d" if m.group() == "YYYY" else "%02d")
        order.append(_TOKEN_INDEX[m.group()])
        last = m.end()
    pieces.append(fmt[last:].replace("%", "%%"))
    template = "".join(pieces)
    if not order:
        constant = fmt
        return lambda parts: constant
    if len(order) == 1:
        index = order[0]
        return lambda parts: template % parts[index]
    pick = itemgetter(*order)
    return lambda parts: template % pick(parts)


def compile_input_format(fmt: str, field: str = "format"):
    """A function text -> epoch ms or None, for a format holding each token at most once."""
    _check_format_text(fmt, field)
    pieces, tokens, last = [], [], 0
    for m in _TOKEN.finditer(fmt):
        pieces.append(re.escape(fmt[last : m.start()]))
        pieces.append("([0-9]{4})" if m.group() == "YYYY" else "([0-9]{2})")
        tokens.append(m.group())
        last = m.end()
    pieces.append(re.escape(fmt[last:]))
    if not tokens:
        raise ConfigError(f"date format '{fmt}' has none of the tokens YYYY MM DD HH mm ss", field=field)
    repeated = sorted({t for t in tokens if tokens.count(t) > 1})
    if repeated:
        raise ConfigError(
            f"date format '{fmt}' repeats {', '.join(repeated)}; each token may appear once", field=field
        )
    match = re.compile("".join(pieces)).fullmatch
    slots = [_TOKEN_INDEX[t] for t in tokens]

    def parse(text: str) -> int | None:
        if len(text) > MAX_DATE_VALUE_LENGTH:
            return None
        m = match(text)
        if m is None:
            return None
        parts = [1970, 1, 1, 0, 0, 0]
        for slot, digits in zip(slots, m.groups(), strict=True):
            parts[slot] = int(digits)
        return _valid_ms(*parts)

    return parse


MEMO_SIZE = 4096


def _memo(convert):
    """``convert`` for string values, remembering recent results: date columns repeat their values a lot.

    The memo is per operator position and bounded; it starts over when full.
    """
    memo: dict[str, str | None] = {}

    def cached(text: str):
        result = memo.get(text, MISSING)
        if result is MISSING:
            if len(memo) >= MEMO_SIZE:
                memo.clear()
            result = memo[text] = convert(text)
        return result

    return cached


def _writer(get, put, convert):
    """The record function writing ``convert(source)`` to the target, unless it gives None (the record is
    then unchanged); string sources go through :func:`_memo`."""
    convert_text = _memo(convert)

    def fn(record):
        value = get(record)
        text = convert_text(value) if type(value) is str else convert(value)
        if text is not None:
            put(record, text)
        return record

    return fn


def _format_ms(ms: int, render) -> str | None:
    year, month, day, hour, minute, second, _ = split_ms(ms)
    if not 0 <= year <= 9999:
        return None
    return render((year, month, day, hour, minute, second))


_TIMEZONE_PROP = {
    "type": "string",
    "description": "Accepted for compatibility with the plugin; dates are always handled in UTC.",
}
_FORMAT_TOKENS = "Tokens: YYYY, MM, DD, HH (00-23), mm, ss; anything else is copied as is."


def _warn_timezone(args: dict, ctx: OperatorContext, code: str) -> None:
    tz = args.get("timezone")
    if tz and str(tz).strip().lower() not in _UTC_NAMES:
        ctx.warn(f"{code}: timezone '{tz}' is ignored; dates are handled in UTC")


# ---------------------------------------------------------------------------------------------------------
# Operators


@record_operator(
    "dateFormat",
    name="Format date",
    category="date",
    description="Format a date (epoch ms, ISO string or a string in inputFormat) as text, in UTC.",
    schema=args_schema(
        {
            "source": path_prop("Field holding the date."),
            "target": path_prop("Field to write the formatted text to."),
            "format": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_FORMAT_LENGTH,
                "description": "Output format, e.g. 'DD/MM/YYYY HH:mm'. " + _FORMAT_TOKENS,
            },
            "inputFormat": {
                "type": "string",
                "maxLength": MAX_FORMAT_LENGTH,
                "description": "Format of a string source that is not ISO-8601, e.g. 'DD.MM.YYYY'; tried "
                "before ISO-8601.",
            },
            "timezone": _TIMEZONE_PROP,
        },
        ["source", "target", "format"],
    ),
)
def build_date_format(args: dict, ctx: OperatorContext):
    get = getter(args, "source")
    put = setter(args, "target")
    render = compile_output_format(args["format"])
    _warn_timezone(args, ctx, "dateFormat")
    parse_input = (
        compile_input_format(args["inputFormat"], "inputFormat") if args.get("inputFormat") else None
    )

    def convert(value):
        ms = None
        if parse_input is not None and type(value) is str:
            ms = parse_input(value)
        if ms is None:
            ms = to_ms(value)
        return None if ms is None else _format_ms(ms, render)

    return _writer(get, put, convert)


@record_operator(
    "dateParse",
    name="Parse date",
    category="date",
    description="Parse a string in an explicit format and write it as an ISO-8601 UTC string.",
    schema=args_schema(
        {
            "source": path_prop("Field holding the date string."),
            "target": path_prop("Field to write the ISO-8601 string to."),
            "format": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_FORMAT_LENGTH,
                "description": "Format of the source, e.g. 'DD/MM/YYYY'; each token at most once. "
                + _FORMAT_TOKENS,
            },
            "timezone": _TIMEZONE_PROP,
        },
        ["source", "target", "format"],
    ),
)
def build_date_parse(args: dict, ctx: OperatorContext):
    get = getter(args, "source")
    put = setter(args, "target")
    parse = compile_input_format(args["format"])
    _warn_timezone(args, ctx, "dateParse")

    def fn(record):
        value = get(record)
        if type(value) is str:
            ms = parse(value)
            if ms is not None:
                put(record, iso_string(ms))
        return record

    return fn


def _add_months(ms: int, months: int) -> int:
    days, time_of_day = divmod(ms, DAY_MS)
    year, month, day = civil_from_days(days)
    total = month - 1 + months
    # Like JavaScript's setUTCMonth: a day past the end of the new month rolls into the next (Jan 31 + 1).
    return (days_from_civil(year + total // 12, total % 12 + 1, 1) + day - 1) * DAY_MS + time_of_day


_UNIT_MS = {"seconds": SECOND_MS, "minutes": MINUTE_MS, "hours": HOUR_MS, "days": DAY_MS, "weeks": 7 * DAY_MS}


def _component(ms: int, unit: str) -> int:
    """The date field JavaScript's setter for ``unit`` starts from (seconds, minutes, hours, day)."""
    if unit == "seconds":
        return ms // SECOND_MS % 60
    if unit == "minutes":
        return ms // MINUTE_MS % 60
    if unit == "hours":
        return ms // HOUR_MS % 24
    return civil_from_days(ms // DAY_MS)[2]


def _adder(unit: str, amount: float):
    """A function ms -> ms adding ``amount`` of ``unit`` as JavaScript's UTC setters do."""
    integral = float(amount).is_integer()
    if unit in ("months", "years"):
        months_per = 12 if unit == "years" else 1
        if integral:
            step = int(amount) * months_per
            return lambda ms: _add_months(ms, step)

        def add_fraction(ms):
            # setUTCMonth/setUTCFullYear truncate the new field value towards zero.
            year, month = split_ms(ms)[:2]
            base = year if unit == "years" else month - 1
            return _add_months(ms, (math.trunc(base + amount) - base) * months_per)

        return add_fraction
    unit_ms = _UNIT_MS[unit]
    if integral:
        delta = int(amount) * unit_ms
        return lambda ms: ms + delta
    per = 7 if unit == "weeks" else 1
    base_unit = "days" if unit == "weeks" else unit
    base_ms = DAY_MS if unit == "weeks" else unit_ms

    def add(ms):
        base = _component(ms, base_unit)
        return ms + (math.trunc(base + amount * per) - base) * base_ms

    return add


@record_operator(
    "dateAdd",
    name="Add to date",
    category="date",
    description="Add (or with a negative amount, subtract) time to a date and write an ISO-8601 string.",
    schema=args_schema(
        {
            "source": path_prop("Field holding the date (epoch ms or ISO-8601 string)."),
            "target": path_prop("Field to write the ISO-8601 result to."),
            "amount": {"type": "number", "description": "How many units to add; negative subtracts."},
            "unit": {
                "type": "string",
                "enum": _UNITS,
                "description": "Unit of the amount (plural). Months and years keep the day of the month; "
                "a day past the month's end rolls over (Jan 31 + 1 month is Mar 2 or 3).",
            },
        },
        ["source", "target", "amount", "unit"],
    ),
)
def build_date_add(args: dict, ctx: OperatorContext):
    get = getter(args, "source")
    put = setter(args, "target")
    add = _adder(args["unit"], args["amount"])

    def convert(value):
        ms = to_ms(value)
        if ms is None:
            return None
        result = add(ms)
        return iso_string(result) if -MAX_TIME_MS <= result <= MAX_TIME_MS else None

    return _writer(get, put, convert)


@record_operator(
    "dateDiff",
    name="Date difference",
    category="date",
    description="Write endDate minus startDate in a unit (months are 30.44 days, years 365.25 days).",
    schema=args_schema(
        {
            "startDate": path_prop("Field holding the start date."),
            "endDate": path_prop("Field holding the end date."),
            "target": path_prop("Field to write the difference to (null when either date is invalid)."),
            "unit": {
                "type": "string",
                "enum": _UNITS,
                "description": "Unit of the result, a fraction where it does not divide evenly.",
            },
            "absolute": {
                "type": "boolean",
                "default": False,
                "description": "Write the difference without its sign.",
            },
        },
        ["startDate", "endDate", "target", "unit"],
    ),
)
def build_date_diff(args: dict, ctx: OperatorContext):
    get_start = getter(args, "startDate")
    get_end = getter(args, "endDate")
    put = setter(args, "target")
    divisor = _DIFF_DIVISOR[args["unit"]]
    absolute = bool(args.get("absolute"))

    def fn(record):
        start = to_ms(get_start(record))
        end = to_ms(get_end(record))
        if start is None or end is None:
            put(record, None)
            return record
        diff = end - start
        if absolute and diff < 0:
            diff = -diff
        put(record, js.normal_number(diff / divisor))
        return record

    return fn


@record_operator(
    "now",
    name="Now",
    category="date",
    description="Write the current time: ISO string, epoch ms, date, date-time or a custom format (UTC).",
    pure=False,
    schema=args_schema(
        {
            "target": path_prop("Field to write the current time to."),
            "format": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_FORMAT_LENGTH,
                "default": "ISO",
                "description": "ISO (2024-01-15T10:30:00.000Z), timestamp (epoch ms), date (YYYY-MM-DD), "
                "datetime (YYYY-MM-DD HH:mm:ss), or a custom format. " + _FORMAT_TOKENS,
            },
            "timezone": _TIMEZONE_PROP,
        },
        ["target"],
    ),
)
def build_now(args: dict, ctx: OperatorContext):
    put = setter(args, "target")
    fmt = args.get("format") or "ISO"
    _warn_timezone(args, ctx, "now")
    if fmt == "ISO":
        render = iso_string
    elif fmt == "timestamp":

        def render(ms):
            return ms
    else:
        template = {"date": "YYYY-MM-DD", "datetime": "YYYY-MM-DD HH:mm:ss"}.get(fmt, fmt)
        output = compile_output_format(template)

        def render(ms):
            return _format_ms(ms, output)

    clock = ctx.now
    # The run's clock is usually fixed, so the rendered value is kept until the clock moves.
    last: list = [None, None]

    def fn(record):
        moment = clock()
        if moment is not last[0]:
            last[0] = moment
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            last[1] = render(datetime_ms(moment))
        put(record, last[1])
        return record

    return fn

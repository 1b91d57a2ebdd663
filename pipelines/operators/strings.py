"""String operators: split, join, trim, lowercase, uppercase, slugify, concat, replace, extractRegex,
replaceRegex, stripHtml, truncate. [pure]

Behaviour follows the Vendure Data Hub plugin (research/vendure-data-hub.md §2.1): an operator whose
source is missing or not a string (an array for ``join``) leaves the record unchanged, so ``null`` stays
``null`` and no key is created. ``concat`` is the exception: it always writes its target.

Whitespace means JavaScript's (``trim``, ``\\s``): the Unicode spaces, line terminators and the BOM.

Regular expressions are Python ``re`` syntax, with the plugin's JavaScript conveniences translated:
named groups may be written ``(?<name>...)``, and ``replaceRegex`` replacements use ``$1``, ``$<name>``,
``$&``, ``$``` ``$'`` and ``$$`` as in JavaScript (``\\1`` and ``\\g<name>`` work too; any other backslash is
literal). Flags are the JavaScript letters ``g i m s u``. Patterns are compiled once per step, and one
with a catastrophic shape (a quantified group that itself contains an unbounded quantifier, like
``(a+)+``, or a quantified backreference) is refused with a ConfigError, as is an invalid one. A value
longer than ``MAX_REGEX_INPUT`` characters is not matched: that record goes to the record errors.

Why one module of this size: it is the catalogue's string family, fifteen short builders over the same
argument helpers and pipelines.js semantics; a split would be arbitrary, each builder already reads alone.
"""

from __future__ import annotations

import re
import unicodedata
from operator import methodcaller
from typing import Any

from pipelines import js
from pipelines.errors import ConfigError, RecordError
from pipelines.operators._common import args_schema, path_prop
from pipelines.operators.base import OperatorContext, inline, record_operator, top_level_only
from pipelines.operators.numbers import (
    arg_path,
    getter,
    plain_key,
    setter,
    writes_top_level,
)
from pipelines.records import MISSING

MAX_REGEX_INPUT = 100_000
SLUG_MAX_LENGTH = 200  # the plugin's TRANSFORM_LIMITS.SLUG_MAX_LENGTH


_OPTIONAL_TARGET = {"type": "string", "description": "Field to write the result to; defaults to source."}

# ---------------------------------------------------------------------------------------------------------
# split, join


@record_operator(
    "split",
    name="Split",
    category="string",
    description="Split a string field into an array by a delimiter.",
    schema=args_schema(
        {
            "source": path_prop("Field holding the string."),
            "target": path_prop("Field to write the array to."),
            "delimiter": {
                "type": "string",
                "description": "Text to split by (literal, not a pattern). An empty delimiter gives a "
                "one-item array holding the whole string.",
            },
            "trim": {"type": "boolean", "default": False, "description": "Trim whitespace from each item."},
        },
        ["source", "target", "delimiter"],
    ),
)
def build_split(args: dict, ctx: OperatorContext):
    get = getter(args, "source")
    put = setter(args, "target")
    delimiter = args["delimiter"]
    trim = bool(args.get("trim"))

    if delimiter == "":

        def fn(record):
            value = get(record)
            if type(value) is str:
                put(record, [value])
            return record
    elif trim:

        def fn(record):
            value = get(record)
            if type(value) is str:
                put(record, [part.strip(js.WHITESPACE) for part in value.split(delimiter)])
            return record
    else:

        def fn(record):
            value = get(record)
            if type(value) is str:
                put(record, value.split(delimiter))
            return record

        src, dst = plain_key(args, "source"), plain_key(args, "target")
        if src is not None and dst is not None:
            top_level_only(inline(fn, "v = r.get({src})\nif type(v) is str:\n    r[{dst}] = v.split({delimiter})",
                                  src=src, dst=dst, delimiter=delimiter))

    return fn


@record_operator(
    "join",
    name="Join",
    category="string",
    description="Join an array field into a string; null items become empty strings.",
    schema=args_schema(
        {
            "source": path_prop("Field holding the array."),
            "target": path_prop("Field to write the string to."),
            "delimiter": {
                "type": "string",
                "default": ",",
                "description": "Text placed between the items.",
            },
        },
        ["source", "target"],
    ),
)
def build_join(args: dict, ctx: OperatorContext):
    get = getter(args, "source")
    put = setter(args, "target")
    delimiter = args.get("delimiter", ",")

    def fn(record):
        value = get(record)
        if type(value) is list:
            put(
                record,
                delimiter.join(
                    [
                        item if type(item) is str else ("" if item is None else js.string(item))
                        for item in value
                    ]
                ),
            )
        return record

    return fn


# ---------------------------------------------------------------------------------------------------------
# trim, lowercase, uppercase


@record_operator(
    "trim",
    name="Trim",
    category="string",
    description="Remove whitespace from both ends (or the start or end) of a string field, in place.",
    schema=args_schema(
        {
            "path": path_prop("Field holding the string; it is changed in place."),
            "mode": {
                "type": "string",
                "enum": ["both", "start", "end"],
                "default": "both",
                "description": "Which ends to trim.",
            },
        },
        ["path"],
    ),
)
def build_trim(args: dict, ctx: OperatorContext):
    name = {"both": "strip", "start": "lstrip", "end": "rstrip"}[args.get("mode") or "both"]
    # methodcaller: called from C, no Python frame per record. Written in place, the method called with its
    # argument costs half as much again (methodcaller packs its arguments anew on every call).
    return _in_place(args, methodcaller(name, js.WHITESPACE), method=getattr(str, name), chars=js.WHITESPACE)


@record_operator(
    "lowercase",
    name="Lowercase",
    category="string",
    description="Convert a string field to lowercase, in place.",
    schema=args_schema({"path": path_prop("Field holding the string; it is changed in place.")}, ["path"]),
)
def build_lowercase(args: dict, ctx: OperatorContext):
    return _in_place(args, str.lower)


@record_operator(
    "uppercase",
    name="Uppercase",
    category="string",
    description="Convert a string field to uppercase, in place.",
    schema=args_schema({"path": path_prop("Field holding the string; it is changed in place.")}, ["path"]),
)
def build_uppercase(args: dict, ctx: OperatorContext):
    return _in_place(args, str.upper)


def _in_place(args: dict, change, *, method=None, chars: str | None = None):
    """``change(value)`` replaces the string; its inline form is ``method(value, chars)`` when given."""
    field = arg_path(args, "path")
    if len(field.parts) == 1 and isinstance(field.parts[0], str):
        key = field.parts[0]

        def fn(record):
            value = record.get(key)
            if type(value) is str:
                record[key] = change(value)
            return record

        if method is None:
            return top_level_only(inline(fn, "v = r.get({key})\nif type(v) is str:\n    r[{key}] = {change}(v)",
                                         key=key, change=change))
        return top_level_only(inline(fn, "v = r.get({key})\nif type(v) is str:\n    r[{key}] = {method}(v, {chars})",
                                     key=key, method=method, chars=chars))

    get, put = field.get, field.set

    def fn(record):
        value = get(record)
        if type(value) is str:
            put(record, change(value))
        return record

    return fn


# ---------------------------------------------------------------------------------------------------------
# slugify

_NOT_SLUG = re.compile(f"[^a-z0-9{js.WHITESPACE_CLASS}]+")
_WHITESPACE_RUN = re.compile(f"[{js.WHITESPACE_CLASS}]+")
_SLUG_CHAR = re.compile("[a-z0-9]")


@record_operator(
    "slugify",
    name="Slugify",
    category="string",
    description="Make a URL-friendly slug: lowercase, accents removed, other symbols dropped, spaces to '-'.",
    schema=args_schema(
        {
            "source": path_prop("Field holding the text."),
            "target": path_prop("Field to write the slug to."),
            "separator": {
                "type": "string",
                "default": "-",
                "description": "Put in place of each run of whitespace.",
            },
        },
        ["source", "target"],
    ),
)
def build_slugify(args: dict, ctx: OperatorContext):
    get = getter(args, "source")
    put = setter(args, "target")
    separator = args.get("separator", "-")
    replacement = separator.replace("\\", "\\\\")
    # Like the plugin: characters that are neither [a-z0-9] nor whitespace are dropped (not turned into
    # separators), so "Home & Garden" is "home-garden"; then separators at either end are removed. That
    # last step can only change something when the separator begins or ends with [a-z0-9] (the slug
    # itself begins and ends with one), so it is skipped otherwise.
    edges = None
    if separator and (_SLUG_CHAR.match(separator[0]) or _SLUG_CHAR.match(separator[-1])):
        edges = re.compile(f"^{re.escape(separator)}+|{re.escape(separator)}+$")
    normalize = unicodedata.normalize
    not_slug, whitespace_run = _NOT_SLUG.sub, _WHITESPACE_RUN.sub

    def fn(record):
        value = get(record)
        if type(value) is str:
            value = value.lower()
            if not value.isascii():
                value = normalize("NFD", value)
            slug = whitespace_run(replacement, not_slug("", value).strip(js.WHITESPACE))
            if edges is not None:
                slug = edges.sub("", slug)
            put(record, slug[:SLUG_MAX_LENGTH])
        return record

    writes_top_level(fn, args, "target")
    src, dst = plain_key(args, "source"), plain_key(args, "target")
    if src is not None and dst is not None and edges is None:
        inline(fn, _SLUGIFY_INLINE, src=src, dst=dst, normalize=normalize, whitespace_run=whitespace_run,
               replacement=replacement, not_slug=not_slug, ws=js.WHITESPACE, limit=SLUG_MAX_LENGTH)
    return fn


_SLUGIFY_INLINE = """v = r.get({src})
if type(v) is str:
    v = v.lower()
    if not v.isascii():
        v = {normalize}("NFD", v)
    r[{dst}] = {whitespace_run}({replacement}, {not_slug}("", v).strip({ws}))[:{limit}]"""


# ---------------------------------------------------------------------------------------------------------
# concat, replace


_CONCAT_INLINE = """parts = []
for v in {keys}:
    v = r.get(v)
    if v is None:
        continue
    if type(v) is not str:
        v = {string}(v)
    if v:
        parts.append(v)
r[{target}] = {separator}.join(parts)"""


@record_operator(
    "concat",
    name="Concatenate",
    category="string",
    description="Join several fields into one string, skipping null, missing and empty values.",
    schema=args_schema(
        {
            "sources": {
                "type": "array",
                "items": {"type": "string", "minLength": 1},
                "minItems": 1,
                "description": "Field paths whose values are joined, in this order.",
            },
            "target": path_prop("Field to write the string to (always written, '' when all are empty)."),
            "separator": {"type": "string", "default": "", "description": "Text placed between the values."},
        },
        ["sources", "target"],
    ),
)
def build_concat(args: dict, ctx: OperatorContext):
    getters = [getter({"sources": s}, "sources") for s in args["sources"]]
    put = setter(args, "target")
    separator = args.get("separator", "")
    keys = [plain_key({"sources": s}, "sources") for s in args["sources"]]
    target = plain_key(args, "target")
    if target is not None and None not in keys:

        def plain(record):
            parts = []
            for key in keys:
                value = record.get(key)
                if value is None:
                    continue
                if type(value) is not str:
                    value = js.string(value)
                if value:
                    parts.append(value)
            record[target] = separator.join(parts)
            return record

        return top_level_only(inline(plain, _CONCAT_INLINE, keys=tuple(keys), target=target,
                                     separator=separator, string=js.string))

    def fn(record):
        parts = []
        for get in getters:
            value = get(record)
            if value is None or value is MISSING:
                continue
            text = value if type(value) is str else js.string(value)
            if text:
                parts.append(text)
        put(record, separator.join(parts))
        return record

    return fn


@record_operator(
    "replace",
    name="Replace",
    category="string",
    description="Replace literal text in a string field, the first occurrence or all of them.",
    schema=args_schema(
        {
            "path": path_prop("Field holding the string; it is changed in place."),
            "search": {"type": "string", "description": "Literal text to find (not a pattern)."},
            "replacement": {"type": "string", "default": "", "description": "Text put in its place."},
            "all": {
                "type": "boolean",
                "default": False,
                "description": "Replace every occurrence instead of only the first.",
            },
        },
        ["path", "search"],
    ),
)
def build_replace(args: dict, ctx: OperatorContext):
    search = args["search"]
    replacement = args.get("replacement", "")
    if args.get("all"):
        if search == "":
            # JavaScript's split('') + join: between characters, not at the ends.
            return _in_place(args, lambda value: replacement.join(value))
        return _in_place(args, lambda value: value.replace(search, replacement))
    return _in_place(args, lambda value: value.replace(search, replacement, 1))


# ---------------------------------------------------------------------------------------------------------
# Regular expressions


def compile_regex(pattern: str, flags: str = "", field: str = "pattern") -> tuple[re.Pattern, bool]:
    """(compiled pattern, global flag) for a pattern written for JavaScript (:func:`pipelines.js.regex`)."""
    try:
        return js.regex(pattern, flags), "g" in flags
    except js.RegexError as exc:
        raise ConfigError(str(exc), field="flags" if exc.part == "flags" else field) from None


def _too_long(value: str) -> RecordError:
    return RecordError(
        f"value is {len(value)} characters long; regex operators only read values up to "
        f"{MAX_REGEX_INPUT} characters",
        retryable=False,
    )


_FLAGS_PROP = {
    "type": "string",
    "pattern": "^[gimsu]*$",
    "description": "JavaScript-style flags: i (ignore case), m (multiline), s (dot matches newline), "
    "g (all matches), u (accepted, Unicode is always on).",
}


@record_operator(
    "extractRegex",
    name="Extract with regex",
    category="string",
    description="Write a regex capture group (or the whole match) of a string field; null when no match.",
    schema=args_schema(
        {
            "source": path_prop("Field holding the string."),
            "target": path_prop("Field to write the extracted text (or null) to."),
            "pattern": {
                "type": "string",
                "minLength": 1,
                "description": "Regular expression (Python re syntax, no delimiters), e.g. 'ref:\\s*([A-Z0-9-]+)'.",
            },
            "group": {
                "type": "integer",
                "minimum": 0,
                "default": 1,
                "description": "Capture group to write: 0 is the whole match; a group the pattern does not "
                "have gives the whole match.",
            },
            "flags": {**_FLAGS_PROP, "default": ""},
        },
        ["source", "target", "pattern"],
    ),
)
def build_extract_regex(args: dict, ctx: OperatorContext):
    get = getter(args, "source")
    put = setter(args, "target")
    regex, _ = compile_regex(args["pattern"], args.get("flags") or "")  # 'g' is meaningless for one match
    group = args.get("group", 1)
    group = 1 if group is None else int(group)
    if group > regex.groups:
        group = 0
    search = regex.search

    def fn(record):
        value = get(record)
        if type(value) is str:
            if len(value) > MAX_REGEX_INPUT:
                raise _too_long(value)
            m = search(value)
            put(record, None if m is None else m.group(group))
        return record

    return fn


def js_replacement(replacement: str, regex: re.Pattern) -> Any:
    """A JavaScript replacement string as a Python ``re.sub`` template (or function, for $` and $')."""
    parts: list[Any] = []  # literal str, or ("group", ref) / ("before",) / ("after",)
    literal: list[str] = []
    groups, names = regex.groups, regex.groupindex
    i, n = 0, len(replacement)

    def flush():
        if literal:
            parts.append("".join(literal))
            literal.clear()

    while i < n:
        ch = replacement[i]
        nxt = replacement[i + 1] if i + 1 < n else ""
        if ch == "$" and nxt:
            if nxt == "$":
                literal.append("$")
                i += 2
                continue
            if nxt == "&":
                flush()
                parts.append(("group", 0))
                i += 2
                continue
            if nxt in "`'":
                flush()
                parts.append(("before",) if nxt == "`" else ("after",))
                i += 2
                continue
            if nxt.isdigit():
                two = replacement[i + 1 : i + 3]
                if len(two) == 2 and two.isdigit() and 1 <= int(two) <= groups:
                    flush()
                    parts.append(("group", int(two)))
                    i += 3
                    continue
                if 1 <= int(nxt) <= groups:
                    flush()
                    parts.append(("group", int(nxt)))
                    i += 2
                    continue
            if nxt == "<" and names:
                end = replacement.find(">", i + 2)
                if end != -1:
                    name = replacement[i + 2 : end]
                    flush()
                    if name in names:
                        parts.append(("group", name))
                    i = end + 1
                    continue
        if ch == "\\" and nxt:
            m = re.match(r"\\(?:([1-9][0-9]?)|g<(\w+)>)", replacement[i:])
            if m:
                ref = m.group(1) or m.group(2)
                ref = int(ref) if ref.isdigit() else ref
                if (isinstance(ref, int) and ref <= groups) or ref in names:
                    flush()
                    parts.append(("group", ref))
                    i += m.end()
                    continue
        literal.append(ch)
        i += 1
    flush()

    if any(isinstance(p, tuple) and p[0] != "group" for p in parts):

        def expand(m: re.Match) -> str:
            out = []
            for p in parts:
                if isinstance(p, str):
                    out.append(p)
                elif p[0] == "group":
                    out.append(m.group(p[1]) or "")
                elif p[0] == "before":
                    out.append(m.string[: m.start()])
                else:
                    out.append(m.string[m.end() :])
            return "".join(out)

        return expand
    return "".join(p.replace("\\", "\\\\") if isinstance(p, str) else f"\\g<{p[1]}>" for p in parts)


@record_operator(
    "replaceRegex",
    name="Replace with regex",
    category="string",
    description="Replace regex matches in a string field, in place; $1, $<name> and $& insert the match.",
    schema=args_schema(
        {
            "path": path_prop("Field holding the string; it is changed in place."),
            "pattern": {
                "type": "string",
                "minLength": 1,
                "description": "Regular expression (Python re syntax, no delimiters).",
            },
            "replacement": {
                "type": "string",
                "default": "",
                "description": "Replacement text: $1 or \\1 for a group, $<name> for a named group, $& for "
                "the whole match, $$ for a dollar sign.",
            },
            "flags": {
                **_FLAGS_PROP,
                "default": "g",
                "description": _FLAGS_PROP["description"] + " Without g only the first match is replaced.",
            },
        },
        ["path", "pattern"],
    ),
)
def build_replace_regex(args: dict, ctx: OperatorContext):
    flags = args.get("flags")
    regex, is_global = compile_regex(args["pattern"], "g" if flags is None else flags)
    template = js_replacement(args.get("replacement", ""), regex)
    count = 0 if is_global else 1
    sub = regex.sub

    def change(value: str) -> str:
        if len(value) > MAX_REGEX_INPUT:
            raise _too_long(value)
        return sub(template, value, count)

    return _in_place(args, change)


# ---------------------------------------------------------------------------------------------------------
# stripHtml, truncate

_SCRIPT = re.compile(r"<script\b[^<]*(?:(?!</script>)<[^<]*)*</script>", re.IGNORECASE)
_STYLE = re.compile(r"<style\b[^<]*(?:(?!</style>)<[^<]*)*</style>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")
# In the plugin's order: &amp; is decoded before &lt;, so "&amp;lt;" ends as "<".
_ENTITIES = (("&nbsp;", " "), ("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&#39;", "'"))


def strip_html(value: str) -> str:
    if "<" in value:
        value = _TAG.sub("", _STYLE.sub("", _SCRIPT.sub("", value)))
    if "&" in value:
        for entity, char in _ENTITIES:
            value = value.replace(entity, char)
    return _WHITESPACE_RUN.sub(" ", value).strip(" ")


@record_operator(
    "stripHtml",
    name="Strip HTML",
    category="string",
    description="Remove HTML tags (and script/style blocks) from a string field, keeping the text.",
    schema=args_schema(
        {
            "source": path_prop("Field holding the HTML."),
            "target": _OPTIONAL_TARGET,
        },
        ["source"],
    ),
)
def build_strip_html(args: dict, ctx: OperatorContext):
    get = getter(args, "source")
    put = setter(args, "target", default=args["source"])

    def fn(record):
        value = get(record)
        if type(value) is str:
            put(record, strip_html(value))
        return record

    return writes_top_level(fn, args, "target", default=args["source"])


@record_operator(
    "truncate",
    name="Truncate",
    category="string",
    description="Shorten a string to a maximum length, ending it with a suffix when it was cut.",
    schema=args_schema(
        {
            "source": path_prop("Field holding the string."),
            "target": _OPTIONAL_TARGET,
            "length": {
                "type": "integer",
                "minimum": 0,
                "description": "Maximum length of the result, suffix included.",
            },
            "suffix": {
                "type": "string",
                "default": "",
                "description": "Appended when the string was cut, e.g. '...'.",
            },
        },
        ["source", "length"],
    ),
)
def build_truncate(args: dict, ctx: OperatorContext):
    get = getter(args, "source")
    put = setter(args, "target", default=args["source"])
    length = int(args["length"])
    suffix = args.get("suffix") or ""
    keep = length - len(suffix)  # negative counts from the end, as JavaScript's slice does

    def fn(record):
        value = get(record)
        if type(value) is str:
            put(record, value if len(value) <= length else value[:keep] + suffix)
        return record

    return writes_top_level(fn, args, "target", default=args["source"])

"""Data operators (8): map, set, remove, rename, copy, template, hash, uuid. [pure]

As in the plugin, a missing source leaves the record unchanged; values written from one place of a record to
another are copied, so no two fields of a record share a list or an object.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid as uuid_lib
from collections.abc import Callable
from typing import Any

from pipelines import js
from pipelines.errors import ConfigError
from pipelines.operators.base import inline, record_operator, top_level_only
from pipelines.operators.json_ops import compile_path, js_json, single_key
from pipelines.records import MISSING, PathError, deep_copy, path

_PATH = {"type": "string", "minLength": 1}
_SCALARS = (str, int, float, bool, type(None))


@record_operator(
    "map",
    name="Map fields",
    category="data",
    description="Build a record from {targetPath: sourcePath} pairs; other fields are dropped unless passthrough.",
    schema={
        "type": "object",
        "properties": {
            "mapping": {
                "type": "object",
                "additionalProperties": _PATH,
                "description": (
                    'Target path -> source path, e.g. {"customer.email": "email"}. '
                    "A source that is missing is skipped."
                ),
            },
            "passthrough": {
                "type": "boolean",
                "default": False,
                "description": "Keep every field of the record and add the mapped ones (default: only mapped fields).",
            },
        },
        "required": ["mapping"],
        "additionalProperties": False,
    },
)
def build_map(args: dict, ctx: Any):
    mapping = args.get("mapping")
    if not isinstance(mapping, dict):
        raise ConfigError("'mapping' must be an object of targetPath: sourcePath", field="mapping")
    pairs = []
    for target, source in mapping.items():
        try:
            pairs.append((path(target), path(source)))
        except (PathError, TypeError) as exc:
            raise ConfigError(str(exc), field=f"mapping.{target}") from None
    passthrough = bool(args.get("passthrough", False))

    def map_fields(record: dict) -> dict:
        # Every source is read before anything is written, so a mapping that writes a field another pair
        # reads sees the input record, as in the plugin.
        values = [(t, s.get(record)) for t, s in pairs]
        out = record if passthrough else {}
        for t, value in values:
            if value is not MISSING:
                t.set(out, value if type(value) in _SCALARS else deep_copy(value))
        return out

    return map_fields


@record_operator(
    "set",
    name="Set value",
    category="data",
    description="Set a field to a fixed JSON value.",
    schema={
        "type": "object",
        "properties": {
            "path": {**_PATH, "description": "Path of the field to set (created when missing)."},
            "value": {"description": "The JSON value to write (any type, null included)."},
        },
        "required": ["path", "value"],
        "additionalProperties": False,
    },
)
def build_set(args: dict, ctx: Any):
    p = compile_path(args, "path")
    value = args.get("value")
    put = p.set
    key = single_key(p)
    if type(value) in _SCALARS and key is not None:

        def set_field(record: dict) -> dict:
            record[key] = value
            return record

        return top_level_only(inline(set_field, "r[{key}] = {value}", key=key, value=value))
    if type(value) in _SCALARS:

        def set_value(record: dict) -> dict:
            put(record, value)
            return record

    else:

        def set_value(record: dict) -> dict:
            put(record, deep_copy(value))
            return record

    return set_value


@record_operator(
    "remove",
    name="Remove field",
    category="data",
    description="Delete a field.",
    schema={
        "type": "object",
        "properties": {"path": {**_PATH, "description": "Path of the field to delete."}},
        "required": ["path"],
        "additionalProperties": False,
    },
)
def build_remove(args: dict, ctx: Any):
    delete = compile_path(args, "path").delete

    def remove(record: dict) -> dict:
        delete(record)
        return record

    return remove


@record_operator(
    "rename",
    name="Rename field",
    category="data",
    description="Move a field's value to another path (only when the field is present).",
    schema={
        "type": "object",
        "properties": {
            "from": {**_PATH, "description": "Current path of the field."},
            "to": {**_PATH, "description": "New path of the field."},
        },
        "required": ["from", "to"],
        "additionalProperties": False,
    },
)
def build_rename(args: dict, ctx: Any):
    src = compile_path(args, "from")
    dst = compile_path(args, "to")
    if src.parts == dst.parts:
        return lambda record: record
    src_key, dst_key = single_key(src), single_key(dst)
    if src_key is not None and dst_key is not None:

        def rename_field(record: dict) -> dict:
            value = record.pop(src_key, MISSING)
            if value is not MISSING:
                record[dst_key] = value
            return record

        return top_level_only(inline(rename_field, "v = r.pop({src}, MISSING)\nif v is not MISSING:\n    r[{dst}] = v",
                                     src=src_key, dst=dst_key))
    get, delete, put = src.get, src.delete, dst.set

    def rename(record: dict) -> dict:
        value = get(record)
        if value is not MISSING:
            # Delete first, then write: renaming 'a' to 'a.b' nests the value instead of losing it.
            delete(record)
            put(record, value)
        return record

    return rename


@record_operator(
    "copy",
    name="Copy field",
    category="data",
    description="Copy a field's value (a deep copy) to another path (only when the field is present).",
    schema={
        "type": "object",
        "properties": {
            "source": {**_PATH, "description": "Path of the field to copy."},
            "target": {**_PATH, "description": "Path to write the copy to."},
        },
        "required": ["source", "target"],
        "additionalProperties": False,
    },
)
def build_copy(args: dict, ctx: Any):
    get = compile_path(args, "source").get
    put = compile_path(args, "target").set

    def copy(record: dict) -> dict:
        value = get(record)
        if value is not MISSING:
            put(record, value if type(value) in _SCALARS else deep_copy(value))
        return record

    return copy


_PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")


@record_operator(
    "template",
    name="Template",
    category="data",
    description="Write a string built from a template with ${path} placeholders.",
    schema={
        "type": "object",
        "properties": {
            "template": {
                "type": "string",
                "description": "Text with ${path} placeholders, e.g. '${firstName} ${lastName}'.",
            },
            "target": {**_PATH, "description": "Path to write the resulting string to."},
            "missingAsEmpty": {
                "type": "boolean",
                "default": False,
                "description": "Write '' for a missing or null field (default: keep the ${path} placeholder as is).",
            },
        },
        "required": ["template", "target"],
        "additionalProperties": False,
    },
)
def build_template(args: dict, ctx: Any):
    template = args.get("template")
    if not isinstance(template, str):
        raise ConfigError("'template' must be a string", field="template")
    put = compile_path(args, "target").set
    missing_as_empty = bool(args.get("missingAsEmpty", False))
    # The template compiled once: the literal before each placeholder, the placeholder's getter and text.
    slots: list[tuple[str, Callable[[Any], Any], str]] = []
    last = 0
    for m in _PLACEHOLDER.finditer(template):
        try:
            getter = path(m.group(1)).get
        except PathError as exc:
            raise ConfigError(f"placeholder {m.group(0)}: {exc}", field="template") from None
        slots.append((template[last : m.start()], getter, "" if missing_as_empty else m.group(0)))
        last = m.end()
    tail = template[last:]

    if not slots:

        def constant(record: dict) -> dict:
            put(record, tail)
            return record

        return constant

    def render(record: dict) -> dict:
        out = []
        append = out.append
        for literal, getter, when_missing in slots:
            append(literal)
            value = getter(record)
            if type(value) is str:
                append(value)
            elif value is None or value is MISSING:
                append(when_missing)
            else:
                append(js.string(value))
        append(tail)
        put(record, "".join(out))
        return record

    return render


_HASHES = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}


@record_operator(
    "hash",
    name="Hash",
    category="data",
    description="Write the SHA-256 or SHA-512 digest of the JSON text of one field or of a list of fields.",
    schema={
        "type": "object",
        "properties": {
            "source": {
                "oneOf": [
                    {**_PATH},
                    {"type": "array", "items": _PATH, "minItems": 1},
                ],
                "description": (
                    "Path of the value to hash, or a list of paths hashed together as one JSON array "
                    "(missing ones left out). A string is hashed with its JSON quotes, as in the plugin."
                ),
            },
            "target": {
                **_PATH,
                "description": "Path to write the digest to (null when no source field is present).",
            },
            "algorithm": {
                "type": "string",
                "enum": ["sha256", "sha512"],
                "default": "sha256",
                "description": "Digest algorithm.",
            },
            "encoding": {
                "type": "string",
                "enum": ["hex", "base64"],
                "default": "hex",
                "description": "How to write the digest.",
            },
        },
        "required": ["source", "target"],
        "additionalProperties": False,
    },
)
def build_hash(args: dict, ctx: Any):
    source = args.get("source")
    if isinstance(source, str):
        sources = [compile_path(args, "source")]
    elif isinstance(source, list) and source:
        sources = []
        for i, text in enumerate(source):
            try:
                sources.append(path(text))
            except (PathError, TypeError) as exc:
                raise ConfigError(str(exc), field=f"source[{i}]") from None
    else:
        raise ConfigError("'source' must be a field path or a non-empty list of field paths", field="source")
    put = compile_path(args, "target").set
    algorithm = args.get("algorithm") or "sha256"
    if algorithm not in _HASHES:
        raise ConfigError(f"'algorithm' must be sha256 or sha512, got {algorithm!r}", field="algorithm")
    new_hash = _HASHES[algorithm]
    encoding = args.get("encoding") or "hex"
    if encoding not in ("hex", "base64"):
        raise ConfigError(f"'encoding' must be hex or base64, got {encoding!r}", field="encoding")
    as_hex = encoding == "hex"
    single = sources[0].get if len(sources) == 1 else None

    def digest(value: Any) -> str:
        h = new_hash(js_json(value).encode("utf-8", "surrogatepass"))
        return h.hexdigest() if as_hex else base64.b64encode(h.digest()).decode("ascii")

    if single is not None:

        def hash_one(record: dict) -> dict:
            value = single(record)
            put(record, None if value is MISSING else digest(value))
            return record

        return hash_one

    def hash_many(record: dict) -> dict:
        values = [v for p in sources if (v := p.get(record)) is not MISSING]
        if not values:
            put(record, None)
        else:
            put(record, digest(values[0] if len(values) == 1 else values))
        return record

    return hash_many


_NAMESPACES = {
    "dns": uuid_lib.NAMESPACE_DNS,
    "url": uuid_lib.NAMESPACE_URL,
    "oid": uuid_lib.NAMESPACE_OID,
    "x500": uuid_lib.NAMESPACE_X500,
}
_HEX32 = re.compile(r"[0-9a-fA-F]{32}")


@record_operator(
    "uuid",
    name="UUID",
    category="data",
    description="Write a UUID: v4 random, or v5 derived from a namespace and a field's value.",
    pure=False,
    schema={
        "type": "object",
        "properties": {
            "target": {**_PATH, "description": "Path to write the UUID to."},
            "version": {
                "type": "string",
                "enum": ["v4", "v5"],
                "default": "v4",
                "description": "v4: random. v5: the same namespace and name always give the same UUID.",
            },
            "namespace": {
                "type": "string",
                "description": "For v5: a UUID, or one of the well-known names dns, url, oid, x500.",
            },
            "source": {
                **_PATH,
                "description": "For v5: path of the field whose value (as text) is the name; null or missing writes null.",
            },
        },
        "required": ["target"],
        "additionalProperties": False,
    },
)
def build_uuid(args: dict, ctx: Any):
    put = compile_path(args, "target").set
    version = args.get("version") or "v4"
    if version == "v4":
        uuid4 = uuid_lib.uuid4

        def uuid_v4(record: dict) -> dict:
            put(record, str(uuid4()))
            return record

        return uuid_v4
    if version != "v5":
        raise ConfigError(f"'version' must be v4 or v5, got {version!r}", field="version")
    # The plugin writes null for every record when v5 lacks a usable namespace or source; that is a
    # config that can never work, so it is refused here.
    namespace = args.get("namespace")
    if not isinstance(namespace, str) or not namespace:
        raise ConfigError("a v5 UUID needs 'namespace' (a UUID, or dns, url, oid or x500)", field="namespace")
    ns = _NAMESPACES.get(namespace.lower())
    if ns is None:
        hex32 = namespace.replace("-", "")
        if not _HEX32.fullmatch(hex32):
            raise ConfigError(
                f"'namespace' must be a UUID or one of dns, url, oid, x500, got {namespace!r}",
                field="namespace",
            )
        ns = uuid_lib.UUID(hex=hex32)
    if not args.get("source"):
        raise ConfigError("a v5 UUID needs 'source', the path of the field to derive it from", field="source")
    get = compile_path(args, "source").get
    uuid5 = uuid_lib.uuid5

    def uuid_v5(record: dict) -> dict:
        name = get(record)
        if name is None or name is MISSING:
            put(record, None)
        else:
            put(record, str(uuid5(ns, name if type(name) is str else js.string(name))))
        return record

    return uuid_v5

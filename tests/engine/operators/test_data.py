"""Data operators: map, set, remove, rename, copy, template, hash, uuid."""

import base64
import hashlib
import uuid

import pytest

import pipelines.operators  # noqa: F401  (registers the built-in operators)
from pipelines.errors import ConfigError
from pipelines.operators.chain import OperatorChain
from pipelines.registry import operators as registry


def one(apply_ops, op, args, record):
    result = apply_ops([{"op": op, "args": args}], [record])
    assert not result.failures, result.failures
    return result.records[0]


# map


def test_it_maps_into_a_new_record(apply_ops):
    record = {"first_name": "Ann", "email": "a@x", "other": 1}
    mapping = {"customer.firstName": "first_name", "customer.email": "email", "gone": "missing"}
    assert one(apply_ops, "map", {"mapping": mapping}, record) == {
        "customer": {"firstName": "Ann", "email": "a@x"}
    }


def test_it_keeps_other_fields_with_passthrough(apply_ops):
    out = one(apply_ops, "map", {"mapping": {"p.id": "id"}, "passthrough": True}, {"id": 1, "x": 2})
    assert out == {"id": 1, "x": 2, "p": {"id": 1}}


def test_it_maps_null_values_but_skips_missing_ones(apply_ops):
    assert one(apply_ops, "map", {"mapping": {"a": "x", "b": "y"}}, {"x": None}) == {"a": None}


def test_it_reads_every_source_before_writing(apply_ops):
    out = one(apply_ops, "map", {"mapping": {"a": "b", "c": "a"}, "passthrough": True}, {"a": 1, "b": 2})
    assert out == {"a": 2, "b": 2, "c": 1}


def test_it_does_not_share_objects_between_mapped_fields(apply_ops):
    out = one(apply_ops, "map", {"mapping": {"x": "tags", "y": "tags"}}, {"tags": ["a"]})
    out["x"].append("b")
    assert out["y"] == ["a"]


def test_it_maps_from_nested_and_indexed_sources(apply_ops):
    record = {"lines": [{"sku": "A"}], "c": {"d": 1}}
    assert one(apply_ops, "map", {"mapping": {"sku": "lines[0].sku", "d": "c.d"}}, record) == {
        "sku": "A",
        "d": 1,
    }


# set / remove


def test_it_sets_a_static_value(apply_ops):
    assert one(apply_ops, "set", {"path": "meta.source", "value": "import"}, {"a": 1}) == {
        "a": 1,
        "meta": {"source": "import"},
    }
    assert one(apply_ops, "set", {"path": "a", "value": None}, {"a": 1}) == {"a": None}
    assert one(apply_ops, "set", {"path": "a", "value": 0}, {}) == {"a": 0}


def test_it_sets_a_fresh_copy_of_an_object_value(apply_ops):
    a, b = apply_ops([{"op": "set", "args": {"path": "t", "value": {"x": [1]}}}], [{}, {}]).records
    a["t"]["x"].append(2)
    assert b["t"] == {"x": [1]}


def test_it_overwrites_a_scalar_on_the_way_to_a_nested_path(apply_ops):
    assert one(apply_ops, "set", {"path": "a.b", "value": 1}, {"a": "text"}) == {"a": {"b": 1}}


def test_it_removes_a_path(apply_ops):
    assert one(apply_ops, "remove", {"path": "a.b"}, {"a": {"b": 1, "c": 2}}) == {"a": {"c": 2}}
    assert one(apply_ops, "remove", {"path": "x"}, {"a": 1}) == {"a": 1}
    assert one(apply_ops, "remove", {"path": "a.b"}, {"a": 5}) == {"a": 5}


# rename / copy


def test_it_renames_a_present_field(apply_ops):
    assert one(apply_ops, "rename", {"from": "raw_price", "to": "price"}, {"raw_price": 5, "x": 1}) == {
        "x": 1,
        "price": 5,
    }
    assert one(apply_ops, "rename", {"from": "a", "to": "b"}, {"a": None}) == {"b": None}


def test_it_leaves_the_record_when_the_renamed_field_is_missing(apply_ops):
    assert one(apply_ops, "rename", {"from": "a", "to": "b"}, {"c": 1}) == {"c": 1}


def test_it_renames_into_and_out_of_nested_paths(apply_ops):
    assert one(apply_ops, "rename", {"from": "a", "to": "a.b"}, {"a": 1}) == {"a": {"b": 1}}
    assert one(apply_ops, "rename", {"from": "a.b", "to": "a"}, {"a": {"b": 2, "c": 3}}) == {"a": 2}
    assert one(apply_ops, "rename", {"from": "x", "to": "x"}, {"x": 1}) == {"x": 1}


def test_it_copies_a_deep_copy(apply_ops):
    out = one(apply_ops, "copy", {"source": "email", "target": "backup"}, {"email": "a@x"})
    assert out == {"email": "a@x", "backup": "a@x"}
    out = one(apply_ops, "copy", {"source": "m", "target": "n.m"}, {"m": {"k": [1]}})
    out["n"]["m"]["k"].append(2)
    assert out["m"] == {"k": [1]}


def test_it_copies_nothing_from_a_missing_source(apply_ops):
    assert one(apply_ops, "copy", {"source": "a", "target": "b"}, {}) == {}
    assert one(apply_ops, "copy", {"source": "a", "target": "b"}, {"a": None}) == {"a": None, "b": None}


# template


def test_it_fills_placeholders(apply_ops):
    args = {"template": "${first} ${last} (#${order.id})", "target": "label"}
    out = one(apply_ops, "template", args, {"first": "Ann", "last": "Lee", "order": {"id": 7}})
    assert out["label"] == "Ann Lee (#7)"


def test_it_keeps_placeholders_for_missing_or_null_values(apply_ops):
    args = {"template": "${a}-${b}-${c}", "target": "t"}
    assert one(apply_ops, "template", args, {"a": None, "c": ""})["t"] == "${a}-${b}-"


def test_it_writes_empty_text_for_missing_values_when_asked(apply_ops):
    args = {"template": "${a}-${b}", "target": "t", "missingAsEmpty": True}
    assert one(apply_ops, "template", args, {"a": None})["t"] == "-"


def test_it_writes_values_as_javascript_text(apply_ops):
    args = {"template": "${n}|${f}|${b}|${l}|${o}", "target": "t"}
    record = {"n": 1999, "f": 2.0, "b": False, "l": [1, 2], "o": {"a": 1}}
    assert one(apply_ops, "template", args, record)["t"] == "1999|2|false|1,2|[object Object]"


def test_it_writes_a_template_without_placeholders(apply_ops):
    assert one(apply_ops, "template", {"template": "fixed $ {x}", "target": "t"}, {})["t"] == "fixed $ {x}"


# hash


def sha256_hex(text):
    return hashlib.sha256(text.encode()).hexdigest()


def test_it_hashes_the_json_text_of_a_value(apply_ops):
    out = one(apply_ops, "hash", {"source": "email", "target": "h"}, {"email": "alice@example.com"})
    assert out["h"] == "b595101af3afe93343acb7181bc1593573485685c06d714e9a9398b0207f8952"
    assert out["h"] == sha256_hex('"alice@example.com"')


def test_it_hashes_numbers_and_objects_as_json_stringify_writes_them(apply_ops):
    assert one(apply_ops, "hash", {"source": "n", "target": "h"}, {"n": 2.0})["h"] == sha256_hex("2")
    record = {"o": {"b": 1, "a": [True, None]}}
    assert one(apply_ops, "hash", {"source": "o", "target": "h"}, record)["h"] == sha256_hex(
        '{"b":1,"a":[true,null]}'
    )
    assert one(apply_ops, "hash", {"source": "n", "target": "h"}, {"n": None})["h"] == sha256_hex("null")


def test_it_hashes_several_fields_as_one_array(apply_ops):
    args = {"source": ["a", "missing", "b"], "target": "h"}
    assert one(apply_ops, "hash", args, {"a": "x", "b": 1})["h"] == sha256_hex('["x",1]')
    assert one(apply_ops, "hash", args, {"b": 1})["h"] == sha256_hex("1")


def test_it_writes_null_when_nothing_to_hash_is_present(apply_ops):
    assert one(apply_ops, "hash", {"source": "a", "target": "h"}, {})["h"] is None
    assert one(apply_ops, "hash", {"source": ["a", "b"], "target": "h"}, {})["h"] is None


def test_it_hashes_with_sha512_and_base64(apply_ops):
    out = one(
        apply_ops,
        "hash",
        {"source": "a", "target": "h", "algorithm": "sha512", "encoding": "base64"},
        {"a": "é"},
    )
    assert out["h"] == base64.b64encode(hashlib.sha512('"é"'.encode()).digest()).decode()


# uuid


def test_it_writes_a_random_v4_uuid(apply_ops):
    records = apply_ops([{"op": "uuid", "args": {"target": "id"}}], [{}, {}]).records
    first, second = (uuid.UUID(r["id"]) for r in records)
    assert first.version == 4 and first != second


def test_it_derives_a_v5_uuid_from_a_namespace_and_a_field(apply_ops):
    args = {"target": "id", "version": "v5", "namespace": "dns", "source": "sku"}
    out = one(apply_ops, "uuid", args, {"sku": "ABC-1"})
    assert out["id"] == str(uuid.uuid5(uuid.NAMESPACE_DNS, "ABC-1"))
    assert one(apply_ops, "uuid", args, {"sku": "ABC-1"})["id"] == out["id"]


def test_it_accepts_a_uuid_namespace_and_numeric_names(apply_ops):
    ns = "12345678-1234-5678-1234-567812345678"
    args = {"target": "id", "version": "v5", "namespace": ns, "source": "n"}
    assert one(apply_ops, "uuid", args, {"n": 42})["id"] == str(uuid.uuid5(uuid.UUID(ns), "42"))
    args["namespace"] = "URL"
    assert one(apply_ops, "uuid", args, {"n": 1.0})["id"] == str(uuid.uuid5(uuid.NAMESPACE_URL, "1"))


def test_it_writes_null_for_a_missing_v5_name(apply_ops):
    args = {"target": "id", "version": "v5", "namespace": "oid", "source": "sku"}
    assert one(apply_ops, "uuid", args, {})["id"] is None
    assert one(apply_ops, "uuid", args, {"sku": None})["id"] is None


def test_it_marks_uuid_impure():
    assert registry.get("uuid").impl.pure is False


@pytest.mark.parametrize(
    "op, args",
    [
        ("map", {}),
        ("map", {"mapping": ["a"]}),
        ("map", {"mapping": {"a": 1}}),
        ("map", {"mapping": {"a.__proto__": "b"}}),
        ("set", {"path": "a"}),
        ("set", {"value": 1}),
        ("remove", {}),
        ("rename", {"from": "a"}),
        ("rename", {"from": "a", "to": "prototype"}),
        ("copy", {"source": "a"}),
        ("template", {"target": "t"}),
        ("template", {"template": "${__proto__}", "target": "t"}),
        ("hash", {"target": "h"}),
        ("hash", {"source": [], "target": "h"}),
        ("hash", {"source": "a", "target": "h", "algorithm": "md5"}),
        ("hash", {"source": "a", "target": "h", "encoding": "hex64"}),
        ("uuid", {}),
        ("uuid", {"target": "id", "version": "v1"}),
        ("uuid", {"target": "id", "version": "v5", "source": "a"}),
        ("uuid", {"target": "id", "version": "v5", "namespace": "nope", "source": "a"}),
        ("uuid", {"target": "id", "version": "v5", "namespace": "dns"}),
    ],
)
def test_it_refuses_a_bad_data_operator_config(op, args):
    with pytest.raises(ConfigError) as err:
        OperatorChain([{"op": op, "args": args}])
    assert err.value.field.startswith("operators[0]")


def test_it_registers_data_operators_with_their_category():
    for code in ("map", "set", "remove", "rename", "copy", "template", "hash", "uuid"):
        entry = registry.get(code)
        assert entry.category == "data"
        assert entry.schema["additionalProperties"] is False
        assert all(p.get("description") for p in entry.schema["properties"].values())

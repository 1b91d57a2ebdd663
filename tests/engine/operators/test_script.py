"""The script operator: a safe expression language over one record (never eval/exec)."""

import time

import pytest

import pipelines.operators  # noqa: F401  (registers the built-in operators)
from pipelines.errors import ConfigError
from pipelines.operators.chain import OperatorChain, OperatorFailed
from pipelines.operators.script import FUNCTIONS, MAX_CODE_LENGTH, compile_expression
from pipelines.registry import operators as registry


def run(apply_ops, code, records, **args):
    return apply_ops([{"op": "script", "args": {"code": code, **args}}], records)


def value(code, record=None):
    """The expression's value for one record (through the operator: wrap it in an object)."""
    fn = OperatorChain([{"op": "script", "args": {"code": f'{{"v": {code}}}'}}])
    result = fn.apply([record or {}])
    assert not result.failures, result.failures[0].message
    return result.records[0]["v"]


def failure(code, record=None):
    result = OperatorChain([{"op": "script", "args": {"code": code}}]).apply([record or {}])
    assert len(result.failures) == 1 and not result.records
    return result.failures[0].message


def refused(code):
    with pytest.raises(ConfigError) as err:
        OperatorChain([{"op": "script", "args": {"code": code}}])
    assert err.value.field == "operators[0].args.code"
    return str(err.value)


# what it computes


def test_it_builds_the_new_record_from_an_expression(apply_ops):
    result = run(apply_ops, '{**record, "total": price * quantity}', [{"price": 2.5, "quantity": 4}])
    assert result.records == [{"price": 2.5, "quantity": 4, "total": 10.0}]


def test_it_drops_a_record_when_the_expression_is_null(apply_ops):
    code = 'null if status == "deleted" else record'
    result = run(apply_ops, code, [{"status": "deleted"}, {"status": "ok"}])
    assert result.records == [{"status": "ok"}]
    assert result.dropped == 1


def test_it_accepts_a_javascript_style_return_and_semicolon(apply_ops):
    assert run(apply_ops, 'return {**record, "a": 1};', [{}]).records == [{"a": 1}]


def test_it_reads_missing_fields_as_null():
    assert value("missing") is None
    assert value('record["missing"]') is None
    assert value('record["a"]["b"]["c"]', {"a": None}) is None
    assert value("items[5]", {"items": [1]}) is None


def test_it_knows_json_literals_and_python_ones():
    assert value("[true, false, null, True, None]") == [True, False, None, True, None]


def test_it_gives_index_and_context(apply_ops):
    code = '{"i": index, "ctx": context["index"], "rate": context["data"]["rate"]}'
    result = run(apply_ops, code, [{}, {}], context={"rate": 2})
    assert result.records == [{"i": 0, "ctx": 0, "rate": 2}, {"i": 1, "ctx": 1, "rate": 2}]


def test_it_evaluates_arithmetic_and_comparisons():
    assert value("1 + 2 * 3 - 4 / 2") == 5.0
    assert value("7 // 2") == 3 and value("7 % 3") == 1 and value("2 ** 10") == 1024
    assert value("-x + +x", {"x": 3}) == 0
    assert value("1 < x <= 3", {"x": 3}) is True
    assert value('"b" in tags and not ("z" in tags)', {"tags": ["a", "b"]}) is True
    assert value('"ell" in s', {"s": "hello"}) is True
    assert value('"k" in o', {"o": {"k": 1}}) is True
    assert value("x is None", {}) is True
    assert value("a or b", {"a": 0, "b": "y"}) == "y"
    assert value("a and b", {"a": 0, "b": "y"}) == 0


def test_it_compares_equality_strictly():
    assert value('x == "1"', {"x": 1}) is False
    assert value("x == 1", {"x": 1.0}) is True
    assert value("x == 1", {"x": True}) is False
    assert value("x != [1]", {"x": [1]}) is False


def test_it_builds_text_with_f_strings_and_concatenation():
    assert value('f"{first} {last}: {n}"', {"first": "A", "last": "B", "n": 2.0}) == "A B: 2"
    assert value('first + "-" + str(n)', {"first": "A", "n": 3}) == "A-3"


def test_it_slices_and_indexes():
    assert value("s[0:3]", {"s": "abcdef"}) == "abc"
    assert value("items[-1]", {"items": [1, 2, 3]}) == 3
    assert value("items[::2]", {"items": [1, 2, 3]}) == [1, 3]
    assert value('o["a"]["b"]', {"o": {"a": {"b": 5}}}) == 5


@pytest.mark.parametrize(
    "code, record, expected",
    [
        ("len(s)", {"s": "abc"}, 3),
        ("len(items)", {"items": [1, 2]}, 2),
        ("len(missing)", {}, None),
        ("str(n)", {"n": 1.0}, "1"),
        ("str(n)", {"n": True}, "true"),
        ("str(o)", {"o": {"a": [1]}}, '{"a":[1]}'),
        ('int("42")', {}, 42),
        ('int("4.7")', {}, 4),
        ("int(x)", {"x": -4.7}, -4),
        ('int("abc")', {}, None),
        ('float(" 2.5 ")', {}, 2.5),
        ('float("nan")', {}, None),
        ('number("1e3")', {}, 1000.0),
        ('bool("")', {}, False),
        ("round(2.5)", {}, 3),
        ("round(-2.5)", {}, -2),
        ("round(1.2345, 2)", {}, 1.23),
        ("round(1250, -2)", {}, 1300),
        ("floor(2.7)", {}, 2),
        ("ceil(2.1)", {}, 3),
        ("abs(-3)", {}, 3),
        ("min(3, 1, 2)", {}, 1),
        ("max(items)", {"items": [3, 9, 2]}, 9),
        ("min([])", {}, None),
        ("sum(items)", {"items": [1, 2.5]}, 3.5),
        ('lower("AbC")', {}, "abc"),
        ("upper(s)", {"s": "abc"}, "ABC"),
        ("upper(missing)", {}, None),
        ('trim("  x  ")', {}, "x"),
        ('startsWith(sku, "A-")', {"sku": "A-1"}, True),
        ('endsWith(sku, "-1")', {"sku": "A-1"}, True),
        ('replace(s, "-", "_")', {"s": "a-b-c"}, "a_b_c"),
        ('split(s, ",")', {"s": "a,b"}, ["a", "b"]),
        ("split(s)", {"s": "a,b"}, ["a", "b"]),
        ('join(items, "|")', {"items": ["a", 1, None]}, "a|1|"),
        ('contains(tags, "x")', {"tags": ["x"]}, True),
        ('contains(s, "x")', {"s": "abc"}, False),
        ('get(record, "a.b.c", "none")', {"a": {"b": {}}}, "none"),
        ('get(record, "a.b")', {"a": {"b": 2}}, 2),
        ("keys(o)", {"o": {"a": 1, "b": 2}}, ["a", "b"]),
        ("values(o)", {"o": {"a": 1}}, [1]),
        ('coalesce(a, b, "d")', {"a": None, "b": ""}, "d"),
    ],
)
def test_it_calls_the_whitelisted_functions(code, record, expected):
    assert value(code, record) == expected


def test_it_copies_values_so_no_two_fields_share_a_list(apply_ops):
    out = run(apply_ops, '{**record, "copy": tags}', [{"tags": ["a"]}]).records[0]
    out["copy"].append("b")
    assert out["tags"] == ["a"]


def test_it_strips_keys_the_plugin_strips_and_non_json_numbers(apply_ops):
    out = run(apply_ops, '{"__proto__": 1, "constructor": 2, "ok": 3, "big": 1e308 * 10}', [{}]).records
    assert out == [{"ok": 3, "big": None}]


def test_it_leaves_the_input_record_unchanged(apply_ops):
    rows = [{"a": {"b": 1}}]
    run(apply_ops, '{**record, "c": 1}', rows)
    assert rows == [{"a": {"b": 1}}]


# errors on one record


def test_it_sends_a_failing_record_to_the_error_list(apply_ops):
    result = run(apply_ops, '{"r": 1 / x}', [{"x": 0}, {"x": 2}])
    assert result.records == [{"r": 0.5}]
    assert result.failures[0].record == {"x": 0}
    assert "division by zero" in result.failures[0].message


def test_it_fails_the_step_with_fail_on_error():
    chain = OperatorChain([{"op": "script", "args": {"code": '{"r": 1 / x}', "failOnError": True}}])
    with pytest.raises(OperatorFailed, match="division by zero"):
        chain.apply([{"x": 0}])


@pytest.mark.parametrize(
    "code, record, message",
    [
        ("1", {}, "must give an object"),
        ("[record]", {}, "must give an object"),
        ('{"v": "a" < 1}', {}, "cannot compare"),
        ('{"v": "a" + 1}', {}, "cannot add"),
        ('{"v": x - 1}', {"x": "5"}, "needs numbers"),
        ('{"v": upper(5)}', {}, "upper() needs string"),
        ('{"v": items["a"]}', {"items": [1]}, "index must be a whole number"),
        ('{"v": 5[0]}', {}, "cannot index"),
        ("{(1): 2}", {}, "keys must be strings"),
        ("{**items}", {"items": [1]}, "only an object can be spread"),
        ('{"v": (-8) ** 0.5}', {}, "no real value"),
    ],
)
def test_it_reports_what_went_wrong_on_a_record(code, record, message):
    assert message in failure(code, record)


# refusals: at compile time


@pytest.mark.parametrize(
    "code, message",
    [
        ('__import__("os")', "not allowed"),
        ('__import__("os").system("true")', "methods cannot be called"),
        ("().__class__", "attribute access"),
        ("record.__class__.__mro__", "attribute access"),
        ('"abc".upper()', "methods cannot be called"),
        ("price.real", "attribute access"),
        ('eval("1")', "unknown function 'eval'"),
        ('exec("x=1")', "unknown function 'exec'"),
        ('open("/etc/passwd")', "unknown function 'open'"),
        ("getattr(record, 'x')", "unknown function 'getattr'"),
        ("lowr(x)", "did you mean 'lower'"),
        ("__builtins__", "not allowed"),
        ("(lambda: 1)()", "lambdas and comprehensions"),
        ("[x for x in items]", "lambdas and comprehensions"),
        ("(x := 1)", "assignment"),
        ("{1, 2}", "sets are not JSON"),
        ("[*items]", "unpacking"),
        ("upper(s=1)", "keyword"),
        ("len(a, b)", "takes 1 argument"),
        ("x << 100000", "not allowed"),
        ("~x", "not allowed"),
        ('f"{x:>999999999}"', "format specs"),
        ('f"{x!r}"', "format specs"),
        ("b'bytes'", "not JSON"),
        ("1j", "not JSON"),
        ("len", "is a function"),
        ("x = 1", "not a valid expression"),
        ("import os", "not a valid expression"),
        ("a && b", "'&&' is JavaScript"),
        ("a === b", "'===' is JavaScript"),
        ("{...record, a: 1}", "spread an object"),
        ("const x = 1", "one expression"),
    ],
)
def test_it_refuses_what_the_language_does_not_allow(code, message):
    assert message in refused(code)


def test_it_refuses_empty_long_deep_or_huge_code():
    assert "non-empty" in refused("   ")
    with pytest.raises(ConfigError):
        OperatorChain([{"op": "script", "args": {"code": "1+" * (MAX_CODE_LENGTH // 2) + "1"}}])
    assert "too large" in refused("[" + ",".join(["1"] * 2500) + "]")
    assert "nested too deeply" in refused("+".join(["1"] * 300))
    refused("(" * 300 + "1" + ")" * 300)
    refused("-" * 5000 + "1")


def test_it_refuses_batch_mode_clearly():
    with pytest.raises(ConfigError, match="batch scripts are not supported") as err:
        OperatorChain([{"op": "script", "args": {"code": "records", "batch": True}}])
    assert err.value.field == "operators[0].args.batch"


def test_it_accepts_the_plugins_timeout_argument(apply_ops):
    assert run(apply_ops, "record", [{"a": 1}], timeout=100).records == [{"a": 1}]
    with pytest.raises(ConfigError):
        OperatorChain([{"op": "script", "args": {"code": "record", "timeout": 0}}])


# resource limits: each fails one record quickly


@pytest.mark.parametrize(
    "code",
    [
        '{"v": 2 ** 10 ** 10}',
        '{"v": 10 ** 100000}',
        '{"v": 9 ** 9 ** 9}',
        '{"v": 2.0 ** 100000}',
        '{"v": "a" * 10 ** 9}',
        '{"v": [1] * 10 ** 9}',
        '{"v": 10 ** 9 * "ab"}',
        '{"v": replace(s * 1000, "a", s * 1000)}',
        '{"v": join(split(s * 1000, "") , s * 1000)}',
        '{"v": "%s" % 1}',
    ],
)
def test_it_stops_runaway_computations(code):
    started = time.perf_counter()
    message = failure(code, {"s": "a" * 1000})
    assert message
    assert time.perf_counter() - started < 2


def test_it_never_evaluates_user_text_with_eval_or_exec(monkeypatch):
    import builtins

    def forbidden(*args, **kwargs):
        raise AssertionError("eval/exec/compile must not be called")

    fn = compile_expression('{**record, "t": upper(name) + str(1 + 2)}')
    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    assert fn(({"name": "a"}, 0, {})) == {"name": "a", "t": "A3"}


def test_it_describes_the_language_in_the_schema():
    entry = registry.get("script")
    assert entry.category == "script"
    assert entry.impl.pure is False
    assert entry.schema["additionalProperties"] is False
    assert set(entry.schema["properties"]) >= {"code", "batch", "timeout", "context", "failOnError"}
    assert all(name in entry.schema["properties"]["code"]["description"] for name in FUNCTIONS)

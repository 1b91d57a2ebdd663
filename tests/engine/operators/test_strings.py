"""String operators (research/vendure-data-hub.md §2.1): split, join, trim, lowercase, uppercase, slugify,
concat, replace, extractRegex, replaceRegex, stripHtml, truncate."""

import pytest

from pipelines.operators.chain import OperatorChain
from pipelines.operators.strings import MAX_REGEX_INPUT, SLUG_MAX_LENGTH
from tests.engine.operators.helpers import one, refused

UNCHANGED_INPUTS = [
    pytest.param({}, id="missing"),
    pytest.param({"v": None}, id="null"),
    pytest.param({"v": 42}, id="number"),
    pytest.param({"v": ["a"]}, id="array"),
    pytest.param({"v": {"a": 1}}, id="object"),
]


# --- split -----------------------------------------------------------------------------------------------


def test_it_splits_a_string_by_a_delimiter(apply_ops):
    out = one(apply_ops, "split", {"source": "v", "target": "t", "delimiter": ","}, {"v": "a, b,c"})
    assert out == {"v": "a, b,c", "t": ["a", " b", "c"]}


def test_it_trims_each_part_when_asked(apply_ops):
    out = one(
        apply_ops,
        "split",
        {"source": "v", "target": "t", "delimiter": ",", "trim": True},
        {"v": " a ,\tb\u00a0, c"},
    )
    assert out["t"] == ["a", "b", "c"]


def test_it_splits_by_a_multi_character_literal_delimiter(apply_ops):
    out = one(apply_ops, "split", {"source": "v", "target": "t", "delimiter": ".*"}, {"v": "a.*b.*"})
    assert out["t"] == ["a", "b", ""]


def test_it_gives_a_one_item_array_for_an_empty_delimiter(apply_ops):
    out = one(apply_ops, "split", {"source": "v", "target": "t", "delimiter": ""}, {"v": "abc"})
    assert out["t"] == ["abc"]


def test_it_splits_into_a_nested_target(apply_ops):
    out = one(apply_ops, "split", {"source": "a.v", "target": "a.t", "delimiter": "|"}, {"a": {"v": "x|y"}})
    assert out == {"a": {"v": "x|y", "t": ["x", "y"]}}


@pytest.mark.parametrize("record", UNCHANGED_INPUTS)
def test_it_leaves_a_non_string_unsplit(apply_ops, record):
    assert one(apply_ops, "split", {"source": "v", "target": "t", "delimiter": ","}, dict(record)) == record


def test_it_requires_a_split_delimiter():
    assert "delimiter" in refused("split", {"source": "v", "target": "t"})


# --- join ------------------------------------------------------------------------------------------------


def test_it_joins_an_array_into_a_string(apply_ops):
    out = one(apply_ops, "join", {"source": "v", "target": "t", "delimiter": " | "}, {"v": ["a", "b"]})
    assert out["t"] == "a | b"


def test_it_joins_nulls_as_empty_and_numbers_as_javascript_writes_them(apply_ops):
    out = one(
        apply_ops,
        "join",
        {"source": "v", "target": "t", "delimiter": ","},
        {"v": [None, 1, 2.0, 2.5, True, "x", {"a": 1}, [1, None, 2]]},
    )
    assert out["t"] == ",1,2,2.5,true,x,[object Object],1,,2"


def test_it_joins_an_empty_array_into_an_empty_string(apply_ops):
    assert one(apply_ops, "join", {"source": "v", "target": "t", "delimiter": ","}, {"v": []})["t"] == ""


def test_it_joins_with_a_comma_by_default(apply_ops):
    assert one(apply_ops, "join", {"source": "v", "target": "t"}, {"v": ["a", "b"]})["t"] == "a,b"


@pytest.mark.parametrize("record", [{}, {"v": None}, {"v": "a,b"}, {"v": 3}])
def test_it_leaves_a_non_array_unjoined(apply_ops, record):
    assert one(apply_ops, "join", {"source": "v", "target": "t", "delimiter": ","}, dict(record)) == record


# --- trim, lowercase, uppercase --------------------------------------------------------------------------


def test_it_trims_both_ends_by_default(apply_ops):
    assert one(apply_ops, "trim", {"path": "v"}, {"v": " \t a b \n\u00a0\ufeff"}) == {"v": "a b"}


@pytest.mark.parametrize(("mode", "expected"), [("both", "a"), ("start", "a  "), ("end", "  a")])
def test_it_trims_the_chosen_end(apply_ops, mode, expected):
    assert one(apply_ops, "trim", {"path": "v", "mode": mode}, {"v": "  a  "}) == {"v": expected}


def test_it_trims_a_nested_field(apply_ops):
    assert one(apply_ops, "trim", {"path": "a.b"}, {"a": {"b": " x "}}) == {"a": {"b": "x"}}


def test_it_lowercases_and_uppercases_in_place(apply_ops):
    out = apply_ops(
        [{"op": "lowercase", "args": {"path": "a"}}, {"op": "uppercase", "args": {"path": "b"}}],
        [{"a": "HeLLo ÄÖ", "b": "straße"}],
    ).records[0]
    assert out == {"a": "hello äö", "b": "STRASSE"}


def test_it_changes_case_of_a_nested_field(apply_ops):
    assert one(apply_ops, "uppercase", {"path": "a.0"}, {"a": ["x"]}) == {"a": ["X"]}


@pytest.mark.parametrize("op", ["trim", "lowercase", "uppercase"])
@pytest.mark.parametrize("record", UNCHANGED_INPUTS)
def test_it_leaves_non_strings_alone_in_the_in_place_operators(apply_ops, op, record):
    assert one(apply_ops, op, {"path": "v"}, dict(record)) == record


def test_it_refuses_an_unknown_trim_mode():
    assert refused("trim", {"path": "v", "mode": "middle"}).startswith(
        "operators[0].args.mode: must be one of"
    )


def test_it_refuses_a_forbidden_path_segment():
    assert refused("lowercase", {"path": "a.__proto__"}) == (
        "operators[0].args.path: field path 'a.__proto__' uses the forbidden segment '__proto__'"
    )


# --- slugify ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("Home & Garden", "home-garden"),
        ("  Crème Brûlée  Recipe ", "creme-brulee-recipe"),
        ("Electronics & Computers", "electronics-computers"),
        ("100% Cotton_T-Shirt!", "100-cottontshirt"),
        ("---", ""),
    ],
)
def test_it_slugifies_like_the_plugin(apply_ops, text, slug):
    assert one(apply_ops, "slugify", {"source": "v", "target": "s"}, {"v": text})["s"] == slug


def test_it_slugifies_with_another_separator(apply_ops):
    out = one(apply_ops, "slugify", {"source": "v", "target": "s", "separator": "_"}, {"v": "Big Red  Box"})
    assert out["s"] == "big_red_box"


def test_it_slugifies_with_an_empty_separator(apply_ops):
    assert (
        one(apply_ops, "slugify", {"source": "v", "target": "s", "separator": ""}, {"v": "a b"})["s"] == "ab"
    )


def test_it_caps_the_slug_length(apply_ops):
    assert (
        len(one(apply_ops, "slugify", {"source": "v", "target": "s"}, {"v": "x" * 500})["s"])
        == SLUG_MAX_LENGTH
    )


@pytest.mark.parametrize("record", UNCHANGED_INPUTS)
def test_it_leaves_non_strings_unslugified(apply_ops, record):
    assert one(apply_ops, "slugify", {"source": "v", "target": "s"}, dict(record)) == record


# --- concat ----------------------------------------------------------------------------------------------


def test_it_concatenates_fields_with_a_separator(apply_ops):
    out = one(
        apply_ops,
        "concat",
        {"sources": ["a", "b.c"], "target": "t", "separator": " :: "},
        {"a": "x", "b": {"c": "y"}},
    )
    assert out["t"] == "x :: y"


def test_it_skips_null_missing_and_empty_values_in_concat(apply_ops):
    out = one(
        apply_ops,
        "concat",
        {"sources": ["a", "b", "c", "d", "e"], "target": "t", "separator": "-"},
        {"a": None, "c": "", "d": 0, "e": True},
    )
    assert out["t"] == "0-true"


def test_it_concatenates_without_a_separator_by_default(apply_ops):
    assert (
        one(apply_ops, "concat", {"sources": ["a", "b"], "target": "t"}, {"a": "x", "b": 2.5})["t"] == "x2.5"
    )


def test_it_writes_an_empty_string_when_nothing_is_concatenated(apply_ops):
    assert one(apply_ops, "concat", {"sources": ["a"], "target": "t"}, {}) == {"t": ""}


@pytest.mark.parametrize("sources", [[], "a", [1]])
def test_it_refuses_bad_concat_sources(sources):
    assert refused("concat", {"sources": sources, "target": "t"}).startswith("operators[0].args.sources")


# --- replace ---------------------------------------------------------------------------------------------


def test_it_replaces_the_first_occurrence_by_default(apply_ops):
    assert one(apply_ops, "replace", {"path": "v", "search": "a", "replacement": "o"}, {"v": "banana"}) == {
        "v": "bonana"
    }


def test_it_replaces_every_occurrence_with_all(apply_ops):
    out = one(
        apply_ops, "replace", {"path": "v", "search": "a", "replacement": "o", "all": True}, {"v": "banana"}
    )
    assert out == {"v": "bonono"}


def test_it_treats_the_search_text_literally(apply_ops):
    out = one(apply_ops, "replace", {"path": "v", "search": ".*", "replacement": "$1\\"}, {"v": "a.*b"})
    assert out == {"v": "a$1\\b"}


def test_it_removes_text_with_the_default_empty_replacement(apply_ops):
    assert one(apply_ops, "replace", {"path": "v", "search": "very "}, {"v": "a very long"}) == {
        "v": "a long"
    }


def test_it_puts_the_replacement_between_characters_for_an_empty_search_with_all(apply_ops):
    out = one(
        apply_ops, "replace", {"path": "v", "search": "", "replacement": "-", "all": True}, {"v": "abc"}
    )
    assert out == {"v": "a-b-c"}


@pytest.mark.parametrize("record", UNCHANGED_INPUTS)
def test_it_leaves_non_strings_unreplaced(apply_ops, record):
    assert one(apply_ops, "replace", {"path": "v", "search": "a", "replacement": "b"}, dict(record)) == record


def test_it_requires_a_search_text():
    assert "'search' is required" in refused("replace", {"path": "v"})


# --- extractRegex ----------------------------------------------------------------------------------------


def test_it_extracts_the_first_capture_group_by_default(apply_ops):
    out = one(
        apply_ops,
        "extractRegex",
        {"source": "v", "target": "t", "pattern": r"ref:\s*([A-Z0-9-]+)"},
        {"v": "Widget - ref: PRD-XYZ-999"},
    )
    assert out["t"] == "PRD-XYZ-999"


def test_it_extracts_the_whole_match_with_group_zero(apply_ops):
    out = one(
        apply_ops,
        "extractRegex",
        {"source": "v", "target": "t", "pattern": r"(\d+)-(\d+)", "group": 0},
        {"v": "id 12-34"},
    )
    assert out["t"] == "12-34"


def test_it_extracts_another_group(apply_ops):
    out = one(
        apply_ops,
        "extractRegex",
        {"source": "v", "target": "t", "pattern": r"(\d+)-(\d+)", "group": 2},
        {"v": "id 12-34"},
    )
    assert out["t"] == "34"


def test_it_extracts_the_whole_match_for_a_group_the_pattern_lacks(apply_ops):
    out = one(
        apply_ops,
        "extractRegex",
        {"source": "v", "target": "t", "pattern": r"\d+", "group": 3},
        {"v": "id 12"},
    )
    assert out["t"] == "12"


def test_it_writes_null_for_a_group_that_did_not_take_part(apply_ops):
    out = one(
        apply_ops,
        "extractRegex",
        {"source": "v", "target": "t", "pattern": r"(a)|(b)", "group": 1},
        {"v": "b", "t": "old"},
    )
    assert out["t"] is None


def test_it_writes_null_when_nothing_matches(apply_ops):
    out = one(apply_ops, "extractRegex", {"source": "v", "target": "t", "pattern": r"\d+"}, {"v": "none"})
    assert out == {"v": "none", "t": None}


def test_it_honours_the_ignore_case_flag_and_ignores_g(apply_ops):
    args = {"source": "v", "target": "t", "pattern": r"ref:(\w+)"}
    assert one(apply_ops, "extractRegex", args, {"v": "REF:abc"})["t"] is None
    assert one(apply_ops, "extractRegex", {**args, "flags": "gi"}, {"v": "REF:abc ref:def"})["t"] == "abc"


def test_it_accepts_javascript_named_groups(apply_ops):
    out = one(
        apply_ops,
        "extractRegex",
        {"source": "v", "target": "t", "pattern": r"(?<year>\d{4})-(?<month>\d\d)", "group": 2},
        {"v": "on 2024-05"},
    )
    assert out["t"] == "05"


@pytest.mark.parametrize("record", UNCHANGED_INPUTS)
def test_it_leaves_non_strings_unextracted(apply_ops, record):
    assert (
        one(apply_ops, "extractRegex", {"source": "v", "target": "t", "pattern": "a"}, dict(record)) == record
    )


# --- replaceRegex ----------------------------------------------------------------------------------------


def test_it_replaces_every_match_by_default(apply_ops):
    out = one(apply_ops, "replaceRegex", {"path": "v", "pattern": "-", "replacement": "_"}, {"v": "A-B-C"})
    assert out == {"v": "A_B_C"}


def test_it_replaces_only_the_first_match_without_the_g_flag(apply_ops):
    out = one(
        apply_ops,
        "replaceRegex",
        {"path": "v", "pattern": "-", "replacement": "_", "flags": ""},
        {"v": "A-B-C"},
    )
    assert out == {"v": "A_B-C"}


@pytest.mark.parametrize(
    ("replacement", "expected"),
    [
        ("$2/$1", "b/a c"),
        ("\\2/\\1", "b/a c"),
        ("$<second>.$<first>", "b.a c"),
        ("\\g<second>", "b c"),
        ("[$&]", "[a-b] c"),
        ("$$1", "$1 c"),
        ("$3|$0", "$3|$0 c"),
        ("<$`|$'>", "<| c> c"),
        ("C:\\new", "C:\\new c"),
    ],
)
def test_it_expands_javascript_replacement_references(apply_ops, replacement, expected):
    out = one(
        apply_ops,
        "replaceRegex",
        {"path": "v", "pattern": r"(?<first>\w)-(?<second>\w)", "replacement": replacement},
        {"v": "a-b c"},
    )
    assert out == {"v": expected}


def test_it_replaces_case_insensitively_with_the_i_flag(apply_ops):
    out = one(
        apply_ops,
        "replaceRegex",
        {"path": "v", "pattern": "x", "replacement": "y", "flags": "gi"},
        {"v": "xX"},
    )
    assert out == {"v": "yy"}


def test_it_removes_matches_with_the_default_empty_replacement(apply_ops):
    assert one(apply_ops, "replaceRegex", {"path": "v", "pattern": r"\s+"}, {"v": "a b  c"}) == {"v": "abc"}


@pytest.mark.parametrize("record", UNCHANGED_INPUTS)
def test_it_leaves_non_strings_unreplaced_by_regex(apply_ops, record):
    assert (
        one(apply_ops, "replaceRegex", {"path": "v", "pattern": "a", "replacement": "b"}, dict(record))
        == record
    )


@pytest.mark.parametrize("op", ["extractRegex", "replaceRegex"])
@pytest.mark.parametrize(
    "pattern", ["(a+)+$", "(a*)*b", "(?:\\w+\\s?)+$", "((ab)+c)*", "(.*a){20}", "(.+)\\1+", "([a-z]+)*"]
)
def test_it_refuses_catastrophic_patterns(op, pattern):
    args = {"source": "v", "target": "t"} if op == "extractRegex" else {"path": "v"}
    assert refused(op, {**args, "pattern": pattern}).startswith("operators[0].args.pattern: the pattern")


@pytest.mark.parametrize("pattern", [r"(\d{1,3}\.){3}\d{1,3}", r"(ab)+", r"(a+)?b", r"[(a+)]+"])
def test_it_accepts_safe_patterns_that_look_alike(pattern):
    chain = OperatorChain([{"op": "extractRegex", "args": {"source": "v", "target": "t", "pattern": pattern}}])
    result = chain.apply([{"v": "no match here"}])
    assert result.failures == [] and len(result.records) == 1


@pytest.mark.parametrize("pattern", [r"\(a+\)+", r"(\w+\s){2}"])
def test_it_refuses_what_the_plugins_check_refuses_although_it_would_be_safe(pattern):
    """One guard for conditions and regex operators, the plugin's (pipelines.js.regex_problem)."""
    assert "the pattern nests quantifiers" in refused("extractRegex", {"source": "v", "target": "t", "pattern": pattern})


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"pattern": "(unclosed"}, "pattern"),
        ({"pattern": "a", "flags": "x"}, "flags"),
        ({"pattern": "a", "flags": "ii"}, "flags"),
        ({"pattern": "a" * 1001}, "pattern"),
    ],
)
def test_it_refuses_a_bad_regex_config(args, field):
    assert refused("replaceRegex", {"path": "v", **args}).startswith(f"operators[0].args.{field}:")


def test_it_sends_a_too_long_value_to_the_record_errors(apply_ops):
    result = apply_ops(
        [{"op": "replaceRegex", "args": {"path": "v", "pattern": "a"}}],
        [{"v": "a" * (MAX_REGEX_INPUT + 1)}, {"v": "abc"}],
    )
    assert result.records == [{"v": "bc"}]
    assert len(result.failures) == 1 and "characters" in result.failures[0].message


# --- stripHtml -------------------------------------------------------------------------------------------


def test_it_strips_tags_into_the_target(apply_ops):
    out = one(
        apply_ops,
        "stripHtml",
        {"source": "v", "target": "t"},
        {"v": "<b>Product Title</b> with <em>HTML</em>"},
    )
    assert out == {"v": "<b>Product Title</b> with <em>HTML</em>", "t": "Product Title with HTML"}


def test_it_strips_in_place_without_a_target(apply_ops):
    assert one(apply_ops, "stripHtml", {"source": "v"}, {"v": "<p>a</p>"}) == {"v": "a"}


def test_it_removes_script_and_style_blocks_and_collapses_whitespace(apply_ops):
    html = "<style>p{x:1}</style>\n<p>Hi <SCRIPT type='x'>alert('<b>')</script>\n\n there</p>  "
    assert one(apply_ops, "stripHtml", {"source": "v"}, {"v": html}) == {"v": "Hi there"}


def test_it_decodes_the_common_entities(apply_ops):
    out = one(
        apply_ops,
        "stripHtml",
        {"source": "v"},
        {"v": "a&nbsp;&amp;&nbsp;b &lt;c&gt; &quot;d&quot; &#39;e&#39; &amp;lt;"},
    )
    assert out == {"v": "a & b <c> \"d\" 'e' <"}


@pytest.mark.parametrize("record", UNCHANGED_INPUTS)
def test_it_leaves_non_strings_unstripped(apply_ops, record):
    assert one(apply_ops, "stripHtml", {"source": "v", "target": "t"}, dict(record)) == record


# --- truncate --------------------------------------------------------------------------------------------


def test_it_truncates_keeping_room_for_the_suffix(apply_ops):
    text = "This is a description that will be truncated at some point"
    out = one(
        apply_ops, "truncate", {"source": "v", "target": "t", "length": 40, "suffix": "..."}, {"v": text}
    )
    assert out["t"] == "This is a description that will be tr..." and len(out["t"]) == 40


def test_it_copies_a_short_value_to_the_target_unchanged(apply_ops):
    out = one(
        apply_ops, "truncate", {"source": "v", "target": "t", "length": 40, "suffix": "..."}, {"v": "Short"}
    )
    assert out == {"v": "Short", "t": "Short"}


def test_it_truncates_in_place_without_a_suffix_by_default(apply_ops):
    assert one(apply_ops, "truncate", {"source": "v", "length": 3}, {"v": "abcdef"}) == {"v": "abc"}


def test_it_cuts_from_the_end_when_the_suffix_is_longer_than_the_length(apply_ops):
    # JavaScript's slice(0, -1): the plugin's arithmetic, kept.
    assert one(apply_ops, "truncate", {"source": "v", "length": 2, "suffix": "..."}, {"v": "abcdef"}) == {
        "v": "abcde..."
    }


@pytest.mark.parametrize("record", UNCHANGED_INPUTS)
def test_it_leaves_non_strings_untruncated(apply_ops, record):
    assert one(apply_ops, "truncate", {"source": "v", "target": "t", "length": 1}, dict(record)) == record


@pytest.mark.parametrize(
    "args", [{"source": "v"}, {"source": "v", "length": -1}, {"source": "v", "length": "3"}]
)
def test_it_refuses_a_bad_truncate_length(args):
    assert "length" in refused("truncate", args)


# --- shared config checks --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "args"),
    [
        ("split", {"source": "v", "target": "t", "delimiter": ",", "separator": ","}),
        ("trim", {"path": "v", "pth": "x"}),
    ],
)
def test_it_refuses_unknown_args(op, args):
    assert "unknown field" in refused(op, args)


def test_it_accepts_fail_on_error_on_every_string_operator():
    result = OperatorChain([{"op": "trim", "args": {"path": "v", "failOnError": True}}]).apply([{"v": " a "}])
    assert result.records == [{"v": "a"}]


def test_it_does_not_change_the_input_records(apply_ops):
    records = [{"v": "  A  "}]
    apply_ops([{"op": "trim", "args": {"path": "v"}}, {"op": "lowercase", "args": {"path": "v"}}], records)
    assert records == [{"v": "  A  "}]

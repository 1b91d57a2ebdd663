"""Every problem of a definition at once: one problem never hides another, and what the run would refuse
in an operator's static args is refused when the definition is validated."""

import pytest

from pipelines.definition import problems_of
from tests.engine.test_definition import inline, transform


def found(definition):
    return [(p.step, p.field, p.message) for p in problems_of(definition)]


def test_a_duplicate_key_does_not_hide_a_misspelt_operator():
    problems = found({"steps": [inline(), inline(), transform("t", [{"op": "uppercse", "args": {"path": "a"}}])]})
    assert ("src", "key", "duplicate step key 'src'") in problems
    assert any(step == "t" and field == "config.operators[0].op" and "did you mean 'uppercase'" in message
               for step, field, message in problems), problems


def test_an_unknown_edge_does_not_hide_a_cycle():
    d = {"steps": [inline(), transform("a"), transform("b")],
         "edges": [{"from": "src", "to": "a"}, {"from": "a", "to": "b"}, {"from": "b", "to": "a"},
                   {"from": "b", "to": "nowhere"}]}
    messages = [m for _, _, m in found(d)]
    assert "'to' names unknown step 'nowhere'" in messages
    assert any(m.startswith("cycle: ") for m in messages), messages


@pytest.mark.parametrize(
    ("operator", "field", "words"),
    [
        ({"op": "extractRegex", "args": {"source": "a", "target": "b", "pattern": "(a+)+"}},
         "config.operators[0].args.pattern", "backtrack catastrophically"),
        ({"op": "when", "args": {"conditions": [{"field": "a", "cmp": "gt", "value": "x"}], "action": "keep"}},
         "config.operators[0].args", "gt"),
        ({"op": "deltaFilter", "args": {"idPath": "a..b"}},  # a batch operator
         "config.operators[0].args.idPath", "empty segment"),
    ],
)
def test_it_refuses_invalid_static_operator_args_at_validation(operator, field, words):
    """The schema allows these args; building the operator (as the run would) refuses them."""
    problems = [(s, f, m) for s, f, m in found({"steps": [inline(), transform("t", [operator])]}) if s == "t"]
    assert problems, "the run would refuse this operator; validation must too"
    assert all(f.startswith(field) for _, f, _ in problems) and words in " ".join(m for _, _, m in problems), problems


def test_it_lists_problems_of_several_operators_at_once():
    ops = [{"op": "extractRegex", "args": {"source": "a", "target": "b", "pattern": "(a+)+"}},
           {"op": "replaceRegex", "args": {"path": "a", "pattern": "(b*)*", "replacement": ""}}]
    fields = [f for s, f, _ in found({"steps": [inline(), transform("t", ops)]}) if s == "t"]
    assert fields == ["config.operators[0].args.pattern", "config.operators[1].args.pattern"]

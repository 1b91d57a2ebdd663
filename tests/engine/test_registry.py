import subprocess
import sys

import pytest

from pipelines import registry
from pipelines.errors import UnknownCode
from pipelines.registry import RegistrationError

# OPERATORS.md: the plugin's 62 codes, ours too.
OPERATOR_CODES = {
    "string": "split join trim lowercase uppercase slugify concat replace extractRegex replaceRegex stripHtml truncate",
    "date": "dateFormat dateParse dateAdd dateDiff now",
    "numeric": "math currency unit toNumber toString parseNumber formatNumber toCents round",
    "logic": "when ifThenElse switch deltaFilter",
    "json": "parseJson stringifyJson pick omit",
    "data": "map set remove rename copy template hash uuid",
    "enrichment": "lookup enrich coalesce default httpLookup",
    "aggregation": "aggregate count unique deduplicateRecords flatten first last expand multiJoin",
    "validation": "validateRequired validateFormat",
    "script": "script",
    "file": "imageResize imageConvert pdfGenerate",
}


def test_it_has_every_operator_of_the_plugin():
    expected = {code for codes in OPERATOR_CODES.values() for code in codes.split()}
    assert len(expected) == 62
    assert sorted(expected - set(registry.operators.codes())) == []


@pytest.mark.parametrize("category", sorted(OPERATOR_CODES))
def test_it_files_each_operator_under_its_category(category):
    for code in OPERATOR_CODES[category].split():
        assert registry.operators.get(code).category == category, code


def test_it_has_every_step_type_but_gate_from_the_engine():
    assert set(registry.step_types.codes()) >= {"TRIGGER", "EXTRACT", "TRANSFORM", "VALIDATE", "ENRICH", "ROUTE",
                                                "LOAD", "EXPORT", "FEED", "SINK"}


def test_it_refuses_a_code_clash_unless_replacing_is_asked(registries):
    with pytest.raises(RegistrationError, match="'trim' is already built-in; pass replace=True"):
        registries.operators.register("trim", object(), schema={"type": "object"})
    registries.operators.register("trim", object(), schema={"type": "object"}, replace=True)


def test_it_refuses_a_broken_schema(registries):
    with pytest.raises(RegistrationError, match="invalid JSON schema"):
        registries.operators.register("mine", object(), schema={"type": "object", "properties": {"a": {"type": 5}}})
    with pytest.raises(RegistrationError, match="must describe an object"):
        registries.operators.register("mine", object(), schema={"type": "string"})


def test_it_suggests_the_nearest_code():
    with pytest.raises(UnknownCode) as err:
        registry.operators.get("slugfy")
    assert err.value.message == "unknown operator 'slugfy'; did you mean 'slugify'?"


def test_it_keeps_the_engine_free_of_django():
    code = (
        "import sys; import pipelines.plugins as p; p.load_plugins(['runs.engine.handlers'], entry_point_group=None);"
        "import pipelines.definition, pipelines.dsl, runs.engine.executor;"
        "bad = [m for m in sys.modules if m == 'django' or m.startswith('django.')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    env = {"PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=".")
    assert done.returncode == 0, done.stdout + done.stderr

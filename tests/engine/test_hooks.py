"""definition.hooks in the engine: parsing, SCRIPT actions on records, HookFired events for the rest."""

import pytest

from pipelines import hooks
from pipelines.definition import parse
from pipelines.errors import ConfigError
from runs.engine.context import RunOptions
from runs.engine.events import HookFired
from runs.engine.executor import execute
from runs.engine.store import InMemoryStore


def inline(key, records):
    return {"key": key, "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": records}}


def keep(key):
    return {"key": key, "type": "SINK", "adapterCode": "records", "config": {}}


def run(definition, **options):
    store = InMemoryStore()
    options.setdefault("keep_outputs", True)
    result = execute(parse(definition), store, RunOptions(pipeline_code="p", run_id=7, **options))
    return result, store


def fired(store):
    return [e for e in store.events if isinstance(e, HookFired)]


@pytest.fixture
def scripts(registries):
    calls = []

    def tag(records, context, args):
        calls.append((context.stage, context.step_key, context.batch_index, len(records)))
        return [dict(r, **{args.get("field", "tagged"): context.stage}) for r in records]

    def drop_odd(records, context, args):
        return [r for r in records if r["n"] % 2 == 0]

    def boom(records, context, args):
        records[0]["half"] = "done"
        raise RuntimeError("script broke")

    def in_place(records, context, args):
        for r in records:
            r["seen"] = True

    def wrong(records, context, args):
        return "nope"

    for name, fn in [("tag", tag), ("dropOdd", drop_odd), ("boom", boom), ("inPlace", in_place), ("wrong", wrong)]:
        registries.scripts.register(name, fn)
    return calls


def test_it_knows_the_24_stages_and_5_actions():
    assert len(hooks.STAGES) == 24
    assert "BEFORE_EXTRACT" in hooks.STAGES and "AFTER_SINK" in hooks.STAGES
    assert set(hooks.ACTION_TYPES) == {"WEBHOOK", "LOG", "TRIGGER_PIPELINE", "EMAIL", "SCRIPT"}


def test_it_reports_every_problem_of_the_hooks_with_its_field(scripts):
    found = hooks.problems({
        "AFTER_LOAD": [{"type": "WEBHOOK"}, {"type": "LOG", "level": "LOUD"}],
        "BEFORE_LAOD": [{"type": "LOG"}],
        "ON_ERROR": [{"type": "SCRIPT", "name": "tag"}, {"type": "INTERCEPTOR", "code": "return records"}],
        "AFTER_EXTRACT": [{"type": "SCRIPT", "name": "tagg"}, {"type": "WEBHOK", "url": "http://x"}, "x"],
    })
    text = {p.field: p.message for p in found}
    assert "'url' is required" in text["hooks.AFTER_LOAD[0]"]
    assert "must be one of" in text["hooks.AFTER_LOAD[1].level"]
    assert "did you mean 'BEFORE_LOAD'" in text["hooks.BEFORE_LAOD"]
    assert "only at the BEFORE_/AFTER_ step stages" in text["hooks.ON_ERROR[0].type"]
    assert "Python function" in text["hooks.ON_ERROR[1].type"]
    assert "did you mean 'tag'" in text["hooks.AFTER_EXTRACT[0].name"]
    assert "did you mean 'WEBHOOK'" in text["hooks.AFTER_EXTRACT[1].type"]
    assert "must be an object" in text["hooks.AFTER_EXTRACT[2]"]
    assert hooks.problems(None) == [] and hooks.problems({}) == []
    assert hooks.problems([]) and hooks.problems({"ON_ERROR": "x"})


def test_it_refuses_credentials_written_into_a_webhooks_headers():
    # The one credential-header rule of outbound HTTP (pipelines.http_policy), as for adapters and httpLookup.
    found = hooks.problems({"PIPELINE_COMPLETED": [
        {"type": "WEBHOOK", "url": "https://h.example.com/x", "headers": {"Authorization": "Bearer s3cr3t"}},
        {"type": "WEBHOOK", "url": "https://h.example.com/x", "headers": {"X-Tenant": "eu"},
         "headerSecretCodes": {"Authorization": "hook-token"}},
    ]})
    assert [(p.field, "carries a credential" in p.message and "headerSecretCodes" in p.message) for p in found] == [
        ("hooks.PIPELINE_COMPLETED[0].headers.Authorization", True)]
    assert "s3cr3t" not in str(found)


def test_it_refuses_a_definition_with_broken_hooks():
    from pipelines.definition import problems_of

    d = {"steps": [inline("src", [{"n": 1}]), keep("out")], "hooks": {"AFTER_SINK": [{"type": "SCRIPT", "name": "nope"}]}}
    assert any("unknown script 'nope'" in p.message for p in problems_of(d))


def test_it_refuses_to_run_a_definition_whose_hooks_are_broken():
    from pipelines.definition import parse

    d = {"steps": [inline("src", [{"n": 1}]), keep("out")]}
    definition = parse(d)
    broken = type(definition)(**{**definition.__dict__, "extra": {"hooks": {"AFTER_SINK": [
        {"type": "SCRIPT", "name": "nope"}]}}})
    with pytest.raises(ConfigError, match="unknown script 'nope'"):
        execute(broken, InMemoryStore(), RunOptions())


def test_it_changes_a_steps_input_and_output_with_scripts_batch_by_batch(scripts):
    d = {
        "steps": [inline("src", [{"n": i} for i in range(5)]),
                  {"key": "clean", "type": "TRANSFORM", "config": {"operators": []}}, keep("out")],
        "context": {"throughput": {"batchSize": 2}},
        "hooks": {
            "BEFORE_TRANSFORM": [{"type": "SCRIPT", "name": "dropOdd"}, {"type": "SCRIPT", "name": "tag"}],
            "AFTER_TRANSFORM": [{"type": "SCRIPT", "name": "tag", "args": {"field": "after"}}],
            "AFTER_EXTRACT": [{"type": "SCRIPT", "name": "inPlace"}],
        },
    }
    result, store = run(d)
    assert result.status == "COMPLETED"
    assert result.output("out") == [{"n": n, "seen": True, "tagged": "BEFORE_TRANSFORM", "after": "AFTER_TRANSFORM"}
                                    for n in (0, 2, 4)]
    finished = store.finished()
    assert finished["clean"].counts.records_in == 3 and finished["clean"].counts.records_out == 3
    assert finished["src"].counts.records_out == 5
    # BEFORE: batches of the input (2, 2, 1) after dropOdd; AFTER: the output as the step wrote it.
    assert [c for c in scripts if c[0] == "BEFORE_TRANSFORM"] == [
        ("BEFORE_TRANSFORM", "clean", 0, 1), ("BEFORE_TRANSFORM", "clean", 1, 1), ("BEFORE_TRANSFORM", "clean", 2, 1)]
    assert fired(store) == []  # SCRIPT actions are not events


def test_it_keeps_memory_bounded_by_scripting_into_spilling_buffers(scripts):
    d = {"steps": [inline("src", [{"n": i} for i in range(50)]), keep("out")],
         "context": {"throughput": {"batchSize": 7}},
         "hooks": {"BEFORE_SINK": [{"type": "SCRIPT", "name": "tag"}], "AFTER_SINK": [{"type": "SCRIPT", "name": "tag",
                                                                                       "args": {"field": "b"}}]}}
    result, _ = run(d, spill_records=10)
    out = result.output("out")
    assert len(out) == 50 and out[49] == {"n": 49, "tagged": "BEFORE_SINK", "b": "AFTER_SINK"}


def test_it_scripts_every_branch_of_a_route_once(scripts):
    d = {
        "steps": [inline("src", [{"n": 1}, {"n": 2}]),
                  {"key": "split", "type": "ROUTE", "config": {"branches": [
                      {"name": "even", "when": [{"field": "n", "cmp": "eq", "value": 2}]}]}},
                  keep("evens"), keep("rest")],
        "edges": [{"from": "src", "to": "split"}, {"from": "split", "to": "evens", "branch": "even"},
                  {"from": "split", "to": "rest", "branch": "default"}],
        "hooks": {"AFTER_ROUTE": [{"type": "SCRIPT", "name": "tag"}]},
    }
    result, _ = run(d)
    assert result.output("evens") == [{"n": 2, "tagged": "AFTER_ROUTE"}]
    assert result.output("rest") == [{"n": 1, "tagged": "AFTER_ROUTE"}]


def test_it_fails_the_step_when_a_script_fails_unless_told_not_to(scripts):
    d = {"steps": [inline("src", [{"n": 1}]), keep("out")], "hooks": {"BEFORE_SINK": [{"type": "SCRIPT", "name": "boom"}]}}
    result, store = run(d)
    assert result.status == "FAILED"
    assert "hook BEFORE_SINK SCRIPT 'boom' failed: RuntimeError: script broke" in store.finished()["out"].error

    d["hooks"]["BEFORE_SINK"][0]["failOnError"] = False
    result, store = run(d)
    assert result.status == "COMPLETED"
    assert result.output("out") == [{"n": 1}]  # unchanged: the script's half-done change did not leak
    assert "script broke" in store.finished()["out"].warnings[0]


def test_it_fails_the_step_when_a_script_returns_no_records(scripts):
    d = {"steps": [inline("src", [{"n": 1}]), keep("out")], "hooks": {"AFTER_EXTRACT": [{"type": "SCRIPT", "name": "wrong"}]}}
    result, store = run(d)
    assert result.status == "FAILED"
    assert "returned str, not a list of records" in store.finished()["src"].error


def test_it_emits_hook_events_at_each_stage_with_a_payload():
    log = {"type": "LOG", "message": "${stage} ${stepKey}"}
    d = {
        "steps": [inline("src", [{"n": 1}, {"n": 2}, {"n": 3}]),
                  {"key": "check", "type": "VALIDATE", "config": {"fields": {"n": {"max": 2}}}}, keep("out")],
        "hooks": {
            "PIPELINE_STARTED": [log],
            "BEFORE_VALIDATE": [log, {"type": "WEBHOOK", "url": "http://x/h", "maxRecords": 2}],
            "AFTER_VALIDATE": [{"type": "TRIGGER_PIPELINE", "pipelineCode": "next"}],
            "ON_DEAD_LETTER": [{"type": "WEBHOOK", "url": "http://x/dl"}],
            "PIPELINE_COMPLETED": [log],
            "PIPELINE_FAILED": [log],
        },
    }
    result, store = run(d)
    assert result.status == "COMPLETED"
    events = fired(store)
    assert [(e.stage, e.step_key, e.action["type"]) for e in events] == [
        ("PIPELINE_STARTED", None, "LOG"),
        ("BEFORE_VALIDATE", "check", "LOG"),
        ("BEFORE_VALIDATE", "check", "WEBHOOK"),
        ("ON_DEAD_LETTER", "check", "WEBHOOK"),
        ("AFTER_VALIDATE", "check", "TRIGGER_PIPELINE"),
        ("PIPELINE_COMPLETED", None, "LOG"),
    ]
    started, log_before, hook_before, dead, after, done = events
    assert started.payload["pipelineCode"] == "p" and started.payload["runId"] == 7
    assert "records" not in log_before.payload and log_before.payload["recordCount"] == 3
    assert hook_before.payload["records"] == [{"n": 1}, {"n": 2}] and hook_before.payload["truncated"] is True
    assert dead.payload["records"] == [{"n": 3}] and dead.payload["recordCount"] == 1
    assert dead.payload["errors"] == ["n must be at most 2"]
    assert after.payload["records"] == [{"n": 1}, {"n": 2}] and after.payload["truncated"] is False
    assert done.payload["status"] == "COMPLETED"
    assert done.payload["steps"]["check"] == {"status": "COMPLETED", "recordsIn": 3, "recordsOut": 2, "errors": 1}
    # Hook events come before the step's end, so the store can attach them to the step.
    kinds = [type(e).__name__ + ":" + getattr(e, "stage", getattr(e, "step_key", "")) for e in store.events]
    assert kinds.index("HookFired:AFTER_VALIDATE") < kinds.index("StepFinished:check")


def test_it_fires_retry_error_and_failed_hooks(probes):
    d = {
        "steps": [{"key": "src", "type": "EXTRACT", "adapterCode": "probe", "config": {"fail": True},
                   "retries": 1}, keep("out")],
        "hooks": {"ON_RETRY": [{"type": "LOG"}], "ON_ERROR": [{"type": "LOG"}], "AFTER_EXTRACT": [{"type": "LOG"}],
                  "PIPELINE_FAILED": [{"type": "EMAIL", "to": "ops@example.com"}],
                  "PIPELINE_COMPLETED": [{"type": "LOG"}]},
    }
    result, store = run(d)
    assert result.status == "FAILED"
    assert [(e.stage, e.payload.get("attempt") or e.payload.get("attempts")) for e in fired(store)] == [
        ("ON_RETRY", 1), ("ON_ERROR", 2), ("PIPELINE_FAILED", None)]
    assert "probe src failed" in fired(store)[1].payload["error"]
    assert fired(store)[2].payload["error"].startswith('step "src" failed')


def test_it_fires_no_step_hooks_for_skipped_disabled_or_trigger_steps():
    d = {"steps": [{"key": "t", "type": "TRIGGER", "config": {}}, dict(inline("src", [{"n": 1}]), disabled=True),
                   keep("out")],
         "hooks": {"BEFORE_EXTRACT": [{"type": "LOG"}], "AFTER_EXTRACT": [{"type": "LOG"}],
                   "BEFORE_SINK": [{"type": "LOG"}]}}
    result, store = run(d)
    assert result.status == "COMPLETED"
    assert [(e.stage, e.step_key) for e in fired(store)] == [("BEFORE_SINK", "out")]
    assert store.finished()["src"].status == "SKIPPED"


def test_it_renders_placeholders_and_leaves_unknown_ones():
    assert hooks.render("${stage} of ${pipelineCode}: ${nope} ${runId}", {"stage": "ON_ERROR", "pipelineCode": "p",
                                                                          "runId": None}) \
        == "ON_ERROR of p: ${nope} None"

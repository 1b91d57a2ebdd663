"""TRANSFORM steps in worker processes (runs.engine.processes): the same outputs, record errors, retries,
checkpoints and failures as in a thread; cancelled, timed-out and orphaned children end; what cannot go to
a child stays in a thread."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from pipelines.custom import register_operator
from pipelines.definition import parse
from pipelines.errors import ConfigError, DefinitionError, StepError
from pipelines.operators.chain import OperatorFailed
from runs.engine import process_child, processes, stream_plan
from runs.engine.context import RunOptions
from runs.engine.events import RecordRetried, StepProgress, StepRetrying
from runs.engine.executor import execute
from runs.engine.store import InMemoryStore
from tests.engine import process_operators

ROOT = Path(__file__).resolve().parents[2]
N = 3000
pytestmark = pytest.mark.skipif(processes.cpu_count() < 2, reason="worker processes are used on 2+ CPUs only")
linux_only = pytest.mark.skipif(sys.platform != "linux", reason="reads process states from /proc")


@pytest.fixture
def custom(registries):
    process_operators._tried.clear()
    process_operators.register_all()


def records(n=N):
    return [{"id": i, "sku": f"  sku-{i}  ", "qty": i % 5, "price": "12.50", "flaky": i % 11 == 0} for i in range(n)]


OPERATORS = [
    {"op": "trim", "args": {"path": "sku"}},
    {"op": "toNumber", "args": {"source": "price"}},
    # qty 0 fails the record (division by zero); every 7th record is dropped
    {"op": "script", "args": {"code": 'null if id % 7 == 0 else {**record, "each": price / qty}'}},
    {"op": "stampPid", "args": {}},
]


def pipeline(operators=OPERATORS, *, n=N, parallel=True, processes_mode=None, branches=2, step_extra=None,
             spill=False):
    steps = [{"key": "src", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": records(n)}}]
    edges = []
    for b in range(branches):
        steps.append({"key": f"t{b}", "type": "TRANSFORM", "config": {"operators": operators}, **(step_extra or {})})
        edges.append({"from": "src", "to": f"t{b}"})
    d = {"version": 1, "steps": steps, "edges": edges}
    if parallel:
        d["context"] = {"parallelExecution": {"enabled": True, "maxConcurrentSteps": 4}}
        if processes_mode:
            d["context"]["parallelExecution"]["processes"] = processes_mode
    return parse(d)


def run(definition, store=None, **options):
    store = store or InMemoryStore()
    options.setdefault("process_min_records", 100)
    result = execute(definition, store, RunOptions(keep_outputs=True, **options))
    return result, store


def pids(result, key="t0"):
    return {r.get("pid") for r in result.output(key)}


def without_pid(rows):
    return [{k: v for k, v in r.items() if k != "pid"} for r in rows]


@pytest.mark.parametrize("spill", [100, 50_000], ids=["input spilled", "input in memory"])
def test_a_step_in_a_worker_process_gives_what_a_thread_gives(custom, spill):
    in_process, p_store = run(pipeline(), spill_records=spill)
    in_thread, t_store = run(pipeline(processes_mode="off"), spill_records=spill)
    assert in_process.status == in_thread.status == "COMPLETED"
    assert pids(in_process) - {os.getpid()} and os.getpid() not in pids(in_process)
    assert pids(in_thread) == {os.getpid()}
    for key in ("t0", "t1"):
        assert without_pid(in_process.output(key)) == without_pid(in_thread.output(key))
        assert p_store.finished()[key].counts == t_store.finished()[key].counts
    assert p_store.finished()["t0"].counts.errors == len([i for i in range(N) if i % 5 == 0 and i % 7])
    # dead letters: the record as it entered the step (untrimmed), the same message
    failed = sorted(((e.step_key, e.record["id"]), e.record, e.message, e.details) for e in p_store.record_errors())
    assert failed == sorted(((e.step_key, e.record["id"]), e.record, e.message, e.details)
                            for e in t_store.record_errors())
    assert failed[0][1] == {"id": 5, "sku": "  sku-5  ", "qty": 0, "price": "12.50", "flaky": False}
    assert processes.live_pids() == set()


def test_the_output_is_the_childs_file_adopted_and_read_like_any_buffer(custom):
    result, _ = run(pipeline([{"op": "stampPid", "args": {}}], branches=1), spill_records=100)
    rows = result.output("t0")
    assert [r["id"] for r in rows] == list(range(N))
    assert len(result.outputs["t0"][None]) == N and result.outputs["t0"][None].spilled


def test_without_a_fork_server_the_child_is_spawned_and_gives_the_same(custom, monkeypatch):
    import multiprocessing

    monkeypatch.setattr(processes, "_context", multiprocessing.get_context("spawn"))
    spawned, s_store = run(pipeline(branches=1))
    in_thread, t_store = run(pipeline(branches=1, processes_mode="off"))
    assert os.getpid() not in pids(spawned)
    assert without_pid(spawned.output("t0")) == without_pid(in_thread.output("t0"))
    assert [e.record for e in s_store.record_errors()] == [e.record for e in t_store.record_errors()]


def test_a_step_in_a_worker_process_reports_live_progress(custom):
    # slow: 1 ms a record, so the step runs for over 3 s and the child reports about every second
    ops = [{"op": "slow", "args": {"seconds": 0.001}}, {"op": "stampPid", "args": {}}]
    result, store = run(pipeline(ops, branches=1))
    assert os.getpid() not in pids(result)
    moving = [e.counts for e in store.events if isinstance(e, StepProgress) and e.step_key == "t0"]
    assert moving, "no progress while the worker process ran"
    assert all(0 < c.records_in <= N and c.records_out <= c.records_in for c in moving)
    assert moving[0].records_in < N
    assert [c.records_in for c in moving] == sorted(c.records_in for c in moving)
    assert store.finished()["t0"].counts.records_in == N


def test_a_worker_process_that_cannot_start_leaves_the_step_to_a_thread(custom, monkeypatch):
    import multiprocessing

    class Refusing:
        Pipe = staticmethod(multiprocessing.Pipe)

        class Process:
            def __init__(self, **kwargs):
                pass

            def start(self):
                raise OSError(24, "Too many open files")

    monkeypatch.setattr(processes, "_context", Refusing)
    result, store = run(pipeline(branches=1))
    assert result.status == "COMPLETED" and pids(result) == {os.getpid()}
    assert store.finished()["t0"].counts.records_in == N


def test_a_step_that_may_run_in_a_worker_process_writes_no_stream(custom):
    register_operator(code="localTag", apply=lambda records, args, helpers: [{**r, "tagged": True} for r in records])
    d = pipeline([{"op": "stampPid", "args": {}}], branches=1).to_dict()
    # t0 -> after: `after` would stream from t0 (one input, t0 feeds only it, and its lambda operator keeps it
    # in a thread), but t0 goes to a worker process and writes a whole file (it reads src's stream:
    # test_process_feed)
    d["steps"].append({"key": "after", "type": "TRANSFORM", "config": {"operators": [{"op": "localTag", "args": {}}]}})
    d["edges"].append({"from": "t0", "to": "after"})
    result, store = run(parse(d))
    assert result.status == "COMPLETED"
    assert os.getpid() not in pids(result) and len(result.output("after")) == N
    assert all(r["tagged"] for r in result.output("after"))
    # the same pipeline with worker processes off streams t0 into `after`
    off = parse({**d, "context": {"parallelExecution": {"enabled": True, "maxConcurrentSteps": 4, "processes": "off"}}})
    plan = stream_plan.streamed_inputs(off, *_graph(off), RunOptions())
    assert plan.get("after") == "t0"
    assert stream_plan.streamed_inputs(parse(d), *_graph(parse(d)), RunOptions()) == {"t0": "src"}


def _graph(definition):
    from pipelines import graph, hooks
    from pipelines.registry import step_types

    return graph.inputs(definition), graph.successors(definition), step_types, hooks.parse(None)


def test_a_durable_run_saves_the_adopted_output_as_it_saves_any(custom):
    saved = {}

    def persist(key, outputs):
        with outputs[None].open_lines() as lines:
            saved[key] = [r for line in lines for r in orjson.loads(line)]
        return {"_main": key}

    d = pipeline([{"op": "stampPid", "args": {}}], branches=1).to_dict()
    d["steps"].append({"key": "out", "type": "SINK", "adapterCode": "records", "config": {}})
    d["edges"].append({"from": "t0", "to": "out"})
    result, _ = run(parse(d), spill_records=100, persist=persist)
    assert os.getpid() not in pids(result)
    assert saved["t0"] == result.output("t0") == result.output("out") and len(saved["t0"]) == N


def test_per_record_retry_runs_in_the_child_as_in_a_thread(custom):
    retry = {"retryPerRecord": {"maxRetries": 2, "retryDelayMs": 0}}
    ops = [{"op": "flaky", "args": {}}, {"op": "stampPid", "args": {}}]
    d = dict(n=N, branches=1, step_extra={"config": {"operators": ops, **retry}})
    in_process, p_store = run(pipeline(**d))
    process_operators._tried.clear()
    in_thread, t_store = run(pipeline(processes_mode="off", **d))
    assert os.getpid() not in pids(in_process)
    assert without_pid(in_process.output("t0")) == without_pid(in_thread.output("t0"))
    p_retried = [(e.record, e.attempt, e.error) for e in p_store.events if isinstance(e, RecordRetried)]
    t_retried = [(e.record, e.attempt, e.error) for e in t_store.events if isinstance(e, RecordRetried)]
    assert p_retried[0][0] == records()[0]
    assert p_retried == t_retried and len(p_retried) == len(range(0, N, 11))


def test_a_failing_step_fails_with_the_threads_message(custom):
    ops = [{"op": "script", "args": {"code": "{**record, 'x': 1 / qty}", "failOnError": True}}]
    extra = {"retries": 1, "retryDelayMs": 0}
    in_process, p_store = run(pipeline(ops, branches=1, step_extra=extra))
    in_thread, t_store = run(pipeline(ops, branches=1, step_extra=extra, processes_mode="off"))
    assert in_process.status == in_thread.status == "FAILED"
    assert in_process.error == in_thread.error
    assert "operator 0 ('script') failed" in in_process.error
    # an operator's failure is not retried, in a thread or not
    assert [e for e in p_store.events if isinstance(e, StepRetrying)] == []
    assert [e for e in t_store.events if isinstance(e, StepRetrying)] == []


def test_a_worker_process_that_dies_fails_its_attempt_which_is_retried(custom):
    ops = [{"op": "dieInChild", "args": {"parent": os.getpid()}}]
    result, store = run(pipeline(ops, branches=1, step_extra={"retries": 1, "retryDelayMs": 0}))
    assert result.status == "FAILED"
    assert [e.attempt for e in store.events if isinstance(e, StepRetrying)] == [1]
    assert store.finished()["t0"].error == "the worker process running the step ended unexpectedly (exit code 7)"
    assert processes.live_pids() == set()


def test_the_operators_checkpoint_comes_back_from_the_child(custom):
    ops = [{"op": "deltaFilter", "args": {"idPath": "id"}}]
    first, store = run(pipeline(ops, branches=1))
    assert len(first.output("t0")) == N
    second, _ = run(pipeline(ops, branches=1), store=InMemoryStore(checkpoints=dict(store.checkpoints)))
    assert second.output("t0") == []  # nothing changed since the checkpoint the child wrote


@linux_only
def test_a_cancelled_step_ends_its_worker_process(custom):
    store = InMemoryStore()
    ops = [{"op": "slow", "args": {"seconds": 0.05}}]  # 3000 records one at a time: minutes
    done = threading.Event()
    box = {}

    def go():
        box["result"], _ = run(pipeline(ops, branches=2), store=store)
        done.set()

    threading.Thread(target=go, daemon=True).start()
    children = _wait_for_children(2)
    store.cancel.set()
    assert done.wait(20)
    assert box["result"].status == "CANCELLED"
    assert {e.status for k, e in store.finished().items() if k != "src"} == {"CANCELLED"}
    _assert_gone(children)


@linux_only
def test_a_timed_out_step_ends_its_worker_process(custom):
    run(pipeline([{"op": "trim", "args": {"path": "sku"}}], branches=1))  # the fork server is up: the timeout is the step's
    ops = [{"op": "slow", "args": {"seconds": 0.05}}]
    started = time.monotonic()
    seen: set[int] = set()
    watching = threading.Event()

    def watch():
        while not watching.is_set():
            seen.update(processes.live_pids())
            time.sleep(0.01)

    threading.Thread(target=watch, daemon=True).start()
    result, store = run(pipeline(ops, branches=1, step_extra={"timeoutMs": 1500}))
    watching.set()
    assert result.status == "FAILED"
    assert "timed out after 1500 ms" in store.finished()["t0"].error
    assert time.monotonic() - started < 20
    assert seen, "the step never ran in a worker process"
    _assert_gone(seen)


@linux_only
def test_a_worker_process_does_not_outlive_a_killed_parent(tmp_path):
    script = (
        "import sys, time\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from pipelines.plugins import load_plugins\n"
        "load_plugins(['runs.engine.handlers'], entry_point_group=None)\n"
        "from tests.engine import process_operators, test_processes as t\n"
        "from runs.engine import processes\n"
        "import threading\n"
        "process_operators.register_all()\n"
        "ops = [{'op': 'slow', 'args': {'seconds': 0.05}}]\n"
        "threading.Thread(target=t.run, args=(t.pipeline(ops, branches=1),), daemon=True).start()\n"
        "while not processes.live_pids(): time.sleep(0.01)\n"
        "print(*processes.live_pids(), flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        child = int(parent.stdout.readline().split()[0])
        assert _running(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        _assert_gone({child})
    finally:
        parent.kill()
        parent.wait()


def test_small_inputs_and_switched_off_runs_stay_in_threads(custom):
    assert pids(run(pipeline(n=50), process_min_records=100)[0]) == {os.getpid()}
    assert pids(run(pipeline(), processes="off")[0]) == {os.getpid()}
    assert pids(run(pipeline(processes_mode="off"))[0]) == {os.getpid()}
    assert pids(run(pipeline(parallel=False))[0]) == {os.getpid()}


def test_an_operator_that_cannot_be_pickled_keeps_its_step_in_a_thread(custom):
    register_operator(code="localStamp", apply=lambda records, args, helpers: process_operators.stamp_pid(
        records, args, helpers))
    ops = [{"op": "localStamp", "args": {}}]
    step = pipeline(ops, branches=1).step("t0")
    reason = processes.why_not(step, _Inputs(N), _Ctx(pipeline(ops, branches=1)), ops)
    assert "operator 0 ('localStamp') cannot be sent to a worker process" in reason
    result, _ = run(pipeline(ops, branches=1))
    assert pids(result) == {os.getpid()} and len(result.output("t0")) == N


def test_a_plugins_operator_counted_as_built_in_reaches_the_child(custom):
    result, _ = run(pipeline([{"op": "pluginStamp", "args": {}}, {"op": "first", "args": {"source": "tags", "target": "tag"}}],
                             branches=1))
    assert result.status == "COMPLETED", result.error
    assert os.getpid() not in pids(result) and all(r["plugin"] for r in result.output("t0"))


def test_an_operator_reaching_for_the_parents_clock_goes_back_to_a_thread(custom):
    fixed = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    ops = [{"op": "stampClock", "args": {}}]
    result, store = run(pipeline(ops, branches=1), now=lambda: fixed)  # a lambda does not pickle
    assert result.status == "COMPLETED"
    assert {(r["at"], r["pid"]) for r in result.output("t0")} == {(fixed.isoformat(), os.getpid())}
    # with the default clock (a module function) the same operator runs in the child
    result, _ = run(pipeline(ops, branches=1))
    assert os.getpid() not in pids(result)


def test_parent_only_operators_keep_their_step_in_a_thread():
    ops = [{"op": "httpLookup", "args": {"url": "http://127.0.0.1:9/x", "target": "y"}}]
    d = parse({"version": 1, "steps": [{"key": "go", "type": "TRIGGER", "config": {}},
                                       {"key": "t", "type": "TRANSFORM", "config": {"operators": ops}}],
               "edges": [{"from": "go", "to": "t"}], "context": {"parallelExecution": {"enabled": True, "maxConcurrentSteps": 2}}})
    reason = processes.why_not(d.step("t"), _Inputs(10**6), _Ctx(d), ops)
    assert reason == "operator 0 ('httpLookup') makes HTTP requests with the run's client"


def test_a_bad_processes_setting_is_refused_with_its_place():
    with pytest.raises(DefinitionError) as info:
        parse({"version": 1, "steps": [{"key": "a", "type": "TRIGGER", "config": {}}],
               "context": {"parallelExecution": {"enabled": True, "processes": "sometimes"}}})
    assert "parallelExecution" in str(info.value) and "sometimes" in str(info.value)


def _settings_with(**env):
    code = ("import django; django.setup(); from django.conf import settings; "
            "print(settings.DATAHUB_STEP_PROCESSES, settings.DATAHUB_STEP_PROCESS_MIN_RECORDS)")
    full = {**{k: v for k, v in os.environ.items() if not k.startswith("DATAHUB_")},
            "DJANGO_SETTINGS_MODULE": "datahub_project.settings", **env}
    return subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=60,
                          cwd=ROOT)


def test_the_settings_default_to_auto_and_refuse_what_they_do_not_know():
    assert _settings_with().stdout.split() == ["auto", "50000"]
    assert _settings_with(DATAHUB_STEP_PROCESSES="Off", DATAHUB_STEP_PROCESS_MIN_RECORDS="7").stdout.split() == ["off", "7"]
    done = _settings_with(DATAHUB_STEP_PROCESSES="sometimes")
    assert done.returncode != 0 and "DATAHUB_STEP_PROCESSES: 'sometimes' is not auto or off" in done.stderr
    done = _settings_with(DATAHUB_STEP_PROCESS_MIN_RECORDS="0")
    assert done.returncode != 0 and "DATAHUB_STEP_PROCESS_MIN_RECORDS" in done.stderr


@pytest.mark.parametrize("exc", [
    ConfigError("bad regex", field="operators[2].args.pattern"),
    OperatorFailed(3, "script", "division by zero"),
    StepError("503 from the server", retryable=True),
    ValueError("plain"),
], ids=lambda e: type(e).__name__)
def test_an_exception_from_the_child_is_rebuilt_as_itself(exc):
    rebuilt = process_child.rebuild(pickle.loads(pickle.dumps(process_child.portable(exc))))
    assert type(rebuilt) is type(exc) and str(rebuilt) == str(exc)
    assert rebuilt.__dict__ | {"__notes__": None} == exc.__dict__ | {"__notes__": None}
    assert rebuilt.__notes__[0].startswith("in the worker process:")


def test_an_exception_that_does_not_pickle_comes_back_as_a_step_error_with_the_same_text():
    class Local(Exception):
        pass

    rebuilt = process_child.rebuild(pickle.loads(pickle.dumps(process_child.portable(Local("odd")))))
    assert type(rebuilt) is StepError and str(rebuilt) == "Local: odd" and rebuilt.retryable


# --- helpers ---------------------------------------------------------------------------------------


class _Inputs:
    def __init__(self, n):
        self.n = n
        self.buffers = []

    def __len__(self):
        return self.n


class _Ctx:
    def __init__(self, definition):
        self.definition = definition
        self.options = RunOptions(process_min_records=100)


def _wait_for_children(n: int, timeout: float = 30) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        live = processes.live_pids()
        if len(live) >= n:
            return live
        time.sleep(0.01)
    raise AssertionError(f"{n} worker processes never started (saw {processes.live_pids()})")


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended (its reaper may be slow)
    except FileNotFoundError:
        return False


def _assert_gone(pids_: set[int], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    # The step's thread forgets a child once the fork server reports its end, a moment after it ended.
    while time.monotonic() < deadline and (any(_running(p) for p in pids_) or processes.live_pids() & pids_):
        time.sleep(0.05)
    assert not any(_running(p) for p in pids_), f"worker processes still running: {pids_}"
    assert not (processes.live_pids() & pids_)

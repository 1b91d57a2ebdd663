"""What a run keeps so that any worker can continue it later, without running a completed step twice.

When a run pauses (a gate waits) or is handed back (its worker drains), every step's status is written to
``Run.resume_state`` and the outputs that steps still to run will read are in Django storage as NDJSON
files. ``release`` marks a paused step as completed (a gate approved); ``previous_steps`` turns the saved
state back into the executor's ``RunOptions.previous``. Outputs already read by all their successors were
released during the run and are not saved: nothing after the pause needs them.

The durable boundary (``persist``): while a run goes, each completed step's outputs that a later step
reads are saved as it completes, and their names kept on its StepRun row. When the worker disappears,
``manifest_from_rows`` rebuilds the same state from those rows, so the worker that resumes the run reads
the outputs back and runs only the steps that had not completed.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict

from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from pipelines import graph
from pipelines.records import dumps, loads
from runs.engine.buffers import RecordBuffer
from runs.engine.context import PreviousStep
from runs.engine.events import StepCounts
from runs.engine.executor import RunResult
from runs.models import StepRun

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")
MAIN = "_main"


def _name(run_id: int, step: str, branch: str | None) -> str:
    return f"datahub/runs/{run_id}/{_SAFE.sub('_', step)}/{_SAFE.sub('_', branch or MAIN)}.ndjson"


def persist(run_id: int, step_key: str, outputs: dict) -> dict:
    """Save a completed step's outputs ({branch: RecordBuffer}) to storage; returns {branch or "_main": name}.
    A buffer shared by several branches is written once. The file holds one JSON array per batch and line:
    a buffer that spilled to disk is copied byte for byte from its own file, a buffer in memory is
    serialized one batch per call (what this costs: bench/bench_durable_outputs.py)."""
    names: dict[str, str] = {}
    written: dict[int, str] = {}
    for branch, buf in outputs.items():
        if id(buf) not in written:
            with buf.open_lines() as fh:
                written[id(buf)] = default_storage.save(_name(run_id, step_key, branch), File(fh))
        names[branch or MAIN] = written[id(buf)]
    return names


def save_state(run, result: RunResult) -> dict:
    """Write the outputs and statuses of a paused or handed-back run; returns the manifest stored on the
    run. Outputs saved when their step completed (``result.saved``) are not written again."""
    steps: dict[str, dict] = {}
    for key, status in result.statuses.items():
        entry: dict = {"status": status, "usable": key in result.usable, "outputs": {}}
        if key in result.counts:
            entry["counts"] = asdict(result.counts[key])
        if key in result.saved and status != "PAUSED":
            entry["outputs"] = dict(result.saved[key])
            steps[key] = entry
            continue
        for branch, buf in (result.outputs.get(key) or {}).items():
            name = _name(run.pk, key, branch)
            if default_storage.exists(name):
                default_storage.delete(name)
            body = b"".join(dumps(r) + b"\n" for batch in buf.batches() for r in batch)
            entry["outputs"][branch or MAIN] = default_storage.save(name, ContentFile(body))
        steps[key] = entry
    return {"version": 1, "steps": steps}


def previous_steps(manifest: dict, spill_records: int, beat=None) -> dict[str, PreviousStep]:
    """The executor's ``RunOptions.previous`` from a manifest, the saved outputs read back. ``beat`` is
    called every few seconds meanwhile: reading a large output back must not look like a dead worker."""
    previous = {}
    last_beat = time.monotonic()
    for key, entry in (manifest or {}).get("steps", {}).items():
        if entry["status"] == "PENDING":
            continue
        outputs: dict[str | None, RecordBuffer] = {}
        for branch, name in entry.get("outputs", {}).items():
            buf = RecordBuffer(spill_records)
            with default_storage.open(name, "rb") as fh:
                batch = []
                for line in fh:
                    if line.strip():
                        value = loads(line)  # a record (a paused run's file) or a batch (persist's)
                        if isinstance(value, list):
                            batch.extend(value)
                        else:
                            batch.append(value)
                    if len(batch) >= 1000:
                        buf.append(batch)
                        batch = []
                        if beat is not None and time.monotonic() - last_beat >= 2:
                            beat()
                            last_beat = time.monotonic()
                buf.append(batch)
            outputs[None if branch == MAIN else branch] = buf
        counts = StepCounts(**entry["counts"]) if entry.get("counts") else None
        previous[key] = PreviousStep(entry["status"], bool(entry.get("usable")), outputs, counts)
    return previous


def release(manifest: dict, step_key: str) -> dict:
    """The manifest with the paused ``step_key`` completed: its held records now feed its successors."""
    entry = manifest["steps"][step_key]
    if entry["status"] != "PAUSED":
        raise ValueError(f"step '{step_key}' is not paused (it is {entry['status']})")
    entry["status"] = "COMPLETED"
    entry["usable"] = True
    return manifest


def manifest_from_rows(run, definition) -> dict:
    """The state to resume ``run`` from after its worker disappeared, from its StepRun rows: every step
    that ended and whose outputs are saved (or needed by no step still to run) keeps its end; every other
    step runs again (RUNNING, PENDING and PAUSED ones, and completed ones whose unsaved outputs a step still
    to run needs, with what they in turn need)."""
    inputs = graph.inputs(definition)
    successors = graph.successors(definition)
    earlier = (run.resume_state or {}).get("steps", {})
    rows = {r.step_key: r for r in run.step_runs.all()}
    ended = {}
    for key, row in rows.items():
        if row.status in ("COMPLETED", "SKIPPED", "FAILED"):
            outputs = row.outputs
            if outputs is None and earlier.get(key, {}).get("status") == row.status and earlier[key].get("usable"):
                outputs = earlier[key].get("outputs") or {}  # saved when the run paused or was handed back
            if row.status == "SKIPPED" and outputs is None:
                continue  # a disabled step's unsaved pass-through: passed through again (other skips recur)
            ended[key] = (row, outputs)
    changed = True
    while changed:  # a step to run again needs its inputs' outputs: those without saved outputs run again
        changed = False
        again = set(rows) - set(ended)
        for key in again:
            for i in inputs.get(key, ()):
                entry = ended.get(i.source)
                if entry is not None and entry[0].status == "COMPLETED" and entry[1] is None:
                    del ended[i.source]
                    changed = True
    steps = {}
    for key, (row, outputs) in ended.items():
        usable = outputs is not None or (row.status == "COMPLETED" and not successors.get(key))
        steps[key] = {"status": row.status, "usable": usable, "outputs": dict(outputs or {}),
                      "counts": {"records_in": row.records_in, "records_out": row.records_out,
                                 "errors": row.records_error, "dropped": row.records_dropped}}
    return {"version": 1, "steps": steps}


def file_names(run) -> set[str]:
    """Every file a run saved: its resume state's and its steps' durable outputs."""
    names = {name for entry in (run.resume_state or {}).get("steps", {}).values()
             for name in entry.get("outputs", {}).values()}
    if getattr(run, "pk", None) is not None:
        for outputs in StepRun.objects.filter(run_id=run.pk, outputs__isnull=False).values_list("outputs", flat=True):
            names.update((outputs or {}).values())
    return names


def delete_files(run) -> None:
    for name in file_names(run):
        if default_storage.exists(name):
            default_storage.delete(name)

"""What a paused run keeps so that any worker can continue it later, without running a step twice.

When a run pauses (a gate waits), every step's status is written to ``Run.resume_state`` and the outputs
that steps still to run will read are written to Django storage as NDJSON files. ``release`` marks a paused
step as completed (a gate approved); ``previous_steps`` turns the saved state back into the executor's
``RunOptions.previous``. Outputs already read by all their successors were released during the run and
are not saved: nothing after the pause needs them.
"""

from __future__ import annotations

import re
from dataclasses import asdict

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from pipelines.records import dumps, loads
from runs.engine.buffers import RecordBuffer
from runs.engine.context import PreviousStep
from runs.engine.events import StepCounts
from runs.engine.executor import RunResult

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")
MAIN = "_main"


def _name(run_id: int, step: str, branch: str | None) -> str:
    return f"datahub/runs/{run_id}/{_SAFE.sub('_', step)}/{_SAFE.sub('_', branch or MAIN)}.ndjson"


def save_state(run, result: RunResult) -> dict:
    """Write the outputs and statuses of a paused run; returns the manifest stored on the run."""
    steps: dict[str, dict] = {}
    for key, status in result.statuses.items():
        entry: dict = {"status": status, "usable": key in result.usable, "outputs": {}}
        if key in result.counts:
            entry["counts"] = asdict(result.counts[key])
        for branch, buf in (result.outputs.get(key) or {}).items():
            name = _name(run.pk, key, branch)
            if default_storage.exists(name):
                default_storage.delete(name)
            body = b"".join(dumps(r) + b"\n" for batch in buf.batches() for r in batch)
            entry["outputs"][branch or MAIN] = default_storage.save(name, ContentFile(body))
        steps[key] = entry
    return {"version": 1, "steps": steps}


def previous_steps(manifest: dict, spill_records: int) -> dict[str, PreviousStep]:
    previous = {}
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
                        batch.append(loads(line))
                    if len(batch) >= 1000:
                        buf.append(batch)
                        batch = []
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


def delete_files(run) -> None:
    for entry in (run.resume_state or {}).get("steps", {}).values():
        for name in entry.get("outputs", {}).values():
            if default_storage.exists(name):
                default_storage.delete(name)

"""What a run put out: a bounded sample of its final outputs, kept with the run (``Run.output_sample``).

The executor keeps no step's records after a run: they can be large, and are spilled to disk while it
goes. The run page and the REST run detail show what a run produced from this sample, taken when the
run (or one part of it, before a pause) ends, from the outputs the executor is asked to keep
(``RunOptions.keep_outputs``; of a step nothing reads, only the first ``RunOptions.output_head`` records
are ever held) and closed right after unless the caller wanted them.

Final outputs are the records nothing else in the pipeline reads: a step no edge leaves, and each ROUTE
branch no edge takes (a ROUTE's "all records" output is left out when it has branches: they hold the same
records). What is guaranteed:

* at most ``RECORDS`` records per output, in the order the step put them out, with the output's total;
* a record whose JSON is over ``RECORD_BYTES`` is replaced by a note saying its size; the sample as a
  whole stays under ``TOTAL_BYTES`` (outputs past it keep their totals and no records);
* every string in it is scrubbed of the secrets and credentials the run used, as its errors are;
* a value JSON cannot hold (a date, a Decimal, bytes) is kept as its text;
* ``columns`` names the records' fields in the order the step put them out, whatever order the database
  keeps a JSON object's keys in.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from pipelines import graph
from pipelines.definition import Definition
from runs.engine.buffers import RecordBuffer

log = logging.getLogger(__name__)

RECORDS = 100
RECORD_BYTES = 16 * 1024
TOTAL_BYTES = 512 * 1024

Outputs = dict[str, dict[str | None, RecordBuffer]]


def final_outputs(definition: Definition) -> dict[str, frozenset[str | None]]:
    """{step key: the branches of it other steps read}, for each step some of whose records nothing reads.

    A step read whole (an edge without a branch, or list order) is not listed; dependency-only edges read
    no records."""
    read: dict[str, set[str | None]] = {s.key: set() for s in definition.steps}
    for ins in graph.inputs(definition).values():
        for i in ins:
            if not i.dependency_only:
                read[i.source].add(i.branch)
    return {key: frozenset(branches) for key, branches in read.items() if None not in branches}


def keep_also(keep: bool | frozenset[str], finals: dict) -> bool | frozenset[str]:
    """``RunOptions.keep_outputs`` that keeps the final outputs too: those of steps some of whose outputs are
    read (a ROUTE with a branch taken). A step nothing reads holds its head (``RunOptions.output_head``),
    which is all the sample takes."""
    if keep is True:
        return True
    return frozenset(keep or ()) | frozenset(key for key, read in finals.items() if read)


def _json_safe(record: Any) -> tuple[Any, int]:
    text = json.dumps(record, ensure_ascii=False, default=str)
    return json.loads(text), len(text.encode())


def take(outputs: Outputs, finals: dict[str, frozenset[str | None]],
         scrub: Callable[[Any], Any] | None = None) -> list[dict]:
    """The sample of ``outputs``' final outputs: [{step, branch, total, records, shown, truncated}]."""
    entries: list[dict] = []
    budget = TOTAL_BYTES
    for key, read in finals.items():
        outs = outputs.get(key)
        if not outs:
            continue
        named = [b for b in outs if b is not None]
        for branch in ([b for b in named if b not in read] if named else [None]):
            buf = outs[branch]
            records: list[Any] = []
            for record in buf.head(RECORDS) if budget > 0 else []:
                value, size = _json_safe(scrub(record) if scrub else record)
                if size > RECORD_BYTES:
                    value, size = {"_note": f"a record of {size:,} bytes, too large to keep"}, 64
                if size > budget:
                    budget = 0
                    break
                budget -= size
                records.append(value)
            total = len(buf)
            entries.append({"step": key, "branch": branch, "total": total, "records": records,
                            "columns": columns_of(records), "truncated": len(records) < total})
    return entries


def columns_of(records: list) -> list[str]:
    """The records' top-level fields in the order the step put them out (first seen first). Kept beside the
    records because a database may keep a JSON object's keys in an order of its own (PostgreSQL's jsonb)."""
    seen: dict[str, None] = {}
    for record in records:
        if isinstance(record, dict):
            seen.update(dict.fromkeys(record))
    return list(seen)


def merged(earlier: list | None, entries: list[dict], order: list[str]) -> list[dict]:
    """A resumed run's sample: what this part put out replaces the same outputs of an earlier part."""
    out = {(e.get("step"), e.get("branch")): e for e in (earlier or []) if isinstance(e, dict)}
    out.update({(e["step"], e["branch"]): e for e in entries})
    position = {key: n for n, key in enumerate(order)}
    return sorted(out.values(), key=lambda e: (position.get(e["step"], len(position)), str(e["branch"] or "")))


def close_unwanted(outputs: Outputs, finals: dict, keep: bool | frozenset[str]) -> None:
    """Close (and forget) the final outputs kept only for the sample, not because the caller asked."""
    if keep is True:
        return
    for key in finals:
        if key in (keep or ()) or key not in outputs:
            continue
        for buf in {id(b): b for b in outputs.pop(key).values()}.values():
            buf.close()

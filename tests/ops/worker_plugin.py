"""Loaded by the worker processes of the multi-worker and crash tests (``DATAHUB_PLUGIN_MODULES``).

``opsTrace``: a TRANSFORM operator that passes its records on unchanged, appends a ``start`` and an ``end``
line per batch to the file named by ``DATAHUB_OPS_TRACE`` (run, step, pid, time) and sleeps ``sleepMs`` in
between (``sleepMsFirstTime`` instead, when the trace holds no earlier start of this run's step: a step
that is slow only until it is interrupted once). The lines are how the tests count executions across processes: each is one ``write`` to a file
opened with O_APPEND, so lines of concurrent processes never interleave.
"""

from __future__ import annotations

import json
import os
import time

from pipelines.operators.base import batch_operator


def _trace(event: str, ctx, records: int) -> None:
    line = json.dumps({"event": event, "run": ctx.run_id, "step": ctx.step_key, "pid": os.getpid(),
                       "t": time.time(), "records": records}) + "\n"
    fd = os.open(os.environ["DATAHUB_OPS_TRACE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _started_before(ctx) -> bool:
    with open(os.environ["DATAHUB_OPS_TRACE"], "a+") as fh:
        fh.seek(0)
        lines = [json.loads(line) for line in fh if line.strip()]
    return any(t["run"] == ctx.run_id and t["step"] == ctx.step_key and t["event"] == "start" for t in lines)


@batch_operator(
    "opsTrace",
    name="Trace (ops tests)",
    category="custom",
    description="Writes where and when each batch ran to DATAHUB_OPS_TRACE; may sleep.",
    schema={"type": "object", "properties": {"sleepMs": {"type": "integer", "minimum": 0},
                                             "sleepMsFirstTime": {"type": "integer", "minimum": 0}}},
    pure=False,
    builtin=False,
)
def ops_trace(records, args, ctx):
    sleep_ms = args.get("sleepMs", 0)
    if "sleepMsFirstTime" in args and not _started_before(ctx):
        sleep_ms = args["sleepMsFirstTime"]
    _trace("start", ctx, len(records))
    until = time.monotonic() + sleep_ms / 1000
    while time.monotonic() < until and not ctx.cancelled.is_set():
        time.sleep(min(0.05, max(0.0, until - time.monotonic())))
    _trace("end", ctx, len(records))
    return records

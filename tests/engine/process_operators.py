"""Custom operators for tests/engine/test_processes.py, at module level so that a worker process can
import them by name (a lambda or a local function cannot be sent to one)."""

from __future__ import annotations

import os
import threading
import time

from pipelines.custom import register_operator
from pipelines.errors import RecordError
from pipelines.operators.base import batch_operator

# Per-record attempts of `flaky`, per process: a record with `flaky` set fails its first attempt.
_tried: set = set()


def stamp_pid(records, args, helpers):
    """Each record says which process transformed it."""
    return [{**r, "pid": os.getpid()} for r in records]


def slow(records, args, helpers):
    time.sleep(float(args.get("seconds", 0.01)))
    return records


def flaky(records, args, helpers):
    out = []
    for r in records:
        if r.get("flaky") and r["id"] not in _tried:
            _tried.add(r["id"])
            raise RecordError(f"record {r['id']} failed its first attempt")
        out.append(r)
    return out


def stamp_clock(records, args, helpers):
    """Reads the run's clock: in a worker process given a clock that does not pickle, the step goes back
    to a thread."""
    return [{**r, "at": helpers.now().isoformat(), "pid": os.getpid()} for r in records]


def die_in_child(records, args, helpers):
    """Ends a worker process abruptly (as the kernel's OOM killer would); harmless in the parent."""
    if os.getpid() != args["parent"]:
        os._exit(7)
    return records


def hold_lock(records, args, helpers):
    """Puts out a value that does not pickle (a lock): a worker process cannot send such records back."""
    return [{**r, "lock": threading.Lock(), "pid": os.getpid()} for r in records]


def plugin_stamp(records, args, ctx):
    """Registered as a plugin module's decorator registers it: counted as built in (the default)."""
    return [{**r, "plugin": True, "pid": os.getpid()} for r in records]


def register_all() -> None:
    batch_operator("pluginStamp", name="Plugin stamp", category="data", description="", schema={"type": "object"},
                   replace=True)(plugin_stamp)
    for code, fn in (("stampPid", stamp_pid), ("slow", slow), ("flaky", flaky), ("stampClock", stamp_clock),
                     ("dieInChild", die_in_child), ("holdLock", hold_lock)):
        register_operator(code=code, apply=fn, replace=True)

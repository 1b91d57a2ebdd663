"""``multiJoin`` on 1,000,000 left x 100,000 right records, each join type, against pandas and polars.

    .venv/bin/python bench/bench_join.py [--left 1000000] [--right 100000] [--types INNER,LEFT,RIGHT,FULL]
                                         [--repeat 3] [--profile TYPE]

pandas and polars are not project dependencies; install them into the venv for this bench only:
``.venv/bin/pip install pandas polars``. A missing one is skipped with a printed message.

The records are generated once, in this process:

* left ``{"id": i, "sku": f"SKU-{i % 150_000}", "qty": i % 13}``: 150,000 distinct keys, each 6 or 7 times;
* right ``{"sku": f"SKU-{k}", "price": ..., "name": ...}`` with ``k = 2 * j``, except every 1000th row
  (``j % 1000 == 999``), which repeats the key of the row before it. So: even left keys below 150,000
  match (about half the left rows), odd ones do not; right keys of 150,000 and up (a quarter of the right
  rows) match nothing; 100 right keys have two rows (one left record gives two output records).

Then, for each join type, three ways from the same records to the same records:

(a) ours: ``OperatorChain([{"op": "multiJoin", ...}])``, batches of 1,000 then ``finish()``, ``leftKey``/``rightKey`` ``sku``,
    ``prefix: "r_"``, the right side through ``rightDataPath: "$.steps.prices.output"`` (a context whose
    ``step_outputs`` returns the generated right list; inline ``rightData`` is capped at 10,000 rows). The
    chain deep-copies every left record as it enters, as in a TRANSFORM step: that is part of the figure.
(b) pandas: ``DataFrame.from_records`` (both sides; the right columns renamed with the same ``r_``
    prefix) + ``merge(how=inner|left|right|outer, left_on="sku", right_on="r_sku")`` + ``to_dict("records")``.
(c) polars: ``pl.from_dicts`` (both sides, right renamed likewise) + ``join(how=inner|left|right|full,
    left_on="sku", right_on="r_sku", coalesce=False)`` + ``to_dicts()``.

All three give rows with the same six fields (id, sku, qty, r_sku, r_price, r_name). Before timing, a
check on the first 20,000 left records (against all right records) compares the three outputs as
multisets of rows, for every type (after mapping pandas' NaN to None and its float-converted ids and
quantities back to ints), and a tiny probe shows how each treats null keys (printed as a note).

Ours runs as a TRANSFORM step runs it: the left records in batches of 1,000 through ``OperatorChain``
(which copies each record as it enters), then ``chain.finish()`` for the unmatched right rows of RIGHT and
FULL. There is no output ceiling (none is given; the join streams), and the right side is hashed once.

Each measurement runs in a fresh ``fork()`` of the process holding the generated records, so every path
starts from the same heap and its peak RSS is its own. Before its timer starts, the child runs
``gc.collect()`` and touches every record (copy-on-write faults, which a normal process does not have,
stay outside the figure); pandas/polars are imported there, untimed. Each measurement runs ``--repeat``
times (default 3), the engines' order rotating, and the fastest wall-clock run counts: the machine this
was written on is shared, and other work skews single runs. User+system CPU seconds are printed too
(polars uses more than one thread, so its CPU time can exceed its wall time); on a busy machine the
least CPU time of the runs is the steadier figure, and the table gives ratios of both.

``--profile TYPE`` adds a cProfile of ours for that type (in a fork, top functions by own time).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import math
import os
import resource
import sys
import time
import traceback
from collections import Counter

import _common

from pipelines.operators.base import OperatorContext
from pipelines.operators.chain import OperatorChain

TYPES = ("INNER", "LEFT", "RIGHT", "FULL")
PANDAS_HOW = {"INNER": "inner", "LEFT": "left", "RIGHT": "right", "FULL": "outer"}
POLARS_HOW = {"INNER": "inner", "LEFT": "left", "RIGHT": "right", "FULL": "full"}
PREFIX = "r_"
COLUMNS = ("id", "sku", "qty", "r_sku", "r_price", "r_name")
KEY_SPACE = 150_000


def generate_left(n: int) -> list[dict]:
    return [{"id": i, "sku": f"SKU-{i % KEY_SPACE}", "qty": i % 13} for i in range(n)]


def generate_right(m: int) -> list[dict]:
    rows = []
    for j in range(m):
        k = 2 * (j - 1) if j % 1000 == 999 else 2 * j
        rows.append({"sku": f"SKU-{k}", "price": round(1 + (j % 997) * 0.25, 2), "name": f"Product {j}"})
    return rows


def expected_rows(left: list[dict], right: list[dict], join_type: str) -> int:
    """The output size by counting, independently of all three joins."""
    per_key = Counter(r["sku"] for r in right)
    left_keys = Counter(r["sku"] for r in left)
    inner = sum(per_key.get(r["sku"], 0) for r in left)
    unmatched_left = sum(c for k, c in left_keys.items() if k not in per_key)
    unmatched_right = sum(c for k, c in per_key.items() if k not in left_keys)
    return inner + (unmatched_left if join_type in ("LEFT", "FULL") else 0) + (
        unmatched_right if join_type in ("RIGHT", "FULL") else 0
    )


# --- the three paths -----------------------------------------------------------------------------------


def ours(left: list[dict], right: list[dict], join_type: str, batch: int = 1000) -> list[dict]:
    """As a TRANSFORM step runs it: batches of ``batch`` through the chain (which copies each record as it
    enters), then the chain's ``finish`` (RIGHT/FULL: the unmatched right rows). No output ceiling."""

    def step_outputs(key: str) -> list[dict]:
        if key != "prices":
            raise KeyError(key)
        return right

    chain = OperatorChain(
        [{"op": "multiJoin", "args": {
            "leftKey": "sku", "rightKey": "sku", "rightDataPath": "$.steps.prices.output",
            "type": join_type, "prefix": PREFIX,
        }}],
        context_for=lambda i: OperatorContext(step_key="join", op_index=i, step_outputs=step_outputs),
    )
    out: list[dict] = []
    for start in range(0, len(left), batch):
        result = chain.apply(left[start:start + batch])
        assert not result.failures, result.failures[:3]
        out.extend(result.records)
    out.extend(chain.finish().records)
    return out


def by_pandas(left: list[dict], right: list[dict], join_type: str, phases: dict | None = None) -> list[dict]:
    import pandas as pd

    clock = time.perf_counter
    t0 = clock()
    lf = pd.DataFrame.from_records(left)
    rf = pd.DataFrame.from_records(right).add_prefix(PREFIX)
    t1 = clock()
    joined = lf.merge(rf, how=PANDAS_HOW[join_type], left_on="sku", right_on="r_sku")
    t2 = clock()
    out = joined.to_dict("records")
    t3 = clock()
    if phases is not None:
        phases.update(convert_in=t1 - t0, join=t2 - t1, convert_out=t3 - t2)
    return out


def by_polars(left: list[dict], right: list[dict], join_type: str, phases: dict | None = None) -> list[dict]:
    import polars as pl

    clock = time.perf_counter
    t0 = clock()
    lf = pl.from_dicts(left)
    rf = pl.from_dicts(right)
    rf = rf.rename({c: PREFIX + c for c in rf.columns})
    t1 = clock()
    joined = lf.join(rf, how=POLARS_HOW[join_type], left_on="sku", right_on="r_sku", coalesce=False)
    t2 = clock()
    out = joined.to_dicts()
    t3 = clock()
    if phases is not None:
        phases.update(convert_in=t1 - t0, join=t2 - t1, convert_out=t3 - t2)
    return out


ENGINES = {"ours": ours, "pandas": by_pandas, "polars": by_polars}


def available(engine: str) -> bool:
    return engine == "ours" or importlib.util.find_spec(engine) is not None


# --- running each measurement in a fork ----------------------------------------------------------------


def rss_mb() -> float:
    return _common.current_rss_mb()


def in_child(work) -> dict:
    """Run ``work()`` in a fork of this process; return the dict it returns (or {"error": ...})."""
    sys.stdout.flush()
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(reader)
        try:
            payload = work()
        except BaseException:  # noqa: BLE001 - reported to the parent
            payload = {"error": traceback.format_exc()}
        with os.fdopen(writer, "w") as f:
            json.dump(payload, f)
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as f:
        text = f.read()
    os.waitpid(pid, 0)
    return json.loads(text) if text else {"error": "the child died without a report"}


def touch(*lists: list[dict]) -> None:
    """Write every record's and value's refcount once: copy-on-write faults happen here, untimed."""
    for records in lists:
        for r in records:
            for _v in r.values():
                pass


def measure(engine: str, left: list[dict], right: list[dict], join_type: str) -> dict:
    def work() -> dict:
        if engine != "ours":
            __import__(engine)  # import time is not the join's
        touch(left, right)
        gc.collect()
        start_rss = rss_mb()
        phases: dict = {}
        fn = ENGINES[engine]
        c0, t0 = os.times(), time.perf_counter()
        out = fn(left, right, join_type) if engine == "ours" else fn(left, right, join_type, phases)
        t1, c1 = time.perf_counter(), os.times()
        return {
            "seconds": t1 - t0,
            "cpu": (c1.user - c0.user) + (c1.system - c0.system),
            "rows": len(out),
            "columns": sorted(out[0]) if out else [],
            "start_rss": start_rss,
            "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "phases": phases,
        }

    return in_child(work)


# --- checking that the three do the same work ---------------------------------------------------------


def _norm(value):
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return int(value)
    return value


def _row(record: dict) -> tuple:
    return tuple(_norm(record.get(c)) for c in COLUMNS)


def check_same(left: list[dict], right: list[dict], engines: list[str]) -> dict:
    def work() -> dict:
        report = {}
        for join_type in TYPES:
            want = Counter(_row(r) for r in ours(left, right, join_type))
            for engine in engines:
                if engine == "ours":
                    continue
                got = Counter(_row(r) for r in ENGINES[engine](left, right, join_type))
                report[f"{engine} {join_type}"] = "same rows" if got == want else (
                    f"DIFFERENT: {sum((got - want).values())} extra, {sum((want - got).values())} missing"
                )
        return report

    return in_child(work)


def null_probe(engines: list[str]) -> dict:
    """Row counts of a tiny INNER join where null and missing keys exist on both sides."""
    left = [{"id": 1, "sku": "a", "qty": 1}, {"id": 2, "sku": None, "qty": 2}, {"id": 3, "qty": 3}]
    right = [{"sku": "a", "price": 1.0, "name": "x"}, {"sku": None, "price": 2.0, "name": "y"}]

    def work() -> dict:
        return {e: len(ENGINES[e](left, right, "INNER")) for e in engines}

    return in_child(work)


def profile(left: list[dict], right: list[dict], join_type: str) -> None:
    def work() -> dict:
        import cProfile
        import io
        import pstats

        touch(left, right)
        gc.collect()
        prof = cProfile.Profile()
        prof.enable()
        ours(left, right, join_type)
        prof.disable()
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(12)
        return {"text": buf.getvalue()}

    got = in_child(work)
    print(f"cProfile of ours, {join_type} (top functions by own time; profiling slows Python code ~2x):")
    print(got.get("text") or got.get("error"))


# --- main ----------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--left", type=int, default=1_000_000)
    parser.add_argument("--right", type=int, default=100_000)
    parser.add_argument("--types", default=",".join(TYPES))
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement; the fastest counts")
    parser.add_argument("--profile", choices=TYPES)
    args = parser.parse_args()
    types = [t.strip().upper() for t in args.types.split(",") if t.strip()]

    _common.header(f"multiJoin: {args.left:,} left x {args.right:,} right records, types {', '.join(types)}")
    engines = ["ours"]
    for lib in ("pandas", "polars"):
        if available(lib):
            engines.append(lib)
        else:
            print(f"SKIPPED {lib}: not installed in this environment "
                  f"(install it for this bench only: .venv/bin/pip install {lib})")
    versions = [f"{lib} {__import__('importlib.metadata').metadata.version(lib)}" for lib in engines[1:]]
    print("baselines:", ", ".join(versions) if versions else "none")

    t0 = time.perf_counter()
    left = generate_left(args.left)
    right = generate_right(args.right)
    print(f"generated the records in {time.perf_counter() - t0:.2f} s; RSS now {rss_mb():.0f} MiB, "
          f"load average {_common.load_average()}")
    gc.collect()

    if len(engines) > 1:
        checked = check_same(left[:20_000], right, engines)
        if "error" in checked:
            raise SystemExit(f"the same-work check failed:\n{checked['error']}")
        print("same-work check (first 20,000 left records, all right records, as multisets of rows):")
        for what, verdict in checked.items():
            print(f"  {what}: {verdict}")
        if any(v != "same rows" for v in checked.values()):
            raise SystemExit("the engines do not produce the same rows; not timing")
        probe = null_probe(engines)
        print("null-key probe (INNER; left keys 'a', None, missing; right keys 'a', None), rows:",
              ", ".join(f"{e} {n}" for e, n in probe.items()))
    print()

    results: dict[str, dict[str, dict]] = {}
    bad_counts = []
    print(f"each measurement {args.repeat} time(s), the engines' order rotating; the figures below are "
          f"the fastest run of each")
    for join_type in types:
        expect = expected_rows(left, right, join_type)
        runs: dict[str, list[dict]] = {e: [] for e in engines}
        for rep in range(args.repeat):
            k = rep % len(engines)
            for engine in engines[k:] + engines[:k]:
                got = measure(engine, left, right, join_type)
                if "error" in got:
                    raise SystemExit(f"{engine} {join_type} failed:\n{got['error']}")
                runs[engine].append(got)
                print(f"  {join_type:5} {engine:6} {got['seconds']:7.2f} s  (CPU {got['cpu']:5.2f} s)  "
                      f"{got['rows']:>9,} rows  peak RSS {got['peak_rss']:,.0f} MiB", flush=True)
        results[join_type] = {e: min(r, key=lambda x: x["seconds"]) for e, r in runs.items()}
        for e, r in runs.items():
            results[join_type][e]["all"] = [x["seconds"] for x in r]
            results[join_type][e]["cpu_min"] = min(x["cpu"] for x in r)
        rows = {e: x["rows"] for e, r in runs.items() for x in r}
        if set(rows.values()) != {expect} or len({x["rows"] for r in runs.values() for x in r}) != 1:
            bad_counts.append(join_type)
            print(f"  ROW COUNTS DIFFER for {join_type}: expected {expect:,}, got {rows}")
    print(f"load average after the runs: {_common.load_average()}")
    ok_counts = "yes" if not bad_counts else "NO for " + ", ".join(bad_counts)
    print()

    have = engines[1:]
    print("wall: the fastest run's seconds; CPU: the least user+system CPU seconds of the runs")
    head = f"{'type':5} {'rows out':>9} |{'wall: ours':>11}" + "".join(f" {e:>7}" for e in have)
    head += "".join(f" {'ours/' + e:>12}" for e in have)
    head += f" |{'CPU: ours':>10}" + "".join(f" {e:>7}" for e in have)
    head += "".join(f" {'ours/' + e:>12}" for e in have)
    print(head)
    for join_type in types:
        r = results[join_type]
        line = f"{join_type:5} {r['ours']['rows']:>9,} |{r['ours']['seconds']:11.2f}"
        line += "".join(f" {r[e]['seconds']:7.2f}" for e in have)
        line += "".join(f" {r['ours']['seconds'] / r[e]['seconds']:11.2f}x" for e in have)
        line += f" |{r['ours']['cpu_min']:10.2f}" + "".join(f" {r[e]['cpu_min']:7.2f}" for e in have)
        line += "".join(f" {r['ours']['cpu_min'] / r[e]['cpu_min']:11.2f}x" for e in have)
        print(line)
    print()
    print("all runs' seconds, and the fastest run's CPU seconds (user+system) and peak RSS (the fork holds")
    print("the generated records, which take the RSS at timer start, given as 'start'):")
    for join_type in types:
        parts = []
        for e in engines:
            x = results[join_type][e]
            runs_s = "/".join(f"{t:.2f}" for t in x["all"])
            parts.append(f"{e} [{runs_s}] CPU {x['cpu']:.2f} s, {x['peak_rss']:,.0f} MiB "
                         f"(start {x['start_rss']:,.0f})")
        print(f"  {join_type:5} " + ";\n        ".join(parts))
    if have:
        print()
        print("where the baselines' time goes (records->frame, join, frame->records), seconds:")
        for join_type in types:
            parts = []
            for e in have:
                p = results[join_type][e]["phases"]
                parts.append(f"{e} {p['convert_in']:.2f} + {p['join']:.2f} + {p['convert_out']:.2f}")
            print(f"  {join_type:5} " + "; ".join(parts))
    print()
    print("notes:")
    print(f"* same row count from every engine and from an independent count, each type: {ok_counts}")
    print("* ours: batches of 1,000 through OperatorChain, then chain.finish(); no output ceiling.")
    print("* null keys: ours and polars (nulls_equal=False by default) never match a null or missing key;")
    print("  pandas merge matches null keys with each other (see the probe). The generated data has none.")
    print("* types: pandas turns the int columns of rows with no left side (RIGHT, FULL) into floats and")
    print("  gives NaN for missing values; ours and polars give ints and None.")
    print("* order: ours is left order (right-data order within a key), then unmatched right rows;")
    print("  pandas keeps left order for inner/left, right order for right, sorts keys for outer;")
    print("  polars' default maintain_order is 'none'. The check compares rows as multisets.")
    print(f"peak RSS of the parent (generation only): {_common.peak_rss_mb():,.0f} MiB")

    if args.profile:
        print()
        profile(left, right, args.profile)


if __name__ == "__main__":
    main()

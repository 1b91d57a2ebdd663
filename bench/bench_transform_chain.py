"""A 10-operator TRANSFORM chain over 1,000,000 records: OperatorChain, the executor, and a plain loop.

    .venv/bin/python bench/bench_transform_chain.py [--records 1000000] [--batch 1000] [--profile]
                                                    [--per-operator]

The same records (generated here, in batches, so nothing holds a million records at once) go through:

(a) ``OperatorChain.apply`` in batches of ``--batch``: the operators as a TRANSFORM step compiles them.
(b) the executor: EXTRACT (a bench-only extractor yielding the generated batches) -> TRANSFORM (the same
    10 operators), with an ``InMemoryStore``. The executor writes step outputs past
    ``DATAHUB_SPILL_RECORDS`` (50,000) records to a temporary NDJSON file, so this is what a real
    million-row run pays. The EXTRACT step's cost (generating the records and buffering them) is
    reported separately, from a run of the EXTRACT step alone and from the step durations.
(c) the baseline: a hand-written Python loop doing the same work on the same records: it copies each
    record (the chain copies every record as it enters, so a step never changes its input) and produces
    records equal, value for value and type for type, to the chain's; the script checks that on the first
    10,000 records and on a small executor run before timing anything.

(a) and (c) run interleaved: each batch is generated once (timed apart, outside their figures) and
given to both, in alternating order, so the chain/loop ratio does not depend on what else this shared
machine was doing at the time. Each path runs once over the records after a warm-up on 20,000 records.
Wall, user and system CPU seconds are printed: system time is where the allocator effect described in
bench/README.md shows (compare a run with ``MALLOC_TRIM_THRESHOLD_=268435456 MALLOC_TOP_PAD_=16777216``).
``--profile`` adds a cProfile of the executor run (top functions by cumulative and by own time).
``--per-operator`` adds the CPU time of each operator alone over 100,000 records (each given records as
the operators before it left them, copied outside the timing), of the chain's entry copy, and of the
chain and the loop over the same records: where the chain's time goes.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import re
import time
import unicodedata

import _common
import orjson

from pipelines import registry
from pipelines.adapters.base import Extractor
from pipelines.definition import parse
from pipelines.js import WHITESPACE as JS_WHITESPACE
from pipelines.js import WHITESPACE_CLASS as JS_WHITESPACE_CLASS
from pipelines.operators.chain import OperatorChain, copy_record
from runs.engine.buffers import RecordBuffer
from runs.engine.context import RunOptions
from runs.engine.executor import execute
from runs.engine.store import InMemoryStore

OPERATORS = [
    {"op": "trim", "args": {"path": "sku"}},
    {"op": "uppercase", "args": {"path": "sku"}},
    {"op": "toNumber", "args": {"source": "price"}},
    {"op": "math", "args": {"operation": "multiply", "source": "price", "operand": "1.19", "target": "gross"}},
    {"op": "round", "args": {"source": "gross", "decimals": 2}},
    {"op": "slugify", "args": {"source": "name", "target": "slug"}},
    {"op": "set", "args": {"path": "source", "value": "bench"}},
    {"op": "rename", "args": {"from": "category", "to": "categoryName"}},
    {"op": "concat", "args": {"sources": ["sku", "slug"], "target": "key", "separator": ":"}},
    {"op": "split", "args": {"source": "tags", "target": "tagList", "delimiter": ","}},
]


def generate(start: int, stop: int) -> list[dict]:
    return [
        {"id": i, "sku": f"  sku-{i}  ", "name": "Some Product Name", "price": "12.50", "qty": i % 7,
         "category": "Home & Garden", "tags": "a,b,c"}
        for i in range(start, stop)
    ]


def batches(n: int, size: int):
    for start in range(0, n, size):
        yield generate(start, min(start + size, n))


# --- (c) the baseline ------------------------------------------------------------------------------
# What a developer would write for these records, with the operators' semantics where they matter here:
# JavaScript whitespace for trim, halves-up rounding at 2 decimals with integral results as ints (what
# the plugin's JSON would hold), the slugify steps (lowercase, NFD, drop symbols, whitespace to '-').

_NOT_SLUG = re.compile(f"[^a-z0-9{JS_WHITESPACE_CLASS}]+")
_WHITESPACE_RUN = re.compile(f"[{JS_WHITESPACE_CLASS}]+")


def loop(batch: list[dict]) -> list[dict]:
    out = []
    append = out.append
    floor = math.floor
    normalize = unicodedata.normalize
    not_slug = _NOT_SLUG.sub
    ws_run = _WHITESPACE_RUN.sub
    for record in batch:
        r = dict(record)  # the chain's copy on entry (records here are flat, so this is a deep copy)
        sku = r["sku"].strip(JS_WHITESPACE).upper()
        r["sku"] = sku
        price = float(r["price"])
        r["price"] = int(price) if price.is_integer() else price
        scaled = price * 1.19 * 100.0
        whole = floor(scaled)
        if scaled - whole >= 0.5:
            whole += 1
        gross = whole / 100.0
        r["gross"] = int(gross) if gross.is_integer() else gross
        slug = ws_run("-", not_slug("", normalize("NFD", r["name"].lower())).strip(JS_WHITESPACE)).strip("-")
        r["slug"] = slug[:200]
        r["source"] = "bench"
        r["categoryName"] = r.pop("category")
        r["key"] = ":".join([p for p in (sku, r["slug"]) if p])
        r["tagList"] = r["tags"].split(",")
        append(r)
    return out


# --- (b) the executor ----------------------------------------------------------------------------


class BenchRecords(Extractor):
    """Bench-only: yields ``count`` generated records in batches of the step's batch size."""

    def batches(self):
        n = int(self.config["count"])
        for start in range(0, n, self.ctx.batch_size):
            if self.ctx.cancelled.is_set():
                return
            yield generate(start, min(start + self.ctx.batch_size, n))


registry.extractors.register("benchRecords", BenchRecords, schema={"type": "object"})


def definition(n: int, size: int, *, transform: bool = True, streaming: bool = True):
    steps = [{"key": "extract", "type": "EXTRACT", "adapterCode": "benchRecords", "config": {"count": n}}]
    if transform:
        steps.append({"key": "transform", "type": "TRANSFORM", "config": {"operators": OPERATORS}})
    return parse({"version": 1, "steps": steps,
                  "context": {"throughput": {"batchSize": size}, "streaming": {"enabled": streaming}}})


STEP_CPU: dict[str, float] = {}  # each step thread's own CPU seconds (time.thread_time) in the last run


def run_executor(n: int, size: int, *, transform: bool = True, keep: bool = False, wrapper=None,
                 streaming: bool = True):
    store = InMemoryStore()
    started = time.perf_counter()
    STEP_CPU.clear()
    options = RunOptions(keep_outputs=keep, thread_wrapper=_common.step_thread_cpu(STEP_CPU, wrapper))
    result = execute(definition(n, size, transform=transform, streaming=streaming), store, options)
    elapsed = time.perf_counter() - started
    assert result.status == "COMPLETED", result.error
    return elapsed, store.finished(), result


# --- timing ------------------------------------------------------------------------------------------


def interleaved(n: int, size: int, works: list) -> tuple[float, list[tuple[float, float, float]], list[int]]:
    """Generate each batch once and hand it to every ``work`` in turn (the order rotating per batch, so
    no path always runs on a warm cache), timing each apart: the paths share the machine's moments, so
    their ratio does not depend on what else the machine was doing at the time.

    Returns (seconds generating, [(wall, user, sys) seconds per work], [records out per work])."""
    gen = 0.0
    spent = [[0.0, 0.0, 0.0] for _ in works]
    out = [0] * len(works)
    clock, cpu_clock = time.perf_counter, os.times
    order = list(range(len(works)))
    for number, start in enumerate(range(0, n, size)):
        t0 = clock()
        batch = generate(start, min(start + size, n))
        gen += clock() - t0
        k = number % len(works)
        for w in order[k:] + order[:k]:
            c1, t1 = cpu_clock(), clock()
            result = works[w](batch)
            t2, c2 = clock(), cpu_clock()
            acc = spent[w]
            acc[0] += t2 - t1
            acc[1] += c2.user - c1.user
            acc[2] += c2.system - c1.system
            out[w] += len(result)
    return gen, [tuple(a) for a in spent], out


def cpu_since(start: os.times_result) -> tuple[float, float]:
    now = os.times()
    return now.user - start.user, now.system - start.system


def same(left: list[dict], right: list[dict]) -> bool:
    """Equal records, types included (1 vs 1.0), compared one record at a time: one big ``dumps`` would
    allocate megabytes at once, and that raises glibc's dynamic trim threshold and would hide the
    allocator effect described in bench/README.md from the timed runs."""
    sort = orjson.OPT_SORT_KEYS
    return len(left) == len(right) and all(
        orjson.dumps(a, option=sort) == orjson.dumps(b, option=sort) for a, b in zip(left, right, strict=True)
    )


def check_same_work(chain: OperatorChain, size: int) -> None:
    sample = [r for b in batches(10_000, size) for r in b]
    by_chain = [r for i in range(0, len(sample), size) for r in chain.apply(sample[i:i + size]).records]
    by_loop = loop(sample)
    assert same(by_chain, by_loop), "the loop does not produce what the chain produces"
    assert sample[0]["sku"] == "  sku-0  " and "category" in sample[0], "the chain changed its input"
    _, finished, result = run_executor(2_000, size, keep=True)
    by_executor = result.output("transform")
    result.close()
    assert same(by_executor, loop(sample[:2_000])), "the executor's output differs"
    assert finished["transform"].counts.records_out == 2_000


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.0f}" if seconds > 0 else "n/a"


def buffer_round_trip(chain: OperatorChain, n: int, size: int) -> tuple[float, float]:
    """Seconds to append the chain's output for ``n`` records to a RecordBuffer (it spills past 50,000
    records) and to read it back in batches: what the executor adds around a step, per buffer."""
    buf = RecordBuffer()
    write = 0.0
    clock = time.perf_counter
    for batch in batches(n, size):
        records = chain.apply(batch).records
        t0 = clock()
        buf.append(records)
        write += clock() - t0
    t0 = clock()
    count = sum(len(b) for b in buf.batches(size))
    read = clock() - t0
    assert count == n and buf.spilled == (n > buf.spill_records)
    buf.close()
    return write, read


def per_operator(chain: OperatorChain, n: int = 100_000) -> None:
    """CPU microseconds per record of each operator alone, the entry copy, the chain and the loop."""
    cpu = time.process_time
    records = generate(0, n)
    rows = []
    t0 = cpu()
    [copy_record(r) for r in records]
    deep_s = cpu() - t0
    # The copy the chain makes: dict.copy() when every operator is declared to change only the top level.
    shallow = all(getattr(c.fn, "top_level_only", False) for c in chain.operators)
    t0 = cpu()
    current = [r.copy() for r in records] if shallow else [copy_record(r) for r in records]
    rows.append((f"entry copy ({'dict.copy' if shallow else 'copy_record'})", cpu() - t0))
    for c in chain.operators:
        inputs = [copy_record(r) for r in current]  # the operator changes its records in place
        fn = c.fn
        t0 = cpu()
        current = [fn(r) for r in inputs]
        rows.append((c.code, cpu() - t0))
    chain_s = loop_s = math.inf
    for _ in range(3):  # alternated, best of three: the two share the machine's moments
        t0 = cpu()
        for start in range(0, n, 1000):
            chain.apply(records[start:start + 1000])
        chain_s = min(chain_s, cpu() - t0)
        t0 = cpu()
        for start in range(0, n, 1000):
            loop(records[start:start + 1000])
        loop_s = min(loop_s, cpu() - t0)
    print(f"{'per operator, alone (CPU)':<32}{'µs/record':>10}")
    for label, seconds in rows:
        print(f"{label:<32}{seconds / n * 1e6:10.2f}")
    print(f"{'sum of the above':<32}{sum(s for _, s in rows) / n * 1e6:10.2f}")
    print(f"{'(a deep copy_record instead)':<32}{deep_s / n * 1e6:10.2f}")
    print(f"{'chain (OperatorChain.apply)':<32}{chain_s / n * 1e6:10.2f}  (best of 3, alternated with the loop)")
    print(f"{'hand-written loop':<32}{loop_s / n * 1e6:10.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--profile", action="store_true", help="cProfile the executor run")
    parser.add_argument("--per-operator", action="store_true", help="CPU per operator alone")
    opts = parser.parse_args()
    n, size = opts.records, opts.batch
    whole = time.perf_counter()

    _common.header(f"10-operator TRANSFORM chain over {n:,} records, batches of {size}")
    print("operators:", ", ".join(o["op"] for o in OPERATORS))
    chain = OperatorChain(OPERATORS)
    check_same_work(chain, size)
    print("same work: chain, executor and loop outputs are identical (checked on 10,000 / 2,000 records)")

    works = [loop, lambda b: chain.apply(b).records]
    # Warm-up: every path once on 20,000 records.
    interleaved(20_000, size, works)
    run_executor(20_000, size)
    gc.collect()
    rss_start = _common.peak_rss_mb()
    print(f"peak RSS after warm-up: {rss_start:.0f} MiB; load average {_common.load_average()}")
    print()

    gen_s, ((loop_s, *loop_cpu), (chain_s, *chain_cpu)), outs = interleaved(n, size, works)
    assert outs == [n, n]
    rss_in_memory = _common.peak_rss_mb()
    gc.collect()

    c0 = os.times()
    extract_only_s, _, _ = run_executor(n, size, transform=False)
    extract_cpu = cpu_since(c0)
    gc.collect()
    profiles = []
    wrapper = None
    if opts.profile:
        import cProfile
        import pstats

        def wrapper(body):  # every step runs in a thread of its own: profile inside it
            def profiled():
                profiler = cProfile.Profile()
                profiles.append(profiler)
                profiler.runcall(body)

            return profiled

    c0 = os.times()
    exec_s, fin, _ = run_executor(n, size, wrapper=wrapper)
    exec_cpu = cpu_since(c0)
    transform_thread_cpu = STEP_CPU["transform"]
    rss_executor = _common.peak_rss_mb()
    assert fin["transform"].counts.records_out == n
    extract_step = fin["extract"].duration_ms / 1000
    transform_step = fin["transform"].duration_ms / 1000
    gc.collect()
    c0 = os.times()
    waiting_s, fin_waiting, _ = run_executor(n, size, streaming=False)
    waiting_cpu = cpu_since(c0)
    waiting_thread_cpu = STEP_CPU["transform"]
    gc.collect()
    c0 = os.times()
    buf_write, buf_read = buffer_round_trip(chain, n, size)
    buf_cpu = cpu_since(c0)  # includes running the chain again to have its output

    rows = [
        ("generating the records (outside the figures)", gen_s, None),
        ("(c) baseline: hand-written loop", loop_s, loop_cpu),
        ("(a) OperatorChain.apply", chain_s, chain_cpu),
        ("(b) executor: EXTRACT step alone (run)", extract_only_s, extract_cpu),
        ("(b) executor: EXTRACT -> TRANSFORM (run)", exec_s, exec_cpu),
        ("      its EXTRACT step (streams: overlaps)", extract_step, None),
        ("      its TRANSFORM step (streams: overlaps)", transform_step, None),
        ("(b') the same, streaming off (run)", waiting_s, waiting_cpu),
        ("      its EXTRACT step (gen + buffer write)", fin_waiting["extract"].duration_ms / 1000, None),
        ("      its TRANSFORM step", fin_waiting["transform"].duration_ms / 1000, None),
        ("buffer write of the chain's output", buf_write, None),
        ("buffer read back in batches", buf_read, None),
    ]
    print(f"{'path':<46}{'wall s':>8}{'user s':>8}{'sys s':>7}{'records/s':>12}")
    for label, wall, cpu in rows:
        cpu_text = f"{cpu[0]:8.2f}{cpu[1]:7.2f}" if cpu is not None else f"{'':15}"
        print(f"{label:<46}{wall:8.2f}{cpu_text}{rate(n, wall):>12}")
    print(f"(buffer write + read + a second chain run over the records to have its output: "
          f"user {buf_cpu[0]:.2f} s, sys {buf_cpu[1]:.2f} s)")
    print()
    print(f"chain / loop time:                      {chain_s / loop_s:5.2f}x  "
          f"(the chain runs at {loop_s / chain_s:.0%} of the loop's speed)")
    print(f"executor TRANSFORM step / loop time:    {transform_step / loop_s:5.2f}x  "
          f"(the step runs at {loop_s / transform_step:.0%} of the loop's speed)")
    print(f"executor run / (generate + loop) time:  {exec_s / (gen_s + loop_s):5.2f}x  (end to end, extract included)")
    # A streamed TRANSFORM step overlaps its EXTRACT, so its own wall time includes waiting for the records
    # to be generated; its CPU is the run's minus the EXTRACT-alone run's.
    loop_total = loop_cpu[0] + loop_cpu[1]
    extract_total = extract_cpu[0] + extract_cpu[1]
    for label, cpu, thread_cpu in (("streaming", exec_cpu, transform_thread_cpu),
                                   ("streaming off", waiting_cpu, waiting_thread_cpu)):
        step_cpu = cpu[0] + cpu[1] - extract_total
        print(f"executor TRANSFORM step / loop CPU, {label + ':':<15}{thread_cpu / loop_total:5.2f}x  "
              f"(its thread {thread_cpu:.2f} s; loop {loop_total:.2f} s; chain alone "
              f"{chain_cpu[0] + chain_cpu[1]:.2f} s; run CPU {cpu[0] + cpu[1]:.2f} s - EXTRACT alone "
              f"{extract_total:.2f} s = {step_cpu:.2f} s)")
    print(f"TRANSFORM step - chain = {transform_step - chain_s:+.2f} s; buffer read + write measured apart = "
          f"{buf_read + buf_write:.2f} s")
    print()
    print(f"peak RSS: {rss_start:.0f} MiB after warm-up, {rss_in_memory:.0f} MiB after (a) and (c), "
          f"{rss_executor:.0f} MiB after the executor run of {n:,} records")
    print(f"load average at the end: {_common.load_average()}; whole script: {time.perf_counter() - whole:.0f} s")

    if opts.per_operator:
        print()
        per_operator(chain)

    if opts.profile:
        print()
        print("profile of the executor run (both step threads; profiling slows it down):")
        stats = pstats.Stats(*profiles)
        stats.sort_stats("cumulative").print_stats(25)
        stats.sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    main()

"""imageResize against plain Pillow: 4000x3000 JPEG -> 800x600 WebP (quality 80), in the same run.

    .venv/bin/python bench/bench_image_resize.py [--images 20] [--rounds 3]

Both sides get the same JPEG bytes in memory and produce WebP bytes:

* Pillow: ``Image.open`` + ``thumbnail((800, 600))`` (which already decodes the JPEG at reduced size
  through ``draft``) + ``save(WEBP, quality=80)``: the fastest plain way, not a strawman. thumbnail's
  default filter is BICUBIC; imageResize uses LANCZOS (sharp's lanczos3), so the run also times
  thumbnail with LANCZOS, which isolates what the operator itself costs.
* imageResize, fit INSIDE (the same geometry as thumbnail) through the operator chain, twice: reading a
  file from a storage and saving the result to it (the default when a run has a storage; an in-memory
  storage here, so disk speed is not measured), and data URI in, data URI out.

The figure is the median over ``--rounds`` rounds of ``--images`` images each. Pillow runs in one thread
(the baseline); imageResize processes a step's images in parallel (the operator's ``concurrency``), so its
throughput ratio is what the cores give. CPU time per image (all threads) is printed next to it: on a
shared machine the wall-clock throughput depends on how many cores are free, the CPU per image does not.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from PIL import Image  # noqa: E402

from pipelines.operators.base import OperatorContext  # noqa: E402
from pipelines.operators.chain import OperatorChain  # noqa: E402

SOURCE = (4000, 3000)
TARGET = (800, 600)
QUALITY = 80


class MemoryStorage:
    def __init__(self):
        self.files: dict[str, bytes] = {}

    def save(self, name, content):
        self.files[name] = content.read()
        return name

    def open(self, name, mode="rb"):
        return io.BytesIO(self.files[name])

    def exists(self, name):
        return name in self.files

    def url(self, name):
        return "/media/" + name


def photo_like(seed: int) -> bytes:
    """A 4000x3000 JPEG with gradients and noise, so decoding and encoding do real work."""
    w, h = SOURCE
    small = (w // 8, h // 8)
    red = Image.linear_gradient("L").resize(small).rotate(seed * 17 % 360).resize(SOURCE)
    green = Image.radial_gradient("L").resize(SOURCE)
    blue = Image.effect_noise(small, 40 + seed).resize(SOURCE, Image.Resampling.BICUBIC)
    im = Image.merge("RGB", (red, green, blue))
    noise = Image.effect_noise(SOURCE, 12).convert("RGB")
    im = Image.blend(im, noise, 0.15)
    out = io.BytesIO()
    im.save(out, "JPEG", quality=90)
    return out.getvalue()


def plain_pillow(sources: list[bytes], resample=Image.Resampling.BICUBIC) -> list[bytes]:
    results = []
    for data in sources:
        with Image.open(io.BytesIO(data)) as im:
            im.thumbnail(TARGET, resample)
            out = io.BytesIO()
            im.save(out, "WEBP", quality=QUALITY)
            results.append(out.getvalue())
    return results


def operator_storage(sources: list[bytes]):
    storage = MemoryStorage()
    for i, data in enumerate(sources):
        storage.files[f"uploads/photo-{i}.jpg"] = data
    chain = OperatorChain(
        [{"op": "imageResize", "args": {"sourceField": "photo", "targetField": "thumb", "width": TARGET[0],
                                         "height": TARGET[1], "fit": "INSIDE", "format": "webp",
                                         "quality": QUALITY}}],
        context_for=lambda i: OperatorContext(op_index=i, storage=storage),
    )
    records = [{"photo": f"uploads/photo-{i}.jpg"} for i in range(len(sources))]
    return lambda: _check(chain.apply(records), fresh=storage)


def operator_data_uri(sources: list[bytes]):
    chain = OperatorChain(
        [{"op": "imageResize", "args": {"sourceField": "photo", "targetField": "thumb", "width": TARGET[0],
                                         "height": TARGET[1], "fit": "INSIDE", "format": "webp",
                                         "quality": QUALITY, "output": "dataUri"}}]
    )
    records = [{"photo": "data:image/jpeg;base64," + base64.b64encode(d).decode()} for d in sources]
    return lambda: _check(chain.apply(records))


def _check(result, fresh=None):
    if result.failures:
        raise SystemExit(f"operator failed: {result.failures[0].message}")
    if fresh is not None:  # drop the stored results so the next round does the work again
        for name in [n for n in fresh.files if n.startswith("datahub/")]:
            del fresh.files[name]
    return result


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process: every thread's user + system time)."""
    c0, start = os.times(), time.perf_counter()
    fn()
    wall, c1 = time.perf_counter() - start, os.times()
    return wall, (c1.user - c0.user) + (c1.system - c0.system)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    print(f"machine: {os.cpu_count()} CPUs; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"generating {args.images} {SOURCE[0]}x{SOURCE[1]} JPEGs ...", flush=True)
    sources = [photo_like(i) for i in range(args.images)]
    print(f"  mean size {statistics.mean(map(len, sources)) / 1e6:.2f} MB")

    pillow_out = plain_pillow(sources[:1])[0]
    with Image.open(io.BytesIO(pillow_out)) as im:
        assert im.size == TARGET, im.size
    run_storage = operator_storage(sources)
    run_data_uri = operator_data_uri(sources)
    result = run_data_uri()
    thumb = result.records[0]["thumb"]
    with Image.open(io.BytesIO(base64.b64decode(thumb.split(",", 1)[1]))) as im:
        assert (im.format, im.size) == ("WEBP", TARGET), (im.format, im.size)

    runs: dict[str, list[tuple[float, float]]] = {"pillow": [], "lanczos": [], "storage": [], "dataUri": []}
    for _ in range(args.rounds):  # interleaved, so drift in machine load hits every side alike
        runs["pillow"].append(timed(lambda: plain_pillow(sources)))
        runs["lanczos"].append(timed(lambda: plain_pillow(sources, Image.Resampling.LANCZOS)))
        runs["storage"].append(timed(run_storage))
        runs["dataUri"].append(timed(run_data_uri))

    n = args.images
    wall = {k: statistics.median(w for w, _c in v) for k, v in runs.items()}
    cpu = {k: min(c for _w, c in v) for k, v in runs.items()}
    print(f"{n} images x {args.rounds} rounds, 4000x3000 JPEG -> 800x600 WebP q{QUALITY}; wall: the median "
          f"round; CPU: the least CPU time (all threads) of the rounds")
    print(f"load average after the runs: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for key, label in (("pillow", "Pillow draft+thumbnail, 1 thread"), ("lanczos", "the same with LANCZOS"),
                       ("storage", "imageResize, storage in/out"), ("dataUri", "imageResize, data URI in/out")):
        print(f"  {label + ':':36} {wall[key]:6.2f} s  {n / wall[key]:6.1f} images/s  "
              f"throughput {wall['pillow'] / wall[key]:5.2f}x   CPU {cpu[key] / n * 1000:6.1f} ms/image "
              f"({cpu[key] / cpu['pillow']:.2f}x)")
    print("goal: imageResize throughput at least 1.9x single-thread Pillow draft+thumbnail on 2 cores "
          "(it needs both cores free: compare the CPU per image when the machine is busy)")


if __name__ == "__main__":
    main()

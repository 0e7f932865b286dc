"""The render queue against bare engine calls, and batched against one-by-one, measured side by side.

32 mixed text-to-image jobs on the tiny random-init SDXL (CPU, one torch thread): two sizes, two
step counts, short, long and edited prompts, a seed each. Three ways, each run `--repeats` times
(median): bare `engine.render` calls in a loop; the queue with batching off (max_batch=1), whose
ratio to the bare calls is the queue's overhead; the queue batching compatible jobs (max_batch=4).
Prints jobs/s, images/s and the ratios.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named queue.py: its folder must leave sys.path, or it hides the standard library's
# `queue` (which torch imports). The repository root takes its place.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402


def mixed_jobs(count: int = 32):
    """`count` requests in four call shapes (size x steps), prompts of one and two chunks, some edited."""
    from imagegen import RenderRequest

    prompts = [
        "a lighthouse keeper in a storm",
        "a [gull:heron:0.5] over the harbour at dawn",
        "the ferry at night, (lanterns:1.3), [fog]",
        ", ".join(f"detail {i} of the harbour wall" for i in range(20)),  # past 75 tokens: a call of its own
    ]
    shapes = [(64, 64, 2), (64, 96, 2), (64, 64, 3), (96, 64, 3)]
    jobs = []
    for i in range(count):
        width, height, steps = shapes[i % len(shapes)]
        jobs.append(RenderRequest(prompts[(i // len(shapes)) % len(prompts)], width=width, height=height, num_inference_steps=steps, seed=100 + i, refiner="off"))
    return jobs


def bare(engine, jobs) -> float:
    start = time.perf_counter()
    for request in jobs:
        engine.render(request)
    return time.perf_counter() - start


def queued(engine, jobs, max_batch: int) -> float:
    from imagegen.queue import RenderQueue

    with tempfile.TemporaryDirectory() as home, RenderQueue(engine, home, max_queued=len(jobs), max_batch=max_batch) as queue:
        start = time.perf_counter()
        submitted = [queue.submit(request) for request in jobs]
        done = [queue.wait(job.id, timeout=600) for job in submitted]
        elapsed = time.perf_counter() - start
    failed = [j for j in done if j.state != "done"]
    assert not failed, f"{len(failed)} job(s) did not finish: {failed[0].error}"
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=32, help="jobs per run (default 32)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each way; the median counts (default 3)")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)  # the tiny model: one thread measures the code, not the scheduler's luck
    from imagegen.engines.sdxl import SDXLEngine
    from imagegen.tiny import tiny_sdxl

    with tempfile.TemporaryDirectory() as tokenizer_dir:
        base, refiner = tiny_sdxl(Path(tokenizer_dir))
    engine = SDXLEngine(base, refiner, model_name="tiny-sdxl-base")
    jobs = mixed_jobs(args.jobs)
    images = sum(r.batch_size for r in jobs)
    bare(engine, jobs[:4])  # warm-up: first calls allocate
    ways = {"bare engine.render calls": lambda: bare(engine, jobs), "queue, one job at a time": lambda: queued(engine, jobs, 1), "queue, batched (max 4)": lambda: queued(engine, jobs, 4)}
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.repeats):  # interleaved, so a slow moment of the machine hits every way alike
        for name, run in ways.items():
            times[name].append(run())
    median = {name: statistics.median(t) for name, t in times.items()}
    print(f"{args.jobs} mixed jobs ({images} images), tiny SDXL on the CPU, median of {args.repeats}")
    print(f"{'way':<28} {'seconds':>8} {'jobs/s':>8} {'images/s':>9}  (min-max s)")
    for name, seconds in median.items():
        print(f"{name:<28} {seconds:8.2f} {args.jobs / seconds:8.2f} {images / seconds:9.2f}  ({min(times[name]):.2f}-{max(times[name]):.2f})")
    one, batched, plain = median["queue, one job at a time"], median["queue, batched (max 4)"], median["bare engine.render calls"]
    best = {name: min(t) for name, t in times.items()}
    print(
        f"queue overhead, one at a time / bare calls: {one / plain:.3f}x by median, "
        f"{best['queue, one job at a time'] / best['bare engine.render calls']:.3f}x by best run"
    )
    print(f"batched throughput / one at a time: {one / batched:.3f}x  (batched / bare calls: {plain / batched:.3f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

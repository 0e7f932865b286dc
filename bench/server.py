"""The image service's HTTP path against direct queue calls, measured side by side.

N text-to-image requests (64x64, 2 steps, a seed each) on the tiny random-init SDXL (CPU, one torch
thread, no refiner), from C client threads, two ways, each run `--repeats` times (interleaved, the
median counts): `queue.submit` + `queue.wait` in this process; and `POST /v1/images/generations`
through httpx to uvicorn on 127.0.0.1. Both ways build the same RenderRequests (the OpenAI route's
own field translation) and use the same queue settings, so the ratio HTTP/direct is the service's
overhead: parsing, the event loop, PNG and base64 encoding, the loopback. Prints requests/s, p50
and p99 latency, and the ratios.
"""

from __future__ import annotations

import sys
from pathlib import Path

# A folder holding a queue.py must leave sys.path, or that file hides the standard library's
# `queue` (which torch and httpx import). The repository root takes its place.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402

PROMPTS = ("a lighthouse keeper in a storm", "the ferry at night, (lanterns:1.3), [fog]", "a [gull:heron:0.5] over the harbour at dawn")
SIZES = ((64, 64), (96, 64), (64, 96))  # the service's size table for the tiny model
STEPS = 2
DIRECT, HTTP = "direct queue.submit + wait", "HTTP /v1/images/generations"


def bodies(count: int) -> list[dict]:
    """`count` OpenAI request bodies: three prompts in turn, one seed each."""
    return [{"prompt": PROMPTS[i % len(PROMPTS)], "size": "64x64", "seed": 100 + i} for i in range(count)]


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile `q` (0-100) of `values`."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def clients(calls, concurrency: int) -> tuple[float, list[float]]:
    """Run the zero-argument `calls` from `concurrency` threads; (wall seconds, each call's latency)."""

    def timed(call) -> float:
        start = time.perf_counter()
        call()
        return time.perf_counter() - start

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = list(pool.map(timed, calls))
    return time.perf_counter() - start, latencies


def direct(engine, limits, bodies_, concurrency: int) -> tuple[float, list[float]]:
    from imagegen.queue import RenderQueue
    from imagegen.request import RenderRequest
    from imagegen.server.openai_fields import ImageFields, request_fields

    with tempfile.TemporaryDirectory() as home, RenderQueue(engine, home, max_queued=len(bodies_)) as queue:
        requests = [RenderRequest(**request_fields(ImageFields.model_validate(b), limits, queue.max_batch)[0]) for b in bodies_]

        def call(request):
            def run() -> None:
                # output=None with on_result: the images stay in memory, as the service's routes keep them.
                job = queue.submit(request, output=None, on_result=lambda job, images: None)
                assert queue.wait(job.id, timeout=600).state == "done", job.error

            return run

        return clients([call(r) for r in requests], concurrency)


def over_http(engine, limits, bodies_, concurrency: int) -> tuple[float, list[float]]:
    import httpx

    from imagegen.queue import RenderQueue
    from imagegen.server.app import create_app, running

    pool = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with (
        tempfile.TemporaryDirectory() as home,
        RenderQueue(engine, home, max_queued=len(bodies_)) as queue,
        running(create_app(queue, limits=limits)) as url,
        httpx.Client(base_url=url, limits=pool, timeout=600) as client,
    ):

        def call(body):
            def run() -> None:
                answer = client.post("/v1/images/generations", json=body)
                assert answer.status_code == 200, answer.text

            return run

        return clients([call(b) for b in bodies_], concurrency)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=32, help="requests per run (default 32)")
    parser.add_argument("--concurrency", type=int, default=4, help="client threads, both ways (default 4)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each way; the median counts (default 3)")
    args = parser.parse_args(argv)
    for name in ("requests", "concurrency", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1 (got {getattr(args, name)})")

    import torch

    torch.set_num_threads(1)  # the tiny model: one thread measures the code, not the scheduler's luck
    from imagegen.engines.sdxl import SDXLEngine
    from imagegen.server.limits import Limits
    from imagegen.tiny import tiny_sdxl

    with tempfile.TemporaryDirectory() as tokenizer_dir:
        base, _refiner = tiny_sdxl(Path(tokenizer_dir))
    engine = SDXLEngine(base, model_name="tiny-sdxl-base")
    limits = Limits(sizes=SIZES, steps=STEPS)
    work = bodies(args.requests)
    ways = {DIRECT: lambda: direct(engine, limits, work, args.concurrency), HTTP: lambda: over_http(engine, limits, work, args.concurrency)}
    for run in ways.values():  # warm-up: first calls allocate, and the first app start imports fastapi
        run()
    runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in ways}  # (req/s, p50 s, p99 s)
    for _ in range(args.repeats):  # interleaved, so a slow moment of the machine hits both ways alike
        for name, run in ways.items():
            seconds, latencies = run()
            runs[name].append((args.requests / seconds, percentile(latencies, 50), percentile(latencies, 99)))
    median = {name: tuple(statistics.median(r[k] for r in rs) for k in range(3)) for name, rs in runs.items()}
    print(f"{args.requests} text-to-image requests (64x64, {STEPS} steps), {args.concurrency} client threads, tiny SDXL on the CPU, median of {args.repeats}")
    print(f"{'way':<30} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8}  (min-max req/s)")
    for name, (rate, p50, p99) in median.items():
        rates = [r[0] for r in runs[name]]
        print(f"{name:<30} {rate:7.2f} {p50 * 1000:8.1f} {p99 * 1000:8.1f}  ({min(rates):.2f}-{max(rates):.2f})")
    print(f"HTTP / direct: req/s {median[HTTP][0] / median[DIRECT][0]:.3f}x, p50 {median[HTTP][1] / median[DIRECT][1]:.3f}x, p99 {median[HTTP][2] / median[DIRECT][2]:.3f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

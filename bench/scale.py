"""Catalog images per second with one and two Ray replicas, side by side in one run, and the ratio.

The catalog build (`dataprep.py run --ray` as a workflow: offline prompts, the render window, the
store) on a local Ray cluster started here, with the tiny random-init SDXL saved as a model folder
that every replica loads; each replica takes one CPU (one torch thread), as it would take one GPU.
A build without Ray (one local worker, one torch thread) is the baseline. The replicas start (and
load) before the clock starts: the figure is the steady rate, not the cold start, which is printed
apart. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repo root, not bench/ (bench/queue.py would shadow the stdlib)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2, help="builds per configuration, each into a fresh home (median reported)")
    parser.add_argument("--size", type=int, default=64, help="image width and height (default 64)")
    parser.add_argument("--steps", type=int, default=8, help="sampling steps (default 8)")
    parser.add_argument("--season", type=int, default=1, help="sample show season (default 1: 8 items)")
    parser.add_argument("--styles", default="anime,watercolor", help="styles per item (default two)")
    args = parser.parse_args()

    # 1. A local cluster with its own token (never ~/.ray), before Ray loads.
    root = Path(tempfile.mkdtemp(prefix="keyart-bench-scale-"))
    (root / "token").write_text(secrets.token_hex(32))
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(root / "token"), OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    import ray
    import torch

    torch.set_num_threads(1)
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()  # the local engine's loading bars would split the table
    transformers_logging.disable_progress_bar()
    from assistant.catalog import load_catalog
    from assistant.models.offline import OfflineModel
    from assistant.workflows.build import prepare_build
    from assistant.workflows.plan import RenderSettings, Selection
    from assistant.workflows.service import RenderService
    from imagegen.scale import ScaleOptions
    from imagegen.settings import ImageSettings
    from imagegen.tiny import save_tiny_sdxl

    base, _ = save_tiny_sdxl(root / "model")
    image = ImageSettings(sdxl_model=str(base), device="cpu")
    selection = Selection(season=args.season, styles=args.styles.split(","))
    settings = RenderSettings(refiner="off", overrides={"width": args.size, "height": args.size, "num_inference_steps": args.steps})
    catalog = load_catalog()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level="WARNING", log_to_driver=False)

    # 2. Each configuration: one service (its replicas started once), `rounds` builds into fresh homes.
    def measure(label: str, scale: ScaleOptions | None) -> float:
        service = RenderService(name="sdxl", settings=image, home=root / label, front="dataprep", max_batch=1, scale=scale)
        began = time.perf_counter()
        service.start()
        cold = time.perf_counter() - began
        rates = []
        try:
            for n in range(args.rounds):
                build = prepare_build(catalog, root / label / f"home-{n}", model=OfflineModel(), service=service, settings=settings, selection=selection)
                began = time.perf_counter()
                report = build.run()
                seconds = time.perf_counter() - began
                assert report.images.failed == 0 and report.images.done == build.images, report
                rates.append(build.images / seconds)
        finally:
            service.close()
        rate = statistics.median(rates)
        start = f"replicas up in {cold:.1f} s" if scale is not None else "engine loads with the first job"
        print(f"{label:<16} {rate:6.2f} images/s   ({build.images} images per build, median of {args.rounds}; {start})")
        return rate

    print(f"catalog build, tiny SDXL {args.size}x{args.size}, {args.steps} steps, {os.cpu_count()} CPUs, one torch thread per worker")
    local = measure("local, 1 worker", None)
    one = measure("ray, 1 replica", ScaleOptions(replicas=1))
    two = measure("ray, 2 replicas", ScaleOptions(replicas=2))
    print(f"2 replicas / 1 replica: {two / one:.2f}x   1 replica / local: {one / local:.2f}x (Ray's cost per image)")
    ray.shutdown()


if __name__ == "__main__":
    main()

"""The catalog pipeline's own cost on the CPU, measured side by side with the work it wraps.

- render: `dataprep`'s render stage (keys, store, atomic PNG with lineage) against bare
  `engine.render` calls on the same requests, with the tiny random-init SDXL: overhead per image.
- prompts: the prompts stage with the offline model (store, keys, trace) against bare
  `episode_prompts`/`season_prompts` calls: overhead per item, and seconds per episode.
- rerun: a second run that finds everything done, per item.
Median of several rounds; nothing is downloaded.

With --full, then one catalog run as `dataprep.py run` makes it (prompts written ahead on their
thread, one job per engine call, the next queued while a PNG is written): its wall time, images/s,
and the device's busy share (the fraction of the wall time the queue's worker spent inside engine
calls). On a CUDA GPU it renders at draft quality, no refiner, in the engine's default speed
(fast: bf16 and torch.compile), with the SDXL model of KEYART_SDXL_MODEL, or without one with SDXL's
architecture at random weights (the same compute, no download); elsewhere with the tiny SDXL on
the CPU (then the share is the CPU's). `--save` adds the catalog run's table to the GPU's results
file, bench/results-<gpu>.md, after bench/engine.py's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repo root, not bench/ (bench/queue.py would shadow the stdlib)

TINY = {"width": 64, "height": 64, "num_inference_steps": 2}  # as the tests render: the pipeline, not the UNet, dominates


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="rounds per measurement (median reported)")
    parser.add_argument("--season", type=int, default=1, help="sample show season to use")
    parser.add_argument("--full", action="store_true", help="also time one catalog run and print the device's busy share")
    parser.add_argument("--limit", type=int, default=None, help="with --full: the run's first N items of the season (default all)")
    parser.add_argument("--save", action="store_true", help="with --full: add the catalog run's table to bench/results-<device>.md")
    args = parser.parse_args()

    import torch
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    torch.set_num_threads(1)
    # Catalog prompts run past CLIP's 77 tokens; the truncation notice per image would bury the table.
    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()
    from assistant.catalog import load_catalog
    from assistant.models.offline import OfflineModel
    from assistant.store import Store
    from assistant.workflows import stages
    from assistant.workflows.service import RenderService
    from assistant.workflows.plan import RenderSettings, Selection, catalog_seed, plan_prompts
    from imagegen.engines.sdxl import SDXLEngine
    from imagegen.tiny import tiny_sdxl

    root = Path(tempfile.mkdtemp(prefix="keyart-bench-"))
    base, _ = tiny_sdxl(root / "tok", refiner=False)
    engine = SDXLEngine(base, model_name="tiny-sdxl-base")
    catalog, model = load_catalog(), OfflineModel()
    items = plan_prompts(catalog, model, Selection(season=args.season))
    settings = RenderSettings(refiner="off", overrides=TINY)
    images = sum(len(i.styles) for i in items)
    episodes = sum(i.kind == "episode" for i in items)

    # 1. Prompts: bare technique calls, then the stage into an empty store.
    bare_prompts = [timed(lambda: [stages.write_prompts(i, model) for i in items]) for _ in range(args.rounds)]
    stage_prompts = []
    for n in range(args.rounds):
        store = Store(root / f"prompts-{n}")
        stage_prompts.append(timed(lambda: stages.prompts_stage(items, store, model)))

    episode_items = [i for i in items if i.kind == "episode"]
    per_episode = []
    for n in range(args.rounds):
        store = Store(root / f"episodes-{n}")
        per_episode.append(timed(lambda: stages.prompts_stage(episode_items, store, model)) / len(episode_items))

    # 2. Render: the same requests through bare engine calls, then through the render stage.
    requests = []
    for item in items:
        result = stages.write_prompts(item, model)
        for p in result["prompts"]:
            requests.append(settings.request(item.kind, prompt=p["prompt"], negative_prompt=p["negative_prompt"], style=p["style"], seed=catalog_seed(item.show, item.season, item.episode, p["style"])))
    for request in requests[:3]:  # warm-up: first calls pay for lazy initialisation
        engine.render(request)
    bare_render = [timed(lambda: [engine.render(r) for r in requests]) for _ in range(args.rounds)]
    stage_render, rerun = [], []
    slot = RenderService(engine)  # the stages render through the queue, as dataprep does
    for n in range(args.rounds):
        store = Store(root / f"render-{n}")
        stages.prompts_stage(items, store, model)
        stage_render.append(timed(lambda: stages.render_stage(items, store, slot, settings)))
        rerun.append(timed(lambda: stages.run_stage(items, store, model, slot, settings)))

    # 3. The table.
    med = statistics.median
    print(f"# season {args.season} of the sample show: {len(items)} items ({episodes} episodes), {images} images; tiny SDXL {TINY['width']}x{TINY['height']}, {TINY['num_inference_steps']} steps, cpu, 1 thread; median of {args.rounds}")
    print(f"{'stage':<8} {'bare s/item':>12} {'dataprep s/item':>16} {'overhead s/item':>16} {'dataprep/bare':>14}")
    for name, bare, stage, count in (("prompts", bare_prompts, stage_prompts, len(items)), ("render", bare_render, stage_render, images)):
        b, s = med(bare) / count, med(stage) / count
        print(f"{name:<8} {b:>12.4f} {s:>16.4f} {s - b:>16.4f} {s / b:>14.3f}")
    print(f"prompts stage per episode (offline model, meta-prompting): {med(per_episode):.4f} s")
    print(f"rerun with everything done: {med(rerun) / len(items):.4f} s per item ({med(rerun):.3f} s for {len(items)} items and {images} images)")
    slot.close()
    if args.full:
        catalog_run(items[: args.limit], root, engine, settings, model, save=args.save)


def catalog_run(items, root: Path, tiny, tiny_settings, model, *, save: bool = False) -> None:
    """One catalog run, timed, with the queue worker's seconds inside engine calls beside its wall time."""
    import os

    import torch

    from assistant.store import Store
    from assistant.workflows import stages
    from assistant.workflows.plan import RenderSettings
    from assistant.workflows.service import RenderService
    from assistant.workflows.settings import Settings
    from bench.results import finish, results_path, start

    # 1. The engine, loaded and warmed (compiled, on a GPU) by a first render: on CUDA the configured
    # model or SDXL's architecture at random weights, else the tiny one on the CPU.
    gpu = torch.cuda.is_available()
    if gpu:
        torch.set_num_threads(os.cpu_count() or 1)  # PNG encoding and the prompts share the CPU with the GPU's feeding
        settings = RenderSettings(quality="draft", refiner="off")
        if os.environ.get("KEYART_SDXL_MODEL"):
            slot = Settings.from_env(engine="sdxl", device="cuda").apply().render_service(front="bench", home=root / "full-home", max_batch=1)
        else:
            slot = RenderService(random_sdxl(root), max_batch=1)
    else:
        slot, settings = RenderService(tiny, max_batch=1), tiny_settings  # as dataprep: one job per engine call
    store = Store(root / "full")
    first = stages.write_prompts(items[0], model)["prompts"][0]
    warm = timed(lambda: slot.render(settings.request(items[0].kind, prompt=first["prompt"], negative_prompt=first["negative_prompt"], style=first["style"], seed=1)))
    # 2. The run: prompts and images as dataprep.py run does them, the busy seconds read around it.
    reports, busy = [], slot.queue.busy_seconds
    wall = timed(lambda: reports.append(stages.run_stage(items, store, model, slot, settings)))
    busy = slot.queue.busy_seconds - busy
    slot.close()
    # 3. The figures.
    if save and gpu:
        start(results_path(torch.cuda.get_device_name()), append=True)
    done = reports[0].images.done
    where = f"{slot.model} on cuda ({torch.cuda.get_device_name()})" if gpu else f"tiny SDXL {tiny_settings.overrides['width']}x{tiny_settings.overrides['height']} on cpu"
    print(f"# catalog run: {len(items)} items, {done} images, {where}, {slot.ahead} jobs in flight; the first render (warm-up{', compile' if gpu else ''}) took {warm:.1f} s before it")
    print(f"{'wall s':>8} {'images/s':>9} {'busy s':>8} {'busy share':>11}")
    print(f"{wall:>8.2f} {done / wall:>9.3f} {busy:>8.2f} {busy / wall:>11.1%}")
    finish()


def random_sdxl(root: Path):
    """An engine on SDXL's architecture at random weights on CUDA, in the engine's default speed."""
    import torch

    from bench.sdxl_full import full_sdxl
    from imagegen.engines.sdxl import SDXLEngine
    from imagegen.engines.sdxl_load import keep_vae_safe

    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16  # as --dtype auto with the fast speed
    pipe = full_sdxl(root / "sdxl-random-init", "cuda", dtype)
    keep_vae_safe([pipe], dtype)
    pipe.set_progress_bar_config(disable=True)
    return SDXLEngine(pipe, model_name="sdxl-random-init", speed="auto", compile="auto")  # the kernels bench/engine.py compiled, from inductor's cache


if __name__ == "__main__":
    from bench.results import finish

    try:
        main()
    except KeyboardInterrupt:  # Ctrl-C, or bench/gpu.sh's time limit
        finish("interrupted")
        sys.exit(130)

"""The `serve` subcommand: keyart's image service (OpenAI Images API) on uvicorn, over one render queue.

An edge: the engine is chosen here from the settings; the app gets a queue factory, never an engine.
FastAPI and uvicorn are imported only when the server starts, so --help stays light.
"""

from __future__ import annotations

import argparse
import ipaddress
from pathlib import Path

from .errors import KeyartError
from .request import MAX_BATCH_SIZE as BATCH_LIMIT
from .settings import ImageSettings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860  # A1111's, so clients configured for a local web UI find us
DEFAULT_HOME = Path("data/serve")
LOOPBACK_NAMES = ("localhost",)
SERVER_EXTRA = "fastapi==0.163.2 uvicorn==0.54.0 python-multipart"


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add `serve` to the subcommands `sub`."""
    from .engines import ENGINES, describe
    from .queue import MAX_BATCH, MAX_QUEUED
    from .scale import add_flags

    s = sub.add_parser(
        "serve",
        help="serve the OpenAI Images API (/v1), A1111's API (/sdapi/v1) and keyart's jobs API (/keyart/v1) over HTTP",
        description="Run keyart's image service: the OpenAI Images API, A1111's API and keyart's jobs API on one render queue.\n"
        "Bound to anything but loopback it needs --api-key; clients then send 'Authorization: Bearer KEY'.\n"
        "GET /health needs no key. Models: keyart-sdxl, and keyart-sdxl-<style> for each style.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST}: this machine only)")
    s.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}, A1111's)")
    s.add_argument("--api-key", help="the key clients must send as 'Authorization: Bearer KEY' (default: KEYART_API_KEY; required off loopback)")
    s.add_argument("--max-queue", type=int, default=MAX_QUEUED, metavar="N", help=f"jobs that may wait; past it requests get 429 with Retry-After (default {MAX_QUEUED})")
    s.add_argument(
        "--max-batch", type=int, default=MAX_BATCH, metavar="N",
        help=f"images per pipeline call, 1 to {BATCH_LIMIT} (default {MAX_BATCH}): a request's n becomes batches of up to N, and compatible "
        "queued requests are batched up to N. A batch of several requests that runs out of GPU memory renders in halves, but one request's "
        "batch must fit: raise N only on a GPU with the memory for N images at your sizes (bench/engine.py --full measures batch 8)",
    )  # fmt: skip
    s.add_argument("--engine", default="auto", help=f"{', '.join(ENGINES)} (default auto: {describe()[0][1]})")
    s.add_argument("--device", help="cuda, cuda:1, mps or cpu (default: the best available)")
    s.add_argument("--home", type=Path, default=DEFAULT_HOME, help=f"folder for the queue's state (default {DEFAULT_HOME}); no images are kept there")
    add_flags(s)
    s.set_defaults(handler=serve)


def is_loopback(host: str) -> bool:
    if host.strip().lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


def check(args: argparse.Namespace, settings: ImageSettings | None = None) -> str | None:
    """The API key to serve with (--api-key, else KEYART_API_KEY), or a KeyartError (exit 2) for settings that must not start."""
    key = args.api_key if args.api_key is not None else (settings.api_key if settings is not None else None)
    if key is not None and not key.strip():
        raise KeyartError("--api-key is empty; give a key, or leave it out to serve on loopback without one")
    if key is None and not is_loopback(args.host):
        raise KeyartError(
            f"refusing to serve on {args.host} without an API key: anyone who reaches it could use the GPU; "
            f"give --api-key KEY (clients send 'Authorization: Bearer KEY'), or bind to {DEFAULT_HOST}"
        )
    if not 1 <= args.port <= 65535:
        raise KeyartError(f"--port must be between 1 and 65535 (got {args.port})")
    if args.max_queue < 1:
        raise KeyartError(f"--max-queue must be at least 1 (got {args.max_queue})")
    if not 1 <= args.max_batch <= BATCH_LIMIT:
        raise KeyartError(f"--max-batch must be between 1 and {BATCH_LIMIT}, A1111's largest batch size (got {args.max_batch})")
    return key


def serve(args: argparse.Namespace, settings: ImageSettings) -> int:
    from .engines import choose, create_engine
    from .queue import RenderQueue
    from .scale import options_from, replicas

    # 1. Refuse what must not start, before anything loads.
    key = check(args, settings)
    choice = choose(args.engine, settings)
    scale = options_from(args, settings.ray_address)
    try:
        import uvicorn

        from .server.app import create_app
    except ImportError as exc:
        raise KeyartError(f"the image service needs FastAPI and uvicorn ({exc.name} is missing): pip install {SERVER_EXTRA}") from exc
    # 2. The app over a queue made at startup; the engine loads in the worker with the first job.
    from .cli import echo

    home = args.home.expanduser()
    pool = None
    if scale is not None:  # the replicas start now, each loading the engine: a bad cluster or model fails before serving
        pool = replicas(scale, choice.name, settings, app=f"keyart-serve-{args.port}")
        echo("ray: starting the render replicas (each loads the engine)...", err=True)
        pool.start()
        echo(f"ray: {pool.where}", err=True)
        engines: object = pool.engines()
    else:

        def engines():  # loaded in the worker with the first job
            return create_engine(choice.name, settings)

    app = create_app(lambda: RenderQueue(engines, home, max_queued=args.max_queue, max_batch=args.max_batch), api_key=key)
    # What the A1111 routes list before the engine loads: the served model's name, the LoRA and embeddings folders and the VAE.
    app.state.model_name = Path(settings.sdxl_model).name if choice.name == "sdxl" and settings.sdxl_model else "keyart-preview"
    app.state.lora_dir = settings.lora_dir
    if choice.name == "sdxl" and settings.embeddings_dir:  # /sdapi/v1/embeddings: the textual inversions prompts may name
        from .engines.embeddings import Embeddings

        app.state.embeddings = Embeddings(settings.embeddings_dir)
    if choice.name == "sdxl" and settings.sdxl_vae:  # /sdapi/v1/sd-vae and the sd_vae option: the VAE in place of the model's own
        from .engines.sdxl_load import locate_vae

        app.state.vae = locate_vae(settings.sdxl_vae)
    from .describe import Describer

    app.state.describer = Describer.from_settings(settings)  # /sdapi/v1/interrogate: models load on the first call
    echo(f"engine: {choice.name} ({choice.reason}); serving http://{args.host}:{args.port}/v1 {'with' if key else 'without'} an API key", err=True)
    # 3. Serve until interrupted; uvicorn runs the lifespan (queue made, then closed).
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="info" if args.verbose else "warning")
    finally:
        if pool is not None:
            pool.close()
    return 0

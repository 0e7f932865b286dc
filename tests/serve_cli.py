"""`python -m imagegen serve` as a user starts it, for tests: a real process on a free 127.0.0.1
port, waited for until /health answers, stopped with Ctrl-C (SIGINT) at the end of the block."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Served:
    url: str
    port: int
    returncode: int | None = None  # filled when the block ends
    err: str = ""


@contextmanager
def serving_cli(args: list[str], env: dict[str, str], *, ready_s: float = 60) -> Iterator[Served]:
    """The server with `args` (after `serve`; the port is added) and `env`, up and answering."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "imagegen", "serve", *args, "--port", str(port)]
    server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    served = Served(url=f"http://127.0.0.1:{port}", port=port)
    try:
        deadline = time.monotonic() + ready_s
        while time.monotonic() < deadline and server.poll() is None:
            try:
                if httpx.get(f"{served.url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        assert server.poll() is None, server.communicate()[1]
        yield served
    finally:
        server.send_signal(signal.SIGINT)
        _, served.err = server.communicate(timeout=60)
        served.returncode = server.returncode

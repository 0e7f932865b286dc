"""Scale-out on Ray: the render workers as a Ray Serve deployment, one replica per GPU, each holding
its loaded engine, behind the same render queue (and so the same HTTP API, limits and catalog
guarantees) as one local worker.

`ScaleOptions` is what --ray and its flags ask for, checked here without Ray; `Replicas`
(cluster.py) connects to or starts the cluster, deploys and removes the replicas; `RayEngine`
(engine.py) is one queue worker's road to them; the replica itself is replica.py and what crosses
the wire is wire.py. Ray is imported by those modules only, when --ray is given.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidRequest

RAY_EXTRA = "pip install 'keyart[ray]'"  # ray[serve], at the version pyproject.toml pins
LOCAL = "local"  # --ray-address local (or none): start a cluster of this machine's CPUs and GPUs
ENGINES = ("sdxl", "preview")  # the engines a replica holds; a1111 and openai render on a server already
REACH_S = 5.0  # how long a cluster's address may take to accept a connection before it is called unreachable


@dataclass(frozen=True)
class ScaleOptions:
    """How many replicas, where. `address`: None or "local" starts a cluster on this machine for the
    run; "auto" joins the one `ray start --head` runs here; "host:6379" or "ray://host:10001" a
    remote one. `replicas`: a fixed count (None: one per GPU of the cluster, at least one);
    `min_replicas`/`max_replicas`: autoscaling bounds instead; `cpus`: each replica's CPUs on a
    cluster without GPUs (on GPUs a replica takes one GPU)."""

    address: str | None = None
    replicas: int | None = None
    min_replicas: int | None = None
    max_replicas: int | None = None
    cpus: float = 1.0

    def __post_init__(self) -> None:
        for name in ("replicas", "max_replicas"):
            _count(name, getattr(self, name), low=1)
        _count("min_replicas", self.min_replicas, low=0)
        if self.replicas is not None and self.autoscaling:
            raise InvalidRequest("--replicas is a fixed count; --min-replicas/--max-replicas ask for autoscaling instead: give one or the other")
        if self.autoscaling and self.max_replicas is None:
            raise InvalidRequest("--min-replicas needs --max-replicas: the most replicas autoscaling may start (one per GPU at most)")
        if self.autoscaling and (self.min_replicas or 0) > self.max_replicas:
            raise InvalidRequest(f"--min-replicas ({self.min_replicas}) is more than --max-replicas ({self.max_replicas})")
        if isinstance(self.cpus, bool) or not isinstance(self.cpus, (int, float)) or not 0 < self.cpus <= 1024:
            raise InvalidRequest(f"--replica-cpus must be a number of CPUs above 0 (got {self.cpus!r})")
        if self.address is not None and not str(self.address).strip():
            raise InvalidRequest("--ray-address / RAY_ADDRESS is empty; give host:6379, ray://host:10001, auto or local")

    @property
    def autoscaling(self) -> bool:
        return self.min_replicas is not None or self.max_replicas is not None

    @property
    def starts_cluster(self) -> bool:
        return self.address is None or self.address.strip().lower() == LOCAL


def add_flags(parser) -> None:
    """The --ray flags, on `parser` (an argparse parser): the same for `serve` and dataprep."""
    g = parser.add_argument_group("scale-out on Ray (needs keyart[ray])")
    g.add_argument("--ray", action="store_true", help="render on Ray Serve replicas, one per GPU, each holding the engine (sdxl or preview)")
    g.add_argument("--ray-address", help="the cluster: host:6379 (its head), ray://host:10001, auto (the one `ray start` runs here) or local (default: RAY_ADDRESS, else local: a cluster of this machine started for the run)")
    g.add_argument("--replicas", type=int, help="replicas to run (default: one per GPU of the cluster; one on a cluster without GPUs)")
    g.add_argument("--min-replicas", type=int, help="autoscaling: the fewest replicas kept (0 lets an idle deployment give its GPUs back)")
    g.add_argument("--max-replicas", type=int, help="autoscaling: the most replicas started, one per GPU")
    g.add_argument("--replica-cpus", type=float, default=1.0, help="CPUs per replica on a cluster without GPUs (default 1); on GPUs each replica takes one GPU")


def options_from(args, address: str | None = None) -> ScaleOptions | None:
    """ScaleOptions from the --ray flags (None without --ray); `address` is RAY_ADDRESS's setting."""
    if not args.ray:
        given = [f"--{name.replace('_', '-')}" for name in ("ray_address", "replicas", "min_replicas", "max_replicas") if getattr(args, name) is not None]
        if given or args.replica_cpus != 1.0:
            raise InvalidRequest(f"{', '.join(given) or '--replica-cpus'} apply to --ray only; add --ray to render on a Ray cluster")
        return None
    if getattr(args, "device", None):
        raise InvalidRequest("--device does not apply with --ray: each replica renders on the GPU Ray gives it (or the CPU on a cluster without GPUs)")
    address = args.ray_address or address
    if address is not None and address.strip():
        reachable(address.strip())  # a typo or a stopped head fails now, before any work
    return ScaleOptions(address=address, replicas=args.replicas, min_replicas=args.min_replicas, max_replicas=args.max_replicas, cpus=args.replica_cpus)


def reachable(address: str) -> None:
    """Refuse an address that is not host:port or accepts no connection within REACH_S; "auto" and "local" are Ray's to find."""
    if address.lower() in ("auto", LOCAL):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise InvalidRequest(f"--ray-address {address!r} is not host:port (the head's GCS port, 6379 by default), ray://host:10001, auto or local")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=REACH_S).close()
    except OSError as exc:
        raise InvalidRequest(f"nothing answers at the Ray address {address} ({exc.strerror or exc}); start the head with `ray start --head` or fix --ray-address / RAY_ADDRESS") from None


def _token_given() -> bool:
    return bool(os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH") or (Path.home() / ".ray" / "auth_token").is_file())


def _count(name: str, value: object, *, low: int) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
        raise InvalidRequest(f"--{name.replace('_', '-')} must be a whole number of at least {low} (got {value!r})")


def check_engine(name: str) -> None:
    """Refuse, before anything starts, an engine that replicas do not hold."""
    if name not in ENGINES:
        raise InvalidRequest(f"--ray runs the {' or '.join(ENGINES)} engine on each replica; the {name} engine renders on its own server already")


def replicas(options: ScaleOptions, engine: str, settings, engine_options: dict | None = None, *, app: str):
    """The Replicas for `options` (not started): importing Ray now, with a line saying how to get it."""
    check_engine(engine)
    if not options.starts_cluster and "RAY_AUTH_MODE" not in os.environ and _token_given():
        # Joining a token-protected cluster needs RAY_AUTH_MODE=token besides the token, and Ray reads
        # the mode from the environment when it loads: set here, before the import below.
        os.environ["RAY_AUTH_MODE"] = "token"
    try:
        from .cluster import Replicas
    except ImportError as exc:
        raise InvalidRequest(f"--ray needs Ray Serve ({exc.name} is missing): {RAY_EXTRA}") from exc
    return Replicas(options, engine, settings, engine_options or {}, app=app)

"""The Ray side of --ray: join (or start) a cluster, deploy the render replicas as one Serve
application, hand out a RayEngine per queue worker, and remove the application at the end.

Token auth (on by default for clusters Ray starts): a cluster started here makes its own token;
joining one needs its token in RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token (see
imagegen.scale.replicas, which switches token mode on for the join).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import Any

import ray
from ray import serve

from ..errors import KeyartError
from . import ScaleOptions, reachable
from .engine import RayEngine

log = logging.getLogger(__name__)

READY_S = 600.0  # the replicas' start: a model's load from a network disk can take minutes
TOKEN_HINT = "RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token (`ray get-auth-token` on the head node prints it)"


class Replicas:
    """The render replicas of one application (`app`) on a Ray cluster; start() before use, close() after."""

    def __init__(self, options: ScaleOptions, engine: str, settings: Any, engine_options: dict[str, Any], *, app: str):
        self.options = options
        self.engine = engine
        self.settings = settings
        self.engine_options = {k: v for k, v in engine_options.items() if k != "device"}  # Ray gives each replica its device
        self.app = app
        self.handle = None
        self.described: dict[str, Any] = {}
        self.count = 0  # replicas asked for (the most, when autoscaling)
        self.gpus = 0  # each replica's: 1 on a cluster with GPUs, else 0
        self.where = ""
        self._connected = self._started = False  # whether this object joined or started Ray, and so leaves it
        self._deployed = False  # whether it deployed the application, and so removes it

    @property
    def workers(self) -> int:
        """Render calls in flight at once: one per replica there may be."""
        return self.count

    def start(self) -> None:
        """Join or start the cluster, deploy the replicas and wait until they hold their engines;
        on any failure, leave the cluster as it was found."""
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> None:
        # 1. The cluster; Serve's own INFO lines only with -v.
        if logging.getLogger("imagegen").getEffectiveLevel() > logging.INFO:
            logging.getLogger("ray.serve").setLevel(logging.WARNING)
        self._connect()
        serve.start(proxy_location="Disabled", logging_config={"log_level": "WARNING"})  # no HTTP: our server is the front
        self._remove_stale()
        # 2. How many replicas, on what: one GPU each, else `cpus` CPUs; room for them checked first.
        total, free = ray.cluster_resources(), ray.available_resources()
        self.gpus = 1 if total.get("GPU", 0) >= 1 else 0
        resource, per = ("GPU", 1.0) if self.gpus else ("CPU", float(self.options.cpus))
        o = self.options
        self.count = o.max_replicas if o.autoscaling else o.replicas or max(1, int(total.get("GPU", 0)))
        first = max(1, o.min_replicas or 0) if o.autoscaling else self.count
        if free.get(resource, 0) + 1e-9 < first * per:
            raise KeyartError(
                f"the Ray cluster has {free.get(resource, 0):g} free {resource}s of {total.get(resource, 0):g}; {first} replica(s) need {per:g} each: "
                f"lower {'--min-replicas' if o.autoscaling else '--replicas'}, or free the cluster"
            )
        # 3. The deployment: each replica builds its engine in its constructor.
        from .replica import deployment

        actor = {"num_gpus": 1} if self.gpus else {"num_cpus": per}
        scale = (
            {"autoscaling_config": {"min_replicas": o.min_replicas or 0, "initial_replicas": first, "max_replicas": o.max_replicas, "target_ongoing_requests": 1}}
            if o.autoscaling
            else {"num_replicas": self.count}
        )
        settings = dataclasses.replace(self.settings, device="cuda" if self.gpus else "cpu", api_key=None, a1111_api_key=None, images_api_key=None)
        log.info("deploying %s: %d replica(s) of the %s engine", self.app, first, self.engine)
        self._deployed = True
        try:
            self.handle = serve.run(deployment(**scale, ray_actor_options=actor).bind(self.engine, settings, self.engine_options), name=self.app, route_prefix=None)
            self.described = self.handle.describe.remote().result(timeout_s=READY_S)
        except RuntimeError as exc:  # a replica's constructor failed: its own words are in the application's status
            reason = self._failure() or _cause(str(exc))
            raise KeyartError(f"the render replicas did not start: {reason}") from None
        self.where = f"{first} replica(s){' (autoscaling up to ' + str(o.max_replicas) + ')' if o.autoscaling else ''} on {'1 GPU' if self.gpus else f'{per:g} CPU'} each"

    def _failure(self) -> str | None:
        """Why the application's replicas failed, in the error's own words, from Serve's status."""
        try:
            app = serve.status().applications.get(self.app)
        except Exception:  # the status is a courtesy: the deploy's own error is said instead
            return None
        texts = [d.message for d in (app.deployments.values() if app else ())] + [app.message if app else ""]
        return next((found for text in texts if (found := _cause(text, fallback=False))), None)

    def engines(self) -> list[RayEngine]:
        """One RayEngine per queue worker, all on this application's replicas."""
        if self.handle is None:
            raise KeyartError("the render replicas are not started; call start() first")
        return [RayEngine(self.handle, self.described) for _ in range(self.workers)]

    def close(self) -> None:
        """Remove the application; leave Ray as it was found (a cluster started here stops)."""
        if self._deployed:
            self._deployed = False
            try:
                serve.delete(self.app)
            except Exception as exc:  # the cluster may be gone already: nothing is left to remove
                log.warning("could not remove the Serve application %s: %s", self.app, exc)
        if self._started:
            serve.shutdown()
        if self._connected or self._started:
            ray.shutdown()
        self._connected = self._started = False
        self.handle = None

    # -- joining -----------------------------------------------------------------------------------

    def _connect(self) -> None:
        if ray.is_initialized():  # this process is on a cluster already (a notebook, a test): use it, leave it up
            return
        quiet = {"logging_level": logging.WARNING, "include_dashboard": False}
        if self.options.starts_cluster:
            ray.init(**quiet)
            self._started = True
            return
        address = self.options.address.strip()
        reachable(address)
        try:
            ray.init(address=address, logging_level=logging.WARNING)
        except (ConnectionError, RuntimeError, SystemExit) as exc:  # Ray exits the process when the cluster never answers
            reason = "it did not answer in time" if isinstance(exc, SystemExit) else _cause(str(exc) or type(exc).__name__)
            raise KeyartError(
                f"could not join the Ray cluster at {address}: {reason}; check that it runs (`ray status` there) and that this "
                f"machine has its token in {TOKEN_HINT}"
            ) from None
        self._connected = True

    def _remove_stale(self) -> None:
        """An application of the same name left by a killed run holds replicas: it goes first."""
        if self.app in serve.status().applications:
            log.warning("removing the Serve application %s that an earlier run left on the cluster", self.app)
            serve.delete(self.app)


EXCEPTION_LINE = re.compile(r"^\s*(?:[\w.]+\.)?(\w+(?:Error|NotFound|Exception|Violation)): (.+)$")


def _cause(text: object, *, fallback: bool = True) -> str | None:
    """The words of the last exception a traceback ends with ("ModelNotFound: ..."), else its first line."""
    text = str(text)
    found = [m.group(2).strip() for line in text.splitlines() if (m := EXCEPTION_LINE.match(line))]
    if found:
        return found[-1]
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return (first or "no reason given") if fallback else None

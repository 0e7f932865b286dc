"""The Studio workflow (assistant.workflows.studio) called directly, as any front end would: render,
seed hunt, finalise and A/B through a RenderService's queue, on the preview engine and the tiny SDXL.

Engine doubles record every call ((start, end) under a lock) and can hold calls at a gate, so a
test decides what is queued behind what.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from assistant.workflows import studio
from assistant.workflows.service import Cancelled, RenderService
from imagegen import InvalidRequest, RenderRequest
from imagegen.engines.preview import PreviewEngine
from imagegen.metadata import parse_infotext
from imagegen.png_files import read_png
from imagegen.request import DEFAULTS

WAIT_S = 20  # the longest a test waits for a queue event before failing (tiny SDXL renders take under a second)


class Recording:
    """An engine double over `inner`: each render/render_batch call is recorded as (kind, images, start, end)
    under a lock; while `gate` is clear, calls wait at it (and record whether it opened in time)."""

    def __init__(self, inner, gate: threading.Event | None = None):
        self.inner, self.gate = inner, gate
        self.name, self.model_name = inner.name, inner.model_name
        self.refiner_name = getattr(inner, "refiner_name", None)
        self.calls: list[tuple[str, int, float, float]] = []
        self.opened: list[bool] = []
        self.lock = threading.Lock()
        if hasattr(inner, "render_batch"):  # the queue batches only for engines that can
            self.render_batch = self._render_batch

    def render(self, request, *, lineage=None, progress=None):
        return self._call("render", request.batch_size, lambda: self.inner.render(request, lineage=lineage, progress=progress))

    def _render_batch(self, requests, *, lineages=None, progress=None):
        return self._call("render_batch", len(requests), lambda: self.inner.render_batch(requests, lineages=lineages, progress=progress))

    def _call(self, kind, images, call):
        if self.gate is not None:
            opened = self.gate.wait(WAIT_S)
            with self.lock:
                self.opened.append(opened)
        start = time.monotonic()
        try:
            return call()
        finally:
            end = time.monotonic()
            with self.lock:
                self.calls.append((kind, images, start, end))


class Stepper:
    """A preview engine that takes ten steps, pausing after the first until `proceed` is set."""

    name, model_name = "preview", "keyart-preview"

    def __init__(self):
        self.reached, self.proceed = threading.Event(), threading.Event()
        self.steps = 0

    def render(self, request, *, lineage=None, progress=None):
        for step in range(1, 11):
            self.steps = step
            progress(step, 10)  # the queue stops a cancelled job here, at its next step
            if step == 1:
                self.reached.set()
                self.proceed.wait(WAIT_S)
        return PreviewEngine().render(request, lineage=lineage)


@pytest.fixture
def services():
    """Make RenderServices; each is closed (its running job cancelled) at the end of the test."""
    made: list[RenderService] = []

    def make(*args, **kwargs) -> RenderService:
        made.append(RenderService(*args, **kwargs))
        return made[-1]

    yield make
    for service in made:
        service.close(cancel=True)


def until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def pngs(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.png")) if folder.is_dir() else []


def fields_of(path: Path) -> dict[str, str]:
    return parse_infotext(read_png(path).infotext)[2]


def queue_a_blocker(service: RenderService, request: RenderRequest):
    """Someone else's job, running and held at the engine's gate: what the test queues next waits."""
    blocker = service.submit(request, owner="someone-else")
    until(lambda: blocker.state == "running", "the blocker to start")
    return blocker


# -- render -------------------------------------------------------------------------------------


def test_render_writes_pngs_with_their_infotext_under_home_studio(services, tmp_path):
    service = services(name="preview", home=tmp_path)
    steps = []
    request = RenderRequest("a quay at dawn", width=128, height=96, seed=11, batch_size=2)
    result = studio.render(service, tmp_path, request, owner="me", source="cli", progress=lambda d, t: steps.append((d, t)))
    assert result["engine"] == "preview" and [im["seed"] for im in result["images"]] == [11, 12]
    for record in result["images"]:
        path = Path(record["path"])
        assert path.parent == tmp_path / "studio" and path.is_file()
        assert read_png(path).infotext == record["infotext"] and fields_of(path)["Size"] == "128x96"
        assert read_png(path).lineage["lineage"] == {"source": "cli", "action": "studio render"}
        assert record["caption"] == f"Preview card · seed {record['seed']}" and record["request"]["prompt"] == "a quay at dawn"
    assert steps[-1] == (2, 2)  # the preview draws one card per step
    assert [j.owner for j in service.jobs("me")] == ["me"]


def test_on_job_gets_the_queued_job_with_its_place_in_the_queue(services, tmp_path):
    gate = threading.Event()
    service = services(Recording(PreviewEngine(), gate), home=tmp_path)
    queue_a_blocker(service, RenderRequest("the blocker", width=64, height=64))
    seen = []
    with ThreadPoolExecutor(1) as pool:
        on_job = lambda j: seen.append((j, j.state, j.position))  # noqa: E731 (the state and place as submitted)
        future = pool.submit(studio.render, service, tmp_path, RenderRequest("mine", width=64, height=64), owner="me", on_job=on_job)
        until(lambda: seen, "on_job")
        gate.set()
        result = future.result(WAIT_S)
    [(job, state, position)] = seen
    assert (state, position, job.owner) == ("queued", 0, "me")  # next in line, behind the running blocker
    assert job.state == "done" and len(result["images"]) == 1


# -- seed hunt and finalise ---------------------------------------------------------------------


def test_a_seed_hunt_queues_its_cells_at_once_and_returns_the_grid_and_cells(services, tmp_path):
    gate = threading.Event()
    engine = Recording(PreviewEngine(), gate)
    service = services(engine, home=tmp_path)
    queued = []

    def on_job(job):
        queued.append(job)
        if len(queued) == 4:
            gate.set()  # the first cell renders only once all four are queued: a hunt that waited cell by cell would time out here

    request = RenderRequest("a storm over the quay", width=128, height=128, seed=500, num_inference_steps=40, guidance_scale=12.0)
    hunt = studio.seed_hunt(service, tmp_path, request, 4, owner="me", on_job=on_job)
    assert engine.opened and all(engine.opened) and len(queued) == 4
    assert [c["seed"] for c in hunt["cells"]] == [500, 501, 502, 503] and hunt["final"] is None and hunt["engine"] == "preview"
    grid = Path(hunt["grid"])
    assert grid.parent == tmp_path / "studio" / "hunts" and grid.name.startswith("grid-")
    assert read_png(grid).lineage["grid"]["cells"] == [{"row": i // 2, "column": i % 2, "seed": 500 + i} for i in range(4)]
    assert hunt["infotext"] == read_png(grid).infotext and hunt["title"].startswith("4 seeds from 500")
    for i, cell in enumerate(hunt["cells"]):
        fields = fields_of(Path(cell["path"]))
        assert fields["Seed"] == str(500 + i) and fields["Steps"] == "16" and fields["CFG scale"] == "6"  # the draft preset
        assert fields["Size"] == "128x128" and cell["caption"] == f"Seed {500 + i}"  # the size is the request's
        assert read_png(Path(cell["path"])).lineage["lineage"]["grid"]["row"] == i // 2


def test_finalise_renders_the_picked_seed_again_at_the_final_preset(services, tmp_path):
    service = services(name="preview", home=tmp_path)
    hunt = studio.seed_hunt(service, tmp_path, RenderRequest("a storm", width=128, height=128, seed=7), 3, owner="me")
    final = studio.finalise(service, tmp_path, hunt, 8, owner="me")
    assert Path(final["path"]).parent == tmp_path / "studio" and final["caption"] == "Final · seed 8"
    fields = fields_of(Path(final["path"]))
    assert fields["Seed"] == "8" and fields["Steps"] == "30" and fields["CFG scale"] == "7" and fields["Size"] == "128x128"
    # With the hires fix's fields, the final is upscaled; a seed the hunt never had is refused.
    hires = studio.finalise(service, tmp_path, hunt, 9, hires={"hr_scale": 1.5, "hr_upscaler": "lanczos"}, owner="me")
    assert fields_of(Path(hires["path"]))["Hires upscale"] == "1.5"
    with pytest.raises(InvalidRequest, match="seed 42 is not one of the hunt's cells"):
        studio.finalise(service, tmp_path, hunt, 42, owner="me")


def test_a_hunt_on_the_tiny_sdxl_is_batched_by_the_queue(services, tmp_path, engine):
    gate = threading.Event()
    recording = Recording(engine, gate)
    service = services(recording, home=tmp_path)
    queue_a_blocker(service, RenderRequest("the blocker", num_inference_steps=1, width=64, height=64, seed=1, refiner="off"))
    request = RenderRequest("a lighthouse keeper", num_inference_steps=2, width=64, height=64, seed=42, refiner="off")
    on_job = lambda job: gate.set() if len(service.jobs("me")) == 4 else None  # noqa: E731
    hunt = studio.seed_hunt(service, tmp_path, request, 4, explicit=set(DEFAULTS), owner="me", on_job=on_job)  # every field as given: 2 steps
    assert [(kind, images) for kind, images, *_ in recording.calls] == [("render", 1), ("render_batch", 4)]  # the four cells in one call
    assert [c["seed"] for c in hunt["cells"]] == [42, 43, 44, 45] and Path(hunt["grid"]).is_file()
    assert fields_of(Path(hunt["cells"][0]["path"]))["Model"] == "tiny-sdxl-base"


# -- A/B ----------------------------------------------------------------------------------------


def test_ab_renders_both_prompts_on_one_seed(services, tmp_path):
    service = services(name="preview", home=tmp_path)
    request = RenderRequest("a quay at dawn", width=128, height=128, batch_size=3)
    result = studio.ab(service, tmp_path, request, " a quay at dusk ", owner="me")
    a, b = result["images"]
    assert a["seed"] == b["seed"] and a["seed"] != -1
    assert (a["request"]["prompt"], b["request"]["prompt"]) == ("a quay at dawn", "a quay at dusk")
    assert {k: v for k, v in a["request"].items() if k != "prompt"} == {k: v for k, v in b["request"].items() if k != "prompt"}
    assert a["request"]["batch_size"] == 1 and [r["caption"].split(" · ")[0] for r in result["images"]] == ["A", "B"]
    assert [Path(r["path"]).parent for r in result["images"]] == [tmp_path / "studio" / "ab"] * 2
    assert [read_png(Path(r["path"])).lineage["lineage"]["side"] for r in result["images"]] == ["A", "B"]
    with pytest.raises(InvalidRequest, match="write prompt B"):
        studio.ab(service, tmp_path / "other", request, "  ", owner="me")
    assert not (tmp_path / "other").exists() and len(service.jobs("me")) == 2


# -- stop and failure ---------------------------------------------------------------------------


def test_a_stop_event_cancels_a_running_render_at_its_next_step(services, tmp_path):
    engine = Stepper()
    service = services(engine, home=tmp_path)
    stop, jobs = threading.Event(), []
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(studio.render, service, tmp_path, RenderRequest("a quay", width=64, height=64), owner="me", stop=stop, on_job=jobs.append)
        assert engine.reached.wait(WAIT_S)
        stop.set()
        until(lambda: jobs[0].cancel_requested, "the cancel to reach the running job")
        engine.proceed.set()
        with pytest.raises(Cancelled):
            future.result(WAIT_S)
    assert jobs[0].state == "cancelled" and engine.steps == 2  # stopped at the step after the stop
    assert not pngs(tmp_path / "studio")


def test_a_stop_event_cancels_every_queued_cell_of_a_hunt(services, tmp_path):
    gate = threading.Event()
    service = services(Recording(PreviewEngine(), gate), home=tmp_path)
    blocker = queue_a_blocker(service, RenderRequest("the blocker", width=64, height=64))
    stop, jobs = threading.Event(), []
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(studio.seed_hunt, service, tmp_path, RenderRequest("a quay", width=64, height=64), 5, owner="me", stop=stop, on_job=jobs.append)
        until(lambda: len(jobs) == 5, "the cells to be queued")
        assert [j.position for j in jobs] == [0, 1, 2, 3, 4]
        stop.set()
        with pytest.raises(Cancelled):
            future.result(WAIT_S)
    assert [j.state for j in jobs] == ["cancelled"] * 5 and not (tmp_path / "studio").exists()
    gate.set()
    service.wait(blocker, timeout=WAIT_S)  # someone else's job is not touched
    assert blocker.state == "done"


def test_a_failed_cell_fails_the_hunt_and_leaves_no_job_behind(services, tmp_path):
    class FailsOnSeed(PreviewEngine):
        def render(self, request, *, lineage=None, progress=None):
            if request.seed == 21:
                raise InvalidRequest("this engine cannot draw seed 21")
            return super().render(request, lineage=lineage, progress=progress)

    service = services(FailsOnSeed(), home=tmp_path)
    with pytest.raises(InvalidRequest, match="cannot draw seed 21"):
        studio.seed_hunt(service, tmp_path, RenderRequest("a quay", width=64, height=64, seed=20), 6, owner="me")
    jobs = service.jobs("me")
    assert [j.state for j in jobs][:2] == ["done", "failed"] and all(j.is_final or j.cancel_requested for j in jobs)  # the rest: cancelled
    until(lambda: all(j.is_final for j in jobs), "the cells in hand to end")
    assert not (tmp_path / "studio").exists()  # the cells are saved only when the whole grid is there


# -- two front ends at once ---------------------------------------------------------------------


def test_two_threads_rendering_at_once_take_turns_on_the_engine(services, tmp_path, engine):
    gate = threading.Event()
    recording = Recording(engine, gate)
    service = services(recording, home=tmp_path)
    queue_a_blocker(service, RenderRequest("the blocker", num_inference_steps=1, width=64, height=64, seed=1, refiner="off"))
    seen: dict[str, list] = {"alice": [], "bob": []}

    def session(owner: str, steps: int) -> dict:
        # Different steps: jobs that cannot share a pipeline call, so they must take turns.
        request = RenderRequest(f"{owner}'s lighthouse", num_inference_steps=steps, width=64, height=64, seed=42, refiner="off")
        return studio.render(service, tmp_path, request, owner=owner, on_job=lambda job: seen[owner].append((job.state, job.position)))

    with ThreadPoolExecutor(2) as pool:
        futures = {"alice": pool.submit(session, "alice", 2), "bob": pool.submit(session, "bob", 3)}
        until(lambda: seen["alice"] and seen["bob"], "both sessions' jobs to be queued")
        gate.set()
        results = {owner: future.result(WAIT_S) for owner, future in futures.items()}
    # Each waited behind the blocker with its own place in the queue, and got its images.
    assert sorted(position for owner in seen for _, position in seen[owner]) == [0, 1]
    assert all(state == "queued" for owner in seen for state, _ in seen[owner])
    for owner, result in results.items():
        [image] = result["images"]
        assert Path(image["path"]).is_file() and image["request"]["prompt"] == f"{owner}'s lighthouse"
    # The engine's calls never overlapped: three renders, one after another.
    calls = sorted(recording.calls, key=lambda c: c[2])
    assert [kind for kind, *_ in calls] == ["render"] * 3
    assert all(earlier[3] <= later[2] for earlier, later in zip(calls, calls[1:])), calls

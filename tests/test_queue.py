"""The render queue on the tiny SDXL (and the preview engine): order, cancel, a full queue, restarts, batching."""

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from imagegen import InvalidRequest, RenderRequest
from imagegen.engines.preview import PreviewEngine
from imagegen.png_files import read_png
from imagegen.queue import JobNotFound, NotYourJob, QueueClosed, QueueFull, QueueInUse, RenderQueue, batch_key

ROOT = Path(__file__).resolve().parents[1]


def card(prompt: str, **fields) -> RenderRequest:
    """A 64x64 preview card: a millisecond or two."""
    return RenderRequest(prompt, width=64, height=64, seed=7, **fields)


class Recorder:
    """A test double: renders with the wrapped engine and records every call (kind, prompts)."""

    def __init__(self, inner):
        self.inner, self.name, self.model_name = inner, inner.name, inner.model_name
        self.calls: list[tuple[str, list[str]]] = []

    def render(self, request, *, lineage=None, progress=None):
        self.calls.append(("render", [request.prompt]))
        return self.inner.render(request, lineage=lineage, progress=progress)


class BatchingRecorder(Recorder):
    """A Recorder with render_batch: one recorded call, rendered by the wrapped engine's own render_batch."""

    def render_batch(self, requests, *, lineages, progress):
        self.calls.append(("render_batch", [r.prompt for r in requests]))
        return self.inner.render_batch(requests, lineages=lineages, progress=progress)


def hold(queue: RenderQueue, request: RenderRequest, **options):
    """Submit a job that holds the worker (in its first progress call) until the returned event is set."""
    release, running = threading.Event(), threading.Event()

    def wait_for_release(job):
        if job.state == "running":
            running.set()
            release.wait(20)

    job = queue.submit(request, on_progress=wait_for_release, **options)
    assert running.wait(20), "the held job never started"
    return job, release


@pytest.fixture
def sdxl(engine):
    return Recorder(engine)


@pytest.fixture
def quick(tiny_request):
    """One step: for tests about order, not about steps."""
    return tiny_request.replace(num_inference_steps=1)


def test_priority_then_arrival_order(tmp_path, sdxl, quick):
    with RenderQueue(sdxl, tmp_path) as queue:
        gate, release = hold(queue, quick.replace(prompt="gate"))
        # Higher priority first; FIFO among equals; a job's position is its place among the queued.
        jobs = {name: queue.submit(quick.replace(prompt=name), priority=p) for name, p in [("a1", 0), ("b1", 5), ("a2", 0), ("c", 2), ("b2", 5)]}
        assert {n: j.position for n, j in jobs.items()} == {"b1": 0, "b2": 1, "c": 2, "a1": 3, "a2": 4}
        assert gate.state == "running" and gate.position is None
        release.set()
        for job in jobs.values():
            assert queue.wait(job.id, 20).state == "done"
    assert [c[1][0] for c in sdxl.calls] == ["gate", "b1", "b2", "c", "a1", "a2"]
    assert [j.request.prompt for j in queue.jobs()] == ["gate", "a1", "b1", "a2", "c", "b2"]  # listed in arrival order


def test_cancel_a_queued_job(tmp_path, sdxl, quick):
    with RenderQueue(sdxl, tmp_path) as queue:
        _, release = hold(queue, quick.replace(prompt="gate"))
        dropped = queue.submit(quick.replace(prompt="dropped"), owner="ann")
        kept = queue.submit(quick.replace(prompt="kept"), owner="ann")
        with pytest.raises(NotYourJob, match="only your own"):
            queue.cancel(dropped.id, owner="bob")
        assert queue.cancel(dropped.id, owner="ann") is dropped
        assert (dropped.state, dropped.position, kept.position) == ("cancelled", None, 0)  # at once, not at the next step
        release.set()
        assert queue.wait(kept.id, 20).state == "done"
        assert queue.wait(dropped.id, 1).results == []
    assert ("render", ["dropped"]) not in sdxl.calls


def test_cancel_a_running_job_at_the_next_step(tmp_path, engine, tiny_request):
    reached, cancelled = threading.Event(), threading.Event()
    seen = []

    def watch(job):
        seen.append(job.progress)
        if job.state == "running" and job.progress[0] == 2:  # step 2 of 20: let the other thread cancel it
            reached.set()
            cancelled.wait(20)

    with RenderQueue(engine, tmp_path) as queue:
        job = queue.submit(tiny_request.replace(num_inference_steps=20), owner="ann", on_progress=watch)
        assert reached.wait(20)
        queue.cancel(job.id, owner="ann")
        assert job.cancel_requested and job.state == "running"  # it stops at the next step, not now
        cancelled.set()
        assert queue.wait(job.id, 20).state == "cancelled"
        assert job.progress == (2, 20) and max(done for done, _ in seen) == 2  # step 3's callback stopped the pipeline
        assert job.results == [] and not list(tmp_path.rglob("*.png"))
        # The engine is fine after a pipeline call stopped in the middle.
        after = queue.submit(tiny_request)
        assert queue.wait(after.id, 20).state == "done"


def test_a_full_queue_is_refused_with_a_retry_after(tmp_path, sdxl, quick):
    with RenderQueue(sdxl, tmp_path, max_queued=2) as queue:
        first = queue.submit(quick)
        queue.wait(first.id, 20)  # one run measured
        _, release = hold(queue, quick)  # running: it holds no place in the queue
        waiting = [queue.submit(quick) for _ in range(2)]
        with pytest.raises(QueueFull, match=r"full \(2 jobs waiting\); try again in about \d+ s") as refused:
            queue.submit(quick)
        assert refused.value.retry_after >= 1.0
        release.set()
        for job in waiting:
            queue.wait(job.id, 20)
        assert queue.wait(queue.submit(quick).id, 20).state == "done"  # room again


def test_progress_reaches_the_total(tmp_path, engine, tiny_request):
    seen = []
    with RenderQueue(engine, tmp_path) as queue:
        job = queue.wait(queue.submit(tiny_request, on_progress=lambda j: seen.append((j.state, j.progress))).id, 20)
    assert job.progress == (2, 2)
    assert seen == [("running", (0, 0)), ("running", (1, 2)), ("running", (2, 2)), ("done", (2, 2))]


def test_the_worker_survives_a_failing_job(tmp_path, tiny_pipes, tiny_request):
    from imagegen.engines.sdxl import SDXLEngine

    no_refiner = SDXLEngine(tiny_pipes[0], model_name="tiny-sdxl-base")
    with RenderQueue(no_refiner, tmp_path) as queue:
        bad = queue.submit(tiny_request.replace(refiner="on"))
        good = queue.submit(tiny_request)
        assert queue.wait(bad.id, 20).state == "failed"
        assert "the refiner was asked for, but none is loaded" in bad.error
        assert queue.wait(good.id, 20).state == "done" and good.error is None


def test_results_are_pngs_with_their_lineage(tmp_path, engine, tiny_request):
    with RenderQueue(engine, tmp_path) as queue:
        job = queue.wait(queue.submit(tiny_request.replace(batch_size=2), lineage={"show": "Harbour"}, output=tmp_path / "out").id, 20)
    assert [p.name for p in job.results] == [f"{job.id}-000.png", f"{job.id}-001.png"]
    meta = read_png(job.results[1])
    assert meta.lineage["lineage"] == {"show": "Harbour"} and meta.lineage["seed"] == 43


def test_batching_groups_compatible_jobs(tmp_path, engine, quick):
    recorder = BatchingRecorder(engine)
    with RenderQueue(recorder, tmp_path, max_batch=4) as queue:
        _, release = hold(queue, quick.replace(prompt="gate"))
        submitted = {
            "a": queue.submit(quick.replace(prompt="a")),
            "b": queue.submit(quick.replace(prompt="b", seed=5, negative_prompt="fog", style="anime")),  # per image: still compatible
            "tall": queue.submit(quick.replace(prompt="tall", height=128)),  # another size
            "pair": queue.submit(quick.replace(prompt="pair", batch_size=2)),  # two images: 4 in all with a and b
            "late": queue.submit(quick.replace(prompt="late")),  # compatible, but the batch is full
            "varied": queue.submit(quick.replace(prompt="varied", subseed=3, subseed_strength=0.2)),  # never batched
        }
        release.set()
        jobs = {name: queue.wait(job.id, 30) for name, job in submitted.items()}
    assert recorder.calls == [
        ("render", ["gate"]),
        ("render_batch", ["a", "b", "pair"]),
        ("render", ["tall"]),
        ("render", ["late"]),
        ("render", ["varied"]),
    ]
    assert all(j.state == "done" for j in jobs.values())
    assert jobs["a"].started == jobs["b"].started == jobs["pair"].started  # one run
    assert len(jobs["pair"].results) == 2 and all(j.progress[0] == j.progress[1] > 0 for j in (jobs["a"], jobs["b"], jobs["pair"]))
    # The batched images are those a single render makes, to the last bits (prompts of one length),
    # each with its own request's infotext.
    import numpy as np
    from PIL import Image
    from test_render_batch import last_bits

    singles = engine.render(quick.replace(prompt="b", seed=5, negative_prompt="fog", style="anime"))
    singles += engine.render(quick.replace(prompt="pair", batch_size=2))
    for path, single in zip(jobs["b"].results + jobs["pair"].results, singles):
        assert read_png(path).infotext == single.infotext
        assert last_bits(np.asarray(Image.open(path).convert("RGB")), np.asarray(single.image.convert("RGB")))


def test_batch_key_names_what_a_pipeline_call_shares(tiny_request):
    key = batch_key(tiny_request)
    assert key is not None
    for same in ({"prompt": "other"}, {"seed": 1}, {"negative_prompt": "blur"}, {"style": "anime"}, {"batch_size": 3}):
        assert batch_key(tiny_request.replace(**same)) == key, same
    for other in (
        {"width": 128}, {"num_inference_steps": 3}, {"sampler": "Euler a"}, {"schedule_type": "Exponential"}, {"guidance_scale": 5.0},
        {"refiner": "on"}, {"refiner_switch_at": 0.5}, {"hr_scale": 1.5}, {"prompt": "x <lora:ink:0.5>"},
    ):  # fmt: skip
        assert batch_key(tiny_request.replace(**other)) not in (key, None), other
    for never in ({"batch_count": 2}, {"subseed_strength": 0.1}):
        assert batch_key(tiny_request.replace(**never)) is None, never


def test_a_restarted_queue_lists_its_jobs_and_runs_the_queued(tmp_path, engine, tiny_request):
    # 1. A queue that finishes one job, and closes with one running and one queued.
    queue = RenderQueue(engine, tmp_path)
    done = queue.wait(queue.submit(tiny_request, owner="ann").id, 20)
    held, release = hold(queue, tiny_request, owner="bob")
    left = queue.submit(tiny_request.replace(prompt="left"), owner="bob", priority=3)
    threading.Timer(0.2, release.set).start()  # after close() has begun: the worker stops after the job in hand
    queue.close()
    with pytest.raises(QueueClosed):
        queue.submit(tiny_request)
    # 2. The next queue over the same home lists them; the queued job is queued again (its engine is still loading).
    loaded = threading.Event()
    again = RenderQueue(lambda: loaded.wait(20) and engine, tmp_path)
    try:
        jobs = {j.id: j for j in again.jobs()}
        assert list(jobs) == [done.id, held.id, left.id]
        assert [(j.state, j.owner, j.priority) for j in jobs.values()] == [("done", "ann", 0), ("done", "bob", 0), ("queued", "bob", 3)]
        assert jobs[done.id].results == done.results and jobs[done.id].progress == (2, 2)
        assert jobs[left.id].position == 0 and jobs[left.id].request == left.request
        loaded.set()
        assert again.wait(left.id, 20).state == "done"
    finally:
        again.close()


CRASHING = """
import os, sys, threading
from imagegen import RenderRequest
from imagegen.engines.preview import PreviewEngine
from imagegen.queue import RenderQueue

submitted = threading.Event()

class Dying(PreviewEngine):
    def render(self, request, **kw):
        if request.prompt == "dies":
            submitted.wait(20)
            os._exit(3)  # the process dies in the middle of a job
        return super().render(request, **kw)

queue = RenderQueue(Dying(), sys.argv[1])
card = lambda p: RenderRequest(p, width=64, height=64, seed=7)
queue.wait(queue.submit(card("done")).id, 20)
queue.submit(card("dies"))
queue.submit(card("waits"))
queue.submit(card("callback"), on_result=lambda job, images: None)
queue.cancel(queue.submit(card("cancelled")).id)
submitted.set()
threading.Event().wait(20)
"""


def test_after_a_crash_running_jobs_fail_and_queued_ones_run(tmp_path):
    died = subprocess.run([sys.executable, "-c", textwrap.dedent(CRASHING), str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert died.returncode == 3, died.stderr
    loaded = threading.Event()
    with RenderQueue(lambda: loaded.wait(20) and PreviewEngine(), tmp_path) as queue:
        jobs = {j.request.prompt: j for j in queue.jobs()}
        assert {p: j.state for p, j in jobs.items()} == {"done": "done", "dies": "failed", "waits": "queued", "callback": "failed", "cancelled": "cancelled"}
        assert jobs["dies"].error.startswith("interrupted: the process stopped while this job was running")
        assert "callback that was to take its images went with it" in jobs["callback"].error
        assert jobs["done"].results[0].is_file()
        loaded.set()
        assert queue.wait(jobs["waits"].id, 20).state == "done"


def test_the_engine_is_made_once_in_the_worker_and_a_failed_factory_fails_the_waiting_jobs(tmp_path, monkeypatch):
    """A factory that fails (a model not found, a server down) fails the jobs waiting, and those that
    come within ENGINE_RETRY_S, with its message, without trying again for each; after that it is
    tried again."""
    from imagegen import queue_worker

    made = []

    def factory():
        made.append(threading.current_thread().name)
        if len(made) == 1:
            raise InvalidRequest("no such model")
        return PreviewEngine()

    with RenderQueue(factory, tmp_path) as queue:
        assert made == []  # nothing is loaded before the first job
        first, second = (queue.submit(card(p)) for p in ("one", "two"))
        assert queue.wait(first.id, 20).error == queue.wait(second.id, 20).error == "could not create the engine: no such model"
        assert made == ["keyart-render-0"]  # one try for both
        monkeypatch.setattr(queue_worker, "ENGINE_RETRY_S", 0.0)
        third, fourth = (queue.submit(card(p)) for p in ("three", "four"))
        assert queue.wait(third.id, 20).state == queue.wait(fourth.id, 20).state == "done"
    assert made == ["keyart-render-0", "keyart-render-0"]


def test_close_can_cancel_the_job_in_hand_and_a_class_is_a_factory(tmp_path):
    queue = RenderQueue(PreviewEngine, tmp_path)  # the class: made in the worker, like any factory
    held, release = hold(queue, card("held"))
    waiting = queue.submit(card("waiting"))
    threading.Timer(0.2, release.set).start()
    queue.close(cancel=True)
    assert (held.state, waiting.state) == ("cancelled", "queued")  # the queued job is left for the next queue
    with pytest.raises(QueueClosed, match="stays queued"):
        queue.wait(waiting.id, 1)


def test_one_worker_per_device_runs_at_once(tmp_path):
    both = threading.Barrier(2, timeout=20)  # each render waits for the other: one worker alone would time out

    class Meeting(PreviewEngine):
        def render(self, request, **kw):
            both.wait()
            return super().render(request, **kw)

    with RenderQueue([Meeting(), Meeting()], tmp_path) as queue:
        jobs = [queue.submit(card(p)) for p in ("left", "right")]
        assert [queue.wait(j.id, 30).state for j in jobs] == ["done", "done"]


def test_one_queue_per_home_and_errors_that_teach(tmp_path):
    with RenderQueue(PreviewEngine(), tmp_path) as queue:
        with pytest.raises(QueueInUse, match="another render queue .pid \\d+. is using"):
            RenderQueue(PreviewEngine(), tmp_path)
        with pytest.raises(InvalidRequest, match="takes a RenderRequest"):
            queue.submit({"prompt": "x"})
        with pytest.raises(InvalidRequest, match="lineage must be a JSON object"):
            queue.submit(card("x"), lineage={"when": object()})
        with pytest.raises(JobNotFound, match="no job 'nope'"):
            queue.get("nope")
        got = []
        job = queue.wait(queue.submit(card("x"), on_result=lambda j, images: got.extend(images)).id, 20)
        assert job.state == "done" and job.results == [] and len(got) == 1  # a callback instead of files
        assert job.to_dict()["progress"] == {"done": 1, "total": 1}

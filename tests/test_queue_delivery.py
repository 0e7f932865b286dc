"""The render queue keeps its device busy: PNGs and callbacks on a delivery thread, batches that run
out of memory rendered in parts, and the time inside engine calls counted. Preview stand-ins: the
queue is what is tested."""

import threading
import time

import pytest

from imagegen import RenderRequest
from imagegen.engines.preview import PreviewEngine
from imagegen.errors import OutOfMemory
from imagegen.queue import RenderQueue


def card(prompt: str, **fields) -> RenderRequest:
    return RenderRequest(prompt, **({"width": 64, "height": 64, "seed": 7} | fields))


class Cramped(PreviewEngine):
    """A batching engine with room for `fits[(width, height)]` images per call; more raise OutOfMemory, as the SDXL engine does."""

    def __init__(self, fits: dict[tuple[int, int], int]):
        super().__init__()
        self.fits, self.calls = fits, []

    def _room(self, requests) -> None:
        images, size = sum(r.batch_size for r in requests), requests[0].output_size
        fits = images <= self.fits.get(size, 99)
        self.calls.append(([r.prompt for r in requests], fits))
        if not fits:
            raise OutOfMemory(f"out of GPU memory rendering {size[0]}x{size[1]} at batch size {images}; use a smaller size or batch")

    def render(self, request, *, lineage=None, progress=None):
        self._room([request])
        return super().render(request, lineage=lineage, progress=progress)

    def render_batch(self, requests, *, lineages, progress):
        self._room(requests)
        return [super(Cramped, self).render(r, lineage=n, progress=progress) for r, n in zip(requests, lineages)]


def test_the_worker_renders_the_next_job_while_the_last_is_saved_and_close_waits_for_it(tmp_path):
    rendered_b, in_callback, release = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    class Watching(PreviewEngine):
        def render(self, request, **kw):
            images = super().render(request, **kw)
            if request.prompt == "b":
                rendered_b.set()
            return images

    def slow_result(job, images):  # a submitter's slow callback: it must not hold the device
        seen.update(thread=threading.current_thread().name, state=job.state, files=[p.is_file() for p in job.results])
        in_callback.set()
        release.wait(20)

    queue = RenderQueue(Watching(), tmp_path, max_batch=1)
    a = queue.submit(card("a"), output=tmp_path / "out", on_result=slow_result)
    b = queue.submit(card("b"), output=tmp_path / "out")
    try:
        assert in_callback.wait(20) and rendered_b.wait(20), "b waited for a's callback"
        # a is written but not done until its callback returns; b, rendered, waits behind it for delivery.
        assert seen == {"thread": "keyart-deliver-0", "state": "running", "files": [True]}
        assert (a.state, b.state) == ("running", "running")
        closer = threading.Thread(target=queue.close)
        closer.start()
        closer.join(0.3)
        assert closer.is_alive()  # close() delivers what was rendered before it returns
    finally:
        release.set()
    closer.join(20)
    assert not closer.is_alive()
    assert (a.state, b.state) == ("done", "done") and b.results[0].is_file()


def test_a_failed_save_or_callback_still_fails_the_job_in_words(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")

    def broken(job, images):
        raise ValueError("boom")

    with RenderQueue(PreviewEngine(), tmp_path) as queue:
        unsaved = queue.submit(card("x"), output=tmp_path / "a-file" / "out")
        refused = queue.submit(card("y"), on_result=broken)
        assert queue.wait(unsaved.id, 20).state == queue.wait(refused.id, 20).state == "failed"
    assert unsaved.error.startswith("could not save the images:") and "a part of the path is a file" in unsaved.error
    assert refused.error == "the result callback failed: ValueError: boom"


def hold(queue):
    """A job that holds the worker until the returned event is set, so the next jobs queue up together."""
    release, running = threading.Event(), threading.Event()

    def wait(job):
        if job.state == "running":
            running.set()
            release.wait(20)

    queue.submit(card("gate", width=72), on_progress=wait)  # a size of its own: never batched with the rest
    assert running.wait(20)
    return release


def test_a_batch_that_runs_out_of_memory_is_rendered_in_halves_and_later_batches_are_capped(tmp_path):
    engine = Cramped({(64, 64): 2, (64, 128): 1})
    with RenderQueue(engine, tmp_path, max_batch=4) as queue:
        release = hold(queue)
        names = ["a", "b", "c", "d", "e", "f"]
        jobs = {n: queue.submit(card(n)) for n in names}
        jobs["big"] = queue.submit(card("big", batch_size=3))  # one job: nothing to split
        jobs |= {n: queue.submit(card(n, height=128)) for n in ("t1", "t2", "t3", "t4", "t5", "t6")}
        release.set()
        for job in jobs.values():
            queue.wait(job.id, 30)
    assert engine.calls == [
        (["gate"], True),
        (["a", "b", "c", "d"], False),  # 4 at 64x64 ran out of memory: in halves
        (["a", "b"], True),
        (["c", "d"], True),
        (["e", "f"], True),  # capped at the 2 that fit
        (["big"], False),
        (["t1", "t2", "t3", "t4"], False),  # 64x128 learns its own limit
        (["t1", "t2"], False),
        (["t1"], True),
        (["t2"], True),
        (["t3"], True),  # two ran out of memory: [t3, t4] is split without trying
        (["t4"], True),
        (["t5"], True),  # capped at 1
        (["t6"], True),
    ]
    done = [n for n in jobs if n != "big"]
    assert all(jobs[n].state == "done" and jobs[n].progress == (1, 1) and jobs[n].results[0].is_file() for n in done)
    big = jobs["big"]
    assert big.state == "failed" and big.error.startswith("out of GPU memory rendering 64x64 at batch size 3")
    assert isinstance(big.exception, OutOfMemory)


def test_busy_seconds_count_the_engine_calls_and_not_the_deliveries(tmp_path):
    render_s, deliver_s = 0.05, 0.3  # sleeps: lower bounds only, whatever the machine's load

    class Slow(PreviewEngine):
        def render(self, request, **kw):
            time.sleep(render_s)
            return super().render(request, **kw)

    with RenderQueue(Slow(), tmp_path) as queue:
        assert queue.busy_seconds == 0.0
        began = time.monotonic()
        jobs = [queue.submit(card(p), on_result=lambda job, images: time.sleep(deliver_s)) for p in ("a", "b", "c")]
        for job in jobs:
            assert queue.wait(job.id, 20).state == "done"
        wall = time.monotonic() - began
        busy = queue.busy_seconds
    # Three calls of at least render_s each; the last delivery runs after every call, outside them.
    assert 3 * render_s <= busy <= wall - deliver_s
    assert queue.busy_seconds == pytest.approx(busy)  # idle now: it no longer grows

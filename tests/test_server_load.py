"""The image service under a burst: 200 concurrent requests on loopback (OpenAI, A1111 and keyart's
jobs API mixed) against uvicorn on 127.0.0.1 with the tiny SDXL and a queue of 4 places.

What it shows: a full queue is a well-formed 429 (Retry-After in whole seconds, OpenAI's error body),
never a 5xx or a dropped connection; memory stays bounded and answered requests leave no images
behind; afterwards the server answers, renders, and its queue is empty.
"""

import asyncio
import gc
import re
import time
from collections import Counter
from dataclasses import dataclass

import httpx
import pytest

from imagegen.queue import RenderQueue
from imagegen.request import RenderedImage
from imagegen.server.app import create_app
from imagegen.server.jobs_api import KEPT_RESULTS
from tests.test_server_openai import TINY, serving

REQUESTS = 200
MAX_QUEUED = 4  # a small queue, so that most of the burst is refused rather than rendered
OWNER = {"X-Keyart-Owner": "load-test"}
MAX_RSS_GROWTH = 3 * 2**29  # 1.5 GiB: generous; what it catches is a runaway, not a leak of kilobytes
TIMEOUT_S = 60  # per request: far past a tiny render, short enough that a hung route fails the test
ROUTES = {
    "openai": ("/v1/images/generations", lambda i: {"prompt": f"a lighthouse, burst {i}", "size": "64x64", "seed": i}),
    "a1111": ("/sdapi/v1/txt2img", lambda i: {"prompt": f"a harbour, burst {i}", "steps": 2, "width": 64, "height": 64, "seed": i}),
    "jobs": ("/keyart/v1/jobs", lambda i: {"prompt": f"a ferry, burst {i}", "width": 64, "height": 64, "num_inference_steps": 2, "seed": i, "refiner": "off"}),
}
SUCCESS = {"openai": 200, "a1111": 200, "jobs": 202}


def rss_bytes() -> int:
    """This process's resident memory (the server runs in it, in uvicorn's thread), from /proc."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS line in /proc/self/status")


def live_images() -> int:
    """RenderedImages still reachable in this process, after a full collection."""
    gc.collect()
    return sum(isinstance(o, RenderedImage) for o in gc.get_objects())


@dataclass
class Burst:
    shots: list[str]  # the API of each request, in order
    answers: list[httpx.Response | BaseException]
    rss_before: int
    rss_after: int
    job_states: dict[str, str]  # accepted /keyart/v1 jobs: id -> final state
    images_left: int  # RenderedImages alive once the burst is over, less those alive before it (other tests' too)


async def fire(base: str, shots: list[str]) -> list[httpx.Response | BaseException]:
    """Every request at once: one connection each (the pool is as large as the burst)."""
    limits = httpx.Limits(max_connections=len(shots), max_keepalive_connections=len(shots))
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=TIMEOUT_S) as client:
        posts = [client.post(ROUTES[api][0], json=ROUTES[api][1](i), headers=OWNER) for i, api in enumerate(shots)]
        return await asyncio.gather(*posts, return_exceptions=True)


def settle_jobs(base: str, queue: RenderQueue, ids: list[str]) -> dict[str, str]:
    """Cancel the accepted jobs not yet final (200 or 202; 409 if one ended meanwhile), then wait for
    each to be final; their states."""
    with httpx.Client(base_url=base, timeout=TIMEOUT_S) as client:
        for job_id in ids:
            answer = client.delete(f"/keyart/v1/jobs/{job_id}", headers=OWNER)
            assert answer.status_code in (200, 202, 409), answer.text
    return {job_id: queue.wait(job_id, TIMEOUT_S).state for job_id in ids}


@pytest.fixture(scope="module")
def served(engine, tmp_path_factory):
    with RenderQueue(engine, tmp_path_factory.mktemp("load-home"), max_queued=MAX_QUEUED) as queue, serving(create_app(queue, limits=TINY)) as url:
        yield queue, url


@pytest.fixture(scope="module")
def burst(served) -> Burst:
    queue, base = served
    images_before = live_images()
    # 1. A first render of each API, so that first-call allocations count in the baseline, not the growth.
    for api, (path, body) in ROUTES.items():
        first = httpx.post(f"{base}{path}", json=body(-1), headers=OWNER, timeout=TIMEOUT_S)
        assert first.status_code == SUCCESS[api], first.text
        if api == "jobs":
            assert queue.wait(first.json()["id"], TIMEOUT_S).state == "done"
    rss_before = rss_bytes()
    # 2. The burst: the three APIs interleaved.
    shots = [list(ROUTES)[i % len(ROUTES)] for i in range(REQUESTS)]
    started = time.monotonic()
    answers = asyncio.run(fire(base, shots))
    elapsed = time.monotonic() - started
    # 3. The accepted jobs of keyart's API, cancelled or finished.
    ids = [a.json()["id"] for api, a in zip(shots, answers) if api == "jobs" and isinstance(a, httpx.Response) and a.status_code == 202]
    states = settle_jobs(base, queue, ids)
    rss_after = rss_bytes()
    print(f"{REQUESTS} requests in {elapsed:.1f} s: {Counter(a.status_code if isinstance(a, httpx.Response) else type(a).__name__ for a in answers)}")
    return Burst(shots, answers, rss_before, rss_after, states, live_images() - images_before)


def test_every_request_is_answered_with_a_success_or_a_429_never_a_5xx(burst):
    failures = [f"{api}: {a!r}" for api, a in zip(burst.shots, burst.answers) if not isinstance(a, httpx.Response)]
    assert not failures, f"{len(failures)} request(s) got no answer, e.g. {failures[0]}"
    statuses = Counter(a.status_code for a in burst.answers)
    assert not [s for s in statuses if s >= 500], f"5xx under load: {statuses}"
    odd = [(api, a.status_code, a.text[:200]) for api, a in zip(burst.shots, burst.answers) if a.status_code not in (SUCCESS[api], 429)]
    assert not odd, f"answers neither a success nor a 429: {odd[:3]}"
    assert statuses[429] > 0, f"a queue of {MAX_QUEUED} places refused none of {REQUESTS} requests: {statuses}"
    assert statuses[200] + statuses[202] > 0, f"nothing was accepted: {statuses}"


def test_successes_carry_their_images_or_their_job(burst):
    for api, answer in zip(burst.shots, burst.answers):
        if answer.status_code != SUCCESS[api]:
            continue
        body = answer.json()
        if api == "openai":
            assert len(body["data"]) == 1 and body["data"][0]["b64_json"] and body["size"] == "64x64"
        elif api == "a1111":
            assert len(body["images"]) == 1 and body["images"][0]
        else:
            assert answer.headers["Location"] == f"/keyart/v1/jobs/{body['id']}" and body["owner"] == OWNER["X-Keyart-Owner"]


def test_a_429_says_when_to_come_back_in_whole_seconds_and_openais_error_shape(burst):
    refused = [a for a in burst.answers if a.status_code == 429]
    for answer in refused:
        retry_after = answer.headers.get("Retry-After", "")
        assert re.fullmatch(r"[0-9]+", retry_after) and 1 <= int(retry_after) <= 120, f"Retry-After {retry_after!r}"
        error = answer.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}, error
        assert error["type"] == "rate_limit_error" and error["code"] == "queue_full" and f"{retry_after} s" in error["message"]


def test_memory_stays_bounded_and_answered_requests_leave_no_images_behind(burst):
    growth = burst.rss_after - burst.rss_before
    assert growth < MAX_RSS_GROWTH, f"RSS grew by {growth / 2**20:.0f} MiB over the burst"
    # Only the jobs API keeps images (for GET, the last KEPT_RESULTS jobs); an answered OpenAI or A1111
    # request keeps none, however many the server has served.
    kept = min(KEPT_RESULTS, 1 + sum(state == "done" for state in burst.job_states.values()))  # 1: the first job of step 1
    assert burst.images_left <= kept, f"{burst.images_left} images still in memory, where the jobs API keeps {kept}"


def test_accepted_jobs_end_finished_or_cancelled(burst):
    assert burst.job_states, "no /keyart/v1 job was accepted"
    assert set(burst.job_states.values()) <= {"done", "cancelled"}, Counter(burst.job_states.values())


def test_afterwards_the_server_answers_renders_and_its_queue_is_empty(served, burst):
    queue, base = served
    left = [(j.id, j.state) for j in queue.jobs() if j.state in ("queued", "running")]
    assert not left, f"jobs left in the queue after the burst: {left}"
    assert httpx.get(f"{base}/health", timeout=TIMEOUT_S).status_code == 200
    again = httpx.post(f"{base}/v1/images/generations", json={"prompt": "after the burst", "size": "64x64"}, timeout=TIMEOUT_S)
    assert again.status_code == 200 and again.json()["data"][0]["b64_json"], again.text
    assert not [j for j in queue.jobs() if j.state in ("queued", "running")]

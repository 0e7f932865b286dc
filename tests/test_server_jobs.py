"""keyart's own job routes (/keyart/v1/jobs) against uvicorn on 127.0.0.1 with the tiny SDXL:
submit, poll, images, Server-Sent Events, cancel, ownership, errors."""

import json
import time

import httpx
import pytest

from imagegen.queue import RenderQueue
from imagegen.server.app import create_app
from tests.test_server_openai import TINY, Gated, decode, opened_at_exit, serving

JOB = {"prompt": "a lighthouse keeper", "width": 64, "height": 64, "num_inference_steps": 2, "seed": 7, "refiner": "off"}


@pytest.fixture(scope="module")
def base(engine, tmp_path_factory):
    with RenderQueue(engine, tmp_path_factory.mktemp("jobs-home")) as queue, serving(create_app(queue, limits=TINY)) as url:
        yield url


def until_final(url, job_id, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        body = httpx.get(f"{url}/keyart/v1/jobs/{job_id}").json()
        if body["state"] in ("done", "failed", "cancelled"):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.05)


def sse(response):
    """(event, data) pairs of a text/event-stream response."""
    events, event = [], None
    for line in response.iter_lines():
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            events.append((event, json.loads(line[6:])))
    return events


def test_submit_then_poll_gives_pngs_holding_the_prompt(base):
    answer = httpx.post(f"{base}/keyart/v1/jobs", json=JOB | {"batch_size": 2, "priority": 3})
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert isinstance(body["position"], int) or body["state"] != "queued"
    assert body["links"]["events"] == f"/keyart/v1/jobs/{body['id']}/events" and body["priority"] == 3
    final = until_final(base, body["id"])
    assert final["state"] == "done" and final["progress"]["done"] == final["progress"]["total"] > 0
    images = [decode(i["b64_json"]) for i in final["images"]]
    assert [im.format for im in images] == ["PNG", "PNG"] and images[0].size == (64, 64)
    assert all(im.text["parameters"].startswith("a lighthouse keeper") for im in images)
    assert "Seed: 7" in final["images"][0]["infotext"] and "Seed: 8" in final["images"][1]["infotext"]
    assert json.loads(images[0].text["keyart"])["lineage"] == {"api": "keyart"}
    assert httpx.get(f"{base}/keyart/v1/jobs/{body['id']}").json()["images"]  # fetched again: still kept


def test_events_stream_progress_then_done(base):
    job_id = httpx.post(f"{base}/keyart/v1/jobs", json=JOB | {"num_inference_steps": 4}).json()["id"]
    with httpx.stream("GET", f"{base}/keyart/v1/jobs/{job_id}/events", timeout=15) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        events = sse(response)
    names = [e for e, _ in events]
    assert names[-1] == "done" and set(names[:-1]) == {"progress"} and len(names) >= 2
    done = [d["progress"]["done"] for _, d in events]
    assert done == sorted(done) and done[-1] == 4


def test_delete_a_queued_job_then_again_and_someone_elses(engine, tmp_path):
    gated = Gated(engine)
    with RenderQueue(gated, tmp_path) as queue, opened_at_exit(gated), serving(create_app(queue, limits=TINY)) as url:
        me, other = {"X-Keyart-Owner": "me"}, {"X-Keyart-Owner": "someone-else"}
        held = httpx.post(f"{url}/keyart/v1/jobs", json=JOB, headers=me).json()
        while queue.get(held["id"]).state != "running":  # the worker holds it at the gate
            time.sleep(0.01)
        queued = httpx.post(f"{url}/keyart/v1/jobs", json=JOB, headers=me).json()
        assert queued["state"] == "queued" and queued["position"] == 0 and queued["owner"] == "me"
        assert httpx.delete(f"{url}/keyart/v1/jobs/{queued['id']}", headers=other).status_code == 403
        gone = httpx.delete(f"{url}/keyart/v1/jobs/{queued['id']}", headers=me)
        assert gone.status_code == 200 and gone.json()["state"] == "cancelled"
        again = httpx.delete(f"{url}/keyart/v1/jobs/{queued['id']}", headers=me)
        assert again.status_code == 409 and again.json()["error"]["code"] == "job_finished"
        with httpx.stream("GET", f"{url}/keyart/v1/jobs/{queued['id']}/events", timeout=5) as response:
            assert [e for e, _ in sse(response)] == ["cancelled"]
        gated.gate.set()
        assert until_final(url, held["id"])["state"] == "done"


def test_the_owner_defaults_to_the_keys_hash(engine, tmp_path):
    with RenderQueue(engine, tmp_path) as queue, serving(create_app(queue, api_key="sk-jobs", limits=TINY)) as url:
        auth = {"Authorization": "Bearer sk-jobs"}
        assert httpx.post(f"{url}/keyart/v1/jobs", json=JOB).status_code == 401
        body = httpx.post(f"{url}/keyart/v1/jobs", json=JOB, headers=auth).json()
        assert body["owner"].startswith("key:") and "sk-jobs" not in body["owner"]
        assert queue.wait(body["id"], 10).state == "done"


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"prompt": "a cat", "frobnicate": 1}, None, "unknown request fields"),
        ({"prompt": "a cat", "num_inference_steps": 100}, "steps", "between 1 and 60"),
        ({"prompt": "a cat", "width": 8192, "height": 64}, "width", "between 64 and 2048"),
        ({"prompt": "a cat", "batch_size": 4, "batch_count": 3}, "batch_size", "limit of 10"),
        ({"prompt": "a cat", "priority": "high"}, "priority", "whole number"),
        ({"prompt": "a cat", "owner": "me"}, "owner", "caller's identity"),
        ({"prompt": "a cat", "init_image": "/etc/passwd"}, "init_image", "not accepted"),
        ({"negative_prompt": "x"}, "prompt", "required"),
    ],
)
def test_bad_fields_are_400(base, body, param, words):
    answer = httpx.post(f"{base}/keyart/v1/jobs", json=body)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert words in error["message"] and (param is None or error["param"] == param)


def test_unknown_ids_are_404_and_bad_json_400(base):
    for method in ("GET", "DELETE"):
        answer = httpx.request(method, f"{base}/keyart/v1/jobs/nope")
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "job_not_found"
    assert httpx.get(f"{base}/keyart/v1/jobs/nope/events").status_code == 404
    bad = httpx.post(f"{base}/keyart/v1/jobs", content=b"{nope", headers={"content-type": "application/json"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_json"

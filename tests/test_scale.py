"""Scale-out on Ray: a local cluster started here (3 CPUs, token auth on, its token in a temp file),
two replicas of the tiny SDXL. The served API answers through both replicas and batches per
replica; `dataprep.py run --ray`, joining the cluster by address, fills the same catalog as a run
without Ray over both replicas at once; a replica killed mid-job loses and duplicates nothing.
"""

import base64
import io
import json
import os
import secrets
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import dataprep
from test_dataprep_resume import catalog_state
from imagegen.errors import InvalidRequest
from imagegen.scale import ScaleOptions

ROOT = Path(__file__).resolve().parents[1]
STYLES = "anime,watercolor"
IMAGES = (7 + 1) * 2  # season 1's seven episodes and its poster, in two styles
pytestmark = pytest.mark.xdist_group("ray")  # one cluster per test run: these tests share one xdist worker


def _ray():
    try:
        import ray
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("CI must run the Ray tests: `make test` installs keyart[ray]")
        pytest.skip("Ray is not installed (pip install 'keyart[ray]')")
    return ray


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A local Ray cluster with token auth, torn down at the end; yields its GCS address."""
    token = tmp_path_factory.mktemp("ray-auth") / "auth_token"
    token.write_text(secrets.token_hex(32))
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH")}
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token))  # never the user's ~/.ray; read when Ray loads
    ray = _ray()
    context = ray.init(num_cpus=3, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    try:
        yield context.address_info["gcs_address"]
    finally:
        from ray import serve

        serve.shutdown()
        ray.shutdown()
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)


@pytest.fixture(scope="module")
def model(tiny_model_dirs):
    return str(tiny_model_dirs[0])


@pytest.fixture(scope="module")
def reference(tiny_model_dirs, tmp_path_factory, model):
    """The catalog a run without Ray makes, as (entries, keys, pixel hashes)."""
    home = tmp_path_factory.mktemp("no-ray")
    with _env(KEYART_SDXL_MODEL=model):
        assert dataprep.main(_args(home)) == 0
    return catalog_state(home)


def _args(home, *extra, steps=3):
    return ["run", "--home", str(home), "--season", "1", "--styles", STYLES, "--width", "64", "--height", "64", "--steps", str(steps), *extra]


KILLED = (4 * 2, "1-4")  # the kill test's images: episodes 1-4 (no season art) in two styles


class _env:
    """Environment variables for a block (dataprep reads its settings from the environment)."""

    def __init__(self, **values):
        self.values = values

    def __enter__(self):
        self.saved = {k: os.environ.get(k) for k in self.values}
        os.environ.update(self.values)

    def __exit__(self, *exc):
        for key, value in self.saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)


def _lineage(png_bytes):
    from PIL import Image

    with Image.open(io.BytesIO(png_bytes)) as image:
        return json.loads(image.info["keyart"])


# -- without a cluster: the options and the flags ---------------------------------------------------


@pytest.mark.parametrize(
    "options, says",
    [
        ({"replicas": 0}, "--replicas must be a whole number of at least 1"),
        ({"replicas": 2, "max_replicas": 4}, "give one or the other"),
        ({"min_replicas": 1}, "--min-replicas needs --max-replicas"),
        ({"min_replicas": 3, "max_replicas": 2}, "is more than --max-replicas"),
        ({"cpus": 0}, "--replica-cpus must be a number of CPUs above 0"),
        ({"address": "  "}, "is empty"),
    ],
)
def test_scale_options_refuse_what_cannot_run(options, says):
    with pytest.raises(InvalidRequest, match=says):
        ScaleOptions(**options)


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--replicas", "2"], "apply to --ray only"),
        (["--ray", "--device", "cpu"], "--device does not apply with --ray"),
        (["--ray", "--engine", "openai"], "the openai engine renders on its own server already"),
        (["--ray", "--ray-address", "127.0.0.1:1"], "nothing answers at the Ray address 127.0.0.1:1"),
        (["--ray", "--ray-address", "gpu-box"], "is not host:port"),
    ],
)
def test_bad_ray_flags_exit_2_and_write_nothing(tmp_path, capsys, argv, says):
    home = tmp_path / "home"
    assert dataprep.main(_args(home, *argv)) == 2
    assert says in capsys.readouterr().err
    assert not (home / "images").exists()


# -- on the cluster ---------------------------------------------------------------------------------


def test_the_served_api_answers_through_both_replicas_and_batches_per_replica(cluster, tmp_path, model):
    import openai

    from imagegen.engines import create_engine
    from imagegen.queue import RenderQueue
    from imagegen.scale import replicas
    from imagegen.server.app import create_app, running
    from imagegen.server.limits import Limits
    from imagegen.settings import ImageSettings
    from imagegen.request import RenderRequest
    from imagegen.scale.wire import pack_images

    settings = ImageSettings(sdxl_model=model)
    pool = replicas(ScaleOptions(replicas=2), "sdxl", settings, app="keyart-test-serve")
    pool.start()
    try:
        assert pool.workers == 2 and pool.described["name"] == "sdxl"
        # 1. One render through a replica gives the local engine's pixels (the wire loses nothing).
        request = RenderRequest("a lighthouse in a storm", width=64, height=64, num_inference_steps=2, seed=11)
        [far] = pool.engines()[0].render(request)
        [near] = create_engine("sdxl", settings.overridden(device="cpu")).render(request)
        assert far.image.tobytes() == near.image.tobytes() and far.seed == near.seed == 11
        assert pack_images([far])[0]["png"][:8] == b"\x89PNG\r\n\x1a\n"
        # 2. The HTTP API and its limits, unchanged, over the replicas: concurrent clients all answered.
        limits = Limits(sizes=((64, 64),), steps=2, max_body_bytes=2**20, max_n=2)
        with RenderQueue(pool.engines(), tmp_path / "queue") as queue, running(create_app(queue, limits=limits)) as url:
            client = openai.OpenAI(base_url=f"{url}/v1", api_key="anything", max_retries=0)

            def ask(i):
                return client.images.generate(model="keyart-sdxl", prompt=f"harbour scene {i}", size="64x64", response_format="b64_json")

            with ThreadPoolExecutor(8) as pool_of_clients:
                answers = list(pool_of_clients.map(ask, range(8)))
            ray_records = [_lineage(base64.b64decode(a.data[0].b64_json))["lineage"]["ray"] for a in answers]
            with pytest.raises(openai.BadRequestError, match="n must be between 1 and 2"):  # the single server's limits hold
                client.images.generate(model="keyart-sdxl", prompt="x", size="64x64", n=3)
        assert len({r["replica"] for r in ray_records}) == 2, ray_records  # both replicas answered
        assert max(r["batch"] for r in ray_records) > 1, ray_records  # compatible requests shared a call
    finally:
        pool.close()


def test_dataprep_joins_a_cluster_by_address_and_fills_the_same_catalog_on_both_replicas(cluster, tmp_path, model, reference):
    home = tmp_path / "joined"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYART_", "OPENAI_")) and k != "RAY_AUTH_MODE"}  # the token path alone
    env |= {"KEYART_SDXL_MODEL": model, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "RAY_ADDRESS": cluster}
    done = subprocess.run([sys.executable, str(ROOT / "dataprep.py"), *_args(home, "--ray", "--replicas", "2")], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "ray: 2 replica(s) on 1 CPU each" in done.stderr
    assert catalog_state(home) == reference  # the catalog a run without Ray makes, bit for bit
    replicas_seen = {_lineage(p.read_bytes())["lineage"]["ray"]["replica"] for p in (home / "images").rglob("*.png")}
    assert len(replicas_seen) == 2  # the work was spread...
    with sqlite3.connect(home / "queues" / "dataprep" / "queue.sqlite") as db:
        runs = db.execute("SELECT started, finished FROM jobs WHERE state = 'done' ORDER BY started").fetchall()
    assert len(runs) == IMAGES
    assert any(later[0] < earlier[1] for earlier, later in zip(runs, runs[1:]))  # ...and two renders ran at once
    # A rerun finds everything done and renders nothing.
    again = subprocess.run([sys.executable, str(ROOT / "dataprep.py"), *_args(home, "--ray", "--replicas", "2")], env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "already in the catalog" in again.stdout, again.stderr
    assert "ray: starting" not in again.stderr  # nothing to render: no replica was started


def test_a_replica_killed_mid_job_loses_and_duplicates_nothing(cluster, tmp_path, model, tmp_path_factory):
    ray = _ray()
    from assistant.catalog import load_catalog
    from assistant.models.offline import OfflineModel
    from assistant.workflows.build import prepare_build
    from assistant.workflows.plan import RenderSettings, Selection, parse_episodes
    from assistant.workflows.service import RenderService
    from imagegen.settings import ImageSettings

    steps = 12  # long enough that a render is caught between its steps
    images, episodes = KILLED
    clean = tmp_path_factory.mktemp("clean-12")
    with _env(KEYART_SDXL_MODEL=model):
        assert dataprep.main(_args(clean, "--episodes", episodes, steps=steps)) == 0
    # 1. A build on two replicas, in a thread; this thread watches the jobs.
    home = tmp_path / "killed"
    service = RenderService(name="sdxl", settings=ImageSettings(sdxl_model=model), home=home, front="dataprep", max_batch=1, scale=ScaleOptions(replicas=2))
    settings = RenderSettings(overrides={"width": 64, "height": 64, "num_inference_steps": steps})
    catalog = load_catalog()  # the sample show, as dataprep's default
    build = prepare_build(catalog, home, model=OfflineModel(), service=service, settings=settings, selection=Selection(season=1, episodes=parse_episodes(episodes), styles=STYLES.split(",")))
    service.start()
    reports = []
    runner = threading.Thread(target=lambda: reports.append(build.run()))
    runner.start()
    try:
        # 2. Once both replicas are between steps of a job, kill one of them.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            busy = [j for j in service.jobs() if j.state == "running" and 0 < j.progress[0] < j.progress[1] - 2]
            if len(busy) == 2:
                break
            time.sleep(0.005)
        assert len(busy) == 2, "the build never had both replicas mid-job"
        names = [n["name"] for n in ray.util.list_named_actors(all_namespaces=True) if n["name"].startswith("SERVE_REPLICA::keyart-dataprep-")]
        ray.kill(ray.get_actor(names[0], namespace="serve"), no_restart=True)
    finally:
        runner.join(240)
        service.close()
    # 3. Every image there once, the same catalog as a run without Ray, and the retry on record.
    [report] = reports
    assert report.images.failed == 0 and report.images.done == images
    assert catalog_state(home) == catalog_state(clean)
    files = sorted((home / "images").rglob("*.png"))
    assert len(files) == images and not list(home.rglob("*.tmp"))
    attempts = [_lineage(f.read_bytes())["lineage"]["ray"]["attempt"] for f in files]
    assert max(attempts) == 2, attempts  # the killed replica's job was sent again, once


def test_serve_ray_from_the_cli_answers_an_a1111_client_and_cleans_up(cluster, tmp_path):
    import httpx
    from ray import serve

    from tests.serve_cli import serving_cli

    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYART_", "OPENAI_")) and k != "RAY_AUTH_MODE"}
    env |= {"HF_HUB_OFFLINE": "1", "RAY_ADDRESS": cluster}
    # The preview engine on the replicas: the server renders its own sizes (SDXL's, 1024x1024 and kin),
    # which the tiny SDXL would take minutes for on a CPU; the wiring is the same.
    with serving_cli(["--ray", "--replicas", "2", "--engine", "preview", "--home", str(tmp_path / "serve")], env, ready_s=120) as served:
        # An A1111 client's body; the answer came from a replica.
        body = {"prompt": "a quay at dawn", "negative_prompt": "", "width": 1024, "height": 1024, "steps": 2, "cfg_scale": 7, "seed": 5, "batch_size": 1, "n_iter": 1, "sampler_name": "Euler a"}
        answer = httpx.post(f"{served.url}/sdapi/v1/txt2img", json=body, timeout=120)
        assert answer.status_code == 200, answer.text
        lineage = _lineage(base64.b64decode(answer.json()["images"][0]))
        assert lineage["lineage"]["ray"]["replica"].startswith(f"SERVE_REPLICA::keyart-serve-{served.port}#")
    assert served.returncode == 0, served.err
    assert "ray: 2 replica(s) on 1 CPU each" in served.err
    assert f"keyart-serve-{served.port}" not in serve.status().applications  # the replicas are gone with the server


def test_what_the_cluster_cannot_hold_or_start_is_said_in_one_line(cluster, tmp_path):
    from imagegen.errors import KeyartError
    from imagegen.scale import replicas
    from imagegen.settings import ImageSettings
    from ray import serve

    # 1. More replicas than the cluster has room for: refused before anything is deployed. (A replica
    # an earlier test removed may still be handing its CPU back, on a loaded machine: 2 or 3 are free.)
    with pytest.raises(KeyartError, match=r"the Ray cluster has [23] free CPUs of 3; 5 replica\(s\) need 1 each"):
        replicas(ScaleOptions(replicas=5), "preview", ImageSettings(), app="keyart-test-room").start()
    assert "keyart-test-room" not in serve.status().applications
    # 2. A model the replicas cannot find (a path that exists on no node): the replica's own words.
    missing = str(tmp_path / "no-such-model")
    with pytest.raises(KeyartError, match="the render replicas did not start: KEYART_SDXL_MODEL=.*no-such-model"):
        replicas(ScaleOptions(replicas=1), "sdxl", ImageSettings(sdxl_model=missing), app="keyart-test-missing").start()
    assert "keyart-test-missing" not in serve.status().applications


def test_autoscaling_bounds_start_the_fewest_and_allow_the_most(cluster):
    from imagegen.request import RenderRequest
    from imagegen.scale import replicas
    from imagegen.settings import ImageSettings
    from ray import serve

    pool = replicas(ScaleOptions(min_replicas=1, max_replicas=2), "preview", ImageSettings(), app="keyart-test-autoscale")
    pool.start()
    try:
        assert pool.workers == 2 and pool.where == "1 replica(s) (autoscaling up to 2) on 1 CPU each"
        config = serve.status().applications["keyart-test-autoscale"].deployments["Renderer"]
        assert config.replica_states.get("RUNNING") == 1
        [image] = pool.engines()[1].render(RenderRequest("a quay", width=64, height=64, seed=3))
        assert image.seed == 3 and image.lineage["lineage"]["ray"]["attempt"] == 1
    finally:
        pool.close()


def test_a_cancel_stops_the_replica_and_its_errors_arrive_as_they_were_raised(cluster, tmp_path, model):
    from imagegen.errors import KeyartError
    from imagegen.queue import RenderQueue
    from imagegen.request import RenderRequest
    from imagegen.scale import replicas
    from imagegen.settings import ImageSettings

    pool = replicas(ScaleOptions(replicas=1), "sdxl", ImageSettings(sdxl_model=model), app="keyart-test-cancel")
    pool.start()
    try:
        with RenderQueue(pool.engines(), tmp_path / "queue") as queue:
            # 1. A long render, cancelled between its steps: the job ends cancelled, the replica is free at once.
            long = queue.submit(RenderRequest("a long night", width=128, height=128, num_inference_steps=150, seed=1), on_result=lambda job, images: None)
            deadline = time.monotonic() + 60
            while queue.get(long.id).progress[0] < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            queue.cancel(long.id)
            assert queue.wait(long.id, timeout=30).state == "cancelled"
            began = time.monotonic()
            short = queue.submit(RenderRequest("a short day", width=64, height=64, num_inference_steps=2, seed=2), on_result=lambda job, images: None)
            assert queue.wait(short.id, timeout=30).state == "done"
            assert time.monotonic() - began < 10  # not behind the 150 steps of the cancelled one
        # 2. The engine's own error, in its own type and words; not retried as a death would be.
        engine = pool.engines()[0]
        with pytest.raises(KeyartError, match="LoRA") as raised:
            engine.render(RenderRequest("a gull <lora:ghost:0.8>", width=64, height=64, num_inference_steps=2))
        assert type(raised.value).__module__.startswith("imagegen") and engine.retries == 0
    finally:
        pool.close()

"""Animations (`python -m imagegen animate`): keyframed prompts and motion over a chain of img2img
frames with the tiny SDXL, out as frames with their infotext, an H.264 MP4 and a GIF (read back with
PyAV and Pillow), a sidecar that reproduces the frames; colour coherence; resuming; bad input first."""

import json
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image, ImageDraw

from imagegen.animate import animate, load_sidecar, matched, moved
from imagegen.animation import AnimationRequest, prompt_schedule, value_schedule
from imagegen.cli import main
from imagegen.engines.preview import PreviewEngine
from imagegen.errors import InvalidRequest
from imagegen.metadata import parse_infotext
from imagegen.png_files import read_png

PROMPTS = "0: a calm harbour at dusk | 6: the same harbour in a storm"
TINY = {"num_inference_steps": 4, "refiner": "off"}
SHORT = "0: a calm harbour | 2: a storm"


def tiny(**fields):
    base = dict(prompts=PROMPTS, frames=12, fps=8, width=64, height=64, seed=3, motion={"zoom": "0:(1.0), 2:(1.1)"}, strength="0.5", render=TINY)
    if fields.get("frames", 12) == 12:
        base["motion"] = {"zoom": "0:(1.0), 11:(1.1)"}
    return AnimationRequest(**(base | fields))


def pixels(path):
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


@pytest.fixture(scope="module")
def made(engine, tmp_path_factory):
    folder = tmp_path_factory.mktemp("animation") / "harbour"
    return animate(engine, tiny(), folder)


def test_twelve_frames_two_keyframes_and_a_zoom_make_an_mp4_and_a_gif(made):
    with av.open(str(made.video)) as video:
        stream = video.streams.video[0]
        decoded = list(video.decode(video=0))
        assert stream.codec_context.name == "h264" and float(stream.average_rate) == 8 and (stream.width, stream.height) == (64, 64)
    assert len(decoded) == 12 and decoded[0].to_image().size == (64, 64)
    gif = Image.open(made.gif)
    assert gif.n_frames == 12 and gif.size == (64, 64) and gif.info["duration"] == 120 and gif.info["loop"] == 0
    # Each frame carries its infotext and its place in the schedule: the prompt switches at frame 6, the zoom grows.
    places = [read_png(p).lineage["lineage"]["animation"] for p in made.frames]
    assert [p["prompt"] for p in places] == ["a calm harbour at dusk"] * 6 + ["the same harbour in a storm"] * 6
    assert [p["motion"]["zoom"] for p in places] == pytest.approx([1 + 0.1 * i / 11 for i in range(12)])
    assert [p["seed"] for p in places] == [3 + i for i in range(12)] and places[0]["strength"] is None and places[1]["strength"] == 0.5
    prompt, _, fields = parse_infotext(read_png(made.frames[7]).infotext)
    assert prompt == "the same harbour in a storm" and fields["Denoising strength"] == "0.5" and fields["Seed"] == "10"
    assert all(np.abs(pixels(a) - pixels(b)).mean() > 1 for a, b in zip(made.frames, made.frames[1:]))
    # LAB coherence (the default): the last frame's mean colour within 8 levels of the first's, per channel.
    assert np.abs(pixels(made.frames[-1]).mean(axis=(0, 1)) - pixels(made.frames[0]).mean(axis=(0, 1))).max() < 8


def test_the_sidecar_reproduces_the_same_frames(engine, made, tmp_path, monkeypatch, tiny_model_dirs, capsys):
    sidecar = json.loads(made.sidecar.read_text(encoding="utf-8"))
    assert sidecar["done"] and sidecar["request"]["seed"] == 3 and sidecar["prompts"][5:7] == ["a calm harbour at dusk", "the same harbour in a storm"]
    assert load_sidecar(made.sidecar) == made.request
    # On the same engine: the same frames, bit for bit.
    again = animate(engine, load_sidecar(made.sidecar), tmp_path / "again")
    assert all(np.array_equal(pixels(a), pixels(b)) for a, b in zip(made.frames, again.frames))
    # The CLI, loading the tiny model from its folder: the same request; a differently loaded pipeline
    # differs in the last bits, which the chain carries on (at most 2 levels in 12 frames here).
    monkeypatch.setenv("KEYART_SDXL_MODEL", str(tiny_model_dirs[0]))
    cli = tmp_path / "cli"
    assert main(["animate", "--from", str(made.sidecar), "--output", str(cli)]) == 0
    assert "frame 12/12" in capsys.readouterr().err and load_sidecar(cli / "animation.json") == made.request
    assert max(int(np.abs(pixels(a) - pixels(b)).max()) for a, b in zip(made.frames, sorted((cli / "frames").glob("*.png")))) <= 3


def test_a_rerun_resumes_after_the_last_frame_written(engine, made, tmp_path):
    import shutil

    folder = Path(shutil.copytree(made.folder, tmp_path / "resumed"))
    for path in sorted((folder / "frames").glob("*.png"))[9:]:
        path.unlink()
    (folder / "animation.mp4").unlink()
    seen = []
    done = animate(engine, tiny(seed=-1), folder, progress=lambda i, n: seen.append(i))  # the sidecar's seed is adopted
    assert seen == [10, 11, 12] and done.request.seed == 3 and done.video.is_file()
    for a, b in zip(made.frames, done.frames):
        assert np.array_equal(pixels(a), pixels(b))
    with pytest.raises(InvalidRequest, match="holds another animation"):
        animate(engine, tiny(prompts="a lighthouse"), folder)


def test_colour_coherence_pulls_each_start_back_to_the_first_frame(tmp_path):
    first = Image.new("RGB", (64, 64), (200, 60, 40))
    ImageDraw.Draw(first).ellipse((16, 16, 48, 48), fill=(40, 60, 200))
    drifted = Image.fromarray(np.clip(np.asarray(first, dtype=np.int16) * 0.7 + 40, 0, 255).astype(np.uint8))  # duller, lifted
    for mode in ("lab", "histogram"):
        back = np.asarray(matched(drifted, first, mode), dtype=np.float64)
        assert np.abs(back.mean(axis=(0, 1)) - np.asarray(first).mean(axis=(0, 1))).max() < 3, mode
    assert matched(drifted, first, "none") is drifted
    # In an animation on the preview engine (which paints over its start): the last frame's mean colour stays nearer the first's.
    init = tmp_path / "init.png"
    first.resize((128, 128)).save(init)
    drift = {}
    for mode in ("lab", "none"):
        run = animate(PreviewEngine(), tiny(width=128, height=128, init_image=str(init), colour_coherence=mode, render={}), tmp_path / mode)
        a, b = pixels(run.frames[0]).mean(axis=(0, 1)), pixels(run.frames[-1]).mean(axis=(0, 1))
        drift[mode] = float(np.linalg.norm(a - b))
    assert drift["lab"] < 22 < drift["none"], drift


def test_motion_moves_the_picture():
    picture = Image.new("RGB", (64, 64), (0, 0, 0))
    ImageDraw.Draw(picture).rectangle((28, 28, 36, 36), fill=(255, 255, 255))
    still = {"zoom": 1.0, "angle": 0.0, "translation_x": 0.0, "translation_y": 0.0}
    assert np.array_equal(np.asarray(moved(picture, still)), np.asarray(picture))
    shifted = np.asarray(moved(picture, still | {"translation_x": 10.0}))[..., 0]
    assert shifted[32, 42] > 200 and shifted[32, 30] < 50
    zoomed = np.asarray(moved(picture, still | {"zoom": 2.0}))[..., 0]
    assert (zoomed > 128).sum() > 3 * (np.asarray(picture)[..., 0] > 128).sum()


def test_schedules_read_deforum_keyframes():
    assert prompt_schedule(PROMPTS, 12) == [(0, "a calm harbour at dusk"), (6, "the same harbour in a storm")]
    assert prompt_schedule("a lighthouse", 4) == [(0, "a lighthouse")]
    assert value_schedule("zoom", "0:(1.0), 4:(1.2)", 6) == pytest.approx([1.0, 1.05, 1.1, 1.15, 1.2, 1.2])
    assert value_schedule("angle", "0.5", 3) == [0.5, 0.5, 0.5]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["0: a | 12: b", "--frames", "12"], "the keyframe at frame 12 is past the last frame (11"),
        (["a harbour", "--fps", "0"], "fps runs above 0"),
        (["a harbour", "--motion", "spin=1"], "unknown motion key(s) spin"),
        (["a harbour", "--motion", "zoom=0:(1.0),30:(1.1)"], "the zoom keyframe at frame 30 is past the last frame"),
        (["a harbour", "--strength", "1.5"], "strength values run from 0 to 1"),
        (["a harbour", "--seed-behaviour", "random"], "invalid choice"),
    ],
)
def test_bad_input_is_refused_before_any_frame(tmp_path, capsys, args, says):
    out = tmp_path / "out"
    code = None
    try:
        code = main(["animate", *args, "--engine", "preview", "--output", str(out)])
    except SystemExit as exc:  # argparse's own refusals
        code = exc.code
    assert code == 2 and says in capsys.readouterr().err and not out.exists()


# -- on the render queue ---------------------------------------------------------------------------


def test_an_animation_is_one_queue_job_with_per_frame_progress(engine, tmp_path):
    from imagegen.animate import Animation
    from imagegen.queue import RenderQueue

    seen, handed = [], []
    with RenderQueue(engine, tmp_path / "queue") as queue:
        job = queue.submit(tiny(frames=4, seed=-1, prompts=SHORT), owner="me", on_progress=lambda j: seen.append(j.progress), on_result=lambda j, a: handed.append(a))
        queue.wait(job.id, timeout=120)
        assert job.state == "done" and job.progress == (4, 4) and job.request.seed >= 0  # the seed resolved at submit
        assert [p for p in seen if p[0]] [:4] == [(1, 4), (2, 4), (3, 4), (4, 4)]
        assert [p.name for p in job.results] == ["animation.mp4", "animation.gif", "animation.json"] and job.output == tmp_path / "queue" / "animations" / job.id
        assert isinstance(handed[0], Animation) and len(handed[0].frames) == 4
    with RenderQueue(engine, tmp_path / "queue") as again:  # the stored job reads back as an animation
        [stored] = again.jobs("me")
        assert stored.request == job.request and stored.state == "done"


def test_a_cancel_stops_an_animation_between_frames_and_a_resubmit_resumes(tmp_path):
    from imagegen.queue import RenderQueue

    request = tiny(frames=6, width=128, height=128, render={}, prompts=SHORT)
    folder = tmp_path / "anim"
    with RenderQueue(PreviewEngine(), tmp_path / "queue") as queue:
        job = queue.submit(request, output=folder, on_progress=lambda j: j.progress[0] == 2 and queue.cancel(j.id))
        queue.wait(job.id, timeout=60)
        assert job.state == "cancelled" and len(list((folder / "frames").glob("*.png"))) == 2 and not (folder / "animation.mp4").exists()
        again = queue.submit(request, output=folder)
        queue.wait(again.id, timeout=60)
        assert again.state == "done" and len(list((folder / "frames").glob("*.png"))) == 6 and (folder / "animation.mp4").is_file()


def test_the_render_service_animates_through_its_queue(tmp_path):
    from assistant.workflows.service import RenderService

    service = RenderService(PreviewEngine())
    try:
        frames = []
        made = service.animate(tiny(frames=3, width=128, height=128, render={}, prompts=SHORT), tmp_path / "a", progress=lambda i, n: frames.append((i, n)))
        assert made.video.is_file() and frames[-1] == (3, 3)
    finally:
        service.close()

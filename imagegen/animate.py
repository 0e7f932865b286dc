"""Rendering an animation: a chain of img2img frames, each the previous frame moved a little (zoom,
rotation, translation), its colours matched to the first frame's, then repainted with its prompt.

Out come `frames/0000.png`... (each with its infotext and the frame's place in the animation),
`animation.mp4` (H.264 through PyAV), `animation.gif` (Pillow) and `animation.json`, the sidecar
with the whole request (its seed resolved) that `animate --from` reproduces. Frames are written as
they finish; a rerun of the same request into the same folder resumes after the last one written.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from .animation import AnimationRequest
from .errors import InvalidRequest, KeyartError
from .request import MAX_SEED

FRAMES = "frames"
VIDEO = "animation.mp4"
GIF = "animation.gif"
SIDECAR = "animation.json"
WORK = ".work"  # each frame's moved start, while the animation renders
FORMAT = "keyart-animation/1"
STATS_SIDE = 256  # colour coherence reads its statistics off thumbnails this wide
GIF_MAX_SIDE = 480  # the GIF's longest side: small enough to share, as platforms cap GIF sizes
FrameProgress = Callable[[int, int], None]  # (frames done, frames in all)


class Cancelled(KeyartError):
    """The animation was stopped between frames; the frames written are kept, and a rerun resumes."""

    exit_code = 130


@dataclass
class Animation:
    folder: Path
    request: AnimationRequest  # its seed resolved
    frames: list[Path]
    video: Path
    gif: Path
    sidecar: Path


def animate(
    engine: Any, request: AnimationRequest, folder: str | Path, *, progress: FrameProgress | None = None, stop: threading.Event | None = None,
) -> Animation:  # fmt: skip
    """Render `request` into `folder` with `engine` (resuming frames already there for this same request)."""
    from PIL import Image

    from .png_files import write_png

    folder = Path(folder)
    request = _resumable(folder, request, engine)
    seed = request.seed
    frames_dir, work = folder / FRAMES, folder / WORK
    frames_dir.mkdir(parents=True, exist_ok=True)
    _write_json(folder / SIDECAR, _sidecar(request, engine, done=False))
    motion, strengths = request.motion_values(), request.strengths()
    paths = [frames_dir / f"{i:04d}.png" for i in range(request.frames)]
    first = previous = None
    for i, path in enumerate(paths):
        if path.is_file():  # written by an earlier run of this same request
            previous = Image.open(path).convert("RGB")
            first = first or previous
            continue
        if stop is not None and stop.is_set():
            raise Cancelled(f"stopped after {i} of {request.frames} frames; the same command resumes from frame {i}")
        # 1. The start: the init image (frame 0, when given), else the previous frame moved and colour-matched.
        start = None
        if i == 0 and request.init_image is not None:
            start = _fitted(Image.open(request.init_image).convert("RGB"), (request.width, request.height))
        elif previous is not None:
            start = moved(previous, {k: v[i] for k, v in motion.items()})
            start = matched(start, first, request.colour_coherence)
        init = None
        if start is not None:
            work.mkdir(exist_ok=True)
            init = str(work / f"{i:04d}.png")
            start.save(init, compress_level=1)  # a start the next call reads once: speed over size
        # 2. The frame, rendered and written at once.
        frame_request = request.frame_request(i, init_image=init, seed=seed)
        place = {"frame": i, "frames": request.frames, "fps": request.fps, "prompt": frame_request.prompt, "seed": frame_request.seed,
                 "strength": strengths[i] if init else None, "motion": {k: round(v[i], 6) for k, v in motion.items()},
                 "blend": {"toward": frame_request.blend_prompt, "weight": frame_request.blend} if frame_request.styled_blend else None}  # fmt: skip
        [rendered] = engine.render(frame_request, lineage={"source": "animate", "animation": place})
        write_png(rendered, path)
        previous = rendered.image.convert("RGB")
        first = first or previous
        if progress is not None:
            progress(i + 1, request.frames)
    # 3. The video, the GIF and the finished sidecar.
    pictures = [Image.open(p).convert("RGB") for p in paths]
    write_video(pictures, folder / VIDEO, request.fps)
    write_gif(pictures, folder / GIF, request.fps)
    _write_json(folder / SIDECAR, _sidecar(request, engine, done=True))
    shutil.rmtree(work, ignore_errors=True)
    return Animation(folder, request, paths, folder / VIDEO, folder / GIF, folder / SIDECAR)


def load_sidecar(path: str | Path) -> AnimationRequest:
    """The request an animation's sidecar holds (`animate --from`)."""
    return AnimationRequest.from_dict(_read_sidecar(Path(path))["request"])


def _read_sidecar(path: Path) -> dict[str, Any]:
    """An animation sidecar's whole JSON, checked to be one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidRequest(f"no animation sidecar at {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidRequest(f"{path} is not an animation sidecar ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InvalidRequest(f"{path} is not a keyart animation sidecar (no \"format\": \"{FORMAT}\")")
    return data


# -- each frame's start ----------------------------------------------------------------------------


def moved(picture, motion: dict[str, float]):
    """`picture` zoomed about its centre, rotated (degrees, counter-clockwise) and translated (pixels); the border repeats its edge."""
    import cv2
    import numpy as np
    from PIL import Image

    w, h = picture.size
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), motion["angle"], motion["zoom"])
    matrix[0, 2] += motion["translation_x"]
    matrix[1, 2] += motion["translation_y"]
    out = cv2.warpAffine(np.asarray(picture), matrix, (w, h), flags=cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REPLICATE)
    return Image.fromarray(out)


def matched(picture, reference, mode: str):
    """`picture`'s colours matched to `reference`'s: each LAB channel's mean and spread ("lab"), or each RGB channel's histogram ("histogram")."""
    import numpy as np
    from PIL import Image

    if mode == "none" or reference is None:
        return picture
    src, ref = np.asarray(picture.convert("RGB")), np.asarray(reference.convert("RGB").resize(picture.size))
    if mode == "lab":
        import cv2

        def stats(x):  # each LAB channel's mean and spread, read off a thumbnail: the same figures, a fraction of the work
            small = cv2.resize(x, (min(STATS_SIDE, x.shape[1]), min(STATS_SIDE, x.shape[0])), interpolation=cv2.INTER_AREA)
            lab = cv2.cvtColor(small, cv2.COLOR_RGB2LAB).astype(np.float32)
            return lab.mean(axis=(0, 1)), lab.std(axis=(0, 1)) + 1e-6

        (mean_a, std_a), (mean_b, std_b) = stats(src), stats(ref)
        a = cv2.cvtColor(src, cv2.COLOR_RGB2LAB).astype(np.float32)
        a = (a - mean_a) * (std_b / std_a) + mean_b
        return Image.fromarray(cv2.cvtColor(np.clip(a, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB))
    out = np.empty_like(src)
    for c in range(3):  # each channel's values mapped so their distribution is the reference's
        values, counts = np.unique(src[..., c], return_counts=True)
        ref_values, ref_counts = np.unique(ref[..., c], return_counts=True)
        mapped = np.interp(np.cumsum(counts) / src[..., c].size, np.cumsum(ref_counts) / ref[..., c].size, ref_values)
        out[..., c] = np.interp(src[..., c], values, mapped).astype(np.uint8)
    return Image.fromarray(out)


def _fitted(picture, size: tuple[int, int]):
    from PIL import Image, ImageOps

    return ImageOps.fit(picture, size, Image.Resampling.LANCZOS)


# -- the outputs -----------------------------------------------------------------------------------


def write_video(pictures: list, path: Path, fps: float) -> Path:
    """An H.264 MP4 (yuv420p, CRF 18) of `pictures` at `fps`, written atomically."""
    import av

    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            stream.width, stream.height = pictures[0].size
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": "18"}
            for picture in pictures:
                for packet in stream.encode(av.VideoFrame.from_image(picture)):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_gif(pictures: list, path: Path, fps: float) -> Path:
    """A looping GIF of `pictures`, at most GIF_MAX_SIDE pixels a side (a preview and a fallback: the MP4 is the full
    picture); GIF delays are whole hundredths of a second, the nearest to 1/fps."""
    from PIL import Image

    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    delay = max(2, round(100 / fps)) * 10  # milliseconds
    scale = min(1.0, GIF_MAX_SIDE / max(pictures[0].size))
    if scale < 1:
        size = (round(pictures[0].width * scale), round(pictures[0].height * scale))
        pictures = [p.resize(size, Image.Resampling.LANCZOS) for p in pictures]
    pictures[0].save(tmp, format="GIF", save_all=True, append_images=pictures[1:], duration=delay, loop=0, disposal=1)
    os.replace(tmp, path)
    return path


# -- the sidecar and resuming ----------------------------------------------------------------------


def _identity(engine: Any) -> str:
    return f"{getattr(engine, 'name', '?')}:{getattr(engine, 'model_name', '?')}"


def _sidecar(request: AnimationRequest, engine: Any, *, done: bool) -> dict[str, Any]:
    return {
        "format": FORMAT, "request": request.to_dict(), "engine": _identity(engine), "done": done,
        "frames": [f"{FRAMES}/{i:04d}.png" for i in range(request.frames)], "video": VIDEO, "gif": GIF,
        "prompts": [request.prompt_at(i) for i in range(request.frames)],
    }  # fmt: skip


def _resumable(folder: Path, request: AnimationRequest, engine: Any) -> AnimationRequest:
    """The request to render into `folder`: its seed resolved, or an earlier run's when that run was this request."""
    sidecar = folder / SIDECAR
    if not sidecar.is_file():
        if folder.exists() and any(folder.iterdir()):
            raise InvalidRequest(f"{folder} is not empty and holds no animation; choose another --output")
        return request if request.seed >= 0 else request.replace(seed=random.randint(0, MAX_SEED))
    data = _read_sidecar(sidecar)
    held = AnimationRequest.from_dict(data["request"])
    same = (request.seed < 0 and request.replace(seed=held.seed) == held) or request == held
    if not same or data.get("engine") != _identity(engine):
        raise InvalidRequest(f"{folder} holds another animation ({sidecar.name} differs); choose another --output, or delete the folder")
    return held


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)

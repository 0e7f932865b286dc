"""The a1111 engine: renders on a server that speaks AUTOMATIC1111's API (A1111, Forge, SD.Next, or
another keyart's `python -m imagegen serve`), at KEYART_A1111_URL.

A RenderRequest becomes A1111's txt2img or img2img body (the fields of
https://github.com/AUTOMATIC1111/stable-diffusion-webui/wiki/API, ../shared/reference/image_apis.md):
the styled prompt as sent text (keyart's styles are applied here, A1111's `styles` left empty), the
sampler and schedule type by A1111's own names, the hires fix, variation seeds, img2img, inpainting,
and outpainting as an inpaint of the grown canvas keyart makes. `<lora:...>` and the prompt
language travel in the text, which A1111 reads the same way. The refiner needs a checkpoint name on
the remote and is refused. The remote's seeds, infotexts and model land in each image's lineage;
progress is read from /sdapi/v1/progress while the render runs, and a cancel sends /interrupt.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import threading
from typing import Any

from .. import canvas
from ..errors import KeyartError, RenderFailed
from ..metadata import infotext_for, lineage_for, parse_infotext
from ..request import RenderedImage, RenderRequest
from ..settings import ImageSettings, variable
from . import Progress, check_request
from .remote_http import Remote, checked_url
from .remote_images import decode_image, png_bytes

log = logging.getLogger(__name__)

URL_ENV = variable("a1111_url").env
KEY_ENV = variable("a1111_api_key").env
OWNER_HEADER = "X-Keyart-Owner"  # a keyart server attributes the jobs to it: /interrupt stops only ours
POLL_S = 0.5  # how often progress is read while a render runs
UPSCALERS = {"latent": "Latent", "lanczos": "Lanczos"}  # the hires fix's, by A1111's names
RESIZE_MODES = {"lanczos": 0, "latent": 3}  # A1111's "Just resize" and "Just resize (latent upscale)"
INPAINT_ORIGINAL = 1  # A1111's inpainting_fill "original": start from the image under the mask, as keyart does


class A1111Engine:
    """A remote A1111-compatible server as an engine: same request in, RenderedImages out."""

    name = "a1111"

    def __init__(self, url: str, *, api_key: str | None = None, timeout: float = 600.0, remote: Remote | None = None):
        headers = {OWNER_HEADER: f"keyart-a1111-{secrets.token_hex(6)}"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.remote = remote or Remote(
            checked_url(url, URL_ENV), what="the a1111 engine", variable=URL_ENV, key_variable=KEY_ENV, headers=headers, timeout=timeout
        )
        # The remote's model, asked once: it names the images' model, and a wrong address fails here, before any job.
        options = self.remote.json("GET", "/sdapi/v1/options")
        self.model_name = str((options or {}).get("sd_model_checkpoint") or "a1111") if isinstance(options, dict) else "a1111"

    @classmethod
    def from_settings(cls, settings: ImageSettings) -> A1111Engine:
        return cls(settings.a1111_url, api_key=settings.a1111_api_key, timeout=settings.remote_timeout)

    def close(self) -> None:
        self.remote.close()

    def render(self, request: RenderRequest, *, lineage: dict[str, Any] | None = None, progress: Progress | None = None) -> list[RenderedImage]:
        check_request(self.name, request)  # the refiner fails here, before any call
        request = request.with_seed()
        # 1. The body, and the route its mode takes.
        path, body = ("/sdapi/v1/img2img", img2img_body(request)) if request.init_image is not None else ("/sdapi/v1/txt2img", txt2img_body(request))
        # 2. The render, its progress read alongside; a cancel interrupts it on the server.
        total = request.num_inference_steps * request.batch_count
        answer = self._post_watching(path, body, total, progress)
        # 3. The images, each with the remote's seed, infotext and model in its lineage.
        results = self._images(request, answer, lineage)
        if progress is not None:
            progress(total, total)
        return results

    # -- the call ---------------------------------------------------------------------------

    def _post_watching(self, path: str, body: dict[str, Any], total: int, progress: Progress | None) -> dict[str, Any]:
        """POST in a thread of its own while this one reads /progress and reports it; a progress
        callback that raises (a cancel) interrupts the remote render, and the exception goes on."""
        outcome: dict[str, Any] = {}
        finished = threading.Event()

        def post() -> None:
            try:
                outcome["answer"] = self.remote.json("POST", path, json=body)
            except BaseException as exc:  # handed to the render thread below
                outcome["error"] = exc
            finally:
                finished.set()

        threading.Thread(target=post, name="a1111-render", daemon=True).start()
        done = 0
        while not finished.wait(POLL_S):
            if progress is None:
                continue
            done = max(done, self._progress(total))
            try:
                progress(done, total)
            except BaseException:
                self._interrupt()
                raise
        if "error" in outcome:
            raise outcome["error"]
        answer = outcome["answer"]
        if not isinstance(answer, dict) or not isinstance(answer.get("images"), list):
            raise RenderFailed(f"the a1111 engine: {self.remote.shown}{path} answered without an `images` list")
        return answer

    def _progress(self, total: int) -> int:
        """Steps done by the server's account (best effort: a failed read counts as no news)."""
        response = self.remote.once("GET", "/sdapi/v1/progress", params={"skip_current_image": "true"}, timeout=5)
        try:
            fraction = float(response.json().get("progress") or 0.0) if response is not None and response.status_code == 200 else 0.0
        except (ValueError, AttributeError, TypeError):  # progress is advisory: an odd answer is no news
            return 0
        return min(total - 1, max(0, int(fraction * total)))

    def _interrupt(self) -> None:
        if self.remote.once("POST", "/sdapi/v1/interrupt") is None:  # the cancel stands even if the server cannot be told
            log.warning("the a1111 engine could not interrupt the render on %s", self.remote.shown)

    # -- the answer -------------------------------------------------------------------------

    def _images(self, request: RenderRequest, answer: dict[str, Any], lineage: dict[str, Any] | None) -> list[RenderedImage]:
        info = _info(answer.get("info"))
        wanted = request.batch_size * request.batch_count
        first = info.get("index_of_first_image") if isinstance(info.get("index_of_first_image"), int) else 0  # a grid may come first
        images = answer["images"][first : first + wanted]
        if len(images) < wanted:
            raise RenderFailed(f"the a1111 engine asked {self.remote.shown} for {wanted} image(s) and got {len(images)}")
        seeds = _list(info.get("all_seeds"), wanted)
        infotexts = _list(info.get("infotexts"), wanted)
        model = str(info.get("sd_model_name") or self.model_name)
        results = []
        for index, data in enumerate(images):
            image, text = decode_image(_b64(data), what=f"image {index} from {self.remote.shown}")
            infotext = infotexts[index] or text.get("parameters") or None
            seed = _seed(seeds[index], infotext, request.seeds()[index])
            remote = {"url": self.remote.shown, "model": model, "seed": seed, "infotext": infotext}
            if self.remote.retries:
                remote["retries"] = list(self.remote.retries)
            if image.size != request.output_size:
                remote["size"] = f"{image.size[0]}x{image.size[1]}"  # a server that snaps sizes to its own table
            own = infotext_for(request, seed=seed, model=model, index=index, extra={"Engine": f"a1111 ({self.remote.shown})"})
            record = lineage_for(request, seed=seed, index=index, engine=self.name, model=model, extra={"remote": remote}, lineage=lineage)
            results.append(RenderedImage(image=image, request=request, seed=seed, index=index, infotext=infotext or own, lineage=record))
        return results


# -- RenderRequest -> A1111's body -------------------------------------------------------------


def txt2img_body(request: RenderRequest) -> dict[str, Any]:
    """A1111's StableDiffusionProcessingTxt2Img fields for a seed-resolved request."""
    prompt, negative = request.styled
    body: dict[str, Any] = {
        "prompt": prompt, "negative_prompt": negative, "styles": [], "seed": request.seed,
        "sampler_name": request.sampler, "scheduler": request.schedule_type, "steps": request.num_inference_steps,
        "cfg_scale": request.guidance_scale, "width": request.width, "height": request.height,
        "batch_size": request.batch_size, "n_iter": request.batch_count, "send_images": True, "save_images": False,
    }  # fmt: skip
    if request.subseed_strength > 0:
        body |= {"subseed": request.subseed, "subseed_strength": request.subseed_strength}
    if request.tiling == "on":
        body["tiling"] = True
    if request.hr_scale > 1 and request.init_image is None:
        body |= {
            "enable_hr": True, "hr_scale": request.hr_scale, "hr_upscaler": UPSCALERS[request.hr_upscaler],
            "hr_second_pass_steps": request.hr_second_pass_steps, "denoising_strength": request.denoising_strength,
        }  # fmt: skip
    return body


def img2img_body(request: RenderRequest) -> dict[str, Any]:
    """A1111's img2img fields: the init image (an outpaint's grown canvas) and mask as base64 PNGs."""
    body = txt2img_body(request)
    image, mask = canvas.source(request)  # outpainting: the canvas grown and a mask over the new border
    body |= {
        "init_images": [base64.b64encode(png_bytes(image)).decode("ascii")], "denoising_strength": request.strength,
        "resize_mode": RESIZE_MODES[request.init_upscaler],
    }  # fmt: skip
    if mask is not None:
        body |= {
            "mask": base64.b64encode(png_bytes(mask)).decode("ascii"), "mask_blur": request.mask_blur,
            "inpainting_fill": INPAINT_ORIGINAL, "inpaint_full_res": request.inpaint_area == "masked",
            "inpaint_full_res_padding": request.masked_padding, "inpainting_mask_invert": 0,
        }  # fmt: skip
    return body


# -- reading A1111's answer --------------------------------------------------------------------


def _info(text: Any) -> dict[str, Any]:
    """A1111's `info`: a JSON string (a dict from some forks); {} when it cannot be read."""
    if isinstance(text, dict):
        return text
    try:
        info = json.loads(text) if isinstance(text, str) else {}
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


def _list(values: Any, length: int) -> list[Any]:
    values = values if isinstance(values, list) else []
    return (values + [None] * length)[:length]


def _b64(data: Any) -> bytes:
    if not isinstance(data, str):
        raise RenderFailed("the a1111 engine got an image that is not base64 text")
    return base64.b64decode(data.partition(",")[2] if data.startswith("data:") else data)


def _seed(given: Any, infotext: str | None, ours: int) -> int:
    """The remote's seed for an image: from `all_seeds`, else its infotext, else the one sent."""
    if isinstance(given, int) and not isinstance(given, bool) and given >= 0:
        return given
    if infotext:
        try:
            return int(parse_infotext(infotext)[2].get("Seed", ours))
        except (KeyartError, ValueError):
            pass
    return ours

"""The openai engine: renders through the OpenAI Images API (OpenAI's GPT image models, or any
compatible server, a keyart server's /v1 included) at KEYART_IMAGES_BASE_URL.

Text to image is `POST /images/generations`; img2img, inpainting and outpainting are
`POST /images/edits` with the init image (an outpaint's grown canvas) and OpenAI's mask (transparent
where to edit). The API has no seed, negative prompt, steps, CFG scale, sampler or strength: against
a keyart server, whose /models says `owned_by: keyart`, those travel as its documented extra fields
and are honoured; elsewhere they are not sent, and each image's lineage lists them under
`remote.not_sent`. Features the API cannot do at all (the hires fix, variation seeds, the refiner,
LoRAs) are refused before any call.
"""

from __future__ import annotations

import base64
import logging
import math
from typing import Any

from .. import canvas
from ..errors import InvalidRequest, RenderFailed
from ..metadata import LINEAGE_KEY, infotext_for, lineage_for, parse_infotext
from ..request import RenderedImage, RenderRequest
from ..settings import OPENAI_IMAGES_MODEL, OPENAI_IMAGES_URL, ImageSettings, variable
from . import Progress, check_request
from .remote_http import Remote, checked_url
from .remote_images import decode_image, edit_mask, png_bytes

log = logging.getLogger(__name__)

URL_ENV = variable("images_base_url").env
MODEL_ENV = variable("images_model").env
KEY_ENV = variable("images_api_key").env
KEYART_OWNER = "keyart"  # /models' owned_by on a keyart server
KEYART_MODEL = "keyart-sdxl"
MAX_N = 10  # the API's bound on n: more images are several calls
GPT_IMAGE_SIZES = ((1024, 1024), (1536, 1024), (1024, 1536))  # what GPT image models take
NOT_SENT = ("seed", "negative_prompt", "num_inference_steps", "guidance_scale", "sampler", "schedule_type", "refiner", "strength")


class OpenAIImagesEngine:
    """A remote OpenAI Images API as an engine."""

    name = "openai"

    def __init__(
        self, base_url: str | None = None, *, model: str | None = None, api_key: str | None = None, timeout: float = 600.0, remote: Remote | None = None
    ):
        url = checked_url(base_url, URL_ENV, default=OPENAI_IMAGES_URL)
        if not api_key and url.rstrip("/") == OPENAI_IMAGES_URL:
            raise InvalidRequest(f"the openai engine needs a key for {OPENAI_IMAGES_URL}: set {KEY_ENV} (or OPENAI_API_KEY)")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.remote = remote or Remote(url, what="the openai engine", variable=URL_ENV, key_variable=KEY_ENV, headers=headers, timeout=timeout)
        # 1. What the server is: a keyart server honours keyart's extra fields. /models is optional in
        # compatible servers, so a 404 there only means "not keyart".
        listed = self._models()
        self.keyart = any(owner == KEYART_OWNER for owner in listed.values())
        # 2. The model: as configured, else keyart-sdxl on a keyart server, else OpenAI's current one.
        self.model_name = (model or "").strip() or (KEYART_MODEL if self.keyart else OPENAI_IMAGES_MODEL)
        if listed and self.model_name not in listed:
            known = f"the openai engine: {self.remote.shown} lists no model {self.model_name!r} ({MODEL_ENV}); it lists: {', '.join(sorted(listed)[:12])}"
            if self.keyart:  # a keyart server lists every model it has
                raise InvalidRequest(known)
            log.warning("%s; trying it anyway (some servers list only their chat models)", known)

    @classmethod
    def from_settings(cls, settings: ImageSettings) -> OpenAIImagesEngine:
        return cls(settings.images_base_url, model=settings.images_model, api_key=settings.images_api_key, timeout=settings.remote_timeout)

    def close(self) -> None:
        self.remote.close()

    def _models(self) -> dict[str, str]:
        """{model id: owned_by} from GET /models; {} where the server has no such route."""
        response = self.remote.once("GET", "/models", timeout=min(30.0, self.remote.timeout))
        if response is None or response.status_code in (401, 403, 408, 409, 429) or response.status_code >= 500:
            try:  # unreachable, busy or a refused key: retried, and said with the variable to check
                response = self.remote.call("GET", "/models")
            except InvalidRequest:
                return {}
        if response.status_code != 200:
            return {}
        try:
            data = response.json().get("data") or []
            return {str(m["id"]): str(m.get("owned_by") or "") for m in data if isinstance(m, dict) and "id" in m}
        except (ValueError, AttributeError, TypeError):
            return {}

    def render(self, request: RenderRequest, *, lineage: dict[str, Any] | None = None, progress: Progress | None = None) -> list[RenderedImage]:
        check_request(self.name, request)  # the hires fix, variation seeds, the refiner, LoRAs: refused here
        request = request.with_seed()
        size = self._size(request)
        wanted = request.batch_size * request.batch_count
        # 1. The images, at most MAX_N a call; a keyart server numbers seeds on from the one sent.
        results: list[RenderedImage] = []
        if progress is not None:
            progress(0, wanted)
        while len(results) < wanted:
            n = min(MAX_N, wanted - len(results))
            seed = request.seeds()[len(results)]
            answer = self._call(request, size, n, seed)
            results += self._images(request, answer, size, len(results), n, lineage)
            if progress is not None:
                progress(len(results), wanted)  # a cancel stops between calls
        return results

    def _size(self, request: RenderRequest) -> tuple[int, int]:
        """The size to ask for: GPT image models take three, the nearest in aspect is chosen (and
        recorded); other servers are asked for the request's own."""
        width, height = request.output_size if request.init_image is not None else (request.width, request.height)
        if not self.model_name.startswith("gpt-image"):
            return width, height
        aspect = math.log(width / height)
        return min(GPT_IMAGE_SIZES, key=lambda s: abs(math.log(s[0] / s[1]) - aspect))

    def _extras(self, request: RenderRequest, seed: int) -> dict[str, Any]:
        """keyart's extra fields, for a keyart server only."""
        if not self.keyart:
            return {}
        extras: dict[str, Any] = {
            "seed": seed, "steps": request.num_inference_steps, "guidance_scale": request.guidance_scale,
            "sampler": request.sampler, "schedule_type": request.schedule_type, "refiner": request.refiner,
        }  # fmt: skip
        negative = request.styled[1]
        if negative:
            extras["negative_prompt"] = negative
        if request.init_image is not None:
            extras["strength"] = request.strength
        return extras

    def _call(self, request: RenderRequest, size: tuple[int, int], n: int, seed: int) -> dict[str, Any]:
        fields: dict[str, Any] = {"model": self.model_name, "prompt": request.styled[0], "n": n, "size": f"{size[0]}x{size[1]}"}
        if self.model_name.startswith("gpt-image"):
            fields["output_format"] = "png"  # GPT image models always answer base64 and take no response_format
        else:
            fields["response_format"] = "b64_json"
        fields |= self._extras(request, seed)
        if request.init_image is None:
            return self.remote.json("POST", "/images/generations", json=fields)
        # Edits: multipart, every field a string, the image (and OpenAI's mask) as PNG files.
        image, mask = canvas.source(request)
        files = [("image", ("image.png", png_bytes(image), "image/png"))]
        if mask is not None:
            files.append(("mask", ("mask.png", png_bytes(edit_mask(mask)), "image/png")))
        return self.remote.json("POST", "/images/edits", data={k: str(v) for k, v in fields.items()}, files=files)

    def _images(self, request, answer: Any, size, first: int, n: int, lineage) -> list[RenderedImage]:
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, list) or len(data) < n:
            raise RenderFailed(f"the openai engine asked {self.remote.shown} for {n} image(s) and got {len(data) if isinstance(data, list) else 'no data list'}")
        results = []
        for offset, item in enumerate(data[:n]):
            index = first + offset
            image, text = decode_image(self._bytes(item, index), what=f"image {index} from {self.remote.shown}")
            infotext = text.get("parameters")  # a keyart server's PNGs carry their infotext
            seed = request.seeds()[index]
            if infotext:
                try:
                    seed = int(parse_infotext(infotext)[2].get("Seed", seed))
                except ValueError:
                    pass
            remote: dict[str, Any] = {"url": self.remote.shown, "model": self.model_name, "size": f"{size[0]}x{size[1]}"}
            if item.get("revised_prompt"):
                remote["revised_prompt"] = item["revised_prompt"]
            if infotext:
                remote |= {"seed": seed, "infotext": infotext}
            if LINEAGE_KEY in text:
                remote["lineage"] = True  # the server's own keyart chunk came with it
            if not self.keyart:
                remote["not_sent"] = [f for f in NOT_SENT if f != "strength" or request.init_image is not None]
            if self.remote.retries:
                remote["retries"] = list(self.remote.retries)
            label = "openai (remote)" if self.keyart else "openai (remote; seed, negative prompt, steps, CFG and sampler not sent)"
            own = infotext_for(request, seed=seed, model=self.model_name, index=index, extra={"Engine": label})
            record = lineage_for(request, seed=seed, index=index, engine=self.name, model=self.model_name, extra={"remote": remote}, lineage=lineage)
            results.append(RenderedImage(image=image, request=request, seed=seed, index=index, infotext=infotext or own, lineage=record))
        return results

    def _bytes(self, item: Any, index: int) -> bytes:
        """An answer item's image: b64_json, else a data: URL, else a URL fetched from the same server's client."""
        if not isinstance(item, dict):
            raise RenderFailed(f"the openai engine: answer item {index} is not an object")
        if isinstance(item.get("b64_json"), str):
            return base64.b64decode(item["b64_json"])
        url = item.get("url")
        if isinstance(url, str) and url.startswith("data:"):
            return base64.b64decode(url.partition(",")[2])
        if isinstance(url, str) and url:
            return self.remote.fetch(url)
        raise RenderFailed(f"the openai engine: answer item {index} has neither b64_json nor url")

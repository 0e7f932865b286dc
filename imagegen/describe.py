"""Image to prompt: a caption from a captioning model, extended with the words a CLIP model ranks highest.

The approach of clip-interrogator, written here: a BLIP-style captioner (transformers, from
KEYART_CAPTION_MODEL) says what the picture shows; a CLIP model (KEYART_CLIP_MODEL) ranks every
medium, style and lighting phrase of `describe_words` by its similarity to the image and the best of
each joins the caption; then composition and finish words are chained on, one at a time, while each
raises the similarity of the whole prompt to the image. The trace keeps the caption, each kind's
ranking with its scores and every step of the chain.

Without the models the prompt is the offline one, labelled so: light, colour and framing words read
from the pixels (`describe_offline`), after the caption when only the captioner is there.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from .describe_offline import colour_vector, pixel_words
from .describe_words import FLAVORS, KINDS
from .errors import InvalidRequest, ModelNotFound
from .pretrained import load
from .settings import transformers_model

log = logging.getLogger(__name__)

CAPTION_ENV = "KEYART_CAPTION_MODEL"
CLIP_ENV = "KEYART_CLIP_MODEL"
TOP = 5  # each kind's ranking as the trace keeps it
CHAIN_CANDIDATES = 12  # the flavors most like the image that the chain tries
MAX_CHAIN = 4  # at most this many flavors join the prompt
MIN_GAIN = 0.001  # a flavor joins only if it raises the prompt's cosine similarity by this much (0.1 on the trace's x100 scale)
MAX_CAPTION_TOKENS = 40
OFFLINE_EMBEDDING = "offline:colour-histogram"  # "more like this" without a CLIP model


@dataclass
class Description:
    """A prompt for an image and how it was found: `method` names the models, or says it is the offline one."""

    prompt: str
    caption: str
    method: str  # "caption (blip) + CLIP ranking (clip-vit)" | "offline: pixel statistics (...)"
    offline: bool
    trace: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"prompt": self.prompt, "caption": self.caption, "method": self.method, "offline": self.offline, "trace": self.trace}


def open_image(image: Image.Image | str | Path | bytes) -> Image.Image:
    """`image` (a picture, a path or a file's bytes) as RGB; one that is not there or not a picture is an InvalidRequest."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    import io

    from PIL import UnidentifiedImageError

    what = "the image" if isinstance(image, bytes) else str(image)
    try:
        with Image.open(io.BytesIO(image) if isinstance(image, bytes) else Path(image)) as opened:
            return opened.convert("RGB")
    except FileNotFoundError:
        raise InvalidRequest(f"no image at {image}") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InvalidRequest(f"{what} is not a PNG, JPEG or WebP keyart can read ({exc})") from None


class Describer:
    """Turns images into prompts with the configured models, loaded on first use and kept (thread-safe)."""

    def __init__(self, caption_model: str | None = None, clip_model: str | None = None, *, device: str | None = None):
        self.caption_model = transformers_model(caption_model, CAPTION_ENV) if caption_model else None
        self.clip_model = transformers_model(clip_model, CLIP_ENV) if clip_model else None
        self.device = device
        self._lock = threading.RLock()
        self._caption: tuple[Any, Any] | None = None  # (model, processor)
        self._clip: tuple[Any, Any] | None = None
        self._phrases: dict[str, Any] = {}  # kind -> normalised text features of its phrases

    @classmethod
    def from_settings(cls, settings: Any) -> Describer:
        return cls(getattr(settings, "caption_model", None), getattr(settings, "clip_model", None), device=getattr(settings, "device", None))

    @property
    def offline(self) -> bool:
        return self.caption_model is None and self.clip_model is None

    def describe(self, image: Image.Image | str | Path | bytes) -> Description:
        picture = open_image(image)
        with self._lock:  # one image at a time through the models: they are loaded once, and not re-entrant on one device
            caption = self._captioned(picture) if self.caption_model else ""
            words, measured = pixel_words(picture)
            trace: dict[str, Any] = {"models": {"caption": self.caption_model, "clip": self.clip_model}, "pixels": measured}
            if self.clip_model is None:
                kept = [w for w in (caption, *words) if w]
                trace["offline_words"] = words
                why = f"no caption or CLIP model: {CAPTION_ENV} and {CLIP_ENV} are not set" if not caption else f"no CLIP model: {CLIP_ENV} is not set"
                method = f"offline: pixel statistics ({why})" if not caption else f"caption ({_name(self.caption_model)}) + offline pixel words ({why})"
                return Description(", ".join(kept), caption, method, offline=True, trace=trace)
            prompt, ranked = self._ranked(picture, caption, trace)
        method = f"caption ({_name(self.caption_model)}) + CLIP ranking ({_name(self.clip_model)})" if caption else f"CLIP ranking ({_name(self.clip_model)}; no caption model: {CAPTION_ENV} is not set)"
        trace["ranking"] = ranked
        return Description(prompt, caption, method, offline=False, trace=trace)

    # -- the caption ---------------------------------------------------------------------------

    def _captioned(self, picture: Image.Image) -> str:
        import torch

        model, processor = self._caption_parts()
        inputs = processor(images=picture, return_tensors="pt").to(model.device)
        with torch.inference_mode():
            ids = model.generate(**inputs, max_new_tokens=MAX_CAPTION_TOKENS, do_sample=False)
        return " ".join(processor.decode(ids[0], skip_special_tokens=True).split())

    def _caption_parts(self) -> tuple[Any, Any]:
        if self._caption is None:
            from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor, BlipForConditionalGeneration

            try:
                kind = AutoConfig.from_pretrained(self.caption_model).model_type
            except OSError as exc:
                raise ModelNotFound(f"{CAPTION_ENV}={self.caption_model}: the captioning model cannot be loaded ({exc})") from None
            # BLIP by its own class; GIT, BLIP-2 and the other image-to-text models transformers knows by the auto class.
            model_class = BlipForConditionalGeneration if kind == "blip" else AutoModelForImageTextToText
            self._caption = load(model_class, AutoProcessor, self.caption_model, env=CAPTION_ENV, what="captioning model", device=self.device)
        return self._caption

    # -- the CLIP ranking ------------------------------------------------------------------------

    def _ranked(self, picture: Image.Image, caption: str, trace: dict[str, Any]) -> tuple[str, dict[str, list[list[Any]]]]:
        """(prompt, each kind's top phrases with scores): the caption with each kind's best, then the chain."""
        import torch

        image = self._image_features(picture)
        ranked, parts = {}, [caption] if caption else []
        for kind in KINDS:
            scores = (self._phrase_features(kind) @ image).tolist()
            order = sorted(range(len(scores)), key=lambda i: -scores[i])
            ranked[kind] = [[KINDS[kind][i], round(100 * scores[i], 2)] for i in order[:TOP]]
            if kind != "flavor":
                parts.append(KINDS[kind][order[0]])
        prompt = ", ".join(parts)
        best = float(self._text_features([prompt])[0] @ image)
        chain = [[prompt, round(100 * best, 2)]]
        # The chain: of the flavors most like the image, add the one that raises the whole prompt's similarity most, while one does.
        flavor_scores = (self._phrase_features("flavor") @ image).tolist()
        left = [FLAVORS[i] for i in sorted(range(len(FLAVORS)), key=lambda i: -flavor_scores[i])[:CHAIN_CANDIDATES]]
        with torch.inference_mode():
            while left and len(chain) <= MAX_CHAIN:
                tries = [f"{prompt}, {f}" for f in left]
                sims = (self._text_features(tries) @ image).tolist()
                at = max(range(len(sims)), key=lambda i: sims[i])
                if sims[at] < best + MIN_GAIN:
                    break
                prompt, best = tries[at], sims[at]
                chain.append([left.pop(at), round(100 * best, 2)])
        trace["chain"] = chain
        trace["similarity"] = round(100 * best, 2)
        return prompt, ranked

    def _clip_parts(self) -> tuple[Any, Any]:
        if self._clip is None:
            from transformers import CLIPModel, CLIPProcessor

            self._clip = load(CLIPModel, CLIPProcessor, self.clip_model, env=CLIP_ENV, what="CLIP model", device=self.device)
        return self._clip

    def _image_features(self, picture: Image.Image):
        return self.image_features([picture])[0]

    def image_features(self, pictures: list[Image.Image]):
        """Unit-length CLIP image embeddings, one row per picture (for similarity search too)."""
        import torch

        with self._lock:
            model, processor = self._clip_parts()
            inputs = processor(images=pictures, return_tensors="pt").to(model.device)
            with torch.inference_mode():
                out = model.get_image_features(pixel_values=inputs["pixel_values"])
        return _unit(getattr(out, "pooler_output", out)).float().cpu()

    @property
    def embedding(self) -> str:
        """Which embedding `embed` gives: "clip:<model>", or the offline colour histogram."""
        return f"clip:{self.clip_model}" if self.clip_model else OFFLINE_EMBEDDING

    def embed(self, pictures: list[Image.Image]) -> list[list[float]]:
        """Unit-length embeddings of `pictures` by the CLIP model, else offline colour histograms (`embedding` says which)."""
        if self.clip_model is None:
            return [colour_vector(p) for p in pictures]
        return self.image_features([p.convert("RGB") for p in pictures]).tolist()

    def _text_features(self, texts: list[str]):
        import torch

        model, processor = self._clip_parts()
        inputs = processor(text=texts, return_tensors="pt", padding=True, truncation=True).to(model.device)
        with torch.inference_mode():
            out = model.get_text_features(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        return _unit(getattr(out, "pooler_output", out)).float().cpu()

    def _phrase_features(self, kind: str):
        if kind not in self._phrases:
            self._phrases[kind] = self._text_features(list(KINDS[kind]))
        return self._phrases[kind]


def _unit(features):
    return features / features.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def _name(model: str | None) -> str:
    return Path(str(model)).name

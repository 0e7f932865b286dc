"""Property tests for the image service's bodies (OpenAI Images API, A1111 API, jobs API): each
body becomes a request or a 4xx, never a server error.

The profile, strategies and rules they share are in tests/properties.py.
"""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import ValidationError

from imagegen.errors import KeyartError
from imagegen.request import MAX_SEED, RenderRequest
from tests.properties import TEXT_OPTIONS, allowed, infotexts, json_values, loose, prompt_like, props, request_dicts, required_infotext, sizes_text

# -- the image service's bodies -----------------------------------------------------------------

OPENAI_FIELDS = {
    "prompt": prompt_like,
    "model": st.sampled_from(["keyart-sdxl", "keyart-sdxl-anime", "keyart-sdxl-", "dall-e-3", " keyart-sdxl "]),
    "n": st.integers(-2, 12),
    "size": st.one_of(sizes_text, st.text(max_size=8)),
    "quality": st.sampled_from(["low", "medium", "high", "auto", "hd", "ultra", " LOW "]),
    "background": st.sampled_from(["auto", "opaque", "transparent", "clear"]),
    "output_format": st.sampled_from(["png", "jpeg", "webp", "gif", "PNG"]),
    "output_compression": st.integers(-5, 105),
    "response_format": st.sampled_from(["b64_json", "url", "xml"]),
    "moderation": st.sampled_from(["auto", "low", "strict"]),
    "style": st.sampled_from(["vivid", "natural", "odd"]),
    "stream": st.booleans(),
    "negative_prompt": prompt_like,
    "seed": st.integers(-2, MAX_SEED + 2),
    "steps": st.integers(-2, 70),
    "num_inference_steps": st.integers(-2, 70),
    "guidance_scale": st.floats(),
    "strength": st.floats(),
    "sampler": TEXT_OPTIONS["sampler"],
    "schedule_type": TEXT_OPTIONS["schedule_type"],
    "refiner": TEXT_OPTIONS["refiner"],
}
openai_bodies = st.fixed_dictionaries({"prompt": loose(prompt_like)}, optional={k: loose(v) for k, v in OPENAI_FIELDS.items() if k != "prompt"} | {"extra": json_values})


def api_allowed(call):
    """call(), or None when it raises an error the routes answer with a 4xx."""
    from imagegen.server.errors import ApiError

    try:
        return call()
    except ApiError as exc:
        assert 400 <= exc.status < 500, f"ApiError {exc.status}: {exc}"
        return None
    except (KeyartError, ValidationError):
        return None


@props(150)
@given(openai_bodies, st.integers(1, 8))
def test_openai_fields(body, max_batch):
    from imagegen.server.limits import Limits
    from imagegen.server.openai_fields import ImageFields, request_fields

    fields = api_allowed(lambda: ImageFields.model_validate(body))
    if fields is None:
        return
    found = api_allowed(lambda: request_fields(fields, Limits(), max_batch))
    if found is not None:
        api_allowed(lambda: RenderRequest(**found[0]))


A1111_FIELDS = {
    "prompt": prompt_like,
    "negative_prompt": prompt_like,
    "styles": st.lists(st.sampled_from(["anime", "Cinematic", "nope", ""]), max_size=2),
    "seed": st.integers(-2, MAX_SEED + 2),
    "subseed": st.integers(-2, MAX_SEED + 2),
    "subseed_strength": st.floats(),
    "sampler_name": TEXT_OPTIONS["sampler"],
    "sampler_index": TEXT_OPTIONS["sampler"],
    "scheduler": TEXT_OPTIONS["schedule_type"],
    "batch_size": st.integers(-2, 12),
    "n_iter": st.integers(-2, 12),
    "steps": st.integers(-2, 70),
    "cfg_scale": st.floats(),
    "width": st.integers(-8, 5000),
    "height": st.integers(-8, 5000),
    "enable_hr": st.booleans(),
    "hr_scale": st.floats(),
    "hr_upscaler": st.sampled_from(["Latent", "Latent (nearest)", "Lanczos", "ESRGAN_4x", "", " "]),
    "hr_second_pass_steps": st.integers(-2, 200),
    "denoising_strength": st.floats(),
    "refiner_checkpoint": st.sampled_from(["", "None", "sdxl_refiner", " "]),
    "refiner_switch_at": st.floats(),
    "resize_mode": st.integers(-1, 4),
    "mask_blur": st.integers(-1, 70),
    "inpaint_full_res": st.one_of(st.booleans(), st.integers(-1, 2)),
    "inpaint_full_res_padding": st.integers(-1, 300),
}
a1111_bodies = st.fixed_dictionaries({}, optional={k: loose(v) for k, v in A1111_FIELDS.items()} | {"extra": json_values})


@props(150)
@given(a1111_bodies, st.booleans())
def test_a1111_fields(body, img2img):
    from imagegen.server.a1111_fields import Img2ImgFields, Txt2ImgFields, request_values
    from imagegen.server.limits import Limits

    model = Img2ImgFields if img2img else Txt2ImgFields
    fields = api_allowed(lambda: model.model_validate(body))
    if fields is None:
        return
    values = api_allowed(lambda: request_values(fields, Limits(), img2img=img2img))
    if values is not None:
        api_allowed(lambda: RenderRequest(**values))


@props(100)
@example(text="1" * 4301 + "x1")
@given(st.one_of(st.none(), sizes_text, st.text(max_size=12), st.sampled_from(["auto", " AUTO ", "1024×1024", "8 x 8"])))
def test_limits_size(text):
    from imagegen.server.limits import Limits

    limits = Limits()
    size = allowed(lambda: limits.size(text))
    assert size is None or size in limits.sizes


@props(60)
@example(text="\nSteps: 0, Seed: 0, Size: " + "1" * 4301 + "x1")
@given(st.one_of(infotexts, required_infotext))
def test_a1111_parsed_parameters(text):
    from imagegen.server.a1111_fields import parsed_parameters

    assert isinstance(parsed_parameters(text), dict)


@props(60)
@given(st.one_of(st.text(max_size=40), st.binary(max_size=30).map(lambda b: "data:image/png;base64," + b.hex()), json_values))
def test_a1111_decode_b64(text):
    from imagegen.server.a1111_fields import decode_b64

    data = api_allowed(lambda: decode_b64(text, "init_images"))
    assert data is None or isinstance(data, bytes)


@props(100)
@given(st.one_of(request_dicts, st.fixed_dictionaries({}, optional={"priority": json_values, "owner": json_values}).map(lambda d: {"prompt": "a cat", **d}), json_values))
def test_jobs_body(body):
    from imagegen.server.jobs_api import _request
    from imagegen.server.limits import Limits

    http = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(limits=Limits())))
    api_allowed(lambda: _request(body, http))

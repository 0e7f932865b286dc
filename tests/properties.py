"""Property tests for every parser of user text: each input parses or raises keyart's own error, quickly.

The allowed errors are `KeyartError` and its kin (the language side's included); for the image
service's bodies also pydantic's ValidationError at model construction (the routes answer 400) and
`ApiError` with a 4xx status. Where a parser has an inverse (format/parse), the round trip holds.
One hypothesis profile (below) bounds every example's time and the file's run time. Each
`@example` is a falsifying example a search found (one, where its comment says so, read from the
code), kept so that a property fails the same way on every run until its parser is fixed.

Shared by the test_properties_*.py files: the hypothesis profile, the strategies for user text,
and `allowed`, which lets keyart's own errors through and nothing else.
"""

from __future__ import annotations

import json
import tempfile
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from imagegen import metadata, samplers
from imagegen.errors import KeyartError
from imagegen.request import DEFAULTS, MAX_SEED

# -- the profile --------------------------------------------------------------------------------

# 500 ms an example: every parser here answers in milliseconds; a slower one is a finding.
# derandomize and no database: a rerun tries the same examples and writes nothing into the tree.
settings.register_profile(
    "keyart-properties",
    deadline=timedelta(milliseconds=500),
    max_examples=60,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],  # no explain phase: it reruns every failure many times
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
PROFILE = settings.get_profile("keyart-properties")


def props(max_examples: int = 60):
    """The file's profile, with this property's number of examples."""
    return settings(PROFILE, max_examples=max_examples)


def fresh(workdir: Path) -> Path:
    """A new folder for one example's files (caches keyed by path and mtime never see a stale file)."""
    return Path(tempfile.mkdtemp(dir=workdir))


# -- strategies ---------------------------------------------------------------------------------

# Any length of number, with the lengths at float's range (309 digits) and int()'s 4,300-digit limit.
digit_counts = st.one_of(st.integers(1, 40), st.integers(300, 320), st.integers(4290, 4310), st.integers(1, 6000))
long_digits = st.builds(lambda digit, n: digit * n, st.sampled_from("123456789"), digit_counts)
number_words = st.one_of(
    st.sampled_from(["0", "1", "-1", "30", "7", "7.5", "0.5", "1e999", "-1e999", "nan", "inf", "-inf", "1_000", "0x10", "1e-320", " 8 ", "+3", "١٢"]),
    st.integers().map(str),
    st.floats().map(repr),
    long_digits,
)
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
# JSON as text, with numbers of any length and the tokens Python's json also reads (NaN, Infinity).
json_text = st.recursive(
    st.one_of(
        st.sampled_from(["null", "true", "false", "NaN", "Infinity", "-Infinity", "1e999", "-0", "0.5"]),
        st.integers().map(str),
        long_digits,
        st.text(max_size=10).map(json.dumps),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda items: "[" + ",".join(items) + "]"),
        st.lists(st.tuples(st.text(max_size=6).map(json.dumps), inner), max_size=3).map(lambda kv: "{" + ",".join(f"{k}:{v}" for k, v in kv) + "}"),
    ),
    max_leaves=6,
)


def loose(specific):
    """Mostly values of the field's own kind, else any JSON value."""
    return st.one_of(specific, json_values)


PROMPT_TOKENS = [
    "(", ")", "[", "]", ":", "|", "\\", "\\(", "\\)", "\\[", "\\:", "\\|", "\\\\", "<lora:", "<lyco:", "<hypernet:", ">", "=",
    "te=", "unet=", "BREAK", " BREAK ", "BREAKS", " ", "  ", ",", "\n", "0.5", "1.2", "10", "-1", "0", "nan", "inf", "1e999",
    ":1.5)", ": 0.8 )", "::", "cat", "dog", "a lighthouse",
]  # fmt: skip
prompt_like = st.lists(st.one_of(st.sampled_from(PROMPT_TOKENS), st.text(max_size=3)), max_size=40).map("".join)
nested = st.builds(lambda open_, close, n: open_ * n + "x" + close * n, st.sampled_from(["(", "["]), st.sampled_from([")", "]", ":1.2)", "|y]", ":y:1]"]), st.integers(0, 120))
prompts = st.one_of(st.text(max_size=120), prompt_like, nested)

# Lines of text as they read back: no line breaks inside, no blanks around.
line_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"), max_size=30).map(str.strip)


def lines_of(lines: list[str]) -> str:
    return "\n".join(line for line in lines if not line.startswith(metadata.NEGATIVE_PREFIX)).strip()


infotext_prompt = st.lists(line_text, max_size=4).map(lines_of)

INFOTEXT_KEYS = [
    "Steps", "Sampler", "Schedule type", "CFG scale", "Seed", "Size", "Model", "Model hash", "Denoising strength", "Hires upscale",
    "Hires steps", "Hires upscaler", "Mask blur", "Inpaint area", "Masked area padding", "Outpaint", "Outpaint pixels",
    "Upscaler for img2img", "Variation seed", "Variation seed strength", "Refiner", "Refiner switch at", "Batch size", "Batch pos",
    "Tiling", "FreeU", "Version",
]  # fmt: skip
sizes_text = st.one_of(
    st.builds(lambda w, h: f"{w}x{h}", st.integers(-10, 5000), st.integers(-10, 5000)),
    st.builds(lambda w, h: f"{w}x{h}", long_digits, st.integers(1, 99)),
    st.sampled_from(["1024x1024", "64x64", "0x0", "x", "1024X1024", " 512x512 ", "auto", "1024x1024x3", "1e3x8"]),
)
infotext_values = st.one_of(
    number_words,
    sizes_text,
    st.sampled_from(["DPM++ 2M", "Euler a", "Karras", "Automatic", "Latent", "Lanczos", "Whole picture", "Only masked", "left,down", "ESRGAN_4x"]),
    st.text(max_size=12).map(json.dumps),
    st.text(max_size=12),
)
infotext_keys = st.one_of(st.sampled_from(INFOTEXT_KEYS), st.text(max_size=10))
params_line = st.builds(
    lambda pairs, sep: sep.join(f"{k}: {v}" for k, v in pairs),
    st.lists(st.tuples(infotext_keys, infotext_values), max_size=8),
    st.sampled_from([", ", ",", " , "]),
)
infotext_like = st.builds(
    lambda prompt, negative, params, newline: newline.join([p for p in (prompt, negative, params) if p is not None]),
    st.one_of(st.text(max_size=40), prompt_like),
    st.one_of(st.none(), st.text(max_size=30).map(lambda t: f"Negative prompt: {t}"), st.just("Negative prompt:\nblurry")),
    st.one_of(st.none(), params_line),
    st.sampled_from(["\n", "\r\n", " \n"]),
)
infotexts = st.one_of(st.text(max_size=200), infotext_like)
# An infotext with the three required fields, so parsing reaches RenderRequest.
required_infotext = st.builds(
    lambda prompt, steps, seed, size, others: f"{prompt}\nSteps: {steps}, Seed: {seed}, Size: {size}" + "".join(f", {k}: {v}" for k, v in others),
    infotext_prompt,
    st.one_of(st.integers(-2, 200).map(str), number_words),
    st.one_of(st.integers(-2, MAX_SEED + 2).map(str), number_words),
    st.one_of(st.sampled_from(["64x64", "1024x1024", "832x1216"]), sizes_text),
    st.lists(st.tuples(st.sampled_from(INFOTEXT_KEYS), infotext_values), max_size=6),
)

TEXT_OPTIONS = {
    "sampler": st.sampled_from([*samplers.SAMPLERS, "dpm++ 2m karras", "Euler a Exponential", "DPM++ 2M Beta", "nope", ""]),
    "schedule_type": st.sampled_from([*samplers.SCHEDULE_TYPES, "sgm_uniform", "karras", "nope", ""]),
    "refiner": st.sampled_from(["auto", "on", "off", "On", ""]),
    "style": st.sampled_from([None, "none", "", "cinematic", "anime", "Watercolor", "nope"]),
    "inpaint_area": st.sampled_from(["whole", "masked", " Masked ", "nope"]),
    "hr_upscaler": st.sampled_from(["latent", "lanczos", "Lanczos ", "nope"]),
    "init_upscaler": st.sampled_from(["latent", "lanczos", "nope"]),
    "outpaint": st.sampled_from([None, "left", "left,down", "up down", "", ",", "sideways"]),
    "tiling": st.sampled_from(["off", "on", "On", "True", ""]),
    "freeu": st.one_of(st.sampled_from(["off", "on", "b1=1.1", "s2=0", "b1=1e999", "b9=1", "b1", "b1=1,,"]), st.text(max_size=12)),
    "init_image": st.one_of(st.none(), st.text(max_size=10)),
    "mask": st.one_of(st.none(), st.text(max_size=10)),
}
NUMBER_OPTIONS = (
    "num_inference_steps", "guidance_scale", "width", "height", "seed", "batch_size", "batch_count", "refiner_switch_at",
    "subseed", "subseed_strength", "strength", "mask_blur", "masked_padding", "outpaint_pixels", "hr_scale",
    "hr_second_pass_steps", "denoising_strength",
)  # fmt: skip
any_number = st.one_of(st.integers(), st.integers(-10, 3000), st.floats(), st.floats(0, 1), st.booleans(), st.none(), st.text(max_size=4))
request_options = st.fixed_dictionaries({}, optional={**{name: any_number for name in NUMBER_OPTIONS}, **TEXT_OPTIONS})


@st.composite
def txt2img_requests(draw) -> dict:
    """The fields of a text-to-image request that infotext can describe (no style: the infotext holds the prompt as seen)."""
    sampler = draw(st.sampled_from(list(samplers.SAMPLERS)))
    return {
        "prompt": draw(infotext_prompt),
        "negative_prompt": draw(infotext_prompt),
        "sampler": sampler,
        "schedule_type": draw(st.sampled_from(samplers.SAMPLERS[sampler].schedule_types)),
        "num_inference_steps": draw(st.integers(1, 150)),
        "guidance_scale": draw(st.floats(1.0, 30.0)),
        "width": draw(st.integers(8, 256)) * 8,
        "height": draw(st.integers(8, 256)) * 8,
        "seed": draw(st.integers(0, MAX_SEED)),
        "refiner": draw(st.sampled_from(["on", "off"])),
        "refiner_switch_at": draw(st.floats(0.01, 0.99)),
        "subseed": draw(st.integers(0, MAX_SEED)),
        "subseed_strength": draw(st.one_of(st.just(0.0), st.floats(0.0, 1.0))),
        "hr_scale": draw(st.one_of(st.just(1.0), st.floats(1.0, 2.0))),
        "hr_upscaler": draw(st.sampled_from(["latent", "lanczos"])),
        "hr_second_pass_steps": draw(st.integers(0, 150)),
        "denoising_strength": draw(st.floats(0.1, 1.0)),
        "tiling": draw(st.sampled_from(["off", "on"])),
        "freeu": draw(st.one_of(st.just("off"), st.builds(lambda b, s: f"b1={b},s2={s}", st.floats(0.05, 3.0), st.floats(0.05, 3.0)))),
    }


def allowed(call):
    """call(), or None when it raises keyart's own error; any other exception fails the property."""
    try:
        return call()
    except KeyartError:
        return None


# A RenderRequest as a dict, as lineages and the jobs API carry one: loose, as written, or one field off.
valid_request_dicts = txt2img_requests().map(lambda d: {**d, "refiner": "off"})
request_dicts = st.one_of(
    st.fixed_dictionaries({}, optional={name: loose(any_number) for name in NUMBER_OPTIONS} | {name: loose(s) for name, s in TEXT_OPTIONS.items()} | {"prompt": loose(prompt_like), "unknown": json_values}),
    # a request as keyart writes it, one field replaced by any JSON value
    st.tuples(valid_request_dicts, st.sampled_from(sorted(DEFAULTS)), json_values).map(lambda t: {**t[0], t[1]: t[2]}),
    valid_request_dicts,
)

"""Property tests for every parser of user text: each input parses or raises keyart's own error, quickly.

The allowed errors are `KeyartError` and its kin (the language side's included); for the image
service's bodies also pydantic's ValidationError at model construction (the routes answer 400) and
`ApiError` with a 4xx status. Where a parser has an inverse (format/parse), the round trip holds.
One hypothesis profile (below) bounds every example's time and the file's run time. Each
`@example` is a falsifying example a search found (one, where its comment says so, read from the
code), kept so that a property fails the same way on every run until its parser is fixed.
"""

from __future__ import annotations

import csv
import io
import json
import math
import struct
import tempfile
import zlib
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import hypothesis  # a test dependency (pyproject's test extra): missing, the suite fails rather than skips
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from pydantic import ValidationError  # noqa: E402

from imagegen import canvas, metadata, png_files, prompt_syntax, samplers, styles  # noqa: E402
from imagegen.axes import KINDS, Axis, parse_axis  # noqa: E402
from imagegen.errors import KeyartError  # noqa: E402
from imagegen.prompt_schedule import is_scheduled, loras, prompt_schedule, render  # noqa: E402
from imagegen.request import DEFAULTS, MAX_SEED, RenderRequest  # noqa: E402

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


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("properties")


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
    "Version",
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
    }


def allowed(call):
    """call(), or None when it raises keyart's own error; any other exception fails the property."""
    try:
        return call()
    except KeyartError:
        return None


# -- the prompt language ------------------------------------------------------------------------


@props(150)
@given(prompts)
def test_prompt_syntax_parse(prompt):
    nodes = allowed(lambda: prompt_syntax.parse(prompt))
    if nodes is None:
        return
    assert isinstance(nodes, tuple)
    # Without edits or alternations the tree renders back to the prompt as written, less its LoRA tags.
    if not is_scheduled(nodes):
        assert render(nodes, 1, 1) == prompt_syntax.extract_loras(prompt)[0]


@props(100)
@given(prompts)
def test_extract_loras(prompt):
    found = allowed(lambda: prompt_syntax.extract_loras(prompt))
    if found is None:
        return
    text, tags = found
    assert isinstance(text, str)
    assert all(tag.name and math.isfinite(tag.te_weight) and math.isfinite(tag.unet_weight) for tag in tags)


lora_names = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters=":>="), min_size=1, max_size=12).filter(lambda s: s == s.strip() and s)
weights = st.floats(allow_nan=False, allow_infinity=False)


@props(100)
@given(lora_names, weights, st.one_of(st.none(), weights), st.booleans(), st.sampled_from(["lora", "lyco"]))
def test_lora_tag_round_trip(name, te, unet, named, kind):
    if named:
        tag = f"<{kind}:{name}:te={te!r}" + (f":unet={unet!r}>" if unet is not None else ">")
    else:
        tag = f"<{kind}:{name}:{te!r}" + (f":{unet!r}>" if unet is not None else ">")
    text, tags = prompt_syntax.extract_loras(f"a {tag} b")
    expected = prompt_syntax.LoraTag(name, te, te if unet is None else unet)
    assert (text, tags) == ("a  b", [expected])
    assert loras(prompt_syntax.parse(f"a {tag} b")) == [expected]


@props(100)
@given(prompts, st.one_of(st.integers(-3, 160), st.floats(), st.booleans(), st.none(), st.text(max_size=3)))
def test_prompt_schedule(prompt, steps):
    segments = allowed(lambda: prompt_schedule(prompt, steps))
    if segments is None:
        return
    lasts = [last for last, _ in segments]
    assert lasts == sorted(set(lasts)) and lasts[-1] == steps and all(isinstance(text, str) for _, text in segments)


@props(100)
@given(prompts, prompts)
def test_render_request_text(prompt, negative):
    request = allowed(lambda: RenderRequest(prompt=prompt, negative_prompt=negative))
    if request is not None:
        assert RenderRequest.from_dict(request.to_dict()) == request


@props(150)
@example(prompt="", options={"num_inference_steps": math.nan})
@example(prompt="", options={"num_inference_steps": math.inf})
@given(prompt_like, request_options)
def test_render_request_numbers(prompt, options):
    request = allowed(lambda: RenderRequest(prompt=prompt, **options))
    if request is not None:
        assert RenderRequest.from_dict(request.to_dict()) == request


# -- A1111 infotext -----------------------------------------------------------------------------


@props(150)
@given(infotexts)
def test_parse_infotext(text):
    prompt, negative, fields = metadata.parse_infotext(text)
    assert isinstance(prompt, str) and isinstance(negative, str)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items())


@props(100)
@given(st.one_of(params_line, st.text(max_size=100)))
def test_parameter_pairs(line):
    pairs = metadata.parameter_pairs(line)
    assert all(metadata.RE_KEY.fullmatch(k) and len(k) >= metadata.MIN_KEY_LENGTH and isinstance(v, str) for k, v in pairs)


@props(150)
@example(text="\nSteps: 0, Seed: 0, Size: " + "1" * 4301 + "x1")
@example(text="\nSteps: nan, Seed: 0, Size: 64x64")
@example(text="\nSteps: 1e999, Seed: 0, Size: 64x64")
@given(st.one_of(required_infotext, infotexts))
def test_request_from_infotext(text):
    request = allowed(lambda: metadata.request_from_infotext(text))
    assert request is None or isinstance(request, RenderRequest)


key_characters = st.characters(whitelist_categories=("L", "N"), whitelist_characters="_ /-")
infotext_field_keys = st.text(key_characters, min_size=2, max_size=12).map(str.strip).filter(lambda k: len(k) >= metadata.MIN_KEY_LENGTH and metadata.RE_KEY.fullmatch(k))
padded_text = st.builds(lambda pad, text: pad + text + pad, st.sampled_from(["", " ", "\t", "\r", "\u3000"]), st.text(max_size=12))
infotext_field_values = st.one_of(st.text(max_size=20), padded_text, st.integers(), st.floats())


@props(150)
@example(prompt="", negative="", fields={"00": "", "01": " ", "000": ""})
@example(prompt="", negative="", fields={"00": "", "000": "", "0000": "\x85"})
@given(infotext_prompt, infotext_prompt, st.dictionaries(infotext_field_keys, infotext_field_values, min_size=metadata.MIN_PAIRS, max_size=6))
def test_infotext_round_trip(prompt, negative, fields):
    text = metadata.format_infotext(prompt, negative, fields)
    got_prompt, got_negative, got = metadata.parse_infotext(text)
    assert (got_prompt, got_negative, set(got)) == (prompt, negative, set(fields))
    for key, value in fields.items():
        if isinstance(value, float):  # a float reads back as the same float (NaN as nan)
            assert got[key] == "nan" if math.isnan(value) else float(got[key]) == value, (key, value, got[key])
        else:
            assert got[key] == str(value), (key, value, got[key])


@props(100)
@example(options={**DEFAULTS, "prompt": "", "width": 64, "height": 64, "seed": 0, "refiner": "on", "refiner_switch_at": 0.9609375})
@given(txt2img_requests())
def test_request_infotext_round_trip(options):
    try:
        request = RenderRequest(**options)
    except KeyartError:
        hypothesis.assume(False)
    extra = {"Refiner": "refiner", "Refiner switch at": request.refiner_switch_at} if request.refiner == "on" else None
    text = metadata.infotext_for(request, seed=request.seed, model="model", extra=extra)
    back = metadata.request_from_infotext(text)
    seen = lambda r: (  # noqa: E731 (what an infotext records)
        r.prompt, r.negative_prompt, r.num_inference_steps, r.guidance_scale, r.seed, r.width, r.height, r.sampler, r.schedule,
        r.refiner, r.refiner_switch_at if r.refiner == "on" else None, r.subseed_strength, r.subseed if r.subseed_strength else None,
        r.hr_scale, (r.hr_upscaler, r.hr_second_pass_steps, r.denoising_strength) if r.hr_scale > 1 else None,
    )  # fmt: skip
    assert seen(back) == seen(request)


# -- PNG metadata -------------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


chunk_keys = st.one_of(st.sampled_from([metadata.PARAMETERS_KEY, metadata.LINEAGE_KEY]), st.text(st.characters(min_codepoint=32, max_codepoint=255), min_size=1, max_size=8))
chunk_texts = st.one_of(infotexts, json_text, st.text(max_size=40))


@st.composite
def text_chunks(draw) -> bytes:
    key = draw(chunk_keys).encode("latin-1")
    value = draw(chunk_texts)
    kind = draw(st.sampled_from(["tEXt", "zTXt", "iTXt", "iTXt-z"]))
    if kind == "tEXt":
        return png_chunk(b"tEXt", key + b"\0" + value.encode("latin-1", "replace"))
    if kind == "zTXt":
        body = draw(st.one_of(st.just(zlib.compress(value.encode("latin-1", "replace"))), st.binary(max_size=12)))
        return png_chunk(b"zTXt", key + b"\0\0" + body)
    data = value.encode("utf-8")
    if kind == "iTXt-z":
        return png_chunk(b"iTXt", key + b"\0\1\0" + draw(st.sampled_from([b"", b"en"])) + b"\0\0" + draw(st.one_of(st.just(zlib.compress(data)), st.binary(max_size=12))))
    return png_chunk(b"iTXt", key + b"\0\0\0\0\0" + data)


@st.composite
def crafted_pngs(draw) -> bytes:
    """A PNG built chunk by chunk: any header (sizes, depth, colour type), text chunks before and after the image data."""
    width, height = draw(st.integers(0, 2**31 - 1)), draw(st.integers(0, 2**31 - 1))
    depth, colour = draw(st.sampled_from([1, 2, 4, 8, 16, 3])), draw(st.sampled_from([0, 2, 3, 4, 6, 5]))
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, draw(st.sampled_from([0, 1]))))
    idat = png_chunk(b"IDAT", draw(st.one_of(st.just(zlib.compress(b"\0" * 16)), st.binary(max_size=16))))
    before, after = draw(st.lists(text_chunks(), max_size=2)), draw(st.lists(text_chunks(), max_size=2))
    end = draw(st.sampled_from([png_chunk(b"IEND", b""), b""]))
    return PNG_SIGNATURE + header + b"".join(before) + idat + b"".join(after) + end


def read_back(path: Path) -> None:
    meta = allowed(lambda: png_files.read_png(path))
    if meta is not None:
        assert meta.infotext is not None or meta.lineage is not None
        assert meta.lineage is None or isinstance(meta.lineage, dict)
    found = allowed(lambda: png_files.request_from_png(path))
    if found is not None:
        request, index = found
        assert isinstance(request, RenderRequest) and 0 <= index < request.batch_size * request.batch_count


@props(100)
@example(data=b'\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x000\xa9\x00\x008\x1e\x01\x00\x00\x00\x00\xcc\x87\xa3f\x00\x00\x00\x0bIDAT')
@given(st.one_of(st.binary(max_size=200), st.binary(max_size=60).map(lambda b: PNG_SIGNATURE + b), crafted_pngs()))
def test_png_any_bytes(workdir, data):
    path = fresh(workdir) / "image.png"
    path.write_bytes(data)
    read_back(path)


valid_request_dicts = txt2img_requests().map(lambda d: {**d, "refiner": "off"})
request_dicts = st.one_of(
    st.fixed_dictionaries({}, optional={name: loose(any_number) for name in NUMBER_OPTIONS} | {name: loose(s) for name, s in TEXT_OPTIONS.items()} | {"prompt": loose(prompt_like), "unknown": json_values}),
    # a request as keyart writes it, one field replaced by any JSON value
    st.tuples(valid_request_dicts, st.sampled_from(sorted(DEFAULTS)), json_values).map(lambda t: {**t[0], t[1]: t[2]}),
    valid_request_dicts,
)
input_records = st.dictionaries(st.sampled_from(["init_image", "mask", "other"]), loose(st.fixed_dictionaries({}, optional={"path": json_values, "sha256": json_values, "size": json_values})), max_size=2)
lineages = st.fixed_dictionaries({}, optional={"request": loose(request_dicts), "index": loose(st.integers(-2, 3)), "inputs": loose(input_records), "seed": json_values, "keyart": json_values})
lineage_texts = st.one_of(
    lineages.map(json.dumps),
    st.builds(lambda key, number: f'{{"{key}": {number}}}', st.sampled_from(["index", "seed", "request"]), long_digits),
    json_text,
    st.text(max_size=40),
)


@props(150)
@example(infotext=None, lineage='{"index": ' + "1" * 4301 + "}", how="text")
@example(infotext=None, lineage='{"request":{}}', how="text")
@example(infotext=None, lineage=json.dumps({"request": {"prompt": "a", "seed": 1}, "inputs": {"init_image": {"path": [1]}}}), how="text")  # read from the code
@given(st.one_of(st.none(), infotexts, required_infotext), st.one_of(st.none(), lineage_texts), st.sampled_from(["text", "itxt"]))
def test_png_text_chunks(workdir, infotext, lineage, how):
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in ((metadata.PARAMETERS_KEY, infotext), (metadata.LINEAGE_KEY, lineage)):
        if value is not None:
            info.add_text(key, value) if how == "text" else info.add_itxt(key, value)
    path = fresh(workdir) / "image.png"
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    meta = allowed(lambda: png_files.read_png(path))
    if meta is not None:
        assert meta.infotext == infotext  # the chunk reads back as written
        assert json.dumps(meta.lineage) == json.dumps(None if lineage is None else json.loads(lineage))
    read_back(path)


# -- catalog files ------------------------------------------------------------------------------

COLUMN_NAMES = st.one_of(st.sampled_from(["season", "episode", "summary", "title", "show", "Season", " EPISODE ", "plot", "number"]), st.text(max_size=6))
cells = st.one_of(
    st.text(max_size=20),
    st.integers().map(str),
    st.integers(-2, 100_002).map(str),
    number_words,
    st.floats().map(str),
    st.sampled_from(["", "1", "2", "3.0", "007", "1e5", "NaN", "True", "Gullhaven", "A storm comes.", "{braces}"]),
)
catalog_mappings = st.one_of(st.none(), st.dictionaries(st.sampled_from(["summary", "season", "episode", "title", "show", "plot"]), COLUMN_NAMES, max_size=2))


@st.composite
def table(draw):
    columns = draw(st.lists(COLUMN_NAMES, max_size=6))
    if draw(st.booleans()):
        columns = ["season", "episode", "summary", *columns]
    rows = draw(st.lists(st.lists(cells, min_size=len(columns), max_size=len(columns)), max_size=6))
    return columns, rows


def check_catalog(path: Path, mapping, seasons=None) -> None:
    from assistant.catalog import load_catalog
    from assistant.schemas import MAX_NUMBER

    found = allowed(lambda: load_catalog(path, mapping=mapping, seasons=seasons))
    if found is not None:
        assert found.episodes and all(0 <= e.season <= MAX_NUMBER and 1 <= e.episode <= MAX_NUMBER and e.summary for e in found.episodes)


def csv_bytes(columns, rows, encoding: str) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    writer.writerows(rows)
    return out.getvalue().encode(encoding, "replace")


@props(80)
@given(table(), st.one_of(st.none(), table()), catalog_mappings, st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"]))
def test_catalog_csv(workdir, episodes, seasons, mapping, encoding):
    folder = fresh(workdir)
    (folder / "episodes.csv").write_bytes(csv_bytes(*episodes, encoding))
    if seasons is not None:
        (folder / "seasons.csv").write_bytes(csv_bytes(*seasons, "utf-8"))
    check_catalog(folder / "episodes.csv", mapping)


json_cells = st.one_of(json_values, cells, st.integers(-2, 100_002))
json_rows = st.one_of(
    st.dictionaries(COLUMN_NAMES, json_cells, max_size=6),
    st.fixed_dictionaries({"season": json_cells, "episode": json_cells, "summary": json_cells}, optional={"title": json_cells, "show": json_cells}),
    json_values,  # a row that is not an object
)


@props(80)
@example(rows=[{}, None], suffix=".json", mapping=None, with_seasons=False)
@example(rows=[{"": ""}, {"season": "0", "episode": "1", "summary": "0"}], suffix=".json", mapping=None, with_seasons=True)
@given(st.one_of(st.lists(json_rows, max_size=5), json_values), st.sampled_from([".json", ".jsonl"]), catalog_mappings, st.booleans())
def test_catalog_json(workdir, rows, suffix, mapping, with_seasons):
    folder = fresh(workdir)
    if suffix == ".jsonl":
        text = "\n".join(json.dumps(row) for row in rows) if isinstance(rows, list) else json.dumps(rows)
    else:
        text = json.dumps(rows)
    (folder / f"episodes{suffix}").write_text(text, encoding="utf-8")
    seasons = None
    if with_seasons:
        seasons = folder / f"other{suffix}"
        seasons.write_text(text, encoding="utf-8")
    check_catalog(folder / f"episodes{suffix}", mapping, seasons)


@props(60)
@example(suffix=".json", data=b"[{},null]")
@example(suffix=".json", data=b"[[],true]")
@given(st.sampled_from([".csv", ".json", ".jsonl", ".parquet", ".txt", ""]), st.one_of(st.binary(max_size=80), json_text.map(str.encode)))
def test_catalog_any_bytes(workdir, suffix, data):
    path = fresh(workdir) / f"episodes{suffix}"
    path.write_bytes(data)
    check_catalog(path, None)


parquet_columns = st.dictionaries(
    COLUMN_NAMES.filter(bool),
    st.sampled_from(["text", "int", "float", "list", "none"]),
    min_size=1,
    max_size=5,
)
PARQUET_CELLS = {
    "text": st.one_of(st.none(), st.text(max_size=10), cells),
    "int": st.integers(-(2**63), 2**63 - 1),
    "float": st.floats(),
    "list": st.lists(st.integers(-5, 5), max_size=3),
    "none": st.none(),
}


@st.composite
def parquet_tables(draw) -> dict:
    """{column: (kind, cells)}: each column of one kind (text, whole numbers, floats, lists, nulls), as Parquet keeps them."""
    kinds = draw(parquet_columns)
    if draw(st.booleans()):
        kinds = {"season": "text", "episode": "text", "summary": "text"} | kinds
    count = draw(st.integers(0, 4))
    return {name: (kind, [draw(PARQUET_CELLS[kind]) for _ in range(count)]) for name, kind in kinds.items()}


@props(40)
@example(columns={"season": ("list", [[]])})
@given(parquet_tables())
def test_catalog_parquet(workdir, columns):
    import pandas as pd

    dtypes = {"int": "Int64", "float": "float64"}
    frame = pd.DataFrame({name: pd.Series(cells, dtype=dtypes.get(kind, object)) for name, (kind, cells) in columns.items()})
    path = fresh(workdir) / "episodes.parquet"
    try:
        frame.to_parquet(path)
    except Exception:  # a frame pyarrow cannot write is no catalog file
        hypothesis.assume(False)
    check_catalog(path, None)


mapping_items = st.lists(st.one_of(st.builds(lambda f, c: f"{f}={c}", st.sampled_from(["summary", "Season", " title ", "show", "plot", ""]), COLUMN_NAMES), st.text(max_size=12)), max_size=4)


@props(100)
@given(mapping_items)
def test_parse_mapping(items):
    from assistant.catalog import FIELDS, parse_mapping

    mapping = allowed(lambda: parse_mapping(items))
    if mapping is not None:
        assert set(mapping) <= set(FIELDS) and all(mapping.values())
        assert parse_mapping([f"{k}={v}" for k, v in mapping.items()]) == mapping  # round trip


# -- --episodes and --styles --------------------------------------------------------------------

episode_part = st.one_of(
    st.integers(0, 10**13).map(str),
    st.builds(lambda a, b, gap: f"{a}{gap}-{gap}{b}", st.integers(0, 100_002), st.integers(0, 100_002), st.sampled_from(["", " "])),
    st.sampled_from(["", " ", "-", "1-", "-1", "a", "1.5", "١", "1--2", "99999-100000"]),
)
episodes_text = st.one_of(st.lists(episode_part, min_size=1, max_size=5).map(",".join), st.text(max_size=20))


@props(100)
@given(episodes_text)
def test_parse_episodes(text):
    from assistant.workflows.plan import MAX_EPISODE, parse_episodes

    numbers = allowed(lambda: parse_episodes(text))
    if numbers is not None:
        assert numbers and len(set(numbers)) == len(numbers) and all(1 <= n <= MAX_EPISODE for n in numbers)
        assert parse_episodes(",".join(map(str, numbers))) == numbers  # round trip


@props(100)
@given(st.one_of(st.none(), st.text(max_size=30), st.lists(st.sampled_from(["anime", " watercolor", ",", "", "  ", "anime"])).map(",".join)))
def test_parse_styles(text):
    from assistant.workflows.plan import parse_styles

    names = allowed(lambda: parse_styles(text))
    if names is not None:
        assert names and all(n == n.strip() and n and "," not in n for n in names)
        assert parse_styles(",".join(names)) == names  # round trip


# -- campaign briefs ----------------------------------------------------------------------------

BRIEF_VALUES = {
    "show": st.text(max_size=10),
    "season": st.one_of(st.integers(-2, 10**30), number_words),
    "episode": st.one_of(st.none(), st.integers(-2, 10**6)),
    "goal": st.text(max_size=10),
    "audience": st.text(max_size=10),
    "tone": st.text(max_size=10),
    "platforms": st.one_of(st.lists(st.sampled_from(["instagram", "x", "Twitter", "tiktok", "myspace", ""]), max_size=3), st.sampled_from(["x, tiktok", "", ","])),
    "call_to_action": st.text(max_size=12),
    "use_words": st.one_of(st.lists(st.text(max_size=6), max_size=3), st.text(max_size=10)),
    "avoid_words": st.one_of(st.lists(st.text(max_size=6), max_size=3), st.text(max_size=10)),
    "style": st.sampled_from(["cinematic", "anime", "Watercolor", "nope", ""]),
}
brief_data = st.fixed_dictionaries({}, optional={key: loose(value) for key, value in BRIEF_VALUES.items()} | {"unknown": json_values})
yaml_keys = st.one_of(st.sampled_from(["season", "show", "1", "null", "true", "[a]", "? x"]), st.text(max_size=5))
yaml_like = st.lists(st.tuples(yaml_keys, st.one_of(st.text(max_size=10), st.sampled_from(["", "[", "{", "&a [*a]", "*b", "!!python/object:os.system", "- a", "1e999", "2020-01-01", "~", "| \n  x"]))), max_size=4).map(
    lambda pairs: "\n".join(f"{k}: {v}" for k, v in pairs)
)


def brief_texts():
    import yaml

    return st.one_of(
        brief_data.map(lambda d: yaml.safe_dump(d, allow_unicode=True)),
        brief_data.map(json.dumps),
        yaml_like,
        st.text(max_size=60),
        st.binary(max_size=30).map(lambda b: b.decode("latin-1")),
    )


@props(100)
@example(text="0:", encoding="utf-8")
@example(text="::\n0:", encoding="utf-8")
@example(text=json.dumps({"call_to_action": "\U00010000", "avoid_words": "\U00010000"}), encoding="utf-8")  # JSON's surrogate-pair escapes
@given(brief_texts(), st.sampled_from(["utf-8", "latin-1"]))
def test_load_brief(workdir, text, encoding):
    from assistant.workflows.campaign_state import Brief, load_brief

    path = fresh(workdir) / "brief.yaml"
    path.write_bytes(text.encode(encoding, "replace"))
    brief = allowed(lambda: load_brief(path))
    assert brief is None or isinstance(brief, Brief)


@props(100)
@example(data={None: None})
@example(data={0: None, None: None})
@given(st.one_of(brief_data, st.dictionaries(st.one_of(st.integers(), st.none(), st.booleans(), st.text(max_size=4)), json_values, max_size=3)))
def test_brief_from(data):
    from assistant.workflows.campaign_state import brief_from

    brief = allowed(lambda: brief_from(data))
    if brief is not None:
        assert brief_from(brief.model_dump()) == brief  # round trip


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


# -- the other parsers of user text -------------------------------------------------------------

sampler_texts = st.one_of(st.text(max_size=20), TEXT_OPTIONS["sampler"], st.builds(lambda s, t: f"{s} {t}", TEXT_OPTIONS["sampler"], TEXT_OPTIONS["schedule_type"]))


@props(100)
@given(sampler_texts, st.one_of(st.none(), st.text(max_size=10), TEXT_OPTIONS["schedule_type"]))
def test_samplers_normalize(sampler, schedule_type):
    found = allowed(lambda: samplers.normalize(sampler, schedule_type))
    if found is not None:
        assert samplers.normalize(*found) == found  # canonical names read back as themselves
        assert samplers.resolve(*found)[1] != "Automatic"


axis_texts = st.one_of(
    st.text(max_size=40),
    st.builds(
        lambda kind, values: f"{kind}: {values}",
        st.sampled_from([*KINDS, "cfg", "prompt sr", "sampler name", "Nope"]),
        st.one_of(
            st.lists(st.one_of(number_words, st.builds(lambda a, b: f"{a}-{b}", number_words, number_words), st.text(max_size=6), TEXT_OPTIONS["sampler"]), max_size=4).map(", ".join),
            st.builds(lambda a, b, step, count: f"{a}-{b}" + (f" (+{step})" if step is not None else "") + (f" [{count}]" if count is not None else ""),
                      st.integers(-50, 300), st.integers(-50, 300), st.one_of(st.none(), st.integers(-3, 30), st.just("0.5")), st.one_of(st.none(), st.integers(0, 120))),
            st.text(max_size=20),
        ),
    ),
)  # fmt: skip


@props(150)
@example(text="Steps: 0-" + "1" * 310)
@example(text="CFG Scale: 0-" + "1" * 310)
@example(text="CFG SCALE:1000001")
@example(text=":0\r0")
@given(axis_texts)
def test_parse_axis(text):
    axis = allowed(lambda: parse_axis(text))
    if axis is None or axis.kind in ("Nothing", "Seed"):  # a Seed of -1 is drawn anew each time
        return
    assert len(axis.values) <= 100
    assert parse_axis(f"{axis.kind}: {axis.text}") == axis  # round trip through A1111's "X Values"


axis_values = {
    "Prompt S/R": st.lists(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8).filter(lambda v: v == v.strip() and v), min_size=1, max_size=4, unique=True),
    "CFG Scale": st.lists(st.floats(0, 30, allow_nan=False), min_size=1, max_size=4, unique=True),
    "Steps": st.lists(st.integers(1, 150), min_size=1, max_size=4, unique=True),
    "Sampler": st.lists(st.sampled_from(list(samplers.SAMPLERS)), min_size=1, max_size=4, unique=True),
}


@props(100)
@example(kind_values=("CFG Scale", [1.203125]))
@given(st.sampled_from(sorted(axis_values)).flatmap(lambda kind: st.tuples(st.just(kind), axis_values[kind])))
def test_axis_text_round_trip(kind_values):
    kind, values = kind_values
    axis = Axis(kind, tuple(values))
    assert parse_axis(f"{kind}: {axis.text}") == axis


@props(100)
@given(st.one_of(st.none(), st.text(max_size=20), st.lists(st.sampled_from(["left", "Right", "up", "down", "", " ", ",", "sideways"]), max_size=4).map(",".join)))
def test_canvas_directions(text):
    found = allowed(lambda: canvas.directions(text))
    if found:
        assert canvas.directions(",".join(found)) == found  # round trip


style_entries = st.fixed_dictionaries(
    {},
    optional={
        "name": loose(st.sampled_from(["mine", "Anime", " ", ""])),
        "description": json_values,
        "prompt": loose(st.sampled_from(["{prompt}, oil", "{prompt} {prompt}", "no placeholder", "{prompt}"])),
        "negative_prompt": json_values,
        "palette": loose(st.lists(st.sampled_from(["#aabbcc", "#AABBCC", "red", "#abc"]), max_size=2)),
        "other": json_values,
    },
)
style_files = st.one_of(
    st.lists(style_entries, max_size=3).map(lambda e: json.dumps(e).encode()),
    st.lists(style_entries, max_size=2).map(lambda e: json.dumps(e, ensure_ascii=False).encode("utf-16")),
    json_values.map(lambda v: json.dumps(v).encode()),
    json_text.map(str.encode),
    st.binary(max_size=40),
)


@props(80)
@example(data=b'\xff\xfe[\x00]\x00')
@example(data=b"1" * 4301)
@given(style_files)
def test_style_files(workdir, data):
    path = fresh(workdir) / "styles.json"
    path.write_bytes(data)
    before = styles._files
    styles.use_files([path])
    try:
        found = allowed(styles.catalog)
        assert found is None or all(s.prompt.count(styles.PLACEHOLDER) == 1 for s in found.values())
    finally:
        styles._files = before


@props(80)
@example(data=b'\x80', text='')
@given(st.one_of(st.text(max_size=60).map(str.encode), st.binary(max_size=40), st.lists(st.text(max_size=8), max_size=4).map(lambda t: "\n".join(t).encode("utf-16"))), st.text(max_size=40))
def test_blocklist_files(workdir, data, text):
    from assistant import policy

    path = fresh(workdir) / "blocklist.txt"
    path.write_bytes(data)
    before = policy._blocklists
    policy.use_blocklists([path])
    try:
        terms = allowed(policy.blocklist)
        if terms is not None:
            verdict = policy.check(text)
            assert verdict.allowed == (not policy.blocked_terms(text, terms))
    finally:
        policy._blocklists = before


@pytest.fixture(scope="module")
def chat_index():
    from assistant.catalog import load_catalog
    from assistant.references import CatalogIndex

    return CatalogIndex(load_catalog())


CHAT_WORDS = [
    "draw", "add", "include", "without", "remove", "in", "style", "an", "the", "seed", "another one", "darker", "wider", "portrait",
    "square", "season", "1", "2", "episode", "3", "S01E03", "S09E09", "1x02", "undo", "watercolor", "anime", "manga", "lighthouse",
    "who", "what", "?", ",", ".", " ", "  ", "and", "please", "it", "again", "Mara", "-", "seed 12",
]  # fmt: skip
COMMANDS = ["add", "include", "put in", "without", "remove", "leave out", "draw", "in", "style", "seed", "another one", "undo"]
chat_texts = st.one_of(
    st.text(max_size=40),
    st.lists(st.tuples(st.sampled_from(COMMANDS), st.sampled_from(["", " ", "  ", "\n", " .", ","])), max_size=4).map(lambda words: "".join(w + sep for w, sep in words)),
    st.lists(st.tuples(st.sampled_from(CHAT_WORDS), st.sampled_from(["", " ", "  ", ", ", "\n"])), max_size=12).map(lambda words: "".join(w + sep for w, sep in words)),
)


@props(200)
@example(text="ADD  ", has_scene=True, season=None)
@example(text="WITHOUT  ", has_scene=True, season=None)
@given(chat_texts, st.booleans(), st.one_of(st.none(), st.integers(0, 3)))
def test_chat_intents(chat_index, text, has_scene, season):
    from assistant.prompting.intents import Intent, parse

    intents = allowed(lambda: parse(text, chat_index, styles.names(), has_scene=has_scene, season=season))
    assert intents is None or (intents and all(isinstance(i, Intent) for i in intents))
    # a prompt edit names the words to add or keep out
    assert all(i.value.removeprefix("without").strip() for i in intents or () if i.change == "edit_prompt")


@props(100)
@example(value="²")
@given(st.one_of(number_words, st.text(max_size=8), json_values, st.sampled_from(["²", "--5", "-0", " 42 ", "4294967296"])))
def test_chat_seed(value):
    from assistant.workflows.chat_state import parse_seed

    seed = allowed(lambda: parse_seed(value))
    assert seed is None or 0 <= seed <= MAX_SEED


self_ask_lines = st.lists(
    st.one_of(
        st.builds(lambda kind, text: f"{kind}: {text}", st.sampled_from(["Follow up", "Intermediate answer", "So the final answer is", "follow up ", "Question"]), st.text(max_size=20)),
        st.text(max_size=20),
    ),
    max_size=8,
).map("\n".join)


@props(60)
@given(self_ask_lines, st.integers(0, 5))
def test_self_ask_transcript(text, cap):
    from assistant.prompting.self_ask import parse

    follow_ups, final = parse(text, cap)
    assert len(follow_ups) <= cap and isinstance(final, str)

"""Property tests for the prompt language, A1111 infotext and the other parsers of user text
(samplers, sizes, grid axes): each input parses or raises keyart's own error, quickly; round trips hold.

The profile, strategies and rules they share are in tests/properties.py.
"""

from __future__ import annotations

import json
import math

import hypothesis  # a test dependency (pyproject's test extra): missing, the suite fails rather than skips
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from imagegen import canvas, metadata, prompt_syntax, samplers, styles
from imagegen.axes import KINDS, Axis, parse_axis
from imagegen.errors import KeyartError
from imagegen.prompt_schedule import is_scheduled, loras, prompt_schedule, render
from imagegen.request import DEFAULTS, MAX_SEED, RenderRequest
from tests.properties import TEXT_OPTIONS, allowed, fresh, infotext_prompt, infotexts, json_text, json_values, loose, number_words, params_line, prompt_like, prompts, props, request_options, required_infotext, txt2img_requests

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

"""A1111 infotext and keyart lineage: exact layout, round trips through real PNG files, and errors."""

import json
import threading

import pytest

from imagegen.errors import StorageError
from PIL import Image
from PIL.PngImagePlugin import PngInfo

import imagegen
from imagegen.errors import InvalidRequest, MetadataError
from imagegen.metadata import format_infotext, infotext_for, lineage_for, parameter_pairs, parse_infotext, request_from_infotext
from imagegen.png_files import read_png, request_from_png, save_png, write_png
from imagegen.request import RenderedImage, RenderRequest

V = imagegen.__version__

A1111_110 = (
    "a lighthouse at dusk, (masterpiece:1.2)\n"
    "Negative prompt: blurry, lowres\n"
    "Steps: 30, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234567890, "
    "Size: 1024x1024, Model hash: 31e35c80fc, Model: sd_xl_base_1.0, Version: v1.10.1"
)
A1111_LEGACY = (
    "portrait of a ferry captain, rain\n"
    "Negative prompt: cartoon\n"
    "Steps: 25, Sampler: DPM++ 2M SDE Karras, CFG scale: 5.5, Seed: 42, Size: 832x1216, "
    'Model hash: be9edd61, Model: juggernautXL, Denoising strength: 0.3, Lora hashes: "a: 1, b: 2", Version: v1.6.0'
)


def rendered(request=None, *, seed=7, index=0, prompt="a quay at dawn", lineage=True, image=None):
    request = request or RenderRequest(prompt, negative_prompt="blurry", num_inference_steps=4, seed=seed, width=64, height=64)
    return RenderedImage(
        image=image or Image.new("RGB", (8, 8), (200, 40, 90)),
        request=request,
        seed=seed,
        index=index,
        infotext=infotext_for(request, seed=seed, model="sdxl-test", index=index),
        lineage=lineage_for(request, seed=seed, index=index, engine="preview", model="sdxl-test") if lineage else {},
    )


# -- infotext layout ---------------------------------------------------------------------------


def test_infotext_matches_a1111_layout_exactly():
    request = RenderRequest("a lighthouse at dusk", negative_prompt="blurry, lowres", seed=1234, guidance_scale=7.0)
    text = infotext_for(request, seed=1234, model="sd_xl_base_1.0")
    assert text == (
        "a lighthouse at dusk\n"
        "Negative prompt: blurry, lowres\n"
        "Steps: 30, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234, Size: 1024x1024, "
        f"Model: sd_xl_base_1.0, Version: keyart {V}"
    )


def test_infotext_batch_fields_extra_and_no_negative():
    request = RenderRequest("x", sampler="Euler a", guidance_scale=5.5, width=832, height=1216, seed=10, batch_size=2, batch_count=2)
    text = infotext_for(request, seed=13, model="m", index=3, extra={"Refiner": "ref", "Refiner switch at": 0.8})
    assert text == (
        "x\n"
        "Steps: 30, Sampler: Euler a, Schedule type: Uniform, CFG scale: 5.5, Seed: 13, Size: 832x1216, Model: m, "
        f"Batch size: 2, Batch pos: 1, Refiner: ref, Refiner switch at: 0.8, Version: keyart {V}"
    )


def test_infotext_uses_the_styled_prompt():
    request = RenderRequest("a lighthouse", negative_prompt="blurry", style="watercolor", seed=1)
    prompt, negative, _ = parse_infotext(infotext_for(request, seed=1, model="m"))
    assert (prompt, negative) == request.styled and prompt.startswith("watercolor painting of a lighthouse")


def test_format_quotes_like_a1111_and_skips_none():
    text = format_infotext("p", "", {"Steps": 20, "Lora hashes": "a: 1, b: 2", "Note": 'say "hi"', "Skip": None, "Seed": 3})
    assert text == 'p\nSteps: 20, Lora hashes: "a: 1, b: 2", Note: say "hi", Seed: 3'


# -- parsing -----------------------------------------------------------------------------------


def test_parse_a1111_110_sample():
    prompt, negative, fields = parse_infotext(A1111_110)
    assert prompt == "a lighthouse at dusk, (masterpiece:1.2)" and negative == "blurry, lowres"
    assert fields["Sampler"] == "DPM++ 2M" and fields["Schedule type"] == "Karras" and fields["Size"] == "1024x1024"
    assert fields["Model hash"] == "31e35c80fc" and fields["Version"] == "v1.10.1"


def test_request_from_a1111_110_sample():
    r = request_from_infotext(A1111_110)
    assert (r.prompt, r.negative_prompt, r.style) == ("a lighthouse at dusk, (masterpiece:1.2)", "blurry, lowres", None)
    assert (r.sampler, r.schedule_type, r.num_inference_steps, r.guidance_scale) == ("DPM++ 2M", "Karras", 30, 7.0)
    assert (r.seed, r.width, r.height, r.batch_size, r.refiner) == (1234567890, 1024, 1024, 1, "off")


def test_request_from_legacy_combined_sampler_name():
    r = request_from_infotext(A1111_LEGACY)
    assert (r.sampler, r.schedule_type) == ("DPM++ 2M SDE", "Karras")
    assert (r.width, r.height, r.guidance_scale, r.num_inference_steps, r.seed) == (832, 1216, 5.5, 25, 42)
    assert parse_infotext(A1111_LEGACY)[2]["Lora hashes"] == "a: 1, b: 2"


def test_quoted_values_round_trip():
    fields = {"Steps": 20, "Seed": 1, "Size": "64x64", "Notes": 'comma, colon: "quote"\nnewline', "Model": "C:\\models\\xl"}
    _, _, parsed = parse_infotext(format_infotext("p", "n", fields))
    assert parsed == {k: str(v) for k, v in fields.items()}


def test_multiline_prompt_and_negative_round_trip():
    prompt, negative = "line one,\nline two: (detail:1.1)\n\nline four", "bad\nworse"
    text = format_infotext(prompt, negative, {"Steps": 20, "Seed": 1, "Size": "64x64"})
    assert parse_infotext(text) == (prompt, negative, {"Steps": "20", "Seed": "1", "Size": "64x64"})


def test_short_last_line_belongs_to_the_prompt():
    assert parse_infotext("a cat\nstyle: noir, mood: dark") == ("a cat\nstyle: noir, mood: dark", "", {})


BASE = "Steps: 20, Seed: 1, Size: 64x64"
BASE_FIELDS = {"Steps": "20", "Seed": "1", "Size": "64x64"}

# (infotext, (prompt, negative, fields)): how the reader takes infotexts apart, case by case.
INFOTEXTS = {
    "quoted value with commas and escaped quotes": (
        f'p\n{BASE}, Note: "a, \\"b\\", c"',
        ("p", "", BASE_FIELDS | {"Note": 'a, "b", c'}),
    ),
    "colons inside a quoted value": (
        f'p\n{BASE}, Lora hashes: "ink: 1a2b, neon: 3c4d", Version: v1.10.1',
        ("p", "", BASE_FIELDS | {"Lora hashes": "ink: 1a2b, neon: 3c4d", "Version": "v1.10.1"}),
    ),
    "JSON escapes decoded: backslashes, newline, unicode": (
        f'p\n{BASE}, Model: "C:\\\\models\\\\xl", Note: "one\\ntwo \\u00e9"',
        ("p", "", BASE_FIELDS | {"Model": "C:\\models\\xl", "Note": "one\ntwo é"}),
    ),
    "multi-line prompt and negative": (
        f"line one,\nline two: (detail:1.1)\n\nline four\nNegative prompt: bad,\nworse\n{BASE}",
        ("line one,\nline two: (detail:1.1)\n\nline four", "bad,\nworse", BASE_FIELDS),
    ),
    "no negative": (f"a quay at dawn\n{BASE}", ("a quay at dawn", "", BASE_FIELDS)),
    "negative starting on the line after its prefix": (
        f"p\nNegative prompt:\nblurry\n{BASE}",
        ("p", "blurry", BASE_FIELDS),
    ),
    "a later 'Negative prompt:' line stays negative text": (
        f"p\nNegative prompt: bad\nNegative prompt: kept\n{BASE}",
        ("p", "bad\nNegative prompt: kept", BASE_FIELDS),
    ),
    "only a parameters line": (BASE, ("", "", BASE_FIELDS)),
    "two pairs are prompt text": ("a cat\nSteps: 20, Seed: 1", ("a cat\nSteps: 20, Seed: 1", "", {})),
    "a weighted one-line prompt is not a parameters line": (
        "masterpiece, (best quality:1.2), (sharp focus:1.1), <lora:ink:0.8>, [cat:dog:0.5]",
        ("masterpiece, (best quality:1.2), (sharp focus:1.1), <lora:ink:0.8>, [cat:dog:0.5]", "", {}),
    ),
    "a drive letter is not a key": (
        "a map, style: noir, C:\\maps\\harbour, mood: dark",
        ("a map, style: noir, C:\\maps\\harbour, mood: dark", "", {}),
    ),
    "extra unknown fields kept as text": (
        f"p\n{BASE}, ADetailer model: face_yolov8n.pt, Downcast alphas_cumprod: True, CFG Rescale φ: 0.7, X/Y-Z plot: on",
        ("p", "", BASE_FIELDS | {
            "ADetailer model": "face_yolov8n.pt", "Downcast alphas_cumprod": "True", "CFG Rescale φ": "0.7", "X/Y-Z plot": "on",
        }),
    ),
    "spaces around keys, values and lines": (
        "  a cat  \n  Negative prompt:   blurry  \nSteps :  20 ,  Seed: 1,Size: 64x64 ,Model:  m  ",
        ("a cat", "blurry", BASE_FIELDS | {"Model": "m"}),
    ),
    "empty values, plain and quoted": (
        f'p\nNote: , {BASE}, Empty: "", Last:',
        ("p", "", {"Note": "", **BASE_FIELDS, "Empty": "", "Last": ""}),
    ),
    "an unquoted value may hold colons": (
        f"p\n{BASE}, Model: C:/models/xl.safetensors, Hires upscaler: 4x-UltraSharp",
        ("p", "", BASE_FIELDS | {"Model": "C:/models/xl.safetensors", "Hires upscaler": "4x-UltraSharp"}),
    ),
    "a quote that does not end the value is plain text": (
        f'p\n{BASE}, Note: "a" b, Open: "to the end, Tail: x',
        ("p", "", BASE_FIELDS | {"Note": '"a" b', "Open": '"to the end', "Tail": "x"}),
    ),
    "a quoted value that is not valid JSON is kept as written": (
        f'p\n{BASE}, Note: "a\\q, b"',
        ("p", "", BASE_FIELDS | {"Note": '"a\\q, b"'}),
    ),
    "a repeated key: the last one wins": (f"p\n{BASE}, Seed: 2", ("p", "", BASE_FIELDS | {"Seed": "2"})),
    "Windows line endings": (
        f"line one\r\nline two\r\nNegative prompt: bad\r\nworse\r\n{BASE}\r\n",
        ("line one\nline two", "bad\nworse", BASE_FIELDS),
    ),
    "empty text": ("", ("", "", {})),
}


@pytest.mark.parametrize(("text", "expected"), INFOTEXTS.values(), ids=INFOTEXTS.keys())
def test_parse_infotext_behaviour(text, expected):
    assert parse_infotext(text) == expected


def test_parameter_pairs_keep_order_and_repeats():
    line = 'Seed: 1, (junk:1.2), Note: "x, y", Seed: 2, no colon here, Size: 64x64'
    assert parameter_pairs(line) == [("Seed", "1"), ("Note", "x, y"), ("Seed", "2"), ("Size", "64x64")]


# Values that need quoting (or look as if they might) go through format_infotext and back unchanged.
AWKWARD_VALUES = ["a, b", "key: value", 'say "hi"', '"lead', "C:\\x\\y", "tab\there", "one\ntwo", "", "é灯台, «Ölfass»", "\\", '\\"']


@pytest.mark.parametrize("value", AWKWARD_VALUES)
def test_awkward_values_round_trip(value):
    _, _, fields = parse_infotext(format_infotext("p", "n", {"Steps": 20, "Value": value, "Seed": 1, "Size": "64x64"}))
    assert fields == {"Steps": "20", "Value": value, "Seed": "1", "Size": "64x64"}


def test_infotext_round_trips_to_the_same_request():
    request = RenderRequest("a, b: c", negative_prompt="d", sampler="Heun", schedule_type="Exponential", guidance_scale=6.5, seed=99, width=64, height=128)
    text = infotext_for(request, seed=99, model="m", extra={"Refiner": "r", "Refiner switch at": 0.7})
    assert request_from_infotext(text) == request.replace(refiner="on", refiner_switch_at=0.7)


@pytest.mark.parametrize("missing", ["Steps", "Seed", "Size"])
def test_missing_required_field_is_a_metadata_error(missing):
    fields = {"Steps": 20, "Sampler": "Euler", "CFG scale": 7, "Seed": 1, "Size": "64x64"}
    del fields[missing]
    with pytest.raises(MetadataError, match=missing):
        request_from_infotext(format_infotext("p", "", fields))


def test_invalid_values_are_the_requests_own_errors():
    with pytest.raises(InvalidRequest, match="steps must be a whole number"):
        request_from_infotext("p\nSteps: many, Seed: 1, Size: 64x64")
    with pytest.raises(InvalidRequest, match="unknown sampler"):
        request_from_infotext("p\nSteps: 20, Sampler: Restart, Seed: 1, Size: 64x64")
    with pytest.raises(InvalidRequest, match="WIDTHxHEIGHT"):
        request_from_infotext("p\nSteps: 20, Seed: 1, Size: big")


# -- lineage -----------------------------------------------------------------------------------


def test_lineage_records_request_versions_and_extra():
    request = RenderRequest("x", seed=5, batch_size=2)
    data = lineage_for(request, seed=6, index=1, engine="sdxl", model="m", extra={"device": "cpu", "preview": True}, lineage={"show": "S"})
    assert data["keyart"] == V and data["request"] == request.to_dict() and (data["seed"], data["index"]) == (6, 1)
    assert data["lineage"] == {"show": "S"} and data["device"] == "cpu" and data["preview"] is True
    assert data["versions"]["pillow"] and data["versions"]["keyart"] == V
    assert data["created"].endswith("+00:00")
    json.dumps(data)


# -- PNG files ---------------------------------------------------------------------------------


def test_save_and_read_round_trip_non_ascii_and_braces(tmp_path):
    prompt = "phare à l'aube {prompt} {{x}} 灯台, «Ölfass»"
    image = rendered(RenderRequest(prompt, negative_prompt="flou", seed=3, width=64, height=64), seed=3)
    path = save_png(image, tmp_path / "new" / "dir")
    assert path.name == "00000-3.png" and b"iTXtparameters" in path.read_bytes()
    meta = read_png(path)
    assert meta.infotext == image.infotext and meta.lineage == image.lineage
    assert parse_infotext(meta.infotext)[0] == prompt
    with Image.open(path) as im:
        assert im.size == (8, 8) and im.getpixel((0, 0)) == (200, 40, 90)


def test_latin1_prompt_is_a_text_chunk_and_round_trips(tmp_path):
    path = save_png(rendered(RenderRequest("café crème", seed=1, width=64, height=64), seed=1), tmp_path)
    assert b"tEXtparameters\x00caf\xe9" in path.read_bytes()
    assert read_png(path).infotext.startswith("café crème\n")


def test_naming_increments_and_never_overwrites(tmp_path):
    (tmp_path / "00007-1.png").write_bytes(b"keep me")
    (tmp_path / "notes 2024.txt").write_text("not a sequence number")
    first = save_png(rendered(seed=1), tmp_path)
    second = save_png(rendered(seed=1), tmp_path)
    assert (first.name, second.name) == ("00008-1.png", "00009-1.png")
    assert (tmp_path / "00007-1.png").read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_taken_name_moves_to_the_next_number(tmp_path, monkeypatch):
    import imagegen.png_files as png_files

    (tmp_path / "00002-5.png").write_bytes(b"other writer")
    monkeypatch.setattr(png_files, "_next_number", lambda d: 2)  # a writer that scanned before the other one published
    path = save_png(rendered(seed=5), tmp_path)
    assert path.name == "00003-5.png" and (tmp_path / "00002-5.png").read_bytes() == b"other writer"


def test_concurrent_writers_never_collide(tmp_path):
    paths = []
    threads = [threading.Thread(target=lambda: paths.append(save_png(rendered(seed=4), tmp_path))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(paths)) == 8 and sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)


def test_failed_write_leaves_nothing(tmp_path):
    class Broken:
        def save(self, *args, **kwargs):
            raise OSError("disk full")

    with pytest.raises(StorageError, match="the images folder .*: disk full"):  # the OS's failure, in our words
        save_png(rendered(image=Broken()), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_stale_temp_files_are_not_counted_or_read(tmp_path):
    (tmp_path / ".keyart-dead.tmp").write_bytes(b"half")
    assert save_png(rendered(seed=2), tmp_path).name == "00000-2.png"


def test_unserialisable_lineage_fails_before_writing(tmp_path):
    image = rendered()
    image.lineage["trace"] = object()
    with pytest.raises(MetadataError, match="JSON"):
        save_png(image, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_write_png_round_trips_at_the_exact_path(tmp_path):
    image = rendered(RenderRequest("phare à l'aube {prompt}", seed=3, width=64, height=64), seed=3)
    target = tmp_path / "show" / "s01" / "e03-watercolor.png"
    assert write_png(image, target) == target
    meta = read_png(target)
    assert meta.infotext == image.infotext and meta.lineage == image.lineage
    assert sorted(p.name for p in target.parent.iterdir()) == ["e03-watercolor.png"]


def test_write_png_overwrites_and_leaves_no_temp_files(tmp_path):
    target = tmp_path / "e01.png"
    write_png(rendered(seed=1, image=Image.new("RGB", (8, 8), (0, 0, 255))), target)
    write_png(rendered(seed=2, image=Image.new("RGB", (8, 8), (0, 255, 0))), str(target))
    assert read_png(target).lineage["seed"] == 2
    with Image.open(target) as im:
        assert im.getpixel((0, 0)) == (0, 255, 0)
    assert [p.name for p in tmp_path.iterdir()] == ["e01.png"]


def test_write_png_failure_keeps_the_old_file_and_no_temp(tmp_path):
    class Broken:
        def save(self, f, *args, **kwargs):
            f.write(b"\x89PNG half")
            raise OSError("disk full")

    target = tmp_path / "e01.png"
    write_png(rendered(seed=1), target)
    before = target.read_bytes()
    with pytest.raises(StorageError, match="disk full"):
        write_png(rendered(seed=2, image=Broken()), target)
    assert target.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["e01.png"]


def test_write_png_unserialisable_lineage_writes_nothing(tmp_path):
    image = rendered()
    image.lineage["trace"] = object()
    with pytest.raises(MetadataError, match="JSON"):
        write_png(image, tmp_path / "out" / "e01.png")
    assert not (tmp_path / "out").exists()


def test_read_png_errors(tmp_path):
    (tmp_path / "notes.txt").write_text("Steps: 20")
    with pytest.raises(MetadataError, match="expected a PNG"):
        read_png(tmp_path / "notes.txt")
    with pytest.raises(MetadataError, match="expected a PNG"):
        read_png(tmp_path / "missing.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "plain.png")
    with pytest.raises(MetadataError, match="no generation metadata"):
        read_png(tmp_path / "plain.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "photo.jpg")
    with pytest.raises(MetadataError, match="JPEG"):
        read_png(tmp_path / "photo.jpg")
    info = PngInfo()
    info.add_itxt("keyart", "{not json")
    Image.new("RGB", (8, 8)).save(tmp_path / "bad.png", pnginfo=info)
    with pytest.raises(MetadataError, match="not valid JSON"):
        read_png(tmp_path / "bad.png")


def test_request_from_png_uses_the_lineage_batch(tmp_path):
    request = RenderRequest("a quay", style="anime", seed=100, batch_size=2, batch_count=2, width=64, height=64)
    path = save_png(rendered(request, seed=103, index=3), tmp_path)
    again, index = request_from_png(path)
    assert again == request and index == 3 and again.seeds()[index] == 103


def test_request_from_png_with_infotext_only(tmp_path):
    info = PngInfo()
    info.add_text("parameters", A1111_110)
    Image.new("RGB", (8, 8)).save(tmp_path / "a1111.png", pnginfo=info)
    request, index = request_from_png(tmp_path / "a1111.png")
    assert index == 0 and request.seed == 1234567890 and request.batch_size == 1 and request.schedule_type == "Karras"


def test_request_from_png_of_a_keyart_batch_without_lineage(tmp_path):
    request = RenderRequest("a quay", seed=100, batch_size=2, width=64, height=64)
    path = save_png(rendered(request, seed=101, index=1, lineage=False), tmp_path)
    again, index = request_from_png(path)
    assert index == 0 and again == request.replace(seed=101, batch_size=1, refiner="off", schedule_type="Karras")


def test_request_from_png_bad_lineage_index(tmp_path):
    image = rendered()
    image.lineage["index"] = 5
    with pytest.raises(MetadataError, match="index below 1"):
        request_from_png(save_png(image, tmp_path))


def test_request_from_png_keeps_the_prompt_the_model_saw_when_styles_change(tmp_path, monkeypatch):
    def style_file(name, template):
        path = tmp_path / name
        path.write_text(json.dumps([{"name": "house", "prompt": template, "negative_prompt": "ugly"}]))
        return str(path)

    monkeypatch.setenv("KEYART_STYLES", style_file("v1.json", "poster of {prompt}, bold"))
    request = RenderRequest("a quay", style="house", seed=9, width=64, height=64)
    path = save_png(rendered(request, seed=9), tmp_path / "out")
    assert request_from_png(path) == (request, 0)
    monkeypatch.setenv("KEYART_STYLES", style_file("v2.json", "painting of {prompt}"))
    changed, _ = request_from_png(path)
    assert (changed.prompt, changed.negative_prompt, changed.style) == ("poster of a quay, bold", "ugly", None)
    monkeypatch.delenv("KEYART_STYLES")
    assert request_from_png(path)[0] == changed

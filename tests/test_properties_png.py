"""Property tests for PNG files as keyart reads them: any bytes, and crafted text chunks, read back
or fail with keyart's own error; what keyart writes reads back as written.

The profile, strategies and rules they share are in tests/properties.py.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from imagegen import metadata, png_files
from imagegen.request import RenderRequest
from tests.properties import allowed, fresh, infotexts, json_text, json_values, long_digits, loose, props, request_dicts, required_infotext

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

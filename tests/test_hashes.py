"""A1111's Model hash: short SHA-256 of a checkpoint, cached until the file changes."""

import hashlib
import json
import os

from imagegen.hashes import cache_dir, model_hash


def test_short_sha256_cached_until_the_file_changes(tmp_path):
    checkpoint = tmp_path / "model.safetensors"
    checkpoint.write_bytes(b"weights" * 1000)
    expected = hashlib.sha256(b"weights" * 1000).hexdigest()[:10]
    assert model_hash(checkpoint) == expected
    cached = json.loads((cache_dir() / "model-hashes.json").read_text())
    assert expected in cached.values()
    # Same path, size and mtime: the cache answers (prove it by planting a different value).
    key = next(k for k, v in cached.items() if v == expected)
    (cache_dir() / "model-hashes.json").write_text(json.dumps({**cached, key: "from-cache"}))
    assert model_hash(checkpoint) == "from-cache"
    # A changed file is hashed again.
    checkpoint.write_bytes(b"other weights")
    os.utime(checkpoint, ns=(1, 1))
    assert model_hash(checkpoint) == hashlib.sha256(b"other weights").hexdigest()[:10]


def test_the_cache_folder_is_configured_once_else_the_environments(tmp_path, monkeypatch):
    from imagegen import hashes

    monkeypatch.setenv("KEYART_CACHE", str(tmp_path / "from-env"))
    assert cache_dir() == tmp_path / "from-env"  # library use: nobody configured it
    hashes.use_cache(tmp_path / "configured")
    monkeypatch.setenv("KEYART_CACHE", str(tmp_path / "later"))
    assert cache_dir() == tmp_path / "configured"
    checkpoint = tmp_path / "model.safetensors"
    checkpoint.write_bytes(b"weights")
    model_hash(checkpoint)
    assert (tmp_path / "configured" / "model-hashes.json").is_file()
    hashes.use_cache(None)
    assert cache_dir() == tmp_path / "later"


def test_hash_and_refiner_appear_as_a1111_writes_them(tiny_pipes):
    from imagegen import RenderRequest
    from imagegen.engines.sdxl import SDXLEngine

    engine = SDXLEngine(*tiny_pipes, model_name="sd_xl_base_1.0", model_hash="31e35c80fc", refiner_name="sd_xl_refiner_1.0", refiner_hash="7440042bbd")
    [image] = engine.render(RenderRequest("a pier", num_inference_steps=2, width=64, height=64, seed=9, refiner="on"))
    assert "Size: 64x64, Model hash: 31e35c80fc, Model: sd_xl_base_1.0, Refiner: sd_xl_refiner_1.0 [7440042bbd], Refiner switch at: 0.8" in image.infotext
    assert image.lineage["model_hash"] == "31e35c80fc"

"""Textual-inversion embeddings (KEYART_EMBEDDINGS_DIR, A1111's embeddings folder) on the tiny SDXL:
named in a prompt by file name, their vectors in that word's place for both text encoders and the
refiner's, recorded as A1111's "TI hashes", listed by /sdapi/v1/embeddings; files that are not SDXL
embeddings skipped with their reason."""

import hashlib
import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from imagegen import InvalidRequest, RenderRequest
from imagegen.engines.embeddings import Embeddings
from imagegen.engines.sdxl import SDXLEngine
from imagegen.engines.sdxl_prompt import CHUNK, Vector, chunk_tokens, encode
from imagegen.metadata import parse_infotext, request_from_infotext
from imagegen.prompt_schedule import attention_runs
from imagegen.settings import ImageSettings

PROMPT = "a lighthouse keeper in a {word}, cinematic"


def word_vectors(pipe, word: str) -> dict[str, torch.Tensor]:
    """An embedding whose vectors are `word`'s own token embeddings in each text encoder: in its
    place, it must encode exactly as `word` does."""

    def rows(tokenizer, encoder):
        ids = tokenizer(word, add_special_tokens=False)["input_ids"]
        return encoder.get_input_embeddings().weight[ids].detach().clone()

    return {"clip_l": rows(pipe.tokenizer, pipe.text_encoder), "clip_g": rows(pipe.tokenizer_2, pipe.text_encoder_2)}


@pytest.fixture(scope="module")
def folder(tiny_pipes, tmp_path_factory):
    """mystorm (the vectors of "storm"), styles/glow (random, 3 vectors), and files that are not SDXL embeddings."""
    base = tiny_pipes[0]
    root = tmp_path_factory.mktemp("embeddings")
    save_file(word_vectors(base, "storm"), str(root / "mystorm.safetensors"))
    generator = torch.Generator().manual_seed(3)
    widths = (base.text_encoder.config.hidden_size, base.text_encoder_2.config.hidden_size)
    (root / "styles").mkdir()
    save_file({key: torch.randn(3, w, generator=generator) for key, w in zip(("clip_l", "clip_g"), widths)}, str(root / "styles" / "glow.safetensors"))
    save_file({"emb_params": torch.randn(2, 768)}, str(root / "old-sd15.safetensors"))  # an SD 1.5 embedding
    save_file({"clip_l": torch.randn(2, widths[0]), "clip_g": torch.randn(3, widths[1])}, str(root / "uneven.safetensors"))
    (root / "broken.safetensors").write_bytes(b"not a safetensors file")
    (root / "notes.txt").write_text("not an embedding")
    return root


@pytest.fixture(scope="module")
def with_embeddings(tiny_pipes, folder):
    base, refiner = tiny_pipes
    return SDXLEngine(base, refiner, model_name="tiny-sdxl-base", refiner_name="tiny-sdxl-refiner", embeddings_dir=folder)


def _same(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def test_the_folder_lists_sdxl_embeddings_and_skips_the_rest_with_why(tiny_pipes, folder):
    found = Embeddings(folder)
    usable = found.usable()
    assert list(usable) == ["glow", "mystorm"]
    storm = len(tiny_pipes[0].tokenizer("storm", add_special_tokens=False)["input_ids"])  # the tiny vocabulary spells it in pieces
    assert (usable["glow"].vectors, usable["mystorm"].vectors) == (3, storm)
    skipped = found.skipped()
    assert set(skipped) == {"old-sd15", "uneven", "broken"}
    assert "SD 1.5" in skipped["old-sd15"] and "same 1 to 75 vectors" in skipped["uneven"] and "not a readable" in skipped["broken"]
    assert Embeddings(None).usable() == {} and Embeddings(folder / "missing").usable() == {}


def test_a_name_is_a_whole_word_in_any_case_never_inside_a_lora_tag(folder):
    found = Embeddings(folder)
    glow = found.usable()["glow"]
    assert found.split("a GLOW, glowing, glow-lit, <lora:glow:1> glow") == ["a ", glow, ", glowing, glow-lit, <lora:glow:1> ", glow]
    assert found.split("(mystorm:1.2) old-sd15") [1] is found.usable()["mystorm"]
    assert found.split("old-sd15 uneven") == ["old-sd15 uneven"]  # skipped files stay plain words
    assert [e.name for e in found.used(["glow and mystorm", "more glow"])] == ["glow", "mystorm"]


def test_an_embedding_of_a_words_vectors_encodes_exactly_as_the_word(tiny_pipes, folder):
    # The vectors go in at the token-embedding layer, in the word's place, and pooling still finds
    # the end of the text: every tensor of the conditioning is the same, weights and refiner included.
    base, refiner = tiny_pipes
    found = Embeddings(folder)
    for pipe in (base, refiner):
        for word in ("{}", "({}:1.4)", "[{}]"):
            named = encode(pipe, PROMPT.format(word=word.format("MyStorm")), "blurry", embeddings=found)
            plain = encode(pipe, PROMPT.format(word=word.format("storm")), "blurry")
            assert _same(named, plain), word
    assert not _same(encode(base, PROMPT.format(word="mystorm")), encode(base, PROMPT.format(word="storm")))  # without the folder: a plain word


def test_an_embedding_takes_one_place_per_vector_and_does_not_straddle_two_chunks(tiny_pipes, folder):
    tokenizer = tiny_pipes[0].tokenizer
    found = Embeddings(folder)
    assert len(tokenizer("a", add_special_tokens=False)["input_ids"]) == 1
    chunks = chunk_tokens(tokenizer, attention_runs(" ".join(["a"] * (CHUNK - 2)) + " glow a"), found)  # 2 places left: glow has 3
    assert len(chunks[0]) == CHUNK - 2
    assert [token for token, _ in chunks[1]] == [*(Vector(found.usable()["glow"], k) for k in range(3)), chunks[0][0][0]]
    weighted = chunk_tokens(tokenizer, attention_runs("(glow:1.5)"), found)
    assert [weight for _, weight in weighted[0]] == [1.5, 1.5, 1.5]


def test_a_render_uses_the_vectors_and_records_ti_hashes_as_a1111_does(tiny_pipes, with_embeddings, engine, folder):
    request = RenderRequest(PROMPT.format(word="mystorm"), negative_prompt="glow", num_inference_steps=2, width=64, height=64, seed=9, refiner="on")
    [named] = with_embeddings.render(request)
    [plain] = with_embeddings.render(request.replace(prompt=PROMPT.format(word="storm"), negative_prompt=""))
    [word] = engine.render(request.replace(prompt=PROMPT.format(word="storm"), negative_prompt=""))
    [without] = engine.render(request)
    pixels = lambda image: np.asarray(image.image, dtype=np.int16)  # noqa: E731
    assert (pixels(with_embeddings.render(request.replace(negative_prompt=""))[0]) == pixels(word)).all()  # base and refiner both read the vectors
    assert (pixels(plain) == pixels(word)).all()  # a prompt that names none renders as without a folder
    assert np.abs(pixels(named) - pixels(without)).max() > 0  # glow (random vectors) in the negative changes the image
    files = {name: hashlib.sha256((folder / path).read_bytes()).hexdigest()[:12] for name, path in (("mystorm", "mystorm.safetensors"), ("glow", "styles/glow.safetensors"))}
    assert f'TI hashes: "mystorm: {files["mystorm"]}, glow: {files["glow"]}"' in named.infotext
    assert parse_infotext(named.infotext)[2]["TI hashes"] == f"mystorm: {files['mystorm']}, glow: {files['glow']}"
    again = request_from_infotext(named.infotext)  # `render --from` reads it back: the names are in its prompts
    assert (again.prompt, again.negative_prompt, again.seed) == (request.prompt, request.negative_prompt, 9)
    assert "TI hashes" not in plain.infotext and "embeddings" not in plain.lineage
    assert named.lineage["embeddings"] == [
        {"name": "mystorm", "file": "mystorm.safetensors", "vectors": len(word_vectors(tiny_pipes[0], "storm")["clip_l"]), "hash": files["mystorm"]},
        {"name": "glow", "file": "glow.safetensors", "vectors": 3, "hash": files["glow"]},
    ]


def test_an_embedding_for_another_models_widths_is_a_clear_error(tiny_pipes, tmp_path):
    save_file({"clip_l": torch.randn(1, 768), "clip_g": torch.randn(1, 1280)}, str(tmp_path / "realxl.safetensors"))
    with pytest.raises(InvalidRequest, match="embedding realxl's clip_l vectors are 768 wide, but this model's text encoder is 32 wide"):
        encode(tiny_pipes[0], "a realxl photo", embeddings=Embeddings(tmp_path))


def test_a_new_file_counts_from_the_next_render_without_a_restart(tiny_pipes, tmp_path):
    base, _ = tiny_pipes
    engine = SDXLEngine(base, model_name="tiny-sdxl-base", embeddings_dir=tmp_path)
    request = RenderRequest("a keeper in a mystorm", num_inference_steps=2, width=64, height=64, seed=4, refiner="off")
    [before] = engine.render(request)
    save_file(word_vectors(base, "storm"), str(tmp_path / "mystorm.safetensors"))
    [after] = engine.render(request)
    assert "TI hashes" not in before.infotext and 'TI hashes: "mystorm: ' in after.infotext


def test_the_variable_reaches_the_settings_and_help():
    from imagegen.settings import help_text

    assert ImageSettings.from_env({"KEYART_EMBEDDINGS_DIR": " /models/embeddings "}).embeddings_dir == "/models/embeddings"
    assert "KEYART_EMBEDDINGS_DIR" in help_text()


def test_the_a1111_api_lists_the_embeddings_and_a_render_names_them(with_embeddings, folder, tmp_path):
    import httpx

    from imagegen.queue import RenderQueue
    from imagegen.server.app import create_app
    from tests.test_server_a1111 import TINY
    from tests.test_server_openai import serving

    with RenderQueue(with_embeddings, tmp_path) as queue:
        app = create_app(queue, limits=TINY)
        app.state.embeddings = Embeddings(folder)  # as `python -m imagegen serve` sets it from KEYART_EMBEDDINGS_DIR
        with serving(app) as url:
            base = f"{url}/sdapi/v1"
            listed = httpx.get(f"{base}/embeddings").json()
            width = with_embeddings.base.text_encoder_2.config.hidden_size
            assert listed["loaded"] == {
                "glow": {"step": None, "sd_checkpoint": None, "sd_checkpoint_name": None, "shape": width, "vectors": 3},
                "mystorm": {"step": None, "sd_checkpoint": None, "sd_checkpoint_name": None, "shape": width, "vectors": len(word_vectors(with_embeddings.base, "storm")["clip_l"])},
            }
            assert set(listed["skipped"]) == {"old-sd15", "uneven", "broken"} and "SD 1.5" in listed["skipped"]["old-sd15"]["reason"]
            assert httpx.post(f"{base}/refresh-embeddings").json() == {}
            answer = httpx.post(f"{base}/txt2img", json={"prompt": "a fox, glow", "steps": 2, "seed": 5}, timeout=60)
            assert answer.status_code == 200, answer.text
            assert 'TI hashes: "glow: ' in json.loads(answer.json()["info"])["infotexts"][0]


def test_the_serve_command_lists_the_folder_it_is_given(tiny_model_dirs, folder, tmp_path):
    import os

    import httpx

    from tests.serve_cli import serving_cli

    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYART_", "OPENAI_"))}
    env |= {"HF_HUB_OFFLINE": "1", "KEYART_SDXL_MODEL": str(tiny_model_dirs[0]), "KEYART_EMBEDDINGS_DIR": str(folder)}
    with serving_cli(["--engine", "sdxl", "--home", str(tmp_path)], env) as served:
        listed = httpx.get(f"{served.url}/sdapi/v1/embeddings", timeout=30).json()
    assert served.returncode == 0, served.err
    assert sorted(listed["loaded"]) == ["glow", "mystorm"] and sorted(listed["skipped"]) == ["broken", "old-sd15", "uneven"]


def test_a_file_removed_after_the_folder_was_read_is_a_clear_error(tiny_pipes, tmp_path):
    save_file(word_vectors(tiny_pipes[0], "storm"), str(tmp_path / "mystorm.safetensors"))
    found = Embeddings(tmp_path)
    assert "mystorm" in found.usable()
    (tmp_path / "mystorm.safetensors").unlink()
    with pytest.raises(InvalidRequest, match="embedding mystorm .* can no longer be read"):
        encode(tiny_pipes[0], "a mystorm", embeddings=found)

"""LoRA tags on the tiny base: found in the LoRA folder (KEYART_LORA_DIR), applied at their weights, removed without a trace."""

import hashlib
import os

import pytest
import torch

from imagegen import InvalidRequest, ModelNotFound
from imagegen.engines import lora
from imagegen.engines.sdxl_prompt import encode
from imagegen.prompt_syntax import LoraTag, extract_loras


@pytest.fixture(scope="module")
def lora_folder(tiny_pipes, tmp_path_factory):
    """ink (UNet and both text encoders) at the top, neon (UNet only) in a subfolder, plus a non-LoRA."""
    from imagegen.tiny_lora import save_tiny_lora

    folder = tmp_path_factory.mktemp("loras")
    save_tiny_lora(folder / "ink.safetensors", tiny_pipes[0], seed=1)
    save_tiny_lora(folder / "styles" / "neon.safetensors", tiny_pipes[0], seed=2, text_encoders=False)
    (folder / "notes.txt").write_text("not a LoRA")
    return folder


@pytest.fixture
def loras(lora_folder):
    """The LoRA folder, as the engine passes it (its lora_dir) to lora.applied and resolve."""
    return lora_folder


def render(pipe, prompt, folder, seed=0):
    """What the engine does with a prompt: strip the tags, apply them from `folder`, encode inside, render."""
    text, tags = extract_loras(prompt)
    with lora.applied(pipe, tags, folder=folder):
        embeds = encode(pipe, text, "blurry")
        generator = torch.Generator("cpu").manual_seed(seed)
        return pipe(num_inference_steps=2, width=64, height=64, generator=generator, output_type="np", **embeds).images


def has_peft_layers(pipe):
    from peft.tuners.tuners_utils import BaseTunerLayer

    modules = [*pipe.unet.modules(), *pipe.text_encoder.modules(), *pipe.text_encoder_2.modules()]
    return any(isinstance(m, BaseTunerLayer) for m in modules)


PROMPT = "a lighthouse keeper in a storm"


def test_a_lora_changes_the_render_and_leaves_no_trace(tiny_pipes, loras):
    base = tiny_pipes[0]
    before = render(base, PROMPT, loras)
    with_ink = render(base, PROMPT + " <lora:ink:1>", loras)
    after = render(base, PROMPT, loras)
    assert abs(with_ink - before).max() > 0.01
    # Bit-identical afterwards: the PEFT layers are unwrapped, the attention processors untouched.
    assert (after == before).all()
    assert not has_peft_layers(base) and not any(base.get_list_adapters().values())
    from diffusers.models.attention_processor import AttnProcessor2_0

    assert {type(p) for p in base.unet.attn_processors.values()} == {AttnProcessor2_0}


def test_the_weight_matters(tiny_pipes, loras):
    base = tiny_pipes[0]
    full, half, plain = render(base, f"{PROMPT} <lora:ink:1>", loras), render(base, f"{PROMPT} <lora:ink:0.5>", loras), render(base, PROMPT, loras)
    assert abs(full - half).max() > 0.01 and abs(half - plain).max() > 0.01
    # `<lora:ink>` is weight 1.0.
    assert (render(base, f"{PROMPT} <lora:ink>", loras) == full).all()


def test_text_encoder_and_unet_weights_are_separate(tiny_pipes, loras):
    base = tiny_pipes[0]
    plain = encode(base, PROMPT)["prompt_embeds"]
    with lora.applied(base, [LoraTag("ink", te_weight=1.0, unet_weight=0.0)], folder=loras):
        te_only = encode(base, PROMPT)["prompt_embeds"]
    with lora.applied(base, [LoraTag("ink", te_weight=0.0, unet_weight=1.0)], folder=loras):
        unet_only = encode(base, PROMPT)["prompt_embeds"]
    assert not torch.allclose(te_only, plain)
    assert torch.equal(unet_only, plain)


def test_two_loras_combine(tiny_pipes, loras):
    base = tiny_pipes[0]
    ink, neon = render(base, f"{PROMPT} <lora:ink:0.8>", loras), render(base, f"{PROMPT} <lora:styles/neon:0.8>", loras)
    both = render(base, f"<lora:ink:0.8> {PROMPT} <lora:styles/neon:0.8>", loras)
    assert abs(both - ink).max() > 0.01 and abs(both - neon).max() > 0.01
    assert not has_peft_layers(base)


def test_a_bare_name_finds_the_file_in_a_subfolder_as_a1111(loras):
    assert lora.resolve("neon", loras) == loras / "styles" / "neon.safetensors"
    assert lora.resolve("styles/neon", loras) == lora.resolve("styles\\neon", loras) == lora.resolve("neon.safetensors", loras)
    assert lora.available(loras) == ["ink", "styles/neon"]


def test_an_unknown_name_lists_what_exists(loras):
    with pytest.raises(ModelNotFound, match=r"no LoRA 'inc'.*available: ink, styles/neon"):
        lora.resolve("inc", loras)
    with pytest.raises(ModelNotFound, match="available: ink, styles/neon"):
        lora.resolve("other/neon", loras)  # a path that does not exist is not searched for by its stem


@pytest.mark.parametrize("name", ["../ink", "styles/../../ink", "..\\ink", "/etc/passwd", "C:\\loras\\ink", "\\\\server\\ink"])
def test_names_that_leave_the_folder_are_refused(loras, name):
    with pytest.raises(InvalidRequest, match="available: ink, styles/neon"):
        lora.resolve(name, loras)


def test_a_link_that_leads_out_is_refused(loras, tmp_path):
    outside = tmp_path / "secret.safetensors"
    outside.write_bytes(b"x")
    link = loras / "escape.safetensors"
    os.symlink(outside, link)
    try:
        assert "escape" not in lora.available(loras)
        with pytest.raises(InvalidRequest, match="links outside"):
            lora.resolve("escape", loras)
    finally:
        link.unlink()


def test_an_ambiguous_bare_name_asks_for_the_path(loras):
    twin = loras / "more" / "neon.safetensors"
    twin.parent.mkdir()
    twin.write_bytes((loras / "styles" / "neon.safetensors").read_bytes())
    try:
        with pytest.raises(InvalidRequest, match="ambiguous: more/neon, styles/neon"):
            lora.resolve("neon", loras)
        assert lora.resolve("more/neon", loras) == twin
    finally:
        twin.unlink()
        twin.parent.rmdir()


def test_an_unset_or_missing_folder_says_which_variable(tiny_pipes, monkeypatch, lora_folder, tmp_path):
    with pytest.raises(ModelNotFound, match="KEYART_LORA_DIR is not set"):
        lora.resolve("ink", None)
    with pytest.raises(ModelNotFound, match="KEYART_LORA_DIR is not set"), lora.applied(tiny_pipes[0], [LoraTag("ink")]):
        pass
    with pytest.raises(ModelNotFound, match="not a folder"):
        lora.resolve("ink", tmp_path / "nowhere")
    # The folder is a parameter: the variable itself is read by imagegen.settings, not here.
    monkeypatch.setenv(lora.LORA_ENV, str(lora_folder))
    with pytest.raises(ModelNotFound, match="KEYART_LORA_DIR is not set"):
        lora.resolve("ink", None)


def test_bad_tags_fail_before_the_model_is_touched(tiny_pipes, loras):
    base = tiny_pipes[0]
    for tags, error in [
        ([LoraTag("ink"), LoraTag("nope")], ModelNotFound),
        ([LoraTag("ink"), LoraTag("../ink")], InvalidRequest),
        ([LoraTag("ink"), LoraTag("ink", 0.5, 0.5)], InvalidRequest),  # one tag per LoRA
    ]:
        with pytest.raises(error), lora.applied(base, tags, folder=loras):
            pass
        assert not has_peft_layers(base)


def test_a_file_that_is_not_an_sdxl_lora_is_a_clear_error(tiny_pipes, loras):
    from safetensors.torch import save_file

    bad = loras / "sd15.safetensors"
    # LoRA keys for the right layers but the wrong widths, as an SD 1.5 LoRA has.
    key = "unet.mid_block.attentions.0.transformer_blocks.0.attn1.to_q.lora"
    save_file({f"{key}.down.weight": torch.ones(4, 320), f"{key}.up.weight": torch.ones(320, 4)}, str(bad))
    try:
        with pytest.raises(InvalidRequest, match="is it an SDXL LoRA"), lora.applied(tiny_pipes[0], [LoraTag("sd15")], folder=loras):
            pass
        assert not has_peft_layers(tiny_pipes[0])
    finally:
        bad.unlink()


def test_an_error_during_the_render_still_removes_the_loras(tiny_pipes, loras):
    with pytest.raises(RuntimeError, match="boom"), lora.applied(tiny_pipes[0], [LoraTag("ink")], folder=loras):
        assert has_peft_layers(tiny_pipes[0])
        raise RuntimeError("boom")
    assert not has_peft_layers(tiny_pipes[0])


def test_lora_hash_is_a1111s_addnet_hash(loras):
    path = loras / "ink.safetensors"
    data = path.read_bytes()
    header = int.from_bytes(data[:8], "little")
    expected = hashlib.sha256(data[8 + header :]).hexdigest()[:12]
    assert lora.lora_hash(path) == expected
    assert lora.lora_hash(path) != hashlib.sha256(data).hexdigest()[:12]  # not the whole file's
    assert lora.lora_hash(path) == expected  # cached


def test_the_infotext_field_is_a1111s_lora_hashes(loras):
    from imagegen.metadata import format_infotext, parse_infotext

    prompt = f"{PROMPT} <lora:ink:0.8> <lora:styles/neon:0.5>"
    _, tags = extract_loras(prompt)
    paths = [lora.resolve(t.name, loras) for t in tags]
    fields = lora.lora_infotext(tags, paths)
    ink, neon = (lora.lora_hash(p) for p in paths)
    assert fields == {"Lora hashes": f"ink: {ink}, styles/neon: {neon}"}
    # A1111 keeps the tags in the prompt line and quotes the field, which parses back whole.
    text = format_infotext(prompt, "", {"Steps": 2, "Seed": 1, "Size": "64x64", **fields})
    assert f'Lora hashes: "ink: {ink}, styles/neon: {neon}"' in text
    assert parse_infotext(text) == (prompt, "", {"Steps": "2", "Seed": "1", "Size": "64x64", "Lora hashes": fields["Lora hashes"]})
    assert lora.lora_infotext([], []) == {}


def test_lora_names_lose_colons_and_commas_in_the_field(loras):
    path = loras / "ink.safetensors"
    assert lora.lora_infotext([LoraTag("a,b:c")], [path]) == {"Lora hashes": f"abc: {lora.lora_hash(path)}"}

"""The engine's speed setting on the CPU with the tiny SDXL: `fast` (fused QKV projections,
channels_last) gives the standard image within 2 levels in every mode, with a LoRA (merged into the
weights for its render, restored bit for bit after) and with an IP-Adapter reference (run unfused,
fused again after), holds no more parameter memory than standard, and says so in the infotext; torch.compile (inductor, on the CPU) gives the same
image, keeps its kernels in the folder given, and does not recompile for a LoRA change; `turbo`
runs the deep blocks on one UNet call in three and labels its images; no speed reads a tensor's
value on the host inside the denoising loop; `auto` is standard on the CPU; a bad word, or a speed
asked of the preview engine, is refused."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils._python_dispatch import TorchDispatchMode

from imagegen import RenderRequest
from imagegen.cli import main
from imagegen.engines.sdxl import SDXLEngine
from imagegen.engines.sdxl_speed import resolve
from imagegen.errors import InvalidRequest
from imagegen.metadata import parse_infotext

SMALL = dict(num_inference_steps=4, width=64, height=64, seed=3)
TOLERANCE = 2  # levels of 255: fusing reorders the sums, it computes the same thing


@pytest.fixture(scope="module")
def engines(tmp_path_factory, tiny_ip_adapter):
    """(standard, fast) over two copies of the tiny SDXL (fusing changes a pipeline in place), with a LoRA folder."""
    from imagegen.tiny import tiny_sdxl
    from imagegen.tiny_lora import save_tiny_lora

    folder = tmp_path_factory.mktemp("speed")
    (b1, r1), (b2, r2) = tiny_sdxl(folder / "a"), tiny_sdxl(folder / "b")
    save_tiny_lora(folder / "loras" / "ink.safetensors", b1, seed=1)
    common = dict(model_name="tiny", lora_dir=folder / "loras", ip_adapter=tiny_ip_adapter)
    return SDXLEngine(b1, r1, **common), SDXLEngine(b2, r2, speed="fast", **common)


def pixels(engine, prompt="a lighthouse keeper", **fields):
    return np.asarray(engine.render(RenderRequest(prompt, **(SMALL | fields)))[0].image, dtype=np.int16)


def test_fast_gives_the_standard_image_in_every_mode(engines, tmp_path):
    standard, fast = engines
    init = tmp_path / "init.png"
    Image.new("RGB", (64, 64), (90, 120, 60)).save(init)
    for fields in (dict(refiner="off"), dict(refiner="on"), dict(hr_scale=1.5, denoising_strength=0.5, refiner="off"), dict(init_image=str(init), strength=0.6, refiner="off")):
        assert np.abs(pixels(standard, **fields) - pixels(fast, **fields)).max() <= TOLERANCE, fields
    assert fast.base.unet.attn_processors and all(type(p).__name__.startswith("Fused") for p in fast.base.unet.attn_processors.values())


def test_fast_gives_the_standard_image_with_tiling_freeu_and_an_embedding(engines, tmp_path):
    # channels_last and fused projections under circular padding, FreeU's reweighed blocks and an
    # embedding's vectors in the text encoders: the same image as standard.
    from safetensors.torch import save_file

    from imagegen.engines.embeddings import Embeddings

    standard, fast = engines
    widths = (standard.base.text_encoder.config.hidden_size, standard.base.text_encoder_2.config.hidden_size)
    generator = torch.Generator().manual_seed(4)
    save_file({key: torch.randn(2, w, generator=generator) for key, w in zip(("clip_l", "clip_g"), widths)}, str(tmp_path / "glow.safetensors"))
    for engine in engines:
        engine.embeddings = Embeddings(tmp_path)
    try:
        cases = (("a lighthouse keeper", dict(tiling="on")), ("a lighthouse keeper", dict(freeu="on", refiner="on")), ("a glow keeper", dict(negative_prompt="glow")))
        for prompt, fields in cases:
            assert np.abs(pixels(standard, prompt, **fields) - pixels(fast, prompt, **fields)).max() <= TOLERANCE, fields
    finally:
        for engine in engines:
            engine.embeddings = Embeddings(None)


def test_a_lora_is_merged_for_its_render_and_a_reference_runs_unfused(engines, tmp_path):
    standard, fast = engines
    before = {name: p.detach().clone() for name, p in fast.base.unet.named_parameters()}
    poster = tmp_path / "poster.png"
    Image.new("RGB", (80, 80), (200, 40, 30)).save(poster)
    for prompt, fields in (("a lighthouse keeper <lora:ink:1>", {}), ("a lighthouse keeper", dict(reference=str(poster), reference_scale=0.8))):
        assert np.abs(pixels(standard, prompt, refiner="off", **fields) - pixels(fast, prompt, refiner="off", **fields)).max() <= TOLERANCE, prompt
    # The LoRA took effect on the fast engine too, and the projections are fused again after it.
    assert np.abs(pixels(fast, "a lighthouse keeper <lora:ink:1>", refiner="off") - pixels(fast, refiner="off")).mean() > 0.5
    assert all(type(p).__name__.startswith("Fused") for p in fast.base.unet.attn_processors.values())
    # The merged weights were put back bit for bit, fused matrices included, and no adapter stayed behind.
    after = dict(fast.base.unet.named_parameters())
    assert after.keys() == before.keys() and all(torch.equal(after[name], value) for name, value in before.items())
    assert not any(fast.base.get_list_adapters().values())


def test_lora_adapters_on_a_fused_engine_run_on_its_separate_projections(engines, monkeypatch):
    # An fp8 engine keeps LoRAs as PEFT adapters, which wrap the separate q, k and v projections:
    # its renders must use them, not the fused ones that bypass the adapters. fp8 itself needs an
    # sm89+ GPU; its flag alone routes a fast engine's LoRAs to adapters here.
    standard, fast = engines
    monkeypatch.setattr(fast.tuning, "fp8", "linear")
    prompt = "a lighthouse keeper <lora:ink:1>"
    assert np.abs(pixels(standard, prompt, refiner="off") - pixels(fast, prompt, refiner="off")).max() <= TOLERANCE
    assert all(type(p).__name__.startswith("Fused") for p in fast.base.unet.attn_processors.values())
    assert not any(fast.base.get_list_adapters().values())


def parameter_bytes(model) -> int:
    """The memory a model's parameters hold: each storage once, however many parameters view it."""
    storages = {p.untyped_storage().data_ptr(): p.untyped_storage().nbytes() for p in model.parameters()}
    return sum(storages.values())


def fused_modules(unet) -> dict:
    return {name: m for name, m in unet.named_modules() if getattr(m, "fused_projections", False)}


def test_fused_projections_cost_no_memory_and_stay_the_same_through_a_lora_and_a_reference(engines, tmp_path):
    from imagegen.engines.sdxl_speed import _fused

    standard, fast = engines
    fused = fused_modules(fast.base.unet)
    assert fused and parameter_bytes(fast.base.unet) == parameter_bytes(standard.base.unet)
    assert parameter_bytes(fast.base.vae) == parameter_bytes(standard.base.vae)
    poster = tmp_path / "poster.png"
    Image.new("RGB", (80, 80), (200, 40, 30)).save(poster)
    before = {name: _fused(m)[0] for name, m in fused.items()}
    processors = {name: id(p) for name, p in fast.base.unet.attn_processors.items()}
    pixels(fast, "a lighthouse keeper <lora:ink:1>", refiner="off")
    pixels(fast, "a lighthouse keeper", reference=str(poster), reference_scale=0.8, refiner="off")
    # The same fused modules and processors (nothing for compiled code to recompile for), and
    # every separate weight still a view of its rows.
    assert {name: _fused(m)[0] for name, m in fused_modules(fast.base.unet).items()} == before
    assert {name: id(p) for name, p in fast.base.unet.attn_processors.items()} == processors
    for module in fused.values():
        whole, parts = _fused(module)
        offsets = np.cumsum([0] + [p.weight.shape[0] for p in parts[:-1]])
        assert [p.weight.data_ptr() for p in parts] == [whole.weight[o:].data_ptr() for o in offsets]
    assert parameter_bytes(fast.base.unet) == parameter_bytes(standard.base.unet)


def test_the_infotext_and_lineage_say_how_it_ran(engines):
    standard, fast = engines
    quick = fast.render(RenderRequest("a quay", **SMALL))[0]
    assert parse_infotext(quick.infotext)[2]["Speed"] == "fast" and quick.lineage["speed"] == "fast"
    plain = standard.render(RenderRequest("a quay", **SMALL))[0]
    assert "Speed" not in parse_infotext(plain.infotext)[2] and plain.lineage["speed"] == "standard"


def test_fast_takes_bf16_on_gpus_that_have_it_when_the_dtype_is_auto():
    from imagegen.engines.sdxl_speed import dtype_word

    assert dtype_word("auto", "fast", "cuda:0", True) == "bf16" and dtype_word(None, "fast", "cuda", True) == "bf16"
    assert dtype_word("auto", "fast", "cuda", False) == "auto" and dtype_word("auto", "standard", "cuda", True) == "auto"
    assert dtype_word("fp16", "fast", "cuda", True) == "fp16" and dtype_word("auto", "fast", "cpu", True) == "auto"


def test_auto_is_standard_on_the_cpu_and_bad_speeds_are_refused(tmp_path, capsys):
    assert resolve("auto", "cpu") == "standard" and resolve("auto", "cuda:0") == "fast" and resolve("FAST", "cpu") == "fast"
    with pytest.raises(InvalidRequest, match="speed is one of auto, standard, fast, turbo"):
        resolve("warp", "cpu")
    assert main(["render", "x", "--engine", "preview", "--speed", "fast", "--output", str(tmp_path / "o")]) == 2
    assert "sdxl" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_lowvram_runs_standard_and_refuses_fast_before_anything_loads(tiny_model_dirs, tmp_path, monkeypatch, capsys):
    # Sequential offload keeps the weights on the meta device between calls: a fused projection made
    # there has no weights to bring (diffusers renders it as "Tensor on device meta").
    assert resolve("auto", "cuda", "lowvram") == "standard" and resolve("standard", "cuda", "lowvram") == "standard"
    for speed in ("fast", "turbo"):
        with pytest.raises(InvalidRequest, match=f"speed {speed} cannot run with memory lowvram"):
            resolve(speed, "cuda", "lowvram")
    monkeypatch.setenv("KEYART_SDXL_MODEL", str(tiny_model_dirs[0]))
    assert main(["render", "x", "--memory", "lowvram", "--speed", "turbo", "--output", str(tmp_path / "o")]) == 2
    assert "use memory medvram with turbo, or speed standard with lowvram" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_turbo_reuses_the_deep_features_between_full_calls_and_labels_its_images(tmp_path):
    from imagegen.tiny import tiny_sdxl

    base, _ = tiny_sdxl(tmp_path / "t", refiner=False)
    turbo = SDXLEngine(base, model_name="tiny", speed="turbo")
    deep = turbo.base.unet.mid_block.resnets[0]  # inside the mid block: runs only when the block computes
    calls = []
    deep.register_forward_hook(lambda *_: calls.append(1))
    first = turbo.render(RenderRequest("a quay", **SMALL))[0]
    # 4 steps at interval 3: full calls at steps 0 and 3; steps 1 and 2 ran on the kept features.
    assert len(calls) == 2 and next(iter(turbo.tuning.caches.values())).reused == 2
    fields = parse_infotext(first.infotext)[2]
    assert fields["Speed"] == "turbo" and fields["Step cache"] == "3" and "FP8" not in fields
    assert first.lineage["turbo"]["step_cache"] == 3 and "compute capability" in first.lineage["turbo"]["fp8"]
    # Nothing kept crosses renders: another prompt, then the first again, gives the first image bit for bit.
    turbo.render(RenderRequest("a storm over the harbour", **SMALL))
    again = turbo.render(RenderRequest("a quay", **SMALL))[0]
    assert np.array_equal(np.asarray(first.image), np.asarray(again.image))
    # A hires fix's second pass (another size) starts its cache afresh and renders.
    hires = turbo.render(RenderRequest("a quay", **(SMALL | dict(hr_scale=1.5, denoising_strength=0.5))))[0]
    assert hires.image.size == (96, 96)


@pytest.mark.xdist_group("compile")
def test_compiled_gives_the_same_image_caches_its_kernels_and_a_lora_change_does_not_recompile(tmp_path):
    """One inductor compile on the CPU (about 20 s cold): the same image as uncompiled, kernels in the
    cache folder, then LoRA renders under torch's fail_on_recompile stance."""
    from imagegen.tiny import tiny_sdxl
    from imagegen.tiny_lora import save_tiny_lora

    (b1, _), (b2, _) = tiny_sdxl(tmp_path / "a", refiner=False), tiny_sdxl(tmp_path / "b", refiner=False)
    for name, seed in (("ink", 1), ("pen", 2)):
        save_tiny_lora(tmp_path / "loras" / f"{name}.safetensors", b1, seed=seed)
    common = dict(model_name="tiny", lora_dir=tmp_path / "loras")
    plain = SDXLEngine(b1, **common)
    compiled = SDXLEngine(b2, speed="fast", compile="on", compile_cache=tmp_path / "kernels", **common)
    assert compiled.tuning.compiled == "inductor"

    def both(prompt):
        request = RenderRequest(prompt, **(SMALL | dict(num_inference_steps=2)))
        return np.asarray(plain.render(request)[0].image, dtype=np.int16), compiled.render(request)[0]

    ours, image = both("a lighthouse keeper")
    assert np.abs(ours - np.asarray(image.image, dtype=np.int16)).max() <= TOLERANCE and image.lineage["compiled"] == "inductor"
    assert any((tmp_path / "kernels").rglob("*")), "inductor wrote no kernel to the cache folder given"
    with torch.compiler.set_stance("fail_on_recompile"):
        for prompt in ("a lighthouse keeper <lora:ink:1>", "a lighthouse keeper <lora:pen:0.7>", "a lighthouse keeper"):
            ours, image = both(prompt)
            assert np.abs(ours - np.asarray(image.image, dtype=np.int16)).max() <= TOLERANCE, prompt


def test_when_the_engine_compiles_and_where_fp8_runs():
    from imagegen.engines.sdxl_compile import wanted
    from imagegen.engines.sdxl_fp8 import unavailable

    assert wanted("auto", "fast", "cuda:0", "normal") and wanted("auto", "turbo", "cuda", "medvram")
    assert not wanted("auto", "standard", "cuda", "normal") and not wanted("auto", "fast", "cpu", "normal")
    assert wanted("on", "standard", "cpu", "normal") and not wanted("off", "fast", "cuda", "normal")
    assert not wanted("on", "fast", "cuda", "lowvram")  # sequential offload moves layers under compiled code
    with pytest.raises(InvalidRequest, match="compile is one of auto, on, off"):
        wanted("always", "fast", "cuda", "normal")
    assert "CUDA GPU of compute capability 8.9" in unavailable("cpu")


class HostReads(TorchDispatchMode):
    """Counts the operations that hand a tensor's value to Python (`.item()`, `bool()`, data-dependent
    shapes): on a GPU each one makes the host wait for the device."""

    READS = ("aten._local_scalar_dense", "aten.nonzero", "aten.masked_select", "aten.equal", "aten.is_nonzero", "aten.item")

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += str(func.overloadpacket) in self.READS
        return func(*args, **(kwargs or {}))


def test_weighing_a_prompt_reads_nothing_back():
    from imagegen.engines.sdxl_prompt import weigh

    hidden = torch.randn(1, 5, 8)
    for weights in ([1.0] * 5, [1.0, 1.3, 1.0, 0.8, 1.0]):
        mode = HostReads()
        with mode:
            weigh(hidden, weights)
        assert mode.count == 0, weights


def test_no_step_of_the_denoising_loop_reads_a_tensor_on_the_host(engines, tmp_path):
    # A render at 6 steps reads no more tensor values than one at 3: the loop, with keyart's step
    # callback (progress, a prompt edit), a merged LoRA and turbo's step cache, never waits on the GPU.
    from imagegen.tiny import tiny_sdxl

    standard, fast = engines
    turbo = SDXLEngine(*tiny_sdxl(tmp_path / "turbo", refiner=False), speed="turbo", lora_dir=fast.lora_dir)
    init = tmp_path / "init.png"
    Image.new("RGB", (64, 64), (90, 120, 60)).save(init)
    cases = (
        ("[a harbour:a storm:0.5], (keeper:1.3) <lora:ink:0.8>", dict(refiner="off")),
        ("a harbour at dusk", dict(init_image=str(init), strength=0.6, refiner="off")),
    )
    for engine in (standard, fast, turbo):
        for prompt, fields in cases:
            reads = []
            for steps in (3, 6):
                mode = HostReads()
                with mode:
                    engine.render(RenderRequest(prompt, **(SMALL | fields | {"num_inference_steps": steps})), progress=lambda done, total: None)
                reads.append(mode.count)
            assert reads[0] == reads[1], (engine.speed, prompt, reads)

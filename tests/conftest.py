"""Test settings: offline hub, one torch thread, styles from the package only."""

import os
import tempfile

# Nothing may download weights in tests: a slip fails loudly instead of hanging on the network.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.pop("KEYART_SDXL_MODEL", None)
os.environ.pop("KEYART_SDXL_REFINER", None)
os.environ.pop("KEYART_SDXL_VAE", None)
os.environ.pop("KEYART_STYLES", None)
os.environ.pop("KEYART_CONTROLNET_DIR", None)
os.environ.pop("KEYART_IP_ADAPTER", None)
os.environ.pop("KEYART_CAPTION_MODEL", None)
os.environ.pop("KEYART_DEPTH_MODEL", None)
os.environ.pop("KEYART_CLIP_MODEL", None)
os.environ["KEYART_CACHE"] = tempfile.mkdtemp(prefix="keyart-cache-")  # never the user's ~/.cache

import pytest


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Tiny renders are 10-50x slower when torch's threads fight another process for 2 cores."""
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    yield


@pytest.fixture(autouse=True)
def _unconfigured_styles_and_cache():
    """An entry point run in a test (the CLI's main) configures the style files, the hash cache and
    the blocklist files for the process; forget that afterwards, so the next test sees its own
    environment (a test's broken blocklist must not refuse the next test's prompts)."""
    yield
    from assistant import policy
    from imagegen import hashes, styles

    styles.use_files(None)
    hashes.use_cache(None)
    policy.use_blocklists([])


@pytest.fixture(scope="session")
def tiny_pipes(tmp_path_factory):
    """In-memory tiny SDXL (base, refiner), sharing text_encoder_2 and the VAE."""
    import torch

    torch.set_num_threads(1)
    from imagegen.tiny import tiny_sdxl

    return tiny_sdxl(tmp_path_factory.mktemp("tiny-tokenizer"))


@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory):
    """Tiny base and refiner saved as diffusers folders, as KEYART_SDXL_MODEL would name them."""
    import torch

    torch.set_num_threads(1)
    from imagegen.tiny import save_tiny_sdxl

    return save_tiny_sdxl(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture(scope="session")
def engine(tiny_pipes):
    """The SDXL engine over the tiny base and refiner (refiner used when a request says so)."""
    from imagegen.engines.sdxl import SDXLEngine

    base, refiner = tiny_pipes
    return SDXLEngine(base, refiner, model_name="tiny-sdxl-base", refiner_name="tiny-sdxl-refiner")


@pytest.fixture
def tiny_request():
    """A 2-step 64x64 request: about a tenth of a second on one CPU thread."""
    from imagegen import RenderRequest

    return RenderRequest("a lighthouse keeper in a storm", num_inference_steps=2, width=64, height=64, seed=42, refiner="off")


@pytest.fixture(scope="session")
def tiny_controlnet_dir(tiny_pipes, tmp_path_factory):
    """A KEYART_CONTROLNET_DIR of tiny ControlNets (canny, softedge, lineart, depth, pose) shaped
    after the tiny SDXL's UNet, each with random (not zero) output convolutions."""
    from imagegen.tiny_guides import save_tiny_controlnets

    return save_tiny_controlnets(tmp_path_factory.mktemp("tiny-controlnets"), tiny_pipes[0].unet)


@pytest.fixture(scope="session")
def tiny_ip_adapter(tiny_pipes, tmp_path_factory):
    """A KEYART_IP_ADAPTER: a tiny IP-Adapter for the tiny SDXL's UNet, its image encoder beside it."""
    from imagegen.tiny_guides import save_tiny_ip_adapter

    return save_tiny_ip_adapter(tmp_path_factory.mktemp("tiny-ip-adapter"), tiny_pipes[0].unet)


@pytest.fixture(scope="session")
def tiny_blip(tmp_path_factory):
    """A KEYART_CAPTION_MODEL: a tiny random-init BLIP captioner (its captions are random words)."""
    from imagegen.tiny_describe import save_tiny_blip

    return save_tiny_blip(tmp_path_factory.mktemp("tiny-blip"))


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory):
    """A KEYART_CLIP_MODEL: a tiny random-init CLIP model (text and vision)."""
    from imagegen.tiny_describe import save_tiny_clip

    return save_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture(scope="session")
def tiny_union_dir(tiny_pipes, tmp_path_factory):
    """A KEYART_CONTROLNET_DIR with a tiny union ControlNet (union/) and a canny one of its own."""
    from imagegen.tiny_guides import tiny_controlnet, tiny_union_controlnet

    folder = tmp_path_factory.mktemp("tiny-union")
    tiny_union_controlnet(tiny_pipes[0].unet, seed=7).save_pretrained(folder / "union")
    tiny_controlnet(tiny_pipes[0].unet, seed=8).save_pretrained(folder / "canny")
    return folder


@pytest.fixture(scope="session")
def tiny_depth(tmp_path_factory):
    """A KEYART_DEPTH_MODEL: a tiny random-init DPT depth estimator."""
    from imagegen.tiny_guides import save_tiny_depth

    return save_tiny_depth(tmp_path_factory.mktemp("tiny-depth"))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder for a property test module's files (tests/properties.py's `fresh` makes one per example)."""
    return tmp_path_factory.mktemp("properties")

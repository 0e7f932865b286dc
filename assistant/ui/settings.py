"""The Settings tab: this session's language model, engine, quality, catalog home and file; and what
is configured on this machine (models, GPU, catalog), each missing piece with what to set.

Nothing heavy runs here unasked: the engine is resolved by name only, and torch is imported only
when "Check GPU" is pressed (or is already loaded).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import streamlit as st

from imagegen.errors import KeyartError

from . import common

OK, MISSING, INFO = ":green[:material/check_circle:]", ":orange[:material/warning:]", ":blue[:material/info:]"
LLM_HELP = {
    "offline": "keyart's own rules write the prompts: no model, no network, always available.",
    "openai": "OpenAI, or any OpenAI-compatible server (vLLM, Ollama, LM Studio, llama.cpp).",
    "transformers": "A local chat model loaded with transformers from a folder.",
}
SECRET = ("OPENAI_API_KEY", "KEYART_API_KEY", "KEYART_A1111_API_KEY", "KEYART_IMAGES_API_KEY")
REMOTE = ("KEYART_A1111_URL", "KEYART_A1111_API_KEY", "KEYART_IMAGES_BASE_URL", "KEYART_IMAGES_MODEL", "KEYART_IMAGES_API_KEY", "KEYART_REMOTE_TIMEOUT")


def _env(name: str) -> str:
    """What the session's Settings hold for variable `name` (read from the environment once), as text."""
    from ..workflows.settings import value_of

    return value_of(common.configured(), name) or ""


def _var_table(names: list[str]) -> None:
    """Environment variables from the one table (workflows.settings.VARIABLES): whether each is set
    (secrets masked), what it is for, and its default."""
    from ..workflows.settings import variable

    lines = ["| variable | value | what it does |", "|---|---|---|"]
    for name in names:
        value, known = _env(name), variable(name)
        shown = ("set (hidden)" if name in SECRET else f"`{value}`") if value else "—"
        lines.append(f"| `{name}` | {shown} | {known.meaning} (default: {known.default}) |")
    st.markdown("\n".join(lines))


# -- the session's choices --------------------------------------------------------------------------


def choices() -> None:
    from ..workflows.service import ENGINES
    from ..models import LLMS
    from ..workflows.plan import BUILD_QUALITIES, describe_build_quality

    st.subheader("This session")
    st.caption("Choices for this browser session only; the environment variables below set the defaults.")
    left, middle, right = st.columns(3)
    left.selectbox("Language model", LLMS, key="llm", help="\n".join(f"- **{k}**: {v}" for k, v in LLM_HELP.items()))
    middle.selectbox("Image engine", ENGINES, key="engine", help="auto: SDXL when KEYART_SDXL_MODEL is set, else offline preview cards")
    right.radio("Quality", BUILD_QUALITIES, key="quality", horizontal=True, help="\n".join(f"- **{q}**: {describe_build_quality(q)}" for q in BUILD_QUALITIES))
    s = common.settings()
    with st.form("settings-paths", border=False):
        a, b = st.columns(2)
        home = a.text_input("Catalog home", value=s["home"], help="The folder with catalog.sqlite and images/ (KEYART_HOME)")
        source = b.text_input("Episodes file", value=s["input"], placeholder="empty: the sample show", help="CSV, JSON, JSONL or Parquet; seasons.<ext> beside it is read too")
        applied = st.form_submit_button("Use these", icon=":material/folder_open:")
    if applied:
        _apply_paths(home.strip(), source.strip())


def _apply_paths(home: str, source: str) -> None:
    """Check the paths first (a message that teaches), then switch the session to them."""
    path = Path(home).expanduser() if home else None
    if path is None:
        st.error("The catalog home cannot be empty; it is a folder keyart creates if needed, e.g. data/home.", icon=":material/error:")
        return
    if path.exists() and not path.is_dir():
        st.error(f"{path} is a file; the catalog home must be a folder.", icon=":material/error:")
        return
    try:
        common.catalog(source)  # reads and checks the file now
    except KeyartError as exc:
        common.show_error(exc)
        return
    st.session_state["home"], st.session_state["input"] = str(path), source
    st.rerun()


# -- what this machine has --------------------------------------------------------------------------


def language_model(name: str) -> None:
    from ..models.openai_chat import DEFAULT_MODEL

    st.markdown(f"#### Language model: `{name}`")
    st.caption(LLM_HELP[name])
    if name == "offline":
        st.markdown(f"{OK} Ready. To write prompts with a model, set `KEYART_LLM=openai` (with `OPENAI_API_KEY` or `OPENAI_BASE_URL`) or `KEYART_LLM=transformers` (with `KEYART_LLM_MODEL`).")
    elif name == "openai":
        if _env("OPENAI_API_KEY") or _env("OPENAI_BASE_URL"):
            where = _env("OPENAI_BASE_URL") or "api.openai.com"
            st.markdown(f"{OK} Configured: model `{_env('KEYART_LLM_MODEL') or DEFAULT_MODEL}` at {where}. It is first called when prompts are written.")
        else:
            st.markdown(f"{MISSING} Not configured: set `OPENAI_API_KEY` for OpenAI, or `OPENAI_BASE_URL` (e.g. `http://127.0.0.1:11434/v1`) for a local server; `KEYART_LLM_MODEL` picks the model. Until then, choose **offline**.")
    else:
        folder = _env("KEYART_LLM_MODEL")
        if not folder:
            st.markdown(f"{MISSING} Not configured: set `KEYART_LLM_MODEL` to a local model folder (config.json, tokenizer, weights). Until then, choose **offline**.")
        elif not Path(folder).expanduser().is_dir():
            st.markdown(f"{MISSING} `KEYART_LLM_MODEL={folder}` is not a folder here; point it at a downloaded model folder.")
        else:
            st.markdown(f"{OK} Configured: `{folder}`, loaded once on first use.")
    _var_table(["KEYART_LLM", "KEYART_LLM_MODEL", "OPENAI_API_KEY", "OPENAI_BASE_URL", "KEYART_LLM_TIMEOUT", "KEYART_LLM_JSON", "KEYART_BLOCKLIST"])


def engine(name: str) -> None:
    from ..workflows.service import MODEL_ENV, REFINER_ENV, VAE_ENV, choose, locate_model, locate_vae

    st.markdown(f"#### Image engine: `{name}`")
    try:
        choice = choose(name, settings=common.configured().image)
    except KeyartError as exc:
        st.markdown(f"{MISSING} {exc}")
    else:
        icon = MISSING if choice.name == "preview" else OK
        st.markdown(f"{icon} Resolves to **{choice.name}**: {choice.reason}.")
    unset = {
        MODEL_ENV: "not set: the engine makes offline preview cards",
        REFINER_ENV: "not set (optional: adds fine detail to final renders)",
        VAE_ENV: "not set: the model's own VAE (optional: an fp16-safe VAE decodes fp16 renders without an fp32 upcast)",
    }
    for variable, what in ((MODEL_ENV, "SDXL model"), (REFINER_ENV, "Refiner"), (VAE_ENV, "VAE")):
        value = _env(variable)
        if not value:
            st.markdown(f"{MISSING if variable == MODEL_ENV else INFO} {what}: {unset[variable]}.")
            continue
        try:
            source = locate_vae(value) if variable == VAE_ENV else locate_model(value, variable)
        except KeyartError as exc:
            st.markdown(f"{MISSING} {what}: {exc}")
        else:
            where = {"folder": "a diffusers folder", "file": "a single .safetensors file", "hub": "a hub id (downloaded on first use, or read from the hub cache)"}[source.kind]
            st.markdown(f"{OK} {what}: `{source.name}`, {where}. Loaded once, on the first render.")
    _var_table(["KEYART_ENGINE", MODEL_ENV, REFINER_ENV, VAE_ENV, "KEYART_SDXL_CONFIG", "KEYART_LORA_DIR", "KEYART_EMBEDDINGS_DIR", "KEYART_CONTROLNET_DIR", "KEYART_IP_ADAPTER", "KEYART_DEPTH_MODEL", "KEYART_CAPTION_MODEL", "KEYART_CLIP_MODEL", "KEYART_DEVICE", "KEYART_DTYPE", "KEYART_MEMORY", "KEYART_SPEED", "KEYART_COMPILE", "KEYART_CACHE", "KEYART_API_KEY", *REMOTE, "RAY_ADDRESS"])


def _probe_gpu() -> dict[str, Any]:
    """What torch sees. Importing torch takes seconds, so this runs when asked (or torch is loaded)."""
    try:
        import torch
    except ImportError:
        return {"torch": None}
    found: dict[str, Any] = {"torch": torch.__version__, "cuda": torch.cuda.is_available(), "devices": []}
    if found["cuda"]:
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            found["devices"].append(f"{props.name} ({props.total_memory / 2**30:.0f} GiB)")
    found["mps"] = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    return found


def gpu() -> None:
    st.markdown("#### GPU")
    clicked = st.button("Check GPU", icon=":material/memory:", help="Imports torch (a few seconds the first time)")
    if clicked or ("torch" in sys.modules and "settings-gpu" not in st.session_state):  # loaded already: checking is cheap
        with st.spinner("Importing torch..."):
            st.session_state["settings-gpu"] = _probe_gpu()
    found = st.session_state.get("settings-gpu")
    if found is None:
        st.caption("Not checked yet: checking imports torch, which takes a few seconds. The preview engine needs no GPU.")
    elif found["torch"] is None:
        st.markdown(f"{MISSING} torch is not installed, so SDXL cannot run here; `pip install -e .` installs it (preview cards need none).")
    elif found["cuda"]:
        st.markdown(f"{OK} CUDA: {', '.join(found['devices'])} (torch {found['torch']}). SDXL renders in seconds.")
    elif found["mps"]:
        st.markdown(f"{OK} Apple MPS (torch {found['torch']}). SDXL runs, slower than on CUDA.")
    else:
        st.markdown(
            f"{MISSING} No GPU visible to torch {found['torch']}: SDXL would run on the CPU (minutes per image). "
            "Use a machine with an NVIDIA GPU and a CUDA build of torch, or keep the preview engine for layout work."
        )


def catalog_info(s: dict[str, Any]) -> None:
    from ..catalog import SAMPLE
    from ..store import DB_NAME

    st.markdown("#### Catalog")
    home = Path(s["home"])
    if (home / DB_NAME).is_file():
        try:
            from ..workflows.export import status

            info = status(common.current_store())
        except KeyartError as exc:
            common.show_error(exc)
        else:
            totals: dict[str, int] = {}
            for kinds in info["shows"].values():
                for counts in kinds.values():
                    for state, n in counts.items():
                        totals[state] = totals.get(state, 0) + n
            summary = ", ".join(f"{n} {state}" for state, n in sorted(totals.items())) or "empty"
            st.markdown(f"{OK if totals else MISSING} Home `{home}`: {summary}." + ("" if totals else " Build it from the Episodes tab."))
            if info["failures"]:
                st.caption(f"{len(info['failures'])} failed; `python dataprep.py status --home {home}` lists the reasons.")
    else:
        st.markdown(f"{MISSING} Home `{home}` has no catalog yet: the Episodes tab builds one (or `python dataprep.py run`). Set `KEYART_HOME` (or the field above) to use another folder.")
    try:
        catalog = common.current_catalog()
    except KeyartError as exc:
        st.markdown(f"{MISSING} Episodes file: {exc}")
        return
    source = s["input"] or f"the sample show ({SAMPLE})"
    episodes, seasons = len(catalog.episodes), len(catalog.season_numbers())
    st.markdown(f"{OK} Episodes file: {source}. **{catalog.show}**: {seasons} seasons, {episodes} episodes, {len(catalog.seasons)} season summaries.")
    if catalog.problems:
        st.caption(f"{len(catalog.problems)} row(s) skipped, e.g. {catalog.problems[0]}")
    _var_table(["KEYART_HOME", "KEYART_QUALITY", "KEYART_STYLES"])


def render() -> None:
    s = common.settings()
    choices()
    st.divider()
    st.subheader("On this machine")
    left, right = st.columns(2, gap="large")
    with left:
        with st.container(border=True):
            language_model(s["llm"])
        with st.container(border=True):
            catalog_info(s)
    with right:
        with st.container(border=True):
            engine(s["engine"])
        with st.container(border=True):
            gpu()

"""What every tab shares: the active settings, and the catalog, store, models and engine, made once.

Heavy things (the language model, the image engine) are created on first use and kept with
`st.cache_resource`, so the first paint stays fast and a model is loaded once per process.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import streamlit as st

from ..models import LLM_ENV, LLMS


def settings() -> dict[str, Any]:
    """The session's choices (Settings tab), defaulting to the environment as the CLIs do."""
    state = st.session_state
    wanted = (os.environ.get(LLM_ENV) or "offline").strip().lower()
    state.setdefault("llm", wanted if wanted in LLMS else "offline")
    state.setdefault("engine", "auto")
    state.setdefault("quality", "draft")
    state.setdefault("home", str(_home_default()))
    state.setdefault("input", "")
    return {k: state[k] for k in ("llm", "engine", "quality", "home", "input")}


def _home_default() -> Path:
    from ..store import resolve_home

    return resolve_home()


@st.cache_resource(show_spinner=False)
def catalog(path: str = ""):
    """The show's catalog (the sample show when `path` is empty)."""
    from ..catalog import load_catalog

    return load_catalog(path or None)


@st.cache_resource(show_spinner=False)
def store(home: str):
    """The catalog store of `home` (its connections are per thread, so sessions can share it)."""
    from ..store import Store

    return Store(home)


@st.cache_resource(show_spinner="Loading the language model...")
def language_model(name: str):
    from ..models import load_model

    return load_model(name)


@st.cache_resource(show_spinner=False)
def engine_slot(name: str):
    """The image engine's slot: `auto`/`sdxl`/`preview` resolved now, the model loaded on first render."""
    from ..workflows.stages import EngineSlot

    return EngineSlot(name=name)


def current_catalog():
    return catalog(settings()["input"])


def current_store():
    return store(settings()["home"])


def show_error(exc: Exception) -> None:
    """A KeyartError as the user should read it: one message, no traceback."""
    st.error(str(exc), icon=":material/error:")


def plain(text: str) -> str:
    """`text` (a message, a model's reply) for st.markdown as written: its markdown and LaTeX marks escaped, its line breaks kept."""
    import re

    return re.sub(r"([\\`*_{}\[\]<>()#+\-.!|~$])", r"\\\1", text).replace("\n", "  \n")

"""What every tab shares: the active settings, and the catalog, store, models and engine, made once.

Heavy things (the language model, the image engine) are created on first use and kept with
`st.cache_resource`, so the first paint stays fast and a model is loaded once per process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st


def configured():
    """The process's Settings (environment), read once per browser session when it opens."""
    state = st.session_state
    if "keyart:settings" not in state:
        from ..workflows.settings import Settings

        state["keyart:settings"] = Settings.from_env().apply()
    return state["keyart:settings"]


def settings() -> dict[str, Any]:
    """The session's choices (Settings tab), defaulting to the environment as the CLIs do."""
    state = st.session_state
    base = configured()
    state.setdefault("llm", base.llm)
    state.setdefault("engine", base.engine)
    state.setdefault("quality", base.quality)  # "catalog": a build keeps the catalog's art unless asked otherwise
    state.setdefault("home", str(base.home_path))
    state.setdefault("input", "")
    return {k: state[k] for k in ("llm", "engine", "quality", "home", "input")}


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


def language_model(name: str):
    """The language model `name`, configured by the session's Settings, loaded once per process."""
    base = configured()
    return _language_model(name, base.llm_model, base.openai_base_url, base.openai_api_key, base.llm_timeout, _settings=base)


@st.cache_resource(show_spinner="Loading the language model...")
def _language_model(name: str, model: str | None, base_url: str | None, api_key: str | None, timeout: float, *, _settings):
    return _settings.language_model(name)


def render_service(name: str, home: str):
    """The image engine behind one render queue, shared by every session of this process.

    `auto`/`sdxl`/`preview` is resolved now, the model loaded when the first job runs; the queue's
    state lives in <home>/queues/dashboard. Sessions' renders take turns on the one engine.
    """
    base = configured()
    return _render_service(name, home, repr(base.image), _settings=base)


@st.cache_resource(show_spinner=False)
def _render_service(name: str, home: str, image_settings: str, *, _settings):
    return _settings.render_service(front="dashboard", engine=name, home=Path(home))


def current_service():
    s = settings()
    return render_service(s["engine"], s["home"])


def owner() -> str:
    """This browser session's id: its jobs in the shared render queue are its own to cancel."""
    import secrets

    return st.session_state.setdefault("owner", f"session-{secrets.token_hex(4)}")


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

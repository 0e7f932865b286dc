"""Which language model writes the prompts: `offline` (rules, the default), `openai`, `transformers`.

Chosen by name (the entry points read `--llm` / KEYART_LLM into their Settings). `openai` and
`transformers` are LangChain chat models, so any other LangChain chat model can be passed from
Python wherever a model is taken.
"""

from __future__ import annotations

from typing import Any

from ..errors import LLMNotConfigured
from ..schemas import Trace

LLMS = ("offline", "openai", "transformers")
LLM_ENV = "KEYART_LLM"


def resolve_name(name: str | None = None) -> str:
    chosen = (name or "offline").strip().lower()
    if chosen not in LLMS:
        raise LLMNotConfigured(f"unknown language model {chosen!r}; choose one of: {', '.join(LLMS)} (--llm or {LLM_ENV})")
    return chosen


def load_model(
    name: str | None = None, *, model: str | None = None, base_url: str | None = None, api_key: str | None = None,
    timeout: float | None = None,
) -> Any:  # fmt: skip
    """The model `name` names (offline by default): an OfflineModel or a LangChain chat model.

    `model` is the model's name (openai) or folder (transformers); `base_url`, `api_key` and
    `timeout` configure an OpenAI-compatible server. Settings.language_model() passes them all.
    """
    chosen = resolve_name(name)
    if chosen == "offline":
        from .offline import OfflineModel

        return OfflineModel()
    if chosen == "openai":
        from .openai_chat import build_openai_chat

        return build_openai_chat(model, base_url=base_url, api_key=api_key, timeout=timeout)
    from .local import LocalChatModel

    if not model:
        raise LLMNotConfigured("--llm transformers needs KEYART_LLM_MODEL set to a local model folder (config.json, tokenizer, weights)")
    return LocalChatModel.from_pretrained(model)


def is_offline(model: Any) -> bool:
    return getattr(model, "name", None) == "offline" and hasattr(model, "episode_reply")


def label(model: Any) -> str:
    """How the trace names a model: "offline", "openai:gpt-4o-mini", "transformers:qwen2.5-0.5b"."""
    if is_offline(model):
        return "offline"
    name = getattr(model, "model_name", None) or getattr(model, "model", None) or type(model).__name__
    kind = "transformers" if getattr(model, "_llm_type", "") == "keyart-transformers" else "openai" if type(model).__name__ == "ChatOpenAI" else type(model).__name__
    return f"{kind}:{name}"


def new_trace(model: Any, technique: str) -> Trace:
    return Trace(model=label(model), technique=technique)

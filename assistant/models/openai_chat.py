"""The OpenAI-compatible chat model: OpenAI itself or any local server (vLLM, Ollama, LM Studio, llama.cpp).

Configured by arguments or the environment; the SDK's own retries are off because keyart retries
itself (`assistant.retry`) so that every retry lands in the trace.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..errors import LLMNotConfigured

if TYPE_CHECKING:
    from langchain_openai import ChatOpenAI

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_TIMEOUT = 60.0  # seconds; a long structured reply from a slow local server fits in it
# Local servers ignore the key, but the SDK refuses to build a client without one.
PLACEHOLDER_KEY = "not-needed"


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _timeout_from_env() -> float:
    raw = _env("KEYART_LLM_TIMEOUT")
    if raw is None:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(raw)
    except ValueError:
        raise LLMNotConfigured(f"KEYART_LLM_TIMEOUT must be a number of seconds (got {raw!r}); for example KEYART_LLM_TIMEOUT=120") from None
    if seconds <= 0:
        raise LLMNotConfigured(f"KEYART_LLM_TIMEOUT must be more than 0 seconds (got {raw!r})")
    return seconds


def build_openai_chat(
    model: str | None = None,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    timeout: float | None = None,
    temperature: float = 0.2,
) -> ChatOpenAI:
    """A `ChatOpenAI` for `model` (or KEYART_LLM_MODEL) at `base_url` (or OPENAI_BASE_URL, else OpenAI).

    The key comes from `api_key` or OPENAI_API_KEY; a base URL without a key gets a placeholder key.
    """
    # 1. Arguments first, then the environment.
    model = model or _env("KEYART_LLM_MODEL") or DEFAULT_MODEL
    base_url = base_url or _env("OPENAI_BASE_URL")
    api_key = api_key or _env("OPENAI_API_KEY")
    timeout = _timeout_from_env() if timeout is None else timeout
    if not api_key and not base_url:
        raise LLMNotConfigured(
            "--llm openai needs OPENAI_API_KEY (or OPENAI_BASE_URL for a local OpenAI-compatible server such as "
            "vLLM, Ollama, LM Studio or llama.cpp, e.g. OPENAI_BASE_URL=http://127.0.0.1:11434/v1); "
            "pick the model with KEYART_LLM_MODEL (default gpt-4o-mini), or use --llm offline"
        )

    # 2. Build it. Imported here: langchain_openai pulls in openai, httpx2 and tiktoken.
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model=model,
        base_url=base_url,
        api_key=api_key or PLACEHOLDER_KEY,
        timeout=timeout,
        max_retries=0,  # keyart's with_retries records each retry in the trace
        use_responses_api=False,  # stay on /chat/completions, which every compatible server has
        temperature=temperature,
    )

"""The OpenAI-compatible chat model: OpenAI itself or any local server (vLLM, Ollama, LM Studio, llama.cpp).

Configured by arguments (the entry points' Settings); the SDK's own retries are off because keyart retries
itself (`assistant.retry`) so that every retry lands in the trace.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import LLMNotConfigured

if TYPE_CHECKING:
    from langchain_openai import ChatOpenAI

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_TIMEOUT = 60.0  # seconds; a long structured reply from a slow local server fits in it
# Local servers ignore the key, but the SDK refuses to build a client without one.
PLACEHOLDER_KEY = "not-needed"


def build_openai_chat(
    model: str | None = None,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    timeout: float | None = None,
    temperature: float = 0.2,
) -> ChatOpenAI:
    """A `ChatOpenAI` for `model` (default gpt-4o-mini) at `base_url` (default OpenAI) with `api_key`.

    The entry points read KEYART_LLM_MODEL, OPENAI_BASE_URL, OPENAI_API_KEY and KEYART_LLM_TIMEOUT
    into their Settings and pass them here; a base URL without a key gets a placeholder key.
    """
    # 1. The arguments, with their defaults.
    model = model or DEFAULT_MODEL
    timeout = DEFAULT_TIMEOUT if timeout is None else timeout
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

"""Language-model replies cached in the catalog store, as a LangChain cache.

Keyed by a hash of the model's settings (LangChain's `llm_string`: model, server, temperature,
response format) and the messages, so a rerun, or a run resumed after a crash, asks nothing twice.
A reply is stored as its text and metadata only: nothing executable is read back.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from langchain_core.caches import BaseCache
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, Generation

from .store import Store, digest


class StoreCache(BaseCache):
    """Replies in the store's `llm_cache` table. `read=False` re-asks the model but keeps the answer."""

    def __init__(self, store: Store, *, read: bool = True):
        self.store = store
        self.read = read
        self.hits = 0
        self.misses = 0

    def lookup(self, prompt: str, llm_string: str) -> Sequence[Generation] | None:
        value = self.store.cached_reply(digest([llm_string, prompt])) if self.read else None
        if value is None:
            self.misses += 1
            return None
        self.hits += 1
        return [_generation(item) for item in json.loads(value)]

    def update(self, prompt: str, llm_string: str, return_val: Sequence[Generation]) -> None:
        self.store.cache_reply(digest([llm_string, prompt]), json.dumps([_plain(g) for g in return_val], ensure_ascii=False))

    def clear(self, **kwargs: Any) -> None:
        with self.store.transaction() as db:
            db.execute("DELETE FROM llm_cache")


def _plain(generation: Generation) -> dict[str, Any]:
    message = getattr(generation, "message", None)
    if message is None:
        return {"text": generation.text}
    return {"text": generation.text, "content": message.content, "metadata": _jsonable(message.response_metadata)}


def _generation(item: dict[str, Any]) -> Generation:
    if "content" not in item:
        return Generation(text=item["text"])
    return ChatGeneration(message=AIMessage(content=item["content"], response_metadata=item.get("metadata") or {}))


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def attach(model: Any, cache: StoreCache) -> Any:
    """A copy of a LangChain chat model that uses the cache; other models (the offline rules) need none.

    A copy, not the model itself: a shared model (the dashboard's) must not start answering from
    one catalog's cache for every other user of it.
    """
    if hasattr(model, "model_copy") and hasattr(model, "_generate_with_cache"):
        return model.model_copy(update={"cache": cache})
    return model

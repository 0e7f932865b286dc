"""One structured call to a chat model: JSON validated by pydantic, one repair round, traced.

Native structured output (`json_schema`) is used where the server has it; where it does not (HTTP
400 on `response_format`, or a model without the feature), the JSON comes in the reply text. Every
request, raw reply, retry and repair lands in the `Trace`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from .errors import ReplyInvalid
from .retry import LLMRequestRejected, with_retries
from .schemas import Trace

log = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)
JSON_METHODS = ("auto", "json_schema", "text")
REPAIR = (
    "Your previous reply could not be used: {error}\n"
    "Reply again with only the JSON object described above: no prose, no code fences."
)
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.MULTILINE)
# Servers known (in this process) to reject `response_format`: ask them for JSON in the text.
_NO_NATIVE_JSON: set[str] = set()


def _as_dicts(messages: list[Any]) -> list[dict[str, Any]]:
    return [{"role": m.type, "content": m.content} for m in messages]


def _server_key(chat: Any) -> str:
    return f"{getattr(chat, 'openai_api_base', '')}|{getattr(chat, 'model_name', '')}"


_json_method = "auto"  # set once by the entry points (Settings.apply), from KEYART_LLM_JSON


def use_json_method(method: str) -> None:
    """How replies are asked to be JSON, for the whole process: auto, json_schema, json_mode or text."""
    global _json_method
    chosen = str(method).strip().lower()
    if chosen not in JSON_METHODS:
        raise ReplyInvalid(f"KEYART_LLM_JSON must be one of {', '.join(JSON_METHODS)} (got {method!r})")
    _json_method = chosen


def _method(chat: Any) -> str:
    chosen = _json_method
    native = type(chat).__name__ == "ChatOpenAI" and _server_key(chat) not in _NO_NATIVE_JSON
    if chosen == "auto":
        return "json_schema" if native else "text"
    return chosen


def extract_json(text: str) -> Any:
    """The JSON object in a reply: bare, fenced, or the first balanced {...} amid prose."""
    text = _FENCE.sub("", text.strip())
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        start = text.find("{")
        if start < 0:
            raise
        decoded, _ = json.JSONDecoder().raw_decode(text[start:])
        return decoded


def ask_json(chat: Any, messages: list[Any], schema: type[T], trace: Trace, *, check: Callable[[T], str | None] | None = None) -> T:
    """Ask for a `schema` object; one repair round with the error; `ReplyInvalid` if still unusable.

    `check` returns what is still wrong with a parsed reply (None when it is fine); that counts
    as an error for the repair round like a parse error does.
    """
    from langchain_core.messages import AIMessage, HumanMessage

    conversation = list(messages)
    for round_ in range(2):
        # 1. One request (retried on 429/5xx/timeouts), natively structured where possible.
        raw, parsed, error = _request(chat, conversation, schema, trace)
        if parsed is not None:
            error = (check(parsed) if check else None) or ""
            if not error:
                return parsed
        # 2. Unusable: show the model its error once, then give up.
        if round_ == 0:
            trace.repairs += 1
            log.info("reply was not usable (%s); asking for a repair", error)
            conversation += [AIMessage(content=raw), HumanMessage(content=REPAIR.format(error=error))]
    raise ReplyInvalid(f"the reply was still not valid after a repair round: {error}")


def ask_or_offline(
    model: Any,
    messages: Callable[[], list[Any]],
    schema: type[T],
    trace: Trace,
    *,
    offline: Callable[[], T],
    what: str,
    check: Callable[[T], str | None] | None = None,
) -> T:
    """`offline()` for the offline model; else `ask_json` on `messages()`, and when the reply stays
    unusable `offline()` with the reason in `trace.fallback` ("offline rules {what}: ...")."""
    from .models import is_offline

    if is_offline(model):
        return offline()
    try:
        return ask_json(model, messages(), schema, trace, check=check)
    except ReplyInvalid as exc:
        trace.fallback = f"offline rules {what}: {exc}"
        return offline()


def _request(chat: Any, conversation: list[Any], schema: type[T], trace: Trace) -> tuple[str, T | None, str]:
    method = _method(chat)
    trace.messages.append(_as_dicts(conversation))
    # The schema goes as a plain `response_format` dict, not a pydantic class: with a class the
    # openai SDK parses the reply itself and raises on bad JSON, losing the raw text the repair
    # round needs. Either way the reply is validated below, in one place.
    runnable = chat.bind(response_format=response_format(schema)) if method == "json_schema" else chat
    try:
        reply = with_retries(lambda: runnable.invoke(conversation), record=trace.retries.append)
    except LLMRequestRejected as exc:
        if method != "json_schema" or exc.status != 400:
            raise
        # The server has no structured output: ask for JSON in the text from now on.
        _NO_NATIVE_JSON.add(_server_key(chat))
        trace.warnings.append(f"the server rejected structured output ({exc.server_message}); asked for JSON in the reply instead")
        trace.messages.pop()
        return _request(chat, conversation, schema, trace)
    raw = _text(reply)
    trace.replies.append(raw)
    try:
        return raw, schema.model_validate(extract_json(raw)), ""
    except (json.JSONDecodeError, ValidationError, ValueError) as exc:
        return raw, None, _describe(exc)


def response_format(schema: type[BaseModel]) -> dict[str, Any]:
    """OpenAI's `json_schema` response format for `schema`; not strict, which needs every field required."""
    return {"type": "json_schema", "json_schema": {"name": schema.__name__, "schema": schema.model_json_schema(), "strict": False}}


def ask_text(chat: Any, messages: list[Any], trace: Trace, *, stop: list[str] | None = None) -> str:
    """A plain-text reply (retried on 429/5xx/timeouts), recorded in the trace."""
    trace.messages.append(_as_dicts(messages))
    reply = with_retries(lambda: chat.invoke(messages, stop=stop) if stop else chat.invoke(messages), record=trace.retries.append)
    raw = _text(reply)
    trace.replies.append(raw)
    return raw


def _text(message: Any) -> str:
    content = getattr(message, "content", message)
    if isinstance(content, list):  # content blocks
        return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)
    return str(content or "")


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return ""
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'reply'}: {e['msg']}" for e in exc.errors()[:5])
    return f"{type(exc).__name__}: {exc}"

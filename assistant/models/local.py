"""A causal language model from a local folder (`--llm transformers`, KEYART_LLM_MODEL) as a LangChain chat model.

The tokenizer's chat template renders the conversation when it has one; base models without one
get a plain "System: / User: / Assistant:" transcript. Decoding is greedy unless asked otherwise.
torch and transformers are imported inside the methods, so importing this module stays light.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr

from ..errors import LLMNotConfigured, LLMUnavailable

log = logging.getLogger(__name__)

MODEL_ENV = "KEYART_LLM_MODEL"
LLM_TYPE = "keyart-transformers"

# The plain fallback for tokenizers without a chat template: one turn per message, rendered with
# str.format (so braces in a summary are only text), turns separated by a blank line, and an open
# "Assistant:" turn for the model to complete. Example:
#   System: You write prompts.\n\nUser: A lighthouse keeper...\n\nAssistant:
PLAIN_TURN = "{role}: {content}"
PLAIN_SEPARATOR = "\n\n"
PLAIN_GENERATION_PROMPT = "Assistant:"
PLAIN_ROLES = {"system": "System", "human": "User", "ai": "Assistant"}
# A base model continues the transcript past its own turn; these end it there (plain fallback only).
PLAIN_STOP = ("\nUser:", "\nSystem:")

# Chat templates name roles the OpenAI way.
TEMPLATE_ROLES = {"system": "system", "human": "user", "ai": "assistant"}

# "owner/name" or "name": what a Hugging Face hub id looks like (as opposed to a path).
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def _not_configured(path: str, why: str) -> LLMNotConfigured:
    return LLMNotConfigured(
        f"--llm transformers needs {MODEL_ENV} to be a local model folder (config.json, tokenizer files, weights); "
        f"{path!r} {why}. Download one first (e.g. `hf download Qwen/Qwen2.5-0.5B-Instruct --local-dir models/qwen`) "
        f"and set {MODEL_ENV}=models/qwen, or use --llm offline"
    )


def _role(message: BaseMessage, roles: dict[str, str]) -> str:
    if message.type in roles:
        return roles[message.type]
    if message.type == "chat":  # ChatMessage carries its own role
        return str(getattr(message, "role", "user"))
    raise ValueError(f"{type(message).__name__} is not supported by the local chat model; use system, human and AI messages")


def _fold_system(conversation: list[dict[str, str]]) -> list[dict[str, str]]:
    system, rest = conversation[0]["content"], conversation[1:]
    if rest and rest[0]["role"] == "user":
        return [{"role": "user", "content": PLAIN_SEPARATOR.join([system, rest[0]["content"]])}, *rest[1:]]
    return [{"role": "user", "content": system}, *rest]


class LocalChatModel(BaseChatModel):
    """A transformers causal LM as a LangChain chat model: `LocalChatModel.from_pretrained(folder)`.

    Components are injected (`LocalChatModel(model, tokenizer)`), so tests can pass tiny ones.
    `temperature` 0 (the default) means greedy decoding: the same messages give the same reply.
    """

    model_name: str = "local"
    max_new_tokens: int = 512
    temperature: float = 0.0

    _hf_model: Any = PrivateAttr(default=None)
    _tokenizer: Any = PrivateAttr(default=None)

    def __init__(self, model: Any, tokenizer: Any, **kwargs: Any) -> None:
        if "model_name" not in kwargs:
            source = getattr(getattr(model, "config", None), "name_or_path", "") or ""
            kwargs["model_name"] = Path(source).name or type(model).__name__
        super().__init__(**kwargs)
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1 (got {self.max_new_tokens})")
        self._hf_model = model
        self._tokenizer = tokenizer

    @classmethod
    def from_pretrained(cls, path: str | Path, *, max_new_tokens: int = 512, device: str | None = None, **kwargs: Any) -> LocalChatModel:
        """Load tokenizer and model from a local folder (or a hub id already in the local cache).

        CPU runs in float32; CUDA (the default where there is one, unless `device` says otherwise)
        in bfloat16, or float16 on GPUs without bf16. Nothing is downloaded.
        """
        # 1. Check the folder before importing anything heavy, so a typo fails fast.
        raw = str(path).strip()
        folder = Path(raw).expanduser()
        hub_id = not folder.exists() and bool(_HUB_ID.match(raw)) and not raw.startswith((".", "~"))
        if not hub_id:
            if not folder.is_dir():
                raise _not_configured(raw, "is not a folder")
            if not (folder / "config.json").is_file():
                raise _not_configured(raw, "has no config.json (is it the model folder itself, not its parent?)")

        # 2. Pick device and dtype.
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if device.startswith("cuda"):
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        else:
            dtype = torch.float32

        # 3. Load, local files only; a hub id not in the cache is a configuration problem here.
        source = raw if hub_id else str(folder)
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
            # transformers 5 builds a one-token tokenizer from a folder that only has config.json,
            # silently; a tokenizer that cannot encode "a" means the tokenizer files are missing.
            if not tokenizer("a", add_special_tokens=False)["input_ids"]:
                raise _not_configured(raw, "has no usable tokenizer files (tokenizer.json, or vocab.json and merges.txt, ...)")
            model = AutoModelForCausalLM.from_pretrained(source, local_files_only=True, dtype=dtype)
        except OSError as exc:
            why = "is not a folder here and not in the local Hugging Face cache" if hub_id else f"could not be loaded ({exc})"
            raise _not_configured(raw, why) from exc
        model.to(device).eval()
        name = raw.rstrip("/") if hub_id else folder.resolve().name
        return cls(model, tokenizer, model_name=name, max_new_tokens=max_new_tokens, **kwargs)

    # -- what a caller can read -------------------------------------------------------------

    @property
    def _llm_type(self) -> str:
        return LLM_TYPE

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "max_new_tokens": self.max_new_tokens, "temperature": self.temperature}

    @property
    def uses_chat_template(self) -> bool:
        """True when the tokenizer has a chat template; False means the plain transcript fallback."""
        return bool(getattr(self._tokenizer, "chat_template", None))

    @property
    def tokenizer(self) -> Any:
        return self._tokenizer

    @property
    def hf_model(self) -> Any:
        return self._hf_model

    def get_token_ids(self, text: str) -> list[int]:
        # LangChain's default downloads GPT-2's tokenizer; this model has its own.
        return list(self._tokenizer.encode(text, add_special_tokens=False))

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "transformers"
        params["ls_model_name"] = self.model_name
        return params

    # -- prompt -----------------------------------------------------------------------------

    def render_prompt(self, messages: list[BaseMessage]) -> str:
        """The exact text the model continues: its chat template's rendering, or PLAIN_* turns."""
        if self.uses_chat_template:
            from jinja2 import TemplateError

            conversation = [{"role": _role(m, TEMPLATE_ROLES), "content": m.text} for m in messages]
            try:
                return self._tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
            except TemplateError:
                # Some templates (Gemma, older Mistral) refuse a system turn: fold it into the first user turn.
                if not conversation or conversation[0]["role"] != "system":
                    raise
                log.info("%s's chat template has no system role; the system message opens the first user turn", self.model_name)
                return self._tokenizer.apply_chat_template(_fold_system(conversation), tokenize=False, add_generation_prompt=True)
        turns = [PLAIN_TURN.format(role=_role(m, PLAIN_ROLES), content=m.text) for m in messages]
        return PLAIN_SEPARATOR.join([*turns, PLAIN_GENERATION_PROMPT])

    @property
    def context_length(self) -> int | None:
        """The most tokens the model reads, prompt and reply together (None when its config does not say)."""
        config = getattr(self._hf_model, "config", None)
        value = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
        return int(value) if isinstance(value, int) and value > 0 else None

    # -- generation -------------------------------------------------------------------------

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        import torch

        # 1. Render and tokenize; a chat template writes its own special tokens.
        prompt = self.render_prompt(messages)
        stops = [s for s in (stop or []) if s] + ([] if self.uses_chat_template else list(PLAIN_STOP))
        encoded = self._tokenizer(prompt, return_tensors="pt", add_special_tokens=not self.uses_chat_template)
        device = self._hf_model.device
        input_ids = encoded["input_ids"].to(device)
        attention_mask = encoded["attention_mask"].to(device)
        prompt_len = input_ids.shape[1]

        # 2. Generate: greedy unless a temperature is set, ending early on a stop string, and never
        #    past the model's context (the reply is cut short there, as a "length" finish).
        context = self.context_length
        if context and prompt_len >= context:
            raise LLMUnavailable(
                f"the prompt is {prompt_len} tokens but {self.model_name} reads at most {context}; "
                "use a model with a longer context (4096 tokens or more suits keyart's prompts), or --llm offline"
            )
        max_new_tokens = int(kwargs.get("max_new_tokens", self.max_new_tokens))
        if context:
            max_new_tokens = min(max_new_tokens, context - prompt_len)
        temperature = float(kwargs.get("temperature", self.temperature))
        sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
        pad_id = self._tokenizer.pad_token_id if self._tokenizer.pad_token_id is not None else self._tokenizer.eos_token_id
        criteria = _stop_on_text(self._tokenizer, prompt_len, stops) if stops else None
        with torch.inference_mode():
            output = self._hf_model.generate(
                input_ids=input_ids,
                attention_mask=attention_mask,
                max_new_tokens=max_new_tokens,
                num_beams=1,
                pad_token_id=pad_id,
                stopping_criteria=criteria,
                **sampling,
            )
        new_ids = output[0, prompt_len:].tolist()

        # 3. Decode only the new tokens and cut at the first stop string.
        text = self._tokenizer.decode(new_ids, skip_special_tokens=True)
        cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
        if cut >= 0:
            text, finish = text[:cut], "stop"
        elif len(new_ids) >= max_new_tokens:
            finish = "length"
        else:
            finish = "stop"  # the model ended its turn (end-of-sequence token)

        info = {
            "model_name": self.model_name,
            "prompt_format": "chat_template" if self.uses_chat_template else "plain",
            "input_tokens": prompt_len,
            "output_tokens": len(new_ids),
            "finish_reason": finish,
        }
        usage = {"input_tokens": prompt_len, "output_tokens": len(new_ids), "total_tokens": prompt_len + len(new_ids)}
        message = AIMessage(content=text, response_metadata=dict(info), usage_metadata=usage)
        return ChatResult(generations=[ChatGeneration(message=message, generation_info=info)], llm_output={"model_name": self.model_name})


def _stop_on_text(tokenizer: Any, prompt_len: int, stops: list[str]) -> Any:
    """A StoppingCriteriaList that ends generation once any stop string appears in the new text."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    # A stop string of n characters spans at most 4n byte-level tokens (UTF-8 is at most 4 bytes
    # per character), so decoding that tail each step finds it without re-decoding everything.
    tail = 4 * max(len(s) for s in stops) + 4

    class StopOnText(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            done = [
                any(s in tokenizer.decode(row[prompt_len:][-tail:], skip_special_tokens=True) for s in stops)
                for row in input_ids.tolist()
            ]
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([StopOnText()])

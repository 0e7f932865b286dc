"""The local transformers chat model: prompt rendering, greedy decoding, stops, limits and loading errors.

The tiny model's text is noise; these tests check the plumbing around it.
"""

import subprocess
import sys

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from assistant.errors import LLMNotConfigured

MESSAGES = [SystemMessage("You write SDXL prompts. {braces} stay text."), HumanMessage("A lighthouse keeper in a storm.")]
SHORT = 24  # new tokens per test call: enough noise to cut, quick on one thread


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Two folders with the same tiny GPT-2: one tokenizer with a chat template, one without."""
    import torch

    torch.set_num_threads(1)
    from tiny_llm import write_tiny_causal_lm

    root = tmp_path_factory.mktemp("tiny-llm")
    return {
        "chat": write_tiny_causal_lm(root / "tiny-chat", chat_template=True),
        "plain": write_tiny_causal_lm(root / "tiny-base", chat_template=False),
    }


@pytest.fixture(scope="module")
def chat_model(folders):
    from assistant.models.local import LocalChatModel

    return LocalChatModel.from_pretrained(str(folders["chat"]), max_new_tokens=SHORT, device="cpu")


@pytest.fixture(scope="module")
def plain_model(folders):
    from assistant.models.local import LocalChatModel

    return LocalChatModel.from_pretrained(str(folders["plain"]), max_new_tokens=SHORT, device="cpu")


def test_invoke_returns_an_ai_message_with_metadata(chat_model):
    reply = chat_model.invoke(MESSAGES)
    assert isinstance(reply, AIMessage) and isinstance(reply.content, str) and reply.content
    assert reply.response_metadata["model_name"] == "tiny-chat"
    assert reply.response_metadata["prompt_format"] == "chat_template"
    assert reply.response_metadata["finish_reason"] == "length"
    assert reply.usage_metadata["output_tokens"] == SHORT
    assert reply.usage_metadata["input_tokens"] == len(chat_model.tokenizer(chat_model.render_prompt(MESSAGES), add_special_tokens=False)["input_ids"])
    assert chat_model.model_name == "tiny-chat" and chat_model._llm_type == "keyart-transformers"


def test_the_model_is_labelled_in_traces(chat_model):
    from assistant.models import label

    assert label(chat_model) == "transformers:tiny-chat"


def test_greedy_decoding_is_deterministic(plain_model):
    first, second = plain_model.invoke(MESSAGES).content, plain_model.invoke(MESSAGES).content
    assert first == second


def test_chat_template_or_plain_fallback(chat_model, plain_model):
    assert chat_model.uses_chat_template is True
    assert plain_model.uses_chat_template is False
    templated, plain = chat_model.render_prompt(MESSAGES), plain_model.render_prompt(MESSAGES)
    assert templated != plain
    assert templated.startswith("<|im_start|>system\nYou write SDXL prompts.")
    assert "<|im_start|>user\nA lighthouse keeper in a storm.<|im_end|>" in templated
    assert templated.endswith("<|im_start|>assistant\n")
    assert plain == "System: You write SDXL prompts. {braces} stay text.\n\nUser: A lighthouse keeper in a storm.\n\nAssistant:"
    assert plain_model.invoke(MESSAGES).response_metadata["prompt_format"] == "plain"


def test_earlier_assistant_turns_are_rendered(chat_model, plain_model):
    turns = [*MESSAGES, AIMessage("not json"), HumanMessage("Try again.")]
    assert "<|im_start|>assistant\nnot json<|im_end|>" in chat_model.render_prompt(turns)
    assert "Assistant: not json\n\nUser: Try again.\n\nAssistant:" in plain_model.render_prompt(turns)


def test_a_template_without_a_system_role_gets_it_in_the_first_user_turn(folders, chat_model):
    from transformers import AutoTokenizer

    from assistant.models.local import LocalChatModel

    tokenizer = AutoTokenizer.from_pretrained(folders["chat"])
    tokenizer.chat_template = (
        "{% for message in messages %}{% if message['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
        "[{{ message['role'] }}] {{ message['content'] }}\n{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}"
    )
    model = LocalChatModel(chat_model.hf_model, tokenizer, max_new_tokens=3)  # components injected
    assert model.render_prompt(MESSAGES) == "[user] You write SDXL prompts. {braces} stay text.\n\nA lighthouse keeper in a storm.\n[assistant] "
    assert model.invoke(MESSAGES).usage_metadata["output_tokens"] == 3


def test_max_new_tokens_bounds_the_reply(folders, chat_model):
    from assistant.models.local import LocalChatModel

    short = LocalChatModel.from_pretrained(str(folders["chat"]), max_new_tokens=5, device="cpu").invoke(MESSAGES)
    assert short.usage_metadata["output_tokens"] == 5
    assert short.response_metadata["finish_reason"] == "length"
    # The same limit per call, and greedy decoding makes the short reply a prefix of the long one.
    per_call = chat_model.invoke(MESSAGES, max_new_tokens=5)
    assert per_call.content == short.content
    assert chat_model.invoke(MESSAGES).content.startswith(short.content)
    assert len(short.content) < len(chat_model.invoke(MESSAGES).content)


def test_a_stop_string_cuts_the_reply_and_ends_generation(chat_model):
    full = chat_model.invoke(MESSAGES).content
    stop = full[len(full) // 2 : len(full) // 2 + 2]
    assert len(stop) == 2, full
    reply = chat_model.invoke(MESSAGES, stop=[stop])
    assert reply.content == full[: full.index(stop)]
    assert stop not in reply.content
    assert reply.response_metadata["finish_reason"] == "stop"
    assert reply.usage_metadata["output_tokens"] < SHORT  # the stopping criteria ended it early


def test_a_stop_string_that_never_appears_changes_nothing(chat_model):
    full = chat_model.invoke(MESSAGES).content
    assert chat_model.invoke(MESSAGES, stop=["\u2603 never"]).content == full


def test_missing_folder_is_not_configured(tmp_path):
    from assistant.models.local import LocalChatModel

    with pytest.raises(LLMNotConfigured, match="KEYART_LLM_MODEL") as caught:
        LocalChatModel.from_pretrained(str(tmp_path / "no-such-model"))
    assert "--llm transformers" in str(caught.value) and "not a folder" in str(caught.value)


def test_folder_without_config_is_not_configured(tmp_path):
    from assistant.models.local import LocalChatModel

    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(LLMNotConfigured, match="KEYART_LLM_MODEL") as caught:
        LocalChatModel.from_pretrained(str(tmp_path))
    assert "config.json" in str(caught.value)


def test_folder_without_tokenizer_files_is_not_configured(folders, tmp_path):
    import shutil

    from assistant.models.local import LocalChatModel

    for name in ("config.json", "model.safetensors"):
        shutil.copy(folders["plain"] / name, tmp_path / name)
    with pytest.raises(LLMNotConfigured, match="KEYART_LLM_MODEL") as caught:
        LocalChatModel.from_pretrained(str(tmp_path))
    assert "tokenizer" in str(caught.value)


def test_uncached_hub_id_is_not_configured():
    from assistant.models.local import LocalChatModel

    with pytest.raises(LLMNotConfigured, match="KEYART_LLM_MODEL") as caught:
        LocalChatModel.from_pretrained("keyart-tests/no-such-model")
    assert "cache" in str(caught.value)


def test_load_model_uses_keyart_llm_model(folders, monkeypatch):
    from assistant.workflows.settings import Settings

    monkeypatch.setenv("KEYART_LLM_MODEL", str(folders["plain"]))
    model = Settings.from_env().language_model("transformers")
    assert model.model_name == "tiny-base" and model.uses_chat_template is False


def test_importing_the_module_stays_light():
    code = "import sys, assistant.models.local\nprint(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_prompt_longer_than_the_context_is_a_clear_error(chat_model):
    from assistant.errors import LLMUnavailable

    too_long = [HumanMessage("storm " * (chat_model.context_length + 10))]
    with pytest.raises(LLMUnavailable, match=f"reads at most {chat_model.context_length}"):
        chat_model.invoke(too_long)


def test_the_reply_never_runs_past_the_context(chat_model):
    # A prompt that leaves room for a few tokens only: the reply stops there, as a "length" finish.
    def prompt_tokens(messages):
        return len(chat_model.get_token_ids(chat_model.render_prompt(messages)))

    filler = prompt_tokens([HumanMessage("x x")]) - prompt_tokens([HumanMessage("x")])  # tokens per " x"
    repeats = (chat_model.context_length - prompt_tokens([HumanMessage("x")]) - 4) // filler
    messages = [HumanMessage("x" + " x" * repeats)]
    room = chat_model.context_length - prompt_tokens(messages)
    assert 0 < room < 50
    reply = chat_model.invoke(messages, max_new_tokens=50)
    assert reply.usage_metadata["output_tokens"] == room and reply.response_metadata["finish_reason"] == "length"

"""The OpenAI-compatible chat model and keyart's retries, through real HTTP to a fake server on 127.0.0.1."""

import email.utils
import json
import subprocess
import sys
import time

import pytest
from pydantic import BaseModel

from assistant.errors import LLMNotConfigured, LLMUnavailable
from assistant.models.openai_chat import build_openai_chat
from assistant.retry import LLMRequestRejected, with_retries
from fake_openai import FakeOpenAI, delay, reject_response_format, reply, reply_json, status, tool_call


def chat():
    """The openai model as an entry point configures it: from the environment the fixture set."""
    from assistant.workflows.settings import Settings

    return Settings.from_env().language_model("openai")



class Lighthouse(BaseModel):
    name: str
    keepers: int


@pytest.fixture
def server(monkeypatch):
    with FakeOpenAI() as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        monkeypatch.delenv("KEYART_LLM_MODEL", raising=False)
        monkeypatch.delenv("KEYART_LLM_TIMEOUT", raising=False)
        yield fake


def gaps(server):
    times = [r.time for r in server.requests]
    return [b - a for a, b in zip(times, times[1:])]


def test_a_plain_call_sends_model_messages_and_key(server):
    server.script(reply("Gullhaven at dusk"))
    llm = chat()
    assert llm.invoke("hi").content == "Gullhaven at dusk"
    [request] = server.requests
    assert request.method == "POST" and request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer test-key"
    assert request.body["model"] == "gpt-4o-mini" and request.body["messages"] == [{"role": "user", "content": "hi"}]
    assert request.body["stream"] is False and request.body["temperature"] == 0.2
    assert request.headers["x-stainless-retry-count"] == "0"  # the SDK itself never retries


def test_arguments_and_environment_choose_the_model_and_timeout(server, monkeypatch):
    monkeypatch.setenv("KEYART_LLM_MODEL", "qwen2.5:7b")
    monkeypatch.setenv("KEYART_LLM_TIMEOUT", "12")
    llm = chat()
    assert llm.model_name == "qwen2.5:7b" and llm.request_timeout == 12 and llm.max_retries == 0
    assert llm.use_responses_api is False
    assert build_openai_chat("other", base_url=server.base_url, timeout=3).model_name == "other"
    monkeypatch.setenv("KEYART_LLM_TIMEOUT", "soon")
    with pytest.raises(LLMNotConfigured, match="KEYART_LLM_TIMEOUT must be a number"):
        chat()


def test_a_local_server_needs_no_key(server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    server.script(reply("ok"))
    assert chat().invoke("hi").content == "ok"
    assert server.requests[0].headers["authorization"] == "Bearer not-needed"


def test_no_key_and_no_base_url_is_a_configuration_error(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(LLMNotConfigured, match="OPENAI_API_KEY.*OPENAI_BASE_URL.*Ollama"):
        chat()


def test_rate_limit_waits_what_retry_after_says(server):
    server.script(status(429, headers={"Retry-After": "1"}), reply("after the wait"))
    llm, notes = chat(), []
    assert with_retries(lambda: llm.invoke("hi"), record=notes.append).content == "after the wait"
    assert len(server.requests) == 2 and gaps(server)[0] >= 0.9
    assert notes == ["HTTP 429 (rate limited): retrying in 1.0 s (attempt 2 of 4)"]


def test_retry_after_ms_http_dates_and_the_cap(server):
    in_a_minute = email.utils.formatdate(time.time() + 60, usegmt=True)
    server.script(
        status(429, headers={"retry-after-ms": "50"}),
        status(503, headers={"Retry-After": in_a_minute}),
        status(429, headers={"Retry-After": "3600"}),
        reply("ok"),
    )
    llm, notes, slept = chat(), [], []
    with_retries(lambda: llm.invoke("hi"), record=notes.append, max_delay=90, sleep=slept.append)
    assert slept[0] == 0.05 and 58 <= slept[1] <= 60 and slept[2] == 90  # ms honoured; a date; an hour capped
    assert "retrying in 90.0 s (attempt 4 of 4)" in notes[2]


def test_server_errors_back_off_and_recover(server):
    server.script(status(503), status(503), reply("third time"))
    llm, notes = chat(), []
    assert with_retries(lambda: llm.invoke("hi"), record=notes.append, base_delay=0.05).content == "third time"
    assert len(server.requests) == 3 and len(notes) == 2
    assert notes[0].startswith("HTTP 503 (server error)") and "attempt 3 of 4" in notes[1]
    assert 0.035 <= gaps(server)[0] < 0.5 and 0.07 <= gaps(server)[1] < 0.6  # 0.05, then 0.1, less up to 25% jitter


def test_a_client_timeout_is_retried(server):
    server.script(delay(1.0, then=reply("late")), reply("on time"))
    llm, notes = build_openai_chat(base_url=server.base_url, timeout=0.3), []
    assert with_retries(lambda: llm.invoke("hi"), record=notes.append, base_delay=0.05).content == "on time"
    assert len(server.requests) == 2 and gaps(server)[0] < 0.9  # asked again without waiting out the slow reply
    assert notes[0].startswith("timed out") and "KEYART_LLM_TIMEOUT" in notes[0]


def test_a_server_that_keeps_failing_gives_up_after_the_attempts(server):
    server.script(*[status(500)] * 5)
    llm, notes = chat(), []
    started = time.monotonic()
    with pytest.raises(LLMUnavailable, match="gave up after 3 attempts: HTTP 500") as caught:
        with_retries(lambda: llm.invoke("hi"), record=notes.append, attempts=3, base_delay=0.02)
    assert len(server.requests) == 3 and len(notes) == 2 and time.monotonic() - started < 1
    assert not isinstance(caught.value, LLMRequestRejected) and caught.value.__cause__.status_code == 500


def test_a_refused_connection_gives_up_with_the_reason():
    llm, slept = build_openai_chat(base_url="http://127.0.0.1:1/v1", api_key="k"), []
    with pytest.raises(LLMUnavailable, match="could not connect.*Connection refused"):
        with_retries(lambda: llm.invoke("hi"), record=lambda note: None, attempts=2, sleep=slept.append)
    assert len(slept) == 1


def test_a_bad_key_fails_at_once_and_says_which_variable(server):
    server.script(status(401), reply("never sent"))
    llm, notes = chat(), []
    with pytest.raises(LLMRequestRejected, match="check OPENAI_API_KEY") as caught:
        with_retries(lambda: llm.invoke("hi"), record=notes.append)
    assert isinstance(caught.value, LLMUnavailable) and caught.value.status == 401
    assert len(server.requests) == 1 and notes == [] and caught.value.__cause__.status_code == 401


def test_an_unknown_model_names_it(server):
    server.script(status(404, {"error": {"message": "model 'gpt-9' not found", "type": "not_found_error", "code": "model_not_found"}}))
    with pytest.raises(LLMRequestRejected, match="no model 'gpt-9'.*KEYART_LLM_MODEL and OPENAI_BASE_URL"):
        with_retries(lambda: build_openai_chat("gpt-9", base_url=server.base_url).invoke("hi"), record=lambda note: None)


def test_a_server_without_structured_output_is_told_apart(server):
    server.script(reject_response_format(), reject_response_format(), reply("plain works"))
    llm = chat()
    with pytest.raises(LLMRequestRejected) as caught:
        with_retries(lambda: llm.with_structured_output(Lighthouse, method="json_schema").invoke("hi"), record=lambda note: None)
    assert caught.value.status == 400 and caught.value.server_message == "response_format is not supported"
    assert "response_format is not supported" in str(caught.value) and len(server.requests) == 1
    # reject_response_format() lets a request without response_format through to the next behaviour.
    assert llm.invoke("hi").content == "plain works" and "response_format" not in server.requests[-1].body


def test_native_structured_output_parses_into_the_model(server):
    server.script(reply_json({"name": "Gullhaven", "keepers": 2}))
    out = chat().with_structured_output(Lighthouse, method="json_schema", include_raw=True).invoke("hi")
    assert out["parsed"] == Lighthouse(name="Gullhaven", keepers=2) and out["parsing_error"] is None
    assert json.loads(out["raw"].content) == {"name": "Gullhaven", "keepers": 2}
    sent = server.requests[0].body["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["name"] == "Lighthouse" and sent["json_schema"]["strict"] is True


def test_non_json_under_native_structured_output_raises_not_parsing_error(server):
    """Surprise: openai's parse() validates inside the call, so include_raw=True never sees the reply."""
    from pydantic import ValidationError

    server.script(reply("HACKED"))
    with pytest.raises(ValidationError) as caught:
        chat().with_structured_output(Lighthouse, method="json_schema", include_raw=True).invoke("hi")
    assert caught.value.errors()[0]["input"] == "HACKED"  # the raw reply survives only here


def test_tool_calls_come_back_on_the_message(server):
    def illustrate(prompt: str, style: str) -> str:
        """Render an illustration."""
        return ""

    server.script(tool_call("illustrate", {"prompt": "a lighthouse", "style": "anime"}))
    message = chat().bind_tools([illustrate]).invoke("draw")
    assert message.tool_calls == [{"name": "illustrate", "args": {"prompt": "a lighthouse", "style": "anime"}, "id": "call_illustrate", "type": "tool_call"}]
    assert server.requests[0].body["tools"][0]["function"]["name"] == "illustrate"


def test_streaming_and_the_default_responder(server):
    server.default = lambda body: "echo: " + body["messages"][-1]["content"]
    llm = chat()
    assert "".join(chunk.content for chunk in llm.stream("lamp room")) == "echo: lamp room"
    assert server.requests[-1].body["stream"] is True
    assert llm.invoke("quay").content == "echo: quay"


def test_non_openai_errors_pass_through_untouched():
    calls = []

    def broken():
        calls.append(1)
        raise KeyError("not ours")

    with pytest.raises(KeyError):
        with_retries(broken, record=lambda note: None)
    assert len(calls) == 1


def test_importing_the_builder_stays_light():
    code = "import sys, assistant.models.openai_chat, assistant.retry; print(sorted(m for m in ('openai', 'langchain_openai', 'httpx', 'httpx2') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"

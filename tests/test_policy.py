"""Brand safety: the editable blocklist, and the language model's judgement over real HTTP."""

import pytest

from assistant.errors import PolicyViolation
from assistant.models.offline import OfflineModel
from assistant.models.openai_chat import build_openai_chat
from assistant.policy import blocked_terms, check, require
from fake_openai import FakeOpenAI, reply_json


def configure_from_env():
    """What an entry point does with the environment: read it once, apply it."""
    from assistant.workflows.settings import Settings

    Settings.from_env().apply()


@pytest.fixture(autouse=True)
def _default_blocklist():
    """Each test starts from the default blocklist, whatever the one before configured."""
    from assistant import policy

    policy.use_blocklists(())
    yield
    policy.use_blocklists(())



@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Mara Quill relights the lamp in a storm", []),
        ("a NUDE figure on the rocks", ["nude"]),
        ("a method for cocktails at the Tern & Anchor", []),  # whole words only: not "meth"
        ("gore and blood splatter on the quay", ["gore", "blood splatter"]),
        ("self-harm", ["self-harm"]),
    ],
)
def test_blocklist_matches_whole_words_and_phrases(text, found):
    assert blocked_terms(text) == found


def test_a_refusal_says_what_was_blocked_and_where_to_edit(monkeypatch, tmp_path):
    custom = tmp_path / "brand.txt"
    custom.write_text("# our rules\nrival network\nlighthouse  # too on the nose\n", encoding="utf-8")
    monkeypatch.setenv("KEYART_BLOCKLIST", str(custom))
    configure_from_env()
    with pytest.raises(PolicyViolation) as caught:
        require("Watch it on the rival network tonight", what="Instagram caption")
    message = str(caught.value)
    assert "Instagram caption was blocked" in message and "'rival network'" in message and str(custom) in message
    assert blocked_terms("the Lighthouse at dusk") == ["lighthouse"]
    assert check("nude", model=OfflineModel()).allowed  # not on this list


def test_a_missing_blocklist_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("KEYART_BLOCKLIST", str(tmp_path / "none.txt"))
    configure_from_env()
    with pytest.raises(PolicyViolation, match="does not exist"):
        check("anything")


def test_offline_uses_the_blocklist_alone():
    verdict = check("Mara Quill in the fog", model=OfflineModel())
    assert verdict.allowed and verdict.checked_by == "blocklist"


def test_the_model_judges_what_the_blocklist_passes():
    with FakeOpenAI() as server:
        server.script(reply_json({"allowed": False, "reason": "mocks the drowned victims"}), reply_json({"allowed": True, "reason": "fine"}))
        model = build_openai_chat("judge", base_url=server.base_url)
        refused = check("LOL at the drowned fishermen", what="X post", model=model)
        assert not refused.allowed and refused.reason == "mocks the drowned victims"
        assert refused.checked_by == "blocklist + openai:judge"
        assert "mocks the drowned victims" in refused.explain("X post")
        assert check("A storm is coming to Gullhaven", model=model).allowed
        sent = server.chat_requests[0].body["messages"][-1]["content"]
        assert "LOL at the drowned fishermen" in sent and "X post" in sent
        # The blocklist answers first: a blocked word never reaches the model.
        assert not check("a naked swimmer", model=model).allowed and len(server.chat_requests) == 2

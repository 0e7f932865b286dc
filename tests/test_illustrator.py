"""The conversational illustrator: intents, refinements, undo, answers, policy and resume, offline and by tool calls."""

import functools
import json
import os
import subprocess
import sys
from collections import deque

import pytest

from assistant.catalog import load_catalog
from assistant.conversations import Conversations
from assistant.models.openai_chat import build_openai_chat
from assistant.policy import POLICY
from assistant.prompting.intents import parse
from assistant.prompting.meta_prompt import META_PROMPT
from assistant.references import CatalogIndex
from assistant.workflows.chat_state import ChatState, refine
from assistant.workflows.illustrator import NO_IMAGE, Illustrator
from assistant.workflows.plan import RenderSettings, catalog_seed
from assistant.workflows.service import RenderService
from fake_openai import FakeOpenAI, Reply, reply, reply_json, status, tool_call
from imagegen import styles
from imagegen.png_files import read_png

STYLES = styles.names()
CATALOG = load_catalog()
DARK = "(dark, low-key lighting:1.3)"


@pytest.fixture(scope="module")
def index():
    return CatalogIndex(CATALOG)


@pytest.fixture
def chat(tmp_path):
    return Illustrator(CATALOG, home=tmp_path, slot=RenderService(name="preview"))


def lineage(path):
    return read_png(path).lineage["lineage"]


# -- the ten-turn conversation ---------------------------------------------------------------------


def test_a_ten_turn_chat_reaches_the_image_it_asked_for(chat, tmp_path):
    cid = chat.start()
    say = functools.partial(chat.turn, cid)

    # 1. A catalog episode in a style: meta-prompted (no dataprep art here), on the catalog's seed.
    first = say("draw the lighthouse scene from season 1 episode 3 as a watercolor")
    seed = catalog_seed("Gullhaven", 1, 3, "watercolor")
    assert first.rendered and first.image.is_file() and first.intents[0].label() == "draw(S01E03, style=watercolor)"
    assert (first.state.kind, first.state.season, first.state.episode, first.state.style, first.state.size, first.state.seed) == ("episode", 1, 3, "watercolor", "landscape", seed)
    assert "Mara Quill" in first.request.prompt and (first.request.width, first.request.height) == (1216, 832)
    # 2. Darker: a weighted phrase in the prompt and its opposite in the negative, the seed kept.
    darker = say("darker")
    assert DARK in darker.request.prompt and "bright, overexposed" in darker.request.negative_prompt
    assert darker.state.seed == seed and darker.state.levels == {"dark": 1} and darker.changes == ["darker"]
    # 3. Another style: the catalog's prompt for that style, with the edits and the seed kept.
    anime = say("same but anime")
    assert anime.state.style == "anime" and anime.request.style == "anime" and anime.state.seed == seed and DARK in anime.request.prompt
    assert anime.request.prompt.startswith(anime.state.prompts["anime"]["prompt"])
    # 4. Wider: one step along the ladder of SDXL sizes.
    wider = say("wider")
    assert wider.state.size == "wide" and (wider.request.width, wider.request.height) == (1344, 768) and wider.state.seed == seed
    # 5. Another one: a new seed, recorded.
    another = say("another one")
    assert another.state.seed != seed and another.request.seed == another.state.seed and another.changes == [f"new seed {another.state.seed}"]
    # 6. A seed named: used as given.
    seeded = say("use seed 1234")
    assert seeded.state.seed == 1234 and seeded.request.seed == 1234 and seeded.image.name == "006-1234.png"
    # 7. Vertical: portrait, the seed kept.
    vertical = say("vertical")
    assert vertical.state.size == "portrait" and (vertical.request.width, vertical.request.height) == (832, 1216) and vertical.state.seed == 1234
    # 8. Undo: back to the state and image before the last change, nothing rendered.
    undone = say("undo")
    assert not undone.rendered and undone.image == seeded.image
    assert undone.state.model_dump(exclude={"history"}) == seeded.state.model_dump(exclude={"history"})
    assert len(undone.state.history) == len(seeded.state.history)
    # 9. A question: answered from the catalog; the image stays as it was.
    asked = say("who is Wren Abernethy?")
    assert not asked.rendered and asked.image is None and asked.intents[0].action == "answer"
    assert "young diver" in asked.text and 'S01E01 "Lights Out"' in asked.text and asked.state == undone.state
    # 10. "Draw it" is the current image: a style refinement that keeps the seed, size and edits.
    poster = say("draw it as a retro poster")
    assert poster.intents[0].label() == "refine(style=retro-poster)"
    assert (poster.state.style, poster.state.size, poster.state.seed, poster.state.levels) == ("retro-poster", "wide", 1234, {"dark": 1})
    assert (poster.request.width, poster.request.height, poster.request.seed, poster.request.style) == (1344, 768, 1234, "retro-poster")

    # Every turn is recorded, with the state after it; each image carries its lineage.
    turns = chat.conversations.turns(cid)
    assert [t.turn for t in turns] == list(range(1, 11)) and turns[7].changes == ["undo"] and turns[8].image is None
    assert [t.state["seed"] for t in turns] == [seed, seed, seed, seed, another.state.seed, 1234, 1234, 1234, 1234, 1234]
    assert [bool(t.request) for t in turns] == [True] * 7 + [False, False, True]
    found = lineage(poster.image)
    assert (found["conversation"], found["turn"], found["kind"], found["style"], found["episode"]) == (cid, 10, "chat", "retro-poster", 3)
    assert found["refinements"] == ["darker", "style: anime", "size: wide", f"new seed {another.state.seed}", "seed 1234", "style: retro-poster"]
    assert found["state"]["levels"] == {"dark": 1} and found["changes"] == ["style: retro-poster"]
    infotext = read_png(poster.image).infotext
    assert "Seed: 1234" in infotext and "Size: 1344x768" in infotext and DARK in infotext
    assert sorted(p.name for p in (tmp_path / "chat" / cid).iterdir()) == sorted(t.image.split("/")[-1] for t in turns if t.request)


def test_a_conversation_resumes_in_a_new_illustrator(chat, tmp_path):
    cid = chat.start()
    chat.turn(cid, "draw S02E01 in anime style")
    darker = chat.turn(cid, "darker")
    again = Illustrator(CATALOG, home=tmp_path, slot=RenderService(name="preview"))
    assert again.state(cid) == darker.state and again.conversations.next_turn(cid) == 3
    undone = again.turn(cid, "undo")
    assert undone.state.levels == {} and undone.state.style == "anime" and undone.image.name.startswith("001-")
    [listed] = Conversations(tmp_path).listing()
    assert (listed.id, listed.turns, listed.title, listed.llm) == (cid, 3, "draw S02E01 in anime style", "offline")


def test_the_brand_safety_check_refuses_and_leaves_the_image_as_it_was(chat):
    cid = chat.start()
    drawn = chat.turn(cid, "draw a lighthouse in a storm")
    refused = chat.turn(cid, "draw a naked sailor on the quay")
    assert refused.refused and not refused.rendered and refused.image is None
    assert "blocked by the brand-safety check" in refused.text and "'naked'" in refused.text
    assert refused.state == drawn.state
    edit = chat.turn(cid, "add gore")
    assert edit.refused and edit.state == drawn.state
    assert [t.refused for t in chat.conversations.turns(cid)] == [False, True, True]


def test_dataprep_art_is_the_starting_point(tmp_path):
    import dataprep

    assert dataprep.main(["run", "--home", str(tmp_path), "--season", "1", "--episodes", "3", "--styles", "anime", "--engine", "preview"]) == 0
    catalog_png = next((tmp_path / "images").rglob("*.png"))
    chat = Illustrator(CATALOG, home=tmp_path, slot=RenderService(name="preview"))
    drawn = chat.turn(chat.start(), "show me The Keeper's Lamp in anime style")
    assert "made by dataprep" in drawn.text and drawn.state.source.startswith("the catalog's prompt and seed")
    made = read_png(catalog_png).lineage["request"]
    assert {k: made[k] for k in ("prompt", "negative_prompt", "seed", "width", "height", "style")} == {
        k: drawn.request.to_dict()[k] for k in ("prompt", "negative_prompt", "seed", "width", "height", "style")
    }


def test_a_stale_catalog_image_lends_neither_its_seed_nor_its_size(tmp_path):
    import dataprep
    from assistant.store import Store

    assert dataprep.main(["run", "--home", str(tmp_path), "--season", "1", "--episodes", "3", "--styles", "anime", "--engine", "preview"]) == 0
    store = Store(tmp_path)
    assert store.art(CATALOG.show, 1, 3, "anime").image is not None
    store.set_entry(CATALOG.show, 1, 3, "anime", state="prompted")  # prompts rewritten: the old image is stale
    art = store.art(CATALOG.show, 1, 3, "anime")
    assert art.image is None and art.entry.image_key and art.styled("anime")["prompt"]
    store.close()
    chat = Illustrator(CATALOG, home=tmp_path, slot=RenderService(name="preview"))
    drawn = chat.turn(chat.start(), "show me The Keeper's Lamp in anime style")
    assert drawn.state.source == "the catalog's prompt, made by dataprep"
    assert drawn.state.seed == catalog_seed(CATALOG.show, 1, 3, "anime")


def test_characters_places_and_free_words_are_drawn_too(chat):
    cid = chat.start()
    wren = chat.turn(cid, "draw Wren Abernethy")
    assert wren.state.kind == "character" and (wren.state.season, wren.state.episode) == (1, 2) and "Wren Abernethy" in wren.request.prompt
    assert "their moment in S01E02" in wren.text and wren.state.size == "square"
    causeway = chat.turn(cid, "draw Mara Quill on the causeway at night")
    assert "lighthouse keeper Mara Quill" in causeway.request.prompt and "night" in causeway.request.prompt
    storm = chat.turn(cid, "draw a lighthouse in a storm")
    assert storm.state.kind == "free" and storm.request.prompt.startswith("a lighthouse in a storm")
    assert chat.turn(cid, "draw a lighthouse in a storm").state.seed == storm.state.seed  # the same words, the same seed


# -- the offline rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "intents"),
    [
        ("draw the lighthouse scene from season 1 episode 3 as a watercolor", ["draw(S01E03, style=watercolor)"]),
        ("S01E05", ["draw(S01E05)"]),
        ("paint 2x04 in graphic novel style", ["draw(S02E04, style=graphic-novel)"]),
        ("draw episode 3 of season 2, vertical", ["draw(S02E03)", "refine(size=portrait)"]),
        ("show me season two as a poster with seed 42", ["draw(season 2, style=retro-poster)", "refine(seed=42)"]),
        ("draw the keeper’s lamp", ["draw(S01E03)"]),
        ("draw it as a retro poster", ["refine(style=retro-poster)"]),
        ("show me the image again, square", ["refine(size=square)"]),
        ("make it warmer, more moody and square", ["refine(warmer)", "refine(moodier)", "refine(size=square)"]),
        ("brighter", ["refine(brighter)"]),
        ("colder", ["refine(colder)"]),
        ("draw another one", ["refine(new_seed)"]),
        ("seed: 77", ["refine(seed=77)"]),
        ("undo", ["refine(undo)"]),
        ("add fog and remove the boats", ["refine(edit_prompt=fog)", "refine(edit_prompt=without boats)"]),
        ("in oil painting style", ["refine(style=oil painting)"]),
        ("which episodes are set at the Drowned Chapel?", ["answer()"]),
        ("hello", ["say()"]),
    ],
)
def test_offline_rules_read_intents(index, message, intents):
    assert [i.label() for i in parse(message, index, STYLES, has_scene=True)] == intents


def test_episode_numbers_in_every_form_and_an_episode_alone(index):
    forms = ["season 1 episode 3", "S01E03", "s1e3", "1x03", "episode 3 of season 1", "Season one, episode three", "The Keeper's Lamp"]
    assert {(r.season, r.episode) for f in forms for r in [index.find(f)]} == {(1, 3)}
    assert (index.find("episode 4").season, index.find("episode 4").guessed_season) == (1, True)
    assert index.find("episode 4", season=2).season == 2
    assert index.find("Brekke on deck").name == "Captain Øyvind Brekke" and index.find("mara quill").name == "Mara Quill"
    assert index.find("Wren on the quay").name == "Wren Abernethy" and index.find("a wren on the quay") is None  # short forms as written


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("what happens in episode 4?", ['S01E04 "Ink and Salt"', 'season 2 has an episode 4 too: S02E04 "Keeper\'s Daughter"', "last ferry"]),
        ("which episodes are set at the Drowned Chapel?", ["The Drowned Chapel appears in 6 episodes", 'S02E03 "The Crypt"']),
        ("what is season 2 about?", ['Season 2 "The Drowned Chapel" (7 episodes)', "freak spring tide"]),
        ("who is Brekke?", ["Captain Øyvind Brekke is the skipper", 'S01E04 "Ink and Salt"']),
        ("list the episodes", ["14 episodes", 'S02E07 "The Lantern Walk"']),
        ("what is the meaning of life?", ["I answer from the Gullhaven catalog"]),
    ],
)
def test_questions_are_answered_from_the_catalog(chat, question, expected):
    text = chat.turn(chat.start(), question).text
    for part in expected:
        assert part in text


def test_refinements_stack_cancel_and_say_when_nothing_changes():
    state = ChatState(kind="free", prompts={"anime": {"prompt": "a quay", "negative_prompt": "text"}}, style="anime", size="panorama", seed=5)
    twice, _ = refine(refine(state, "darker")[0], "darker")
    assert twice.levels == {"dark": 2}
    back, said = refine(twice, "brighter")
    assert back.levels == {"dark": 1} and "(dark, low-key lighting:1.3)" in said.said
    assert refine(refine(state, "darker")[0], "brighter")[0].levels == {}
    same, said = refine(state, "size", "wider")
    assert same is state and not said.changed and "widest" in said.said
    assert refine(state, "size", "taller")[0].size == "wide"


def test_bad_values_and_early_refinements_are_answered_not_raised(chat):
    cid = chat.start()
    assert chat.turn(cid, "darker").text == NO_IMAGE
    chat.turn(cid, "draw S01E01")
    assert "unknown style 'oil painting'; choose one of: cinematic" in chat.turn(cid, "in oil painting style").text
    assert "a seed is a whole number from 0 to 4294967295" in chat.turn(cid, "use seed 99999999999").text
    assert "has no season 9" in chat.turn(cid, "draw S09E01").text
    assert chat.turn(cid, "undo").state.drawn is False and chat.turn(cid, "undo").text == "There is nothing to undo."


# -- tool calling through ChatOpenAI ----------------------------------------------------------------


def serve(tool_replies):
    """Tool requests take the next scripted reply; meta-prompt and policy requests get well-formed JSON."""

    def answer(body):
        system = body["messages"][0]["content"]
        if "tools" in body:
            return tool_replies.popleft()
        if system == POLICY:
            return reply_json({"allowed": True, "reason": "family friendly"})
        if system.startswith(META_PROMPT.split("\n")[0]):
            return reply_json(
                {
                    "brief": {"subject": "Mara Quill relighting the great lamp", "characters": ["Mara Quill"], "setting": "Gullhaven Lighthouse"},
                    "prompts": [{"style": s, "prompt": f"Mara Quill relighting the great lamp, {s} framing", "negative_prompt": "text"} for s in STYLES],
                }
            )
        return "unexpected request"

    return answer


def calls(*pairs):
    return Reply(tool_calls=[{"id": f"call_{i}", "type": "function", "function": {"name": n, "arguments": json.dumps(a)}} for i, (n, a) in enumerate(pairs)], finish_reason="tool_calls")


def test_tool_calls_drive_the_same_intents_and_fall_back_to_the_rules(tmp_path):
    script = deque(
        [
            tool_call("draw", {"reference": "S01E03", "description": "the keeper's lamp", "style": "watercolor"}),
            calls(("refine", {"change": "darker"}), ("refine", {"change": "size", "value": "wider"})),
            tool_call("answer", {"question": "who is Wren Abernethy?"}),
            reply("Glad you like it."),
            tool_call("refine", {"change": "reseed", "value": "1234"}),  # not a change there is: unusable
            tool_call("refine", {"change": "undo"}),
            status(401),
        ]
    )
    with FakeOpenAI(default=serve(script)) as fake:
        chat = Illustrator(CATALOG, build_openai_chat(base_url=fake.base_url, api_key="k", model="fake-model"), home=tmp_path, slot=RenderService(name="preview"))
        cid = chat.start()
        drawn = chat.turn(cid, "Draw the keeper's lamp as a watercolour")
        assert drawn.author == "openai:fake-model" and drawn.fallback is None and drawn.state.style == "watercolor"
        assert drawn.request.prompt == "Mara Quill relighting the great lamp, watercolor framing" and "meta-prompt by openai:fake-model" in drawn.text
        sent = fake.chat_requests[0].body
        assert [t["function"]["name"] for t in sent["tools"]] == ["draw", "refine", "answer"] and '"code": "S01E03"' in sent["messages"][0]["content"]
        assert [r.body["messages"][0]["content"] == POLICY for r in fake.chat_requests] == [False, False, True]  # tools, meta-prompt, policy

        both = chat.turn(cid, "darker and wider please")
        assert [i.label() for i in both.intents] == ["refine(darker)", "refine(size=wider)"] and both.state.seed == drawn.state.seed
        assert (both.state.size, both.state.levels) == ("wide", {"dark": 1}) and len(both.state.history) == 2  # one undo step per turn
        history = fake.chat_requests[-2].body["messages"]  # this turn's tool request carries the last turn
        assert [m["role"] for m in history] == ["system", "user", "assistant", "user"]

        answered = chat.turn(cid, "who's the diver?")
        assert "young diver" in answered.text and not answered.rendered
        plain = chat.turn(cid, "thanks!")
        assert plain.text == "Glad you like it." and plain.intents[0].action == "say"

        fell_back = chat.turn(cid, "use seed 1234")
        assert fell_back.fallback and "reseed" in fell_back.fallback and fell_back.author == "openai:fake-model (fell back to offline)"
        assert "could not be used for this turn" in fell_back.text and "offline rules" in fell_back.text and fell_back.state.seed == 1234
        assert fake.chat_requests[-1].body.get("tools")  # the offline turn asked no policy judgement of the model

        undone = chat.turn(cid, "undo")
        assert undone.state.seed == drawn.state.seed and undone.image == both.image
        down = chat.turn(cid, "vertical")
        assert down.fallback and "HTTP 401" in down.fallback and down.state.size == "portrait"

    stored = chat.conversations.turns(cid)
    assert [t.author for t in stored][-3:] == ["openai:fake-model (fell back to offline)", "openai:fake-model", "openai:fake-model (fell back to offline)"]
    assert stored[0].traces[0]["technique"] == "tool calling" and json.loads(stored[0].traces[0]["replies"][0])["tool_calls"][0]["name"] == "draw"


def test_a_model_without_tool_calling_is_read_by_the_rules(chat):
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    chat.model = FakeListChatModel(responses=["never used"])
    drawn = chat.turn(chat.start(), "draw S01E02 in anime style")
    assert "has no tool calling" in drawn.fallback and drawn.state.style == "anime" and drawn.rendered


# -- engines and the terminal -----------------------------------------------------------------------


def test_a_tiny_sdxl_render(engine, tmp_path):
    settings = RenderSettings(quality="draft", refiner="off", overrides={"width": 64, "height": 64, "num_inference_steps": 2})
    chat = Illustrator(CATALOG, home=tmp_path, slot=RenderService(engine), settings=settings)
    drawn = chat.turn(chat.start(), "draw a lighthouse in a storm as a watercolor")
    from PIL import Image

    assert Image.open(drawn.image).size == (64, 64) and drawn.request.num_inference_steps == 2
    found = read_png(drawn.image).lineage
    assert found["engine"] == "sdxl" and found["lineage"]["state"]["size"] == "square" and found["lineage"]["turn"] == 1


def run_chat(*args, stdin=""):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYART_", "OPENAI_"))}
    return subprocess.run([sys.executable, "-m", "assistant", "chat", *args], input=stdin, capture_output=True, text=True, timeout=120, env=env)


def test_the_terminal_chat_reads_a_pipe_and_resumes(tmp_path):
    home = ["--home", str(tmp_path), "--engine", "preview"]
    done = run_chat(*home, stdin="draw season 1 episode 3 as a watercolor\n\ndarker\nwho is Mara Quill?\n/history\n/quit\nnever read\n")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    cid = out.split("conversation ", 1)[1].split()[0]
    assert 'keyart> Drew S01E03 "The Keeper\'s Lamp" in watercolor style' in out and f"image: {tmp_path}/chat/{cid}/002-" in out
    assert "keyart> Mara Quill is the lighthouse keeper" in out and "[2] you: darker" in out and "never read" not in out
    assert f"--resume {cid}" in out
    resumed = run_chat(*home, "--resume", cid, stdin="undo\n")
    assert resumed.returncode == 0 and "at turn 4" in resumed.stdout and f"image: {tmp_path}/chat/{cid}/001-" in resumed.stdout
    listed = run_chat("--home", str(tmp_path), "--list")
    assert listed.returncode == 0 and f"{cid}" in listed.stdout and "4 turns" in listed.stdout
    missing = run_chat(*home, "--resume", "nope")
    assert missing.returncode == 2 and "no conversation 'nope'" in missing.stderr and "--list" in missing.stderr


def test_an_offline_chat_stays_light(tmp_path):
    code = (
        "import io, sys\n"
        "from assistant.cli import main\n"
        "sys.stdin = io.StringIO('draw S01E01 as a watercolor\\ndarker\\n')\n"
        f"code = main(['chat', '--home', {str(tmp_path)!r}, '--engine', 'preview'])\n"
        "print(code, sorted(m for m in ('torch', 'diffusers', 'transformers', 'langchain_openai', 'openai') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "0 []" and "Made it darker" in done.stdout


def test_a_broken_blocklist_is_an_error_to_fix_not_a_refusal(chat, tmp_path):
    from assistant import policy
    from assistant.errors import BlocklistUnusable

    cid = chat.start()
    (tmp_path / "blocklist.txt").write_bytes(b"gore\n\xff\xfe naked\n")  # not UTF-8
    policy.use_blocklists([tmp_path / "blocklist.txt"])
    try:
        with pytest.raises(BlocklistUnusable, match="is not UTF-8 text.*KEYART_BLOCKLIST"):
            chat.turn(cid, "draw a lighthouse in a storm")
    finally:
        policy.use_blocklists([])
    assert chat.turn(cid, "draw a lighthouse in a storm").rendered  # fixed, the same words are drawn

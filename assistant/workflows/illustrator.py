"""The conversational illustrator: a chat that draws the show's key art, refines it, and answers questions.

Each turn understands the message (an OpenAI-compatible model's tool calls, else the offline rules,
which also stand in for a model that fails), applies the intents to the conversation's state,
checks and renders the prompt, and stores the turn with the state after it, so undo and resume work.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from imagegen import RenderRequest
from imagegen.errors import InvalidRequest

from ..catalog import Catalog, load_catalog
from ..catalog_answers import answer
from ..conversations import Conversations, TurnRecord
from ..errors import BlocklistUnusable, CatalogError, LLMNotConfigured, LLMUnavailable, PolicyViolation, ReplyInvalid
from ..models import is_offline, label, new_trace
from ..models.offline import OfflineModel
from ..policy import require
from ..prompting import illustrator as tools
from ..prompting.intents import Intent, parse
from ..references import CatalogIndex
from ..store import resolve_home
from ..prompting.intents import NO_GUIDE
from .catalog_guides import Guide, catalog_guide, named_image
from .chat_scenes import SceneMaker
from .chat_state import SIZES, ChatState, compose, refine, request_for, with_guide
from .plan import RenderSettings
from .prompts import style_specs
from .service import RenderService

log = logging.getLogger(__name__)

CHAT = "chat"  # the home's folder of chat images
MAX_UNDO = 20  # states kept for undo: each holds a prompt per style, so the turn rows stay small
NO_IMAGE = "There is no image yet; ask me to draw something first, e.g. \"draw season 1 episode 3\" or \"draw a lighthouse in a storm\"."
UNDO_NOTHING = "There is nothing to undo."


@dataclass
class Reply:
    """One turn's answer: the text, the image it shows (new, or restored by undo), and how it got there."""

    conversation: str
    turn: int
    text: str
    state: ChatState  # after the turn
    image: Path | None = None  # the image this turn shows; None when it shows none
    request: RenderRequest | None = None  # what was rendered this turn (None: nothing was)
    changes: list[str] = field(default_factory=list)  # what changed, in words, in order
    intents: list[Intent] = field(default_factory=list)
    author: str = "offline"  # who understood the message: "offline", "openai:gpt-4o-mini (fell back to offline)"
    fallback: str | None = None  # why the offline rules stood in for the model this turn
    refused: bool = False  # the brand-safety check blocked the prompt; `text` says why

    @property
    def rendered(self) -> bool:
        return self.request is not None


@dataclass
class _Work:
    """A turn in progress: the state as it changes, and what to say and store."""

    start: ChatState
    state: ChatState
    base: ChatState  # what undo returns to if this turn changes the image
    said: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    traces: list[dict[str, Any]] = field(default_factory=list)
    pushed: bool = False
    render: bool = False  # the state's image must be rendered
    shown: bool = False  # the turn shows the state's image (rendered now or restored)

    def push(self) -> None:
        """Remember the image before this turn's first change, once per turn: one undo undoes one turn."""
        if not self.pushed:
            self.state.history = [*self.state.history, self.base.snapshot()][-MAX_UNDO:]
            self.pushed = True


class Illustrator:
    """Chat turns over one catalog, one language model and one engine; conversations live in the home folder."""

    def __init__(
        self,
        catalog: Catalog | None = None,
        model: Any = None,
        *,
        home: str | Path | None = None,
        slot: RenderService | None = None,
        settings: RenderSettings | None = None,
    ):
        self.catalog = catalog if catalog is not None else load_catalog()
        self.model = model if model is not None else OfflineModel()
        self.home = resolve_home(home)
        self.slot = slot if slot is not None else RenderService(name="auto")
        self.settings = settings or RenderSettings()
        self.conversations = Conversations(self.home)
        self.index = CatalogIndex(self.catalog)
        self.styles = style_specs()
        self.scenes = SceneMaker(self.catalog, self.index, self.styles, self.home)

    def start(self) -> str:
        """A new conversation's id."""
        return self.conversations.start(show=self.catalog.show, llm=label(self.model), engine=self.slot.identity(self.settings.refiner))

    def state(self, conversation: str) -> ChatState:
        data = self.conversations.last_state(conversation)
        return ChatState.model_validate(data) if data else ChatState(show=self.catalog.show)

    def turn(self, conversation: str, text: str) -> Reply:
        """Answer one message of `conversation`: draw, refine, answer, or say what can be asked."""
        # 1. Where the conversation stands.
        text = " ".join(text.split())
        if not text:
            raise InvalidRequest("say something: a scene to draw, a change to the image, or a question about the show")
        before = self.state(conversation)
        number = self.conversations.next_turn(conversation)
        # 2. What the message asks for: the model's tool calls, or the offline rules (also when the model fails).
        try:
            intents, author, fallback, traces = self._understand(conversation, text, before)
        except CatalogError as exc:  # "episode 42": the rules' reading names what there is
            intents, author, fallback, traces = [Intent(action="say", text=str(exc))], "offline", None, []
        model = self.model if fallback is None else OfflineModel()
        work = _Work(start=before, state=before.model_copy(deep=True), base=before, traces=traces)
        if fallback is not None:
            work.said.append(f"({label(self.model)} could not be used for this turn: {fallback}. I followed the offline rules instead.)")
        # 3. Each intent in order, on a working copy of the state.
        for intent in intents:
            try:
                self._apply(intent, work, model)
            except (CatalogError, InvalidRequest) as exc:  # a reference or value that does not exist: say which do
                work.said.append(str(exc))
        # 4. A changed image is checked, then rendered and written with its lineage.
        request = None
        if work.render:
            refusal = self._check(work, model)
            if refusal is not None:
                return self._store(conversation, number, text, intents, author, fallback, work, refused=refusal)
            request = self._render(conversation, number, work, author, fallback)
        return self._store(conversation, number, text, intents, author, fallback, work, request=request)

    # -- understanding ----------------------------------------------------------------------

    def _understand(self, conversation: str, text: str, state: ChatState) -> tuple[list[Intent], str, str | None, list[dict[str, Any]]]:
        """(intents, author, why the model was not used, traces)."""

        def offline() -> list[Intent]:
            return parse(text, self.index, [s.name for s in self.styles], has_scene=state.drawn, season=state.season)

        if is_offline(self.model):
            return offline(), "offline", None, []
        trace = new_trace(self.model, "tool calling")
        history = self.conversations.exchanges(conversation, tools.HISTORY_TURNS)
        system = tools.system_message(self.catalog.show, self.styles, self._catalog_data, _view(state))
        try:
            intents = tools.understand(self.model, text, system=system, history=history, trace=trace)
        except (LLMUnavailable, ReplyInvalid, LLMNotConfigured) as exc:
            log.warning("the model's reply could not be used; the offline rules answer this turn: %s", exc)
            trace.fallback = f"offline rules understood this turn: {exc}"
            return offline(), trace.label, str(exc), [trace.model_dump(mode="json")]
        return intents, trace.label, None, [trace.model_dump(mode="json")]

    @cached_property
    def _catalog_data(self) -> dict[str, Any]:
        """The catalog as the model sees it: codes, titles and names (the summaries stay with the answer tool)."""
        return {
            "show": self.catalog.show,
            "seasons": [{"season": n, "title": self.catalog.season(n).title} for n in self.catalog.season_numbers()],
            "episodes": [{"code": f"S{e.season:02d}E{e.episode:02d}", "title": e.title} for e in self.catalog.episodes],
            "characters": [c.name for c in self.index.characters],
            "places": [p.name for p in self.index.places],
        }

    # -- acting on intents ------------------------------------------------------------------

    def _apply(self, intent: Intent, work: _Work, model: Any) -> None:
        if intent.action == "say":
            work.said.append(intent.text)
        elif intent.action == "answer":
            work.said.append(answer(intent.question, self.index, season=work.state.season))
        elif intent.action == "draw":
            drawn = self.scenes.draw(intent, work.state, model)
            if intent.guide.strip():  # resolved before anything changes: a guide that cannot be had stops the drawing
                drawn.state.guide = self._guide(intent.guide, drawn.state)
            work.push()
            drawn.state.history = work.state.history
            work.state = drawn.state
            work.traces += drawn.traces
            w, h = SIZES[drawn.state.size]
            what = drawn.state.reference or repr(drawn.state.description)
            work.said += [f"Drew {what} in {drawn.state.style} style, {drawn.state.size} {w}x{h}, seed {drawn.state.seed} ({drawn.said})."] + drawn.notes
            if drawn.state.guide is not None:
                work.said.append(f"It is drawn {drawn.state.guide.said()}.")
            work.changes.append(f"drew {what} ({drawn.state.style}, seed {drawn.state.seed})")
            work.render = True
        elif intent.change == "undo":
            self._undo(work)
        elif not work.state.drawn:
            work.said.append(NO_IMAGE)
        else:
            if intent.change == "guide":
                guide = None if intent.value.strip().lower() == NO_GUIDE else self._guide(intent.value, work.state)
                new, change = with_guide(work.state, guide)
            else:
                new, change = refine(work.state, intent.change, intent.value)
            if not change.changed:
                work.said.append(change.said + ".")
                return
            work.push()
            new.history = work.state.history
            work.state = new
            kept = "" if intent.change in ("seed", "new_seed") else f"; seed {new.seed} kept"
            work.said.append(f"{change.said}{kept}.")
            work.changes.append(change.label)
            work.render = True

    def _guide(self, words: str, state: ChatState) -> Guide:
        """The catalog image `words` name, ready to guide a render of `state` (in its style when the catalog has that)."""
        ref, subject = named_image(self.index, words, season=state.season)
        return catalog_guide(self.home, self.catalog, ref, self.slot, style=state.style, subject=subject)

    def _undo(self, work: _Work) -> None:
        if work.pushed:  # this turn changed the image already: back to where it began
            restored, work.pushed = work.state.history[-1], False
            history = work.state.history[:-1]
        elif work.state.history:
            restored, history = work.state.history[-1], work.state.history[:-1]
        else:
            work.said.append(UNDO_NOTHING)
            return
        work.state = restored.model_copy(update={"history": history}, deep=True)
        work.base = work.state
        has_image = work.state.image is not None and (self.home / work.state.image).is_file()
        work.render, work.shown = work.state.drawn and not has_image, has_image
        work.said.append(f"Undid the last change: back to {work.state.summary()}.")
        work.changes.append("undo")

    # -- checking and rendering -------------------------------------------------------------

    def _check(self, work: _Work, model: Any) -> str | None:
        """None when the prompt passes the brand-safety check; else the refusal, as the reply says it."""
        prompt, _ = compose(work.state)
        trace = new_trace(model, "policy")
        try:
            try:
                require(prompt, what="image prompt", model=None if is_offline(model) else model, trace=trace)
            except (LLMUnavailable, ReplyInvalid) as exc:  # the model's judgement failed: the blocklist still applies
                work.said.append(f"(The brand-safety model could not be used ({exc}); the prompt was checked against the blocklist only.)")
                require(prompt, what="image prompt")
        except BlocklistUnusable:  # a setting to fix, said as an error, not a refusal of this prompt
            raise
        except PolicyViolation as exc:
            return f"I did not draw that: {exc}."
        finally:
            if trace.messages:
                work.traces.append(trace.model_dump(mode="json"))
        return None

    def _render(self, conversation: str, number: int, work: _Work, author: str, fallback: str | None) -> RenderRequest:
        from imagegen.png_files import write_png

        state = work.state
        request = request_for(state, self.settings)
        lineage = {
            "kind": "chat",
            "show": state.show,
            "season": state.season,
            "episode": state.episode,
            "title": state.title,
            "style": state.style,
            "technique": "chat illustrator",
            "llm": author,
            "fallback": fallback,
            "conversation": conversation,
            "turn": number,
            "state": state.snapshot().model_dump(mode="json", exclude={"history"}),
            "refinements": list(state.refinements),
            "changes": list(work.changes),
            "prompt_source": state.source,
            "guide": state.guide.lineage() if state.guide else None,
            "traces": work.traces,
        }
        started = time.perf_counter()
        [image] = self.slot.render(request, lineage=lineage)[:1]
        path = write_png(image, self.home / CHAT / conversation / f"{number:03d}-{image.seed}.png")
        state.image = path.relative_to(self.home).as_posix()
        work.shown = True
        log.info("turn %d rendered in %.1f s: %s", number, time.perf_counter() - started, path)
        return image.request

    def _store(
        self, conversation: str, number: int, text: str, intents: list[Intent], author: str, fallback: str | None, work: _Work,
        *, request: RenderRequest | None = None, refused: str | None = None,
    ) -> Reply:
        """The reply; the turn stored in one transaction (a refused turn leaves the state as it was)."""
        if refused is not None:
            notes = work.said[:1] if fallback else []  # the fallback note stays: it says who read the message
            work.state, work.said, work.changes, work.shown = work.start, [*notes, refused], [], False
        state = work.state
        image = self.home / state.image if work.shown and state.image else None
        reply_text = "\n".join(s for s in work.said if s)
        self.conversations.record(
            TurnRecord(
                conversation=conversation, turn=number, user=text, reply=reply_text, author=author, state=state.model_dump(mode="json"),
                intents=[i.model_dump(exclude_defaults=True) for i in intents], changes=work.changes, fallback=fallback,
                image=state.image if image else None, request=request.to_dict() if request else None, refused=refused is not None, traces=work.traces,
            )
        )
        return Reply(conversation, number, reply_text, state, image, request, work.changes, intents, author, fallback, refused is not None)


def _view(state: ChatState) -> dict[str, Any] | None:
    """The current image as the model sees it: what it shows and how, not its prompts."""
    if not state.drawn:
        return None
    return {"scene": state.reference or state.description, "style": state.style, "size": state.size, "seed": state.seed, "refinements": state.refinements}

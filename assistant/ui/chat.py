"""The Chat tab: the conversational illustrator, its images inline, and the home's past conversations to resume.

Thin over assistant.workflows.illustrator: one Illustrator per settings, made once; every turn is
stored in the home's conversations.sqlite, so the page draws each conversation from the store.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import streamlit as st

from imagegen.errors import KeyartError

from . import common

NEW = ""  # the picker's "New conversation": started at its first message, so idle visits store nothing
IMAGE_WIDTH = 640  # pixels: a 1216x832 render at about half size, so a few turns fit on one screen
EXAMPLES = 'Try "draw season 1 episode 3 as a watercolor", then "darker", "in anime style", "wider", "another one", "undo", or ask "who is Mara Quill?".'


@st.cache_resource(show_spinner=False)
def illustrator(llm: str, engine: str, quality: str, home: str, input_path: str) -> Any:
    """The illustrator for these settings, made at the first message: the catalog, model and engine slot are the shared ones."""
    from ..workflows.illustrator import Illustrator
    from ..workflows.plan import RenderSettings

    return Illustrator(common.catalog(input_path), common.language_model(llm), home=home, slot=common.render_service(engine, home), settings=RenderSettings(quality=quality))


@st.cache_resource(show_spinner=False)
def conversations(home: str) -> Any:
    """The home's stored conversations: listing and history need no language model."""
    from ..conversations import Conversations

    return Conversations(home, create=False)  # read only until the first message: the illustrator writes


def render() -> None:
    s = common.settings()
    try:
        catalog, stored, slot = common.current_catalog(), conversations(s["home"]), common.render_service(s["engine"], s["home"])
    except KeyartError as exc:
        common.show_error(exc)
        return
    home = stored.home
    # 1. Which conversation: a new one, or one of this show's past ones (newest first).
    listed = [c for c in stored.listing() if c.turns and c.show == catalog.show]
    ids = [NEW, *(c.id for c in listed)]
    labels = {NEW: "New conversation", **{c.id: f"{c.title} · {c.turns} turn{'s' * (c.turns != 1)} · {c.updated[:16].replace('T', ' ')} · {c.id}" for c in listed}}
    current = st.session_state.get("chat_id", NEW)
    index = ids.index(current) if current in ids else 0
    conversation = st.session_state["chat_id"] = st.selectbox("Conversation", ids, index=index, format_func=labels.__getitem__)
    where = "offline preview cards (labelled as such)" if slot.name == "preview" else f"{slot.name}:{slot.model}"
    st.caption(f"{catalog.show} · language model: {s['llm']} · images: {where}. {EXAMPLES}")
    # 2. The conversation so far, from the store; new turns are written into the same box, above the input.
    box = st.container()
    with box:
        for t in stored.turns(conversation) if conversation else []:
            with st.chat_message("user"):
                st.markdown(common.plain(t.user))
            with st.chat_message("assistant"):
                _answer(t.reply, home / t.image if t.image else None, t.changes, t.refused, t.author)
    # 3. A new message: a turn of this conversation (a new one starts at its first message).
    text = st.chat_input("Ask for a drawing, a change to it, or about the show", key="chat_text")
    if not text:
        return
    with box:
        with st.chat_message("user"):
            st.markdown(common.plain(text))
        with st.chat_message("assistant"):
            try:
                chat = illustrator(s["llm"], s["engine"], s["quality"], s["home"], s["input"])
                conversation = conversation or chat.start()
                with st.spinner("Drawing..." if slot.name == "preview" else f"Drawing with {slot.name} (the first image loads the model)..."):
                    reply = chat.turn(conversation, text)
            except KeyartError as exc:  # a render that failed, a model not configured, an unreadable home: said, and the chat goes on
                common.show_error(exc)
                return
            finally:
                st.session_state["chat_id"] = conversation
            _answer(reply.text, reply.image, reply.changes, reply.refused, reply.author)


def _answer(text: str, image: Path | None, changes: list[str], refused: bool, author: str) -> None:
    """One reply: the text (a refusal plainly, as a warning), the image it shows, and what changed."""
    if refused:
        st.warning(common.plain(text), icon=":material/block:")
    elif text:
        st.markdown(common.plain(text))
    if image is not None and image.is_file():
        st.image(str(image), caption=_caption(image), width=IMAGE_WIDTH)
    notes = [f"changed: {'; '.join(changes)}"] if changes else []
    if author != "offline":
        notes.append(f"understood by {author}")
    if notes:
        st.caption(common.plain(" · ".join(notes)))


def _caption(image: Path) -> str:
    found = _lineage(str(image), image.stat().st_mtime_ns)
    return f"Preview card (offline, not an SDXL render): {image.name}" if found.get("preview") else image.name


@lru_cache(maxsize=256)
def _lineage(path: str, stamp: int) -> dict[str, Any]:
    """The image's keyart chunk (read once per file version: `stamp` is its mtime), {} when it has none."""
    from ..workflows.regenerate import lineage_of

    return lineage_of(Path(path))


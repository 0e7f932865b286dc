"""The Episodes tab: filter the catalog's episode art, open a piece, regenerate it, download its PNG.

An empty catalog offers to build itself (assistant.ui.build); regenerating and adopting run through
assistant.workflows.regenerate. The art helpers and panels here are shared with the Seasons tab.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import streamlit as st

from imagegen.errors import KeyartError

from ..workflows.regenerate import adopt, alternatives, entry_of, image_file, lineage_of, regenerate
from . import common
from .similar import more_like_this
from .build import build_form, build_job, build_status, empty_state

PAGE_SIZE = 12  # four rows of three cards: the first page paints quickly even with SDXL-sized PNGs
STATES = ("done", "prompted", "pending", "failed")
STATE_LABELS = {"done": "done", "prompted": "prompt written, not rendered", "pending": "pending", "failed": "failed"}
PREVIEW_NOTE = (
    "Preview card: an offline placeholder, not an SDXL render. Set KEYART_SDXL_MODEL (see Settings) "
    "and regenerate or rebuild to render it with SDXL."
)
ADOPT_NOTE = (
    "Use in catalog replaces this entry's image (the gallery, exports and contact sheets use it). "
    "A later build or `dataprep.py run` restores the catalog-seed image; this file stays as an alternative."
)


# -- the catalog's rows -----------------------------------------------------------------------------


def catalog_rows(store) -> list[dict[str, Any]]:
    from ..workflows.export import catalog_rows as rows

    return rows(store)


def row_id(row: dict[str, Any]) -> str:
    """A widget-safe name of an entry: gullhaven-s01-e02-anime."""
    show, season, episode, style = entry_of(row)
    return re.sub(r"[^a-z0-9-]+", "-", f"{show.lower()}-s{season:02d}-e{episode:02d}-{style}")


def is_preview(row_or_lineage: dict[str, Any]) -> bool:
    return row_or_lineage.get("engine") == "preview" or bool(row_or_lineage.get("preview"))


def summaries() -> dict[tuple[str, int, int], str]:
    """(show, season, episode) -> summary from the session's catalog file; season summaries under episode 0."""
    from ..store import SEASON_ART

    try:
        catalog = common.current_catalog()
    except KeyartError:
        return {}  # the Settings tab says what is wrong with the file; the art is still worth showing
    found = {(e.show, e.season, e.episode): e.summary for e in catalog.episodes}
    found |= {(catalog.show, s.season, SEASON_ART): s.summary for s in catalog.seasons}
    return found


# -- regenerating a piece of art --------------------------------------------------------------------


def download(path: Path, *, key: str, label: str = "Download PNG") -> None:
    """A download of the PNG at `path`, read only when clicked (Streamlit calls `data` then)."""
    st.download_button(
        label, path.read_bytes, file_name=path.name, mime="image/png", key=key, icon=":material/download:", on_click="ignore",
        help="The PNG as rendered: its A1111 parameters and keyart lineage travel inside it",
    )


def _adopt_button(store, row: dict[str, Any], path: Path, *, key: str) -> None:
    if st.button("Use in catalog", key=key, icon=":material/check:", help=ADOPT_NOTE):
        try:
            adopt(store, row, path)
        except KeyartError as exc:
            common.show_error(exc)
            return
        st.toast(f"{label_of(row)} now uses {path.name}", icon=":material/check:")
        st.rerun()  # the whole page: the gallery's card changes too


def label_of(row: dict[str, Any]) -> str:
    where = f"S{row['season']:02d}" + (f"E{row['episode']:02d}" if row["episode"] is not None else " season")
    return f"{where} {row['style']}"


@st.fragment
def regenerate_panel(row: dict[str, Any], prefix: str) -> None:
    """Render the entry again (new seed, edited prompt), see the result, keep it or not; older renders below.

    A fragment: rendering and choosing rerun this panel only, never the other tabs.
    """
    from imagegen.request import MAX_SEED

    store, s = common.current_store(), common.settings()
    if not row.get("prompt"):
        st.info("This entry has no prompt yet; build the catalog first.")
        return
    job = build_job(s["home"])
    busy = job is not None and job.running
    rid = row_id(row)
    used = row["request"]  # start from what the image used: an adopted edit stays edited
    with st.form(key=f"{prefix}-regen-{rid}", border=False):
        prompt = st.text_area("Prompt", value=used.get("prompt", row["prompt"]), height=110, key=f"{prefix}-prompt-{rid}")
        negative = st.text_area("Negative prompt", value=used.get("negative_prompt", row["negative_prompt"] or ""), height=68, key=f"{prefix}-negative-{rid}")
        seed = st.number_input("Seed", min_value=-1, max_value=MAX_SEED, value=-1, step=1, key=f"{prefix}-seed-{rid}", help="-1: a new random seed (recorded in the PNG)")
        clicked = st.form_submit_button("Regenerate", type="primary", icon=":material/refresh:", disabled=busy)
    if busy:
        st.caption("A build of this catalog is running; regenerate when it is done.")
    last_key = f"{prefix}-last-{rid}"
    if clicked:
        bar = st.progress(0.0, text="Rendering...")
        try:
            slot = common.render_service(s["engine"], s["home"])
            with st.spinner(f"Rendering with the {slot.name} engine..."):
                path = regenerate(
                    store, slot, row, prompt=prompt, negative_prompt=negative, seed=int(seed), quality=s["quality"],
                    progress=lambda done, total: bar.progress(done / total, text=f"Step {done} of {total}"),
                )
        except KeyartError as exc:
            bar.empty()
            common.show_error(exc)
            return
        bar.empty()
        st.session_state[last_key] = str(path)
    last = Path(st.session_state[last_key]) if st.session_state.get(last_key) else None
    if last is not None and last.is_file() and last != image_file(row):
        meta = lineage_of(last)
        st.markdown(f"**New render** · seed {meta.get('seed', '?')}" + (" · edited prompt" if meta.get("lineage", {}).get("regenerated", {}).get("edited_prompt") else ""))
        st.image(str(last), width="stretch")
        if is_preview(meta):
            st.caption(f":orange[{PREVIEW_NOTE}]")
        with st.container(horizontal=True):
            _adopt_button(store, row, last, key=f"{prefix}-adopt-new-{rid}")
            download(last, key=f"{prefix}-dl-new-{rid}")
        st.caption(ADOPT_NOTE)
    others = [p for p in alternatives(store, row) if p != last]
    if others:
        st.markdown(f"**Other renders** ({len(others)})")
        grid = st.grid(3, min_column_width=140)
        for i, path in enumerate(others[:6]):
            meta = lineage_of(path)
            with grid.container(border=True):
                st.image(str(path), width="stretch")
                note = "regenerated" if meta.get("lineage", {}).get("regenerated") else "earlier catalog render"
                st.caption(f"seed {meta.get('seed', '?')} · {note}" + (" · preview" if is_preview(meta) else ""))
                _adopt_button(store, row, path, key=f"{prefix}-adopt-{i}-{rid}")
        if len(others) > 6:
            st.caption(f"... and {len(others) - 6} more in {others[0].parent}")


# -- one piece of art in detail ---------------------------------------------------------------------


def badges(row: dict[str, Any], *, compact: bool = False) -> None:
    """The style, and whether the art is a preview card, a render, or not made yet."""
    with st.container(horizontal=True, gap="xxsmall" if compact else "xsmall"):
        st.badge(row["style"], color="blue")
        if row["state"] != "done":
            st.badge(row["state"] if compact else STATE_LABELS[row["state"]], color="red" if row["state"] == "failed" else "gray")
        elif is_preview(row):
            st.badge("preview" if compact else "preview card", color="orange", help=PREVIEW_NOTE)
        else:
            st.badge(row["engine"] or "rendered", color="green")


def trace_view(row: dict[str, Any], result: dict[str, Any] | None) -> None:
    """Who wrote the prompt, how, and what went back and forth."""
    if not result:
        st.info("No prompts written yet.")
        return
    trace = result.get("trace", {})
    who = trace.get("model", "?") + (" (fell back to offline)" if trace.get("fallback") else "")
    st.markdown(f"Written by **{who}** by **{trace.get('technique', '?')}**.")
    if trace.get("fallback"):
        st.warning(f"The model's reply stayed unusable, so the offline rules wrote these prompts: {trace['fallback']}")
    for name in ("retries", "warnings"):
        for item in trace.get(name) or []:
            st.caption(f"{name[:-1]}: {item}")
    if trace.get("repairs"):
        st.caption(f"{trace['repairs']} repair round(s): the model was shown its parse error and asked again")
    if result.get("brief"):
        st.markdown("**Scene brief**")
        st.json(result["brief"], expanded=False)
    if trace.get("messages"):
        st.markdown(f"**Messages** ({len(trace['messages'])} request(s))")
        st.json(trace["messages"], expanded=False)
        st.markdown("**Replies**")
        for reply in trace.get("replies") or []:
            st.code(reply, language=None, wrap_lines=True)
    elif trace.get("model") == "offline":
        st.caption("The offline rules read the summary directly: there is no model conversation to show.")


def parameters_view(row: dict[str, Any], path: Path | None, request: dict[str, Any]) -> None:
    if not request:
        st.info("Not rendered yet.")
        return
    lines = [
        ("Seed", row["seed"]),
        ("Size", f"{request.get('width')} × {request.get('height')}"),
        ("Steps", request.get("num_inference_steps")),
        ("Sampler", f"{request.get('sampler')} {request.get('schedule_type') or ''}".strip()),
        ("CFG scale", request.get("guidance_scale")),
        ("Engine", f"{row['engine']} ({row['model']})" + (" · offline preview card" if is_preview(row) else "")),
        ("Language model", row["llm"]),
        ("Technique", row["technique"]),
    ]
    st.markdown("\n".join(["| | |", "|---|---|", *[f"| {k} | {common.plain(str(v))} |" for k, v in lines]]))
    if path is not None:
        from imagegen.png_files import read_png

        try:
            infotext = read_png(path).infotext
        except KeyartError as exc:
            common.show_error(exc)
            return
        if infotext:
            st.markdown("**A1111 parameters** (as stored in the PNG; paste into A1111's PNG Info)")
            st.code(infotext, language=None, wrap_lines=True)


def detail(row: dict[str, Any], summary: str, prefix: str = "ep") -> None:
    """One entry: the art, its story, prompt, parameters and trace; regenerate and download."""
    title = f"S{row['season']:02d}E{row['episode']:02d}" if row["episode"] is not None else f"Season {row['season']}"
    st.subheader(f"{title} · {common.plain(row['title'])}" if row["title"] else title)
    badges(row)
    path = image_file(row)
    if path is not None:
        st.image(str(path), width="stretch")
        if is_preview(row):
            st.caption(f":orange[{PREVIEW_NOTE}]")
        download(path, key=f"{prefix}-dl-{row_id(row)}")
    elif row["state"] == "failed":
        st.error(f"Failed at {row['failed_at']}: {common.plain(row['error'] or '')}", icon=":material/error:")
    else:
        st.info(f"No image yet ({STATE_LABELS[row['state']]}).")
    request, result = row["request"], row["result"]  # read with the catalog's rows (export.catalog_rows)
    story, prompt_tab, params, trace, again, alike = st.tabs(["Story", "Prompt", "Parameters", "Trace", "Regenerate", "More like this"])
    with story:
        st.markdown(common.plain(summary) if summary else "_The catalog file has no summary for this one._")
    with prompt_tab:
        edited = request.get("prompt", row["prompt"]) != row["prompt"] or request.get("negative_prompt", row["negative_prompt"]) != row["negative_prompt"]
        st.markdown("**Prompt**" + (" (edited in the dashboard)" if edited else ""))
        st.code(request.get("prompt", row["prompt"]) or "(none yet)", language=None, wrap_lines=True)
        st.markdown("**Negative prompt**")
        st.code(request.get("negative_prompt", row["negative_prompt"]) or "(none)", language=None, wrap_lines=True)
        if edited:
            st.markdown("**The language model's prompt and negative**")
            st.code(f"{row['prompt']}\n\nNegative: {row['negative_prompt'] or '(none)'}", language=None, wrap_lines=True)
        st.caption(f"Style **{row['style']}** wraps this prompt with its own template and negative at render time.")
    with params:
        parameters_view(row, path, request)
    with trace:
        trace_view(row, result)
    with again:
        regenerate_panel(row, prefix)
    with alike:
        if path is not None:
            more_like_this(row, key=f"{prefix}-like-{row_id(row)}")
        else:
            st.caption("Render this one first; then its look can be compared with the catalog's other images.")


# -- the tab ----------------------------------------------------------------------------------------


def ranking(store, query: str) -> dict[tuple, int] | None:
    """Each matching entry's place in the catalog search (assistant.search: title, summary, prompt,
    ranked); None when the query has no words, which filters nothing."""
    from ..search import MAX_RESULTS, search

    try:
        hits = search(store, query, limit=MAX_RESULTS)
    except KeyartError:  # no words in it (punctuation only): as an empty box
        return None
    return {(h.show, h.season, h.episode, h.style): place for place, h in enumerate(hits)}


def _pick(name: str) -> None:
    st.session_state["ep-pick"] = name


def _card(row: dict[str, Any], picked: bool) -> None:
    with st.container(border=True):
        path = image_file(row)
        if path is not None:
            st.image(str(path), width="stretch")
        else:
            st.markdown(f"`{STATE_LABELS[row['state']]}`" + (f"  \n{common.plain(row['error'])}" if row["error"] else ""))
        # The title opens the piece in the detail panel beside the gallery.
        st.button(
            f"**S{row['season']:02d}E{row['episode']:02d}** · {common.plain(row['title'])}", key=f"ep-open-{row_id(row)}", on_click=_pick, args=(row_id(row),),
            type="tertiary", icon=":material/visibility:" if picked else None, help="Open it beside the gallery",
        )
        badges(row, compact=True)


def render() -> None:
    try:
        store = common.current_store()
        rows = catalog_rows(store)
    except KeyartError as exc:
        common.show_error(exc)
        return
    home = str(store.home)
    job = build_status(home)
    if not rows or (job is not None and job.running and not any(r["state"] == "done" for r in rows)):
        if job is None or not job.running:
            empty_state(home)
        else:
            st.caption("The gallery opens when the build is done. The other tabs stay usable meanwhile.")
        return
    episodes = [r for r in rows if r["kind"] == "episode"]
    if not episodes:
        st.info("The catalog holds no episode art yet; build it below.")
    texts = summaries()
    # 1. Filters: season, style, status and words in the title, summary or prompt.
    seasons = sorted({r["season"] for r in episodes})
    styles = list(dict.fromkeys(r["style"] for r in sorted(episodes, key=lambda r: r["style"])))
    c1, c2, c3, c4 = st.columns([1, 2, 2, 3])
    season = c1.selectbox("Season", ["all", *seasons], format_func=lambda n: "All seasons" if n == "all" else f"Season {n}", key="ep-season")
    chosen_styles = c2.multiselect("Style", styles, placeholder="All styles", key="ep-styles")
    chosen_states = c3.multiselect("Status", STATES, format_func=STATE_LABELS.get, placeholder="Any status", key="ep-states")
    query = c4.text_input("Search", placeholder="Title, summary or prompt words", key="ep-text", icon=":material/search:", help="Every word, as a prefix; best matches first")
    words = query.lower().split()
    shown = [
        r
        for r in episodes
        if (season == "all" or r["season"] == season) and (not chosen_styles or r["style"] in chosen_styles) and (not chosen_states or r["state"] in chosen_states)
    ]
    ranked = ranking(store, query) if query.strip() else None
    if ranked is not None:  # the search's order: best match first
        shown = sorted((r for r in shown if entry_of(r) in ranked), key=lambda r: ranked[entry_of(r)])
    # 2. The gallery (left) and the open piece (right).
    gallery, side = st.columns([3, 2], gap="large")
    with gallery:
        counts = Counter(r["state"] for r in shown)
        st.caption(f"{len(shown)} of {len(episodes)} pieces · " + ", ".join(f"{counts[s]} {STATE_LABELS[s]}" for s in STATES if counts[s]))
        if not shown:
            st.info("Nothing matches these filters.")
        pages = max(1, -(-len(shown) // PAGE_SIZE))
        page = 1
        if pages > 1:
            signature = re.sub(r"\W+", "-", f"{season}-{chosen_styles}-{chosen_states}-{words}")
            page = st.pagination(pages, key=f"ep-page-{signature}")  # new filters start on page 1
        picked = st.session_state.get("ep-pick")
        if picked not in {row_id(r) for r in shown} and shown:
            picked = row_id(shown[0])
        grid = st.grid(3, min_column_width=220)
        with grid:
            for row in shown[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]:
                _card(row, row_id(row) == picked)
    with side:
        current = next((r for r in shown if row_id(r) == picked), None)
        if current is not None:
            detail(current, texts.get(entry_of(current)[:3], ""))
    with st.expander("Build, update or extend the catalog", icon=":material/construction:"):
        build_form(primary=False)

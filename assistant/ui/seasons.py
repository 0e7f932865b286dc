"""The Seasons tab: each season's posters in every style side by side, the self-ask behind them, and
regenerating one style (the same panel as an episode's, from the Episodes tab)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from imagegen.errors import KeyartError

from ..workflows.regenerate import image_file
from . import common
from .build import build_job
from .episodes import PREVIEW_NOTE, badges, catalog_rows, download, is_preview, regenerate_panel, row_id, summaries, trace_view


def _style_order() -> dict[str, int]:
    from imagegen.styles import names

    return {name: i for i, name in enumerate(names())}


def self_ask(result: dict[str, Any] | None) -> None:
    """The follow-up questions self-ask put to the season, their answers, and the final answer."""
    if not result:
        st.info("No prompts written for this season yet.")
        return
    if result.get("summary_written"):
        st.caption("The catalog had no summary for this season; the model wrote one from its episodes first.")
    for i, f in enumerate(result.get("follow_ups") or [], 1):
        st.markdown(f"**Follow-up {i}: {common.plain(f['question'])}**  \n{common.plain(f['answer'])}")
    if result.get("final_answer"):
        st.markdown(f"**So the final answer is:** {common.plain(result['final_answer'])}")


def _poster(row: dict[str, Any]) -> None:
    with st.container(border=True):
        path = image_file(row)
        if path is not None:
            st.image(str(path), width="stretch")
        elif row["state"] == "failed":
            st.error(f"Failed at {row['failed_at']}: {common.plain(row['error'] or '')}", icon=":material/error:")
        else:
            st.caption(f"No image yet ({row['state']}).")
        badges(row)
        if path is not None:
            st.caption(f"seed {row['seed']}")
            download(path, key=f"se-dl-{row_id(row)}", label="PNG")


def season(rows: list[dict[str, Any]], summary: str) -> None:
    """One season: the posters side by side, then how self-ask wrote them, then regenerating a style."""
    first = rows[0]
    st.subheader(f"Season {first['season']}" + (f" · {common.plain(first['title'])}" if first["title"] else ""), divider="gray")
    result = first["result"]  # read with the catalog's rows (export.catalog_rows)
    text = summary or (result or {}).get("summary", "")
    if text:
        st.markdown(common.plain(text))
    for column, row in zip(st.columns(len(rows)), rows):
        with column:
            _poster(row)
    if any(is_preview(r) for r in rows):
        st.caption(f":orange[{PREVIEW_NOTE}]")
    ask, trace, again = st.tabs(["Self-ask", "Trace and prompts", "Regenerate a style"])
    with ask:
        self_ask(result)
    with trace:
        trace_view(first, result)
        for row in rows:
            st.markdown(f"**{row['style']}**")
            st.code(row["prompt"] or "(none yet)", language=None, wrap_lines=True)
    with again:
        names = [r["style"] for r in rows]
        style = st.selectbox("Style", names, key=f"se-style-{first['season']}")
        regenerate_panel(next(r for r in rows if r["style"] == style), "se")


def render() -> None:
    try:
        store = common.current_store()
        rows = [r for r in catalog_rows(store) if r["kind"] == "season"]
    except KeyartError as exc:
        common.show_error(exc)
        return
    if not rows:
        job = build_job(store.home)
        if job is not None and job.running:
            st.info("A build is running (its progress is in the Episodes tab); the posters appear here when it is done.", icon=":material/hourglass_top:")
        else:
            st.info("No season art yet. Build the catalog from the Episodes tab (or `python dataprep.py run`): each season gets a poster in every style, written by self-ask.", icon=":material/info:")
        return
    order = _style_order()
    by_season: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for row in rows:
        by_season.setdefault((row["show"], row["season"]), []).append(row)
    texts = summaries()
    shows = {show for show, _ in by_season}
    for (show, number), group in sorted(by_season.items()):
        if len(shows) > 1:
            st.caption(show)
        group.sort(key=lambda r: (order.get(r["style"], len(order)), r["style"]))
        season(group, texts.get((show, number, 0), ""))

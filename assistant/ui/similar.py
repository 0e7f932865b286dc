"""More like this, in an entry's detail: the catalog's images that look most like it (the similar
workflow: CLIP image similarity, or the offline colour histograms, said so)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from imagegen import KeyartError

from ..workflows import similar
from . import common

SHOWN = 6


def more_like_this(row: dict[str, Any], key: str) -> None:
    """A button that ranks the catalog's images by likeness to `row`'s, and the best few in a grid."""
    result_key = f"{key}:result"
    if st.button("Find images like this one", key=key, icon=":material/image_search:"):
        try:
            with st.spinner("Comparing the catalog's images..."):
                found = similar.more_like(
                    common.current_store(), common.current_service().describer(), like=(row["season"], row["episode"] or 0),
                    show=row["show"], style=None, limit=SHOWN,
                )  # fmt: skip
            st.session_state[result_key] = found.to_dict() | {"for": row["style"]}
        except KeyartError as exc:
            st.session_state.pop(result_key, None)
            common.show_error(exc)
    found = st.session_state.get(result_key)
    if found is None:
        st.caption("Ranks the catalog's rendered images by how alike they look to this one.")
        return
    if found["offline"]:
        st.info(f"**Offline likeness.** {found['method']}.", icon=":material/visibility:")
    else:
        st.caption(f"By {found['method']}; like {found['query']}.")
    if not found["hits"]:
        st.write("No other rendered image in the catalog yet.")
        return
    grid = st.grid(3, min_column_width=140)
    for hit in found["hits"]:
        with grid.container(border=True):
            if Path(hit["path"]).is_file():
                st.image(hit["path"], width="stretch")
            where = f"S{hit['season']:02d}" + (f"E{hit['episode']:02d}" if hit["episode"] else " season")
            st.caption(f"{where} · {hit['style']} · {common.plain(hit['title'])} · likeness {hit['score']:.3f}")

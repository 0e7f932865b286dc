"""The Studio tab's output: the last result of each mode (renders, the A/B pair, the seed hunt's grid
with its picker and final), each image with its download button and A1111 parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

from imagegen import presets

from ..workflows.studio import OUTPUT
from .studio_controls import K

MAX_SHOWN = 24  # images drawn per result: a batch can hold 800, each with its download button


def show(mode: str, service, home: Path, finalise: Callable[[Any, Path, int], None]) -> None:
    """The mode's last result, or what the mode does; `finalise(service, home, seed)` renders a hunt's pick."""
    result = st.session_state.get(f"studio:result:{mode}")
    if result is None:
        st.markdown(
            {
                "Render": "#### :material/image: Your images appear here\nWrite a prompt, set the controls, and press **Render**.",
                "Seed hunt": "#### :material/grid_view: Seed hunt\nRender the prompt on consecutive seeds at draft settings, "
                "pick the composition you like, then **Finalise** it at final quality.",
                "A/B": "#### :material/compare: A/B\nTwo prompts on one fixed seed and the same settings, side by side: "
                "only the words differ.",
                "Animate": "#### :material/movie: Animate\nKeyframed prompts (`0: ... | 12: ...`) and motion, frame after frame "
                "from the previous one: the loop plays here, with its MP4, GIF and request to download.",
            }[mode]
        )
        return
    preview = result["engine"] == "preview"
    if preview:
        st.caption(":material/visibility: Preview cards from the offline engine, not SDXL renders.")
    if mode == "Animate":
        from .studio_animate import show as show_animation

        show_animation(result)
    elif mode == "Seed hunt":
        _show_hunt(result, service, home, finalise)
    elif mode == "A/B":
        _gallery(result["images"], "ab", columns=2)
    else:
        _gallery(result["images"], "render")


def _gallery(images: list[dict[str, Any]], name: str, *, columns: int | None = None) -> None:
    """Images in rows, each with its download button; then the parameters of one (or each, side by side)."""
    on_disk = [im for im in images if Path(im["path"]).is_file()]
    if not on_disk:
        st.warning("These images are no longer on disk.", icon=":material/broken_image:")
        return
    shown = on_disk[:MAX_SHOWN]
    if len(on_disk) > MAX_SHOWN:
        st.caption(f"The first {MAX_SHOWN} of {len(on_disk)} images; all of them are in `{Path(on_disk[0]['path']).parent}`.")
    per_row = columns or (1 if len(shown) == 1 else 2 if len(shown) <= 4 else 3)
    for start in range(0, len(shown), per_row):
        for col, image in zip(st.columns(per_row), shown[start : start + per_row]):
            with col:
                _card(image, f"{name}.{start}", side_by_side=columns is not None)
    if columns is None:
        picked = shown[0]
        if len(shown) > 1:
            picked = st.selectbox("Parameters of", shown, format_func=lambda im: im["caption"], key=f"{K}info_{name}")
        st.code(picked["infotext"], language=None, wrap_lines=True)


def _card(image: dict[str, Any], key: str, *, side_by_side: bool) -> None:
    path = Path(image["path"])
    st.image(str(path), caption=image["caption"], width="stretch")
    if side_by_side:
        st.code(image["infotext"], language=None, wrap_lines=True)
    st.download_button(
        "Download PNG", path.read_bytes, file_name=path.name, mime="image/png", on_click="ignore", icon=":material/download:",
        key=f"{K}dl_{key}_{path.name}", help="The PNG with its parameters and lineage",
    )  # fmt: skip


def _show_hunt(hunt: dict[str, Any], service, home: Path, finalise: Callable[[Any, Path, int], None]) -> None:
    """The grid and the seed picker; the final render beside them once there is (or is about to be) one."""
    grid = Path(hunt["grid"])
    finalising = bool(st.session_state.get(K + "finalise")) and service is not None  # the button's click, read before it is drawn
    left, right = st.columns(2) if hunt["final"] is not None or finalising else (st.container(), None)
    with left:
        if grid.is_file():
            st.image(str(grid), caption=hunt["title"], width="stretch")
        seeds = [c["seed"] for c in hunt["cells"]]
        # One picker per hunt: a new hunt's seeds are new options.
        picked = st.pills("Pick a seed", seeds, key=f"{K}pick_{grid.stem}", default=seeds[0], required=True, format_func=str, wrap=True)
        st.button(
            f"Finalise seed {picked}", key=K + "finalise", type="primary", icon=":material/check_circle:",
            help=f"Render the picked seed at final quality ({presets.describe_quality('final')}), with the hires fix if it is on",
            disabled=service is None,
        )  # fmt: skip
        st.caption(f"Draft cells in `{grid.parent}`; finals join the renders in `{home / OUTPUT}`.")
    if right is not None:
        with right:
            if finalising:
                finalise(service, home, picked)
            if hunt["final"] is not None:
                _gallery([hunt["final"]], "final")

"""The Studio's Describe: an image to an SDXL prompt (the Studio workflow's `describe`), which one
click puts in the prompt box; the offline description says it is one."""

from __future__ import annotations

import streamlit as st

from imagegen import KeyartError

from ..workflows import studio as workflow
from . import common
from .studio_controls import K

RESULT = "studio:described"


def describe_panel(service) -> None:
    """The Describe expander: upload, describe, then "Use as prompt"."""
    state = st.session_state
    with st.expander("Describe (image to prompt)", icon=":material/image_search:", expanded=RESULT in state):
        st.file_uploader("An image to describe", type=["png", "jpg", "jpeg", "webp"], key=K + "describe_upload")
        if st.button("Describe", key=K + "describe", icon=":material/image_search:", disabled=service is None):
            upload = state.get(K + "describe_upload")
            if upload is None:
                st.warning("Upload an image to describe first.", icon=":material/upload:")
            else:
                try:
                    with st.spinner("Describing the image..."):
                        state[RESULT] = workflow.describe(service, upload.getvalue())
                except KeyartError as exc:
                    state.pop(RESULT, None)
                    common.show_error(exc)
        found = state.get(RESULT)
        if found is None:
            return
        if found["offline"]:
            st.info(f"**Offline description.** {found['method']}.", icon=":material/visibility:")
        else:
            st.caption(found["method"])
        st.code(found["prompt"], language=None, wrap_lines=True)
        st.button("Use as prompt", key=K + "describe_use", icon=":material/input:", on_click=_use, args=(found["prompt"],))
        ranking = found["trace"].get("ranking")
        if ranking:
            rows = [{"kind": kind, "phrase": phrase, "CLIP score": score} for kind, ranked in ranking.items() for phrase, score in ranked]
            st.dataframe(rows, hide_index=True, width="stretch")


def _use(prompt: str) -> None:
    st.session_state[K + "prompt"] = prompt

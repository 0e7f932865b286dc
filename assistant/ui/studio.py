"""The Studio tab."""

import streamlit as st


def render() -> None:
    st.info("Studio: coming in this session.")

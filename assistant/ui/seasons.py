"""The Seasons tab."""

import streamlit as st


def render() -> None:
    st.info("Seasons: coming in this session.")

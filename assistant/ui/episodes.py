"""The Episodes tab."""

import streamlit as st


def render() -> None:
    st.info("Episodes: coming in this session.")

"""The Settings tab."""

import streamlit as st


def render() -> None:
    st.info("Settings: coming in this session.")

"""The Campaign tab."""

import streamlit as st


def render() -> None:
    st.info("Campaign: coming in this session.")

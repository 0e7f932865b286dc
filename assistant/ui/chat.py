"""The Chat tab."""

import streamlit as st


def render() -> None:
    st.info("Chat: coming in this session.")

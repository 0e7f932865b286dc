"""dashboard: keyart in the browser: Episodes, Seasons, Campaign, Chat and Studio, plus Settings.

`streamlit run dashboard.py`. Each tab lives in assistant/ui/ and calls the same workflows the
shell and the tests use; heavy models load once, on first use.
"""

import streamlit as st

st.set_page_config(page_title="keyart", page_icon=":material/movie:", layout="wide")

from assistant.ui import common  # noqa: E402  (after set_page_config, which must come first)

TABS = ("Episodes", "Seasons", "Campaign", "Chat", "Studio", "Settings")


def main() -> None:
    common.settings()
    st.title("keyart")
    st.caption("Key art and campaigns from a show's catalog")
    tabs = dict(zip(TABS, st.tabs(TABS)))
    from assistant.ui import campaign, chat, episodes, seasons, settings, studio

    for name, module in (("Episodes", episodes), ("Seasons", seasons), ("Campaign", campaign), ("Chat", chat), ("Studio", studio), ("Settings", settings)):
        with tabs[name]:
            module.render()


main()

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
            guarded(name, module.render)


def guarded(name: str, render) -> None:
    """One tab under the error policy: keyart's errors and the machine's (a full disk, a damaged
    file) as one line; a bug as one line saying so and where its traceback was written. The other
    tabs render on. Streamlit's own reruns and stops pass (they are not Exceptions)."""
    import sqlite3

    from imagegen.errors import KeyartError, crash_log, one_line, storage_error

    try:
        render()
    except KeyartError as exc:
        st.error(one_line(exc))
    except (OSError, sqlite3.Error) as exc:
        st.error(one_line(storage_error(exc)))
    except Exception as exc:  # a bug: the traceback goes to a file, the page says so
        st.error(f"The {name} tab hit an internal error, a bug: {type(exc).__name__}: {one_line(exc)[:300]}. The traceback is in {crash_log('dashboard')}; please report it.")


main()

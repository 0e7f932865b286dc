"""dashboard: the Streamlit app (Episodes, Seasons, Campaign, Chat, Studio); not built yet.

Until it is, `python -m imagegen render --help` gives the engine's controls from the shell.
"""

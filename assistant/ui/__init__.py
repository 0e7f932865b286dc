"""The dashboard's tabs (Streamlit), one file each; thin over assistant.workflows and imagegen."""

"""keyart's language side: chat models, prompting techniques and the workflows that meet imagegen."""

"""Workflows: the only place where the language side meets imagegen (styles, engines)."""

"""The prompting techniques, one per file: meta-prompting for episodes, self-ask for seasons."""

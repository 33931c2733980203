# Llama Tutor — the two commands a newcomer needs:
#   make app    run the Gradio app (chat + quiz) with the default model
#   make test   build the virtual environment from nothing and run the whole test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Machines without an NVIDIA GPU keep torch on its CPU build (no multi-GB CUDA wheels); with one
# (nvidia-smi present), pip installs the CUDA build.
PIP_FLAGS ?= $(if $(shell command -v nvidia-smi 2>/dev/null),,-c constraints-cpu.txt)

.PHONY: app test test-fast venv clean

$(STAMP): requirements.txt requirements-train.txt requirements-dev.txt constraints-cpu.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -r requirements-dev.txt $(PIP_FLAGS)
	touch $(STAMP)

venv: $(STAMP)

app: $(STAMP)
	$(PY) app.py $(ARGS)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# Everything except tiny-model training and browser tests (under a minute).
test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache

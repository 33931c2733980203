# Llama Tutor — the two commands a newcomer needs:
#   make app    install what the app needs (not the test stack) and run the Gradio app (chat + quiz)
#   make test   build the virtual environment from nothing and run the whole test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
APP_STAMP := $(VENV)/.app-installed
STAMP := $(VENV)/.installed
# Machines without an NVIDIA GPU keep torch on its CPU build (no multi-GB CUDA wheels); with one
# (nvidia-smi present), pip installs the CUDA build.
PIP_FLAGS ?= $(if $(shell command -v nvidia-smi 2>/dev/null),,-c constraints-cpu.txt)
# llama-cpp-python is published only as source. It is built here from its sdist with portable flags
# (a native build crashes on Q8_0 models on some CPUs) and --no-cache-dir, so a wheel cached by another
# build with other flags is never reused. The unpacked sdist also holds llama.cpp's converters
# (convert_hf_to_gguf.py for the GGUF export, convert_lora_to_gguf.py for adapters on the llamacpp backend).
LLAMA_CPP_PYTHON := $(shell sed -n 's/^llama-cpp-python==//p' requirements.txt)
LLAMA_CPP_SDIST := $(VENV)/src/llama_cpp_python-$(LLAMA_CPP_PYTHON).tar.gz
LLAMA_CPP_STAMP := $(VENV)/.llama-cpp-$(LLAMA_CPP_PYTHON)
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF

.PHONY: app test test-fast venv app-venv clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip

$(LLAMA_CPP_STAMP): requirements.txt | $(PY)
	$(PY) -m pip download --quiet --no-deps --no-binary :all: -d $(VENV)/src llama-cpp-python==$(LLAMA_CPP_PYTHON)
	tar xzf $(LLAMA_CPP_SDIST) -C $(VENV)/src
	@echo "building llama-cpp-python $(LLAMA_CPP_PYTHON) with CMAKE_ARGS=$(CMAKE_ARGS) (about 10 minutes on 2 cores)"
	$(PY) -m pip install --no-cache-dir $(LLAMA_CPP_SDIST) $(PIP_FLAGS)
	touch $@

$(APP_STAMP): requirements.txt constraints-cpu.txt $(LLAMA_CPP_STAMP)
	$(PY) -m pip install -r requirements.txt $(PIP_FLAGS)
	touch $@

$(STAMP): $(APP_STAMP) requirements-train.txt requirements-dev.txt
	$(PY) -m pip install -r requirements-dev.txt $(PIP_FLAGS)
	touch $@

app-venv: $(APP_STAMP)
venv: $(STAMP)

app: $(APP_STAMP)
	$(PY) app.py $(ARGS)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# Everything except tiny-model training and browser tests (under a minute).
test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache

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
# llama-cpp-python is published only as source: pip builds it (~10 min on 2 cores), portably (a native
# build crashes on Q8_0 models on some CPUs). Its unpacked source also gives the tests llama.cpp's
# convert_hf_to_gguf.py for the GGUF export.
LLAMA_CPP_PYTHON := $(shell sed -n 's/^llama-cpp-python==//p' requirements-dev.txt)
LLAMA_CPP_SRC := $(VENV)/src/llama_cpp_python-$(LLAMA_CPP_PYTHON)
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF

.PHONY: app test test-fast venv clean

$(STAMP): requirements.txt requirements-train.txt requirements-dev.txt constraints-cpu.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -r requirements-dev.txt $(PIP_FLAGS)
	$(PY) -m pip download --quiet --no-deps --no-binary :all: -d $(VENV)/src llama-cpp-python==$(LLAMA_CPP_PYTHON)
	tar xzf $(LLAMA_CPP_SRC).tar.gz -C $(VENV)/src
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

"""Shared fixtures: tiny real Llama models built once per test session, never the network."""

from __future__ import annotations

import os

# No test may reach the hub; set before transformers/huggingface_hub are imported anywhere.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Two OpenMP threads on a busy 2-core box made tiny-model steps 25x slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest  # noqa: E402

from tests import tiny_models  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if has_cuda:
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory):
    """A tiny random Llama (2 layers, hidden 64) with a BPE tokenizer and Llama-3.1-style template."""
    return tiny_models.build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_adapter_dir(tiny_model_dir, tmp_path_factory: pytest.TempPathFactory):
    """A random LoRA adapter (r=8, all 7 projections) for ``tiny_model_dir``, saved by PEFT."""
    return tiny_models.save_random_adapter(tiny_model_dir, tmp_path_factory.mktemp("tiny-adapter"))


@pytest.fixture(scope="session")
def llama3_tokenizer():
    """The real Llama 3 tokenizer and Llama-3.2-Instruct chat template from ../shared/data."""
    model_file = tiny_models.LLAMA3_TOKENIZER_DIR / "tokenizer.model"
    if not model_file.is_file():
        pytest.skip(f"real Llama 3 tokenizer not found at {model_file} (shared data folder absent)")
    return tiny_models.build_llama3_tokenizer()


@pytest.fixture(scope="session")
def tiny_gguf(llama3_tokenizer, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A tiny Llama 3 (real tokenizer, float16-exact weights) as a transformers folder and as f16 and q8_0
    GGUF files written by llama.cpp's converter, plus a PEFT adapter for it: ``{"hf", "f16", "q8_0",
    "adapter"}`` paths. Skips where llama-cpp-python or llama.cpp's scripts are missing."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (requirements-dev.txt)")
    from inference.gguf import llama_cpp_source
    from training.gguf import convert

    source = llama_cpp_source()
    if source is None:
        pytest.skip("no llama.cpp source: `make test` unpacks llama-cpp-python's into .venv/src; or set LLAMA_CPP_DIR")
    root = tmp_path_factory.mktemp("tiny-gguf")
    hf = tiny_models.build_tiny_llama3(root / "hf", llama3_tokenizer)
    files = {"hf": hf, "adapter": tiny_models.save_random_adapter(hf, root / "adapter", float16_exact=True)}
    for outtype in ("f16", "q8_0"):
        files[outtype] = convert(source, hf, root / f"tiny-{outtype}.gguf", outtype)
    return files


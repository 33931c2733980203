"""Export: merging (and refusing a 4-bit base), GGUF and hub upload, with one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from inference import GenerationConfig, load_backend
from training.errors import TrainingError
from training.export import build_parser, check_not_4bit, main, merge, push_adapter

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = [[{"role": "user", "content": "What is LoRA?"}], [{"role": "user", "content": "12 + 30 = ?"}]]
GREEDY = GenerationConfig(max_new_tokens=8, temperature=0)


def export(*argv: str) -> dict:
    return main(build_parser().parse_args(list(argv)))


@pytest.mark.slow
def test_merged_model_generates_like_base_plus_adapter(tiny_model_dir, tiny_adapter_dir, tmp_path):
    done = export("--adapter", str(tiny_adapter_dir), "--base-model", str(tiny_model_dir),
                  "--merge", str(tmp_path / "merged"), "--dtype", "float32")
    merged = load_backend(base_model=done["merged"], warmup=False).chat_batch(PROMPTS, GREEDY)
    unmerged = load_backend(base_model=str(tiny_model_dir), adapter=str(tiny_adapter_dir), quantization="none",
                            warmup=False, merge_adapter=False).chat_batch(PROMPTS, GREEDY)
    base = load_backend(base_model=str(tiny_model_dir), warmup=False).chat_batch(PROMPTS, GREEDY)
    assert merged == unmerged and merged != base


@pytest.mark.slow
def test_bfloat16_merge_writes_16_bit_weights(tiny_model_dir, tiny_adapter_dir, tmp_path):
    from safetensors import safe_open

    out = merge(str(tiny_adapter_dir), str(tiny_model_dir), str(tmp_path / "m16"))
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        dtypes = {str(f.get_slice(k).get_dtype()) for k in f.keys()}
    assert dtypes == {"BF16"}


@pytest.mark.slow
def test_refuses_to_merge_into_a_4bit_base(tiny_model_dir, tiny_adapter_dir, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    quantized = AutoModelForCausalLM.from_pretrained(tiny_model_dir, quantization_config=BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32))
    quantized.save_pretrained(tmp_path / "base-4bit")
    check_not_4bit(str(tiny_model_dir))  # the 16-bit base passes
    with pytest.raises(TrainingError, match=r"is stored in 4-bit.*--base-model"):
        export("--adapter", str(tiny_adapter_dir), "--base-model", str(tmp_path / "base-4bit"),
               "--merge", str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_adapter_base_comes_from_adapter_config(tiny_adapter_dir, tmp_path):
    with pytest.raises(TrainingError, match=r"has no adapter_config.json"):
        export("--adapter", str(tmp_path), "--merge", str(tmp_path / "x"))
    with pytest.raises(TrainingError, match=r"nothing to do"):
        export("--adapter", str(tiny_adapter_dir))


def test_gguf_without_llama_cpp_says_how_to_get_it(tiny_adapter_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("LLAMA_CPP_DIR", raising=False)
    with pytest.raises(TrainingError, match=r"--gguf needs llama.cpp: set LLAMA_CPP_DIR"):
        export("--adapter", str(tiny_adapter_dir), "--gguf", str(tmp_path / "m.gguf"))
    with pytest.raises(TrainingError, match=r"has no convert_hf_to_gguf.py"):
        export("--adapter", str(tiny_adapter_dir), "--gguf", str(tmp_path / "m.gguf"), "--llama-cpp", str(tmp_path))


def test_push_needs_a_token(tiny_adapter_dir, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(TrainingError, match=r"needs a write token in the HF_TOKEN environment variable"):
        push_adapter(str(tiny_adapter_dir), "someone/llama-tutor")


def test_push_failure_is_one_line_and_never_shows_the_token(tiny_adapter_dir, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secretTOKEN123")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TrainingError, match=r"upload to 'someone/llama-tutor' failed") as info:
        push_adapter(str(tiny_adapter_dir), "someone/llama-tutor")
    assert "hf_secretTOKEN123" not in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(TrainingError, match=r"is not a repo id"):
        push_adapter(str(tiny_adapter_dir), "a/b/c")


def test_export_cli_error_is_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "training", "export", "--adapter", str(tmp_path), "--merge",
                           str(tmp_path / "m")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (f"error: --adapter '{tmp_path}' has no adapter_config.json: "
                                   "pass the output_dir of a training run")


def test_a_converter_missing_a_package_names_it_and_the_install():
    from training.gguf import _run

    with pytest.raises(TrainingError) as info:
        _run([sys.executable, "-c", "import sentencepiece_missing.sub"], dict(os.environ), "convert_hf_to_gguf.py")
    assert str(info.value) == ("convert_hf_to_gguf.py failed: ModuleNotFoundError: No module named "
                               f"'sentencepiece_missing' (pip install sentencepiece_missing into {sys.executable})")

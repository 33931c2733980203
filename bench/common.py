"""Shared pieces of the GPU benchmarks: the random-weight Llama-3.2-3B and saving results.

No pretrained weights are needed to measure speed and memory: a model with the exact Llama-3.2-3B
architecture and random weights costs the same per token. The tokenizer is the real Llama 3 one, built
from ``tokenizer.model`` (pass ``--tokenizer-dir`` or set ``TUTOR_LLAMA3_TOKENIZER_DIR``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from tests.tiny_models import LLAMA3_TOKENIZER_DIR, build_llama3_tokenizer

RESULTS_DIR = Path(__file__).resolve().parent / "results"
LLAMA32_3B = dict(
    vocab_size=128256, hidden_size=3072, intermediate_size=8192, num_hidden_layers=28,
    num_attention_heads=24, num_key_value_heads=8, head_dim=128, max_position_embeddings=131072,
    rms_norm_eps=1e-5, tie_word_embeddings=True, bos_token_id=128000, eos_token_id=[128001, 128008, 128009],
    pad_token_id=128004, hidden_act="silu",
    rope_parameters=dict(rope_type="llama3", rope_theta=500000.0, factor=32.0, low_freq_factor=1.0,
                         high_freq_factor=4.0, original_max_position_embeddings=8192),
)
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def cuda_sync() -> None:
    """Wait for queued GPU work before reading a timer (a no-op without CUDA)."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def tokenizer_dir() -> Path:
    return Path(os.environ.get("TUTOR_LLAMA3_TOKENIZER_DIR", LLAMA3_TOKENIZER_DIR))


def build_random_llama32_3b(out_dir: Path, seed: int = 0, dtype: str = "bfloat16") -> Path:
    """Save a random-weight model with the exact Llama-3.2-3B config + the real tokenizer to ``out_dir``."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    if (out_dir / "config.json").is_file():
        return out_dir
    torch.manual_seed(seed)
    config = LlamaConfig(**LLAMA32_3B)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = LlamaForCausalLM(config).to(getattr(torch, dtype))
    model.generation_config = GenerationConfig(bos_token_id=128000, eos_token_id=[128001, 128008, 128009],
                                               pad_token_id=128004)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    build_llama3_tokenizer(tokenizer_dir()).save_pretrained(out_dir)
    del model
    return out_dir


def save_random_lora(base_dir: Path, out_dir: Path, r: int = 16, seed: int = 1) -> Path:
    """A random r=16 LoRA on all 7 projections (non-zero B, as after training)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    if (out_dir / "adapter_config.json").is_file():
        return out_dir
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.bfloat16)
    lora = LoraConfig(r=r, lora_alpha=r, lora_dropout=0.0, target_modules=LORA_TARGETS,
                      init_lora_weights=False, task_type="CAUSAL_LM")
    get_peft_model(model, lora).save_pretrained(out_dir)
    return out_dir


def machine() -> dict:
    info = {"python": sys.version.split()[0], "platform": platform.platform()}
    try:
        import torch

        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
            info["gpu_count"] = torch.cuda.device_count()
    except ImportError:
        pass
    from importlib.metadata import PackageNotFoundError, version

    # Versions from package metadata: importing unsloth here would patch transformers process-wide.
    for pkg in ("transformers", "peft", "trl", "bitsandbytes", "unsloth", "accelerate"):
        try:
            info[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return info


def current_command() -> str:
    """The command line as typed: ``python -m bench.x ...`` when run as a module."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    head = ["python", "-m", spec.name] if spec and spec.name else ["python", sys.argv[0]]
    return " ".join(head + sys.argv[1:])


def save_results(name: str, results: dict, command: str | None = None) -> Path:
    """Write ``bench/results/<name>-<date>.json`` with the machine and the exact command, and print it."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    date = dt.date.today().isoformat()
    payload = {"benchmark": name, "date": date, "command": command or current_command(),
               "machine": machine(), **results}
    try:
        payload["git_commit"] = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                                               text=True, check=False).stdout.strip() or None  # -dirty: uncommitted
    except OSError:
        payload["git_commit"] = None
    path = Path(os.environ.get("BENCH_RESULTS_DIR", RESULTS_DIR)) / f"{name}-{date}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(json.dumps(payload, indent=2))
    print(f"saved {path}")
    return path


def random_llama32_3b_gguf(work_dir: Path, quant: str = "q4_k_m") -> Path:
    """The random-weight Llama-3.2-3B as a GGUF of type ``quant``, made by the project's own export code
    (llama.cpp's converter, then its quantizer); built once in ``work_dir`` and reused after."""
    from inference.gguf import llama_cpp_source
    from training.gguf import via_llama_cpp

    target = work_dir / f"llama-3.2-3b-random-{quant}.gguf"
    if target.is_file():
        return target
    source = llama_cpp_source()
    if source is None:
        raise SystemExit("llama.cpp's converter is missing: run `make test` (it unpacks it) or set LLAMA_CPP_DIR")
    hf = build_random_llama32_3b(work_dir / "llama-3.2-3b-random", dtype="bfloat16")
    via_llama_cpp(source, hf, target, quant)
    return target

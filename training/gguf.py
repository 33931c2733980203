"""Adapter -> GGUF (for llama.cpp, Ollama, LM Studio), through llama.cpp's converter or Unsloth.

llama.cpp route (any machine): merge to a 16-bit folder, ``convert_hf_to_gguf.py`` writes f16/bf16/q8_0
directly; other types (q4_k_m, ...) are quantized from the f16 file by ``llama-quantize`` or, when the
llama-cpp-python package is installed, its ``llama_model_quantize`` binding.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from training.errors import TrainingError

logger = logging.getLogger(__name__)

DIRECT_TYPES = ("f32", "f16", "bf16", "q8_0")  # convert_hf_to_gguf.py --outtype writes these itself
NO_LLAMA_CPP = ("--gguf needs llama.cpp: set LLAMA_CPP_DIR (or --llama-cpp) to a llama.cpp checkout with "
                "convert_hf_to_gguf.py and gguf-py (plus a built llama-quantize for k-quants such as q4_k_m), "
                "or run on a CUDA machine with Unsloth installed")


def find_llama_cpp(path: str | None) -> Path | None:
    """The folder holding convert_hf_to_gguf.py: ``path`` itself or a llama-cpp-python sdist's vendor copy."""
    if not path:
        return None
    root = Path(path).expanduser()
    for candidate in (root, root / "vendor" / "llama.cpp"):
        if (candidate / "convert_hf_to_gguf.py").is_file():
            return candidate
    raise TrainingError(f"llama.cpp folder {path!r} has no convert_hf_to_gguf.py: point LLAMA_CPP_DIR at a "
                        "llama.cpp checkout")


def gguf_path(out: str, quant: str) -> Path:
    target = Path(out).expanduser()
    if target.suffix.lower() != ".gguf":
        target.mkdir(parents=True, exist_ok=True)
        target = target / f"model-{quant.lower()}.gguf"
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    logger.info("running %s", " ".join(command))
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()
        reason = last[-1][:300] if last else f"exit status {done.returncode}"
        missing = re.search(r"No module named '([\w.]+)'", reason)
        hint = f" (pip install {missing.group(1).split('.')[0]} into {sys.executable})" if missing else ""
        raise TrainingError(f"{what} failed: {reason}{hint}")


def convert(llama_cpp: Path, model_dir: Path, outfile: Path, outtype: str) -> Path:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(llama_cpp / "gguf-py"),
                                                                     os.environ.get("PYTHONPATH")]))}
    _run([sys.executable, str(llama_cpp / "convert_hf_to_gguf.py"), str(model_dir), "--outfile", str(outfile),
          "--outtype", outtype], env, "convert_hf_to_gguf.py")
    return outfile


def quantize(llama_cpp: Path, source: Path, target: Path, quant: str) -> Path:
    """``llama-quantize`` when built, else llama-cpp-python's binding, else a clear error."""
    binary = next((str(p) for p in (llama_cpp / "build" / "bin" / "llama-quantize", llama_cpp / "llama-quantize")
                   if p.is_file()), None) or shutil.which("llama-quantize")
    if binary:
        _run([binary, str(source), str(target), quant.upper()], dict(os.environ), "llama-quantize")
        return target
    try:
        import ctypes

        import llama_cpp as binding
    except ImportError:
        raise TrainingError(f"--quant {quant} needs llama-quantize: build it in {llama_cpp} (cmake -B build && "
                            "cmake --build build --target llama-quantize), pip install llama-cpp-python, or use "
                            "--quant q8_0 / f16") from None
    ftype = getattr(binding, f"LLAMA_FTYPE_MOSTLY_{quant.upper()}", None)
    if ftype is None:
        raise TrainingError(f"--quant {quant!r} is not a llama.cpp quantization type (try q4_k_m, q5_k_m, q8_0)")
    params = binding.llama_model_quantize_default_params()
    params.ftype = ftype
    if binding.llama_model_quantize(str(source).encode(), str(target).encode(), ctypes.byref(params)) != 0:
        raise TrainingError(f"llama_model_quantize to {quant} failed")
    return target


def via_llama_cpp(llama_cpp: Path, model_dir: Path, target: Path, quant: str) -> Path:
    if quant.lower() in DIRECT_TYPES:
        return convert(llama_cpp, model_dir, target, quant.lower())
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        f16 = convert(llama_cpp, model_dir, Path(tmp) / "model-f16.gguf", "f16")
        return quantize(llama_cpp, f16, target, quant)


def via_unsloth(adapter: str, target: Path, quant: str) -> Path:
    from unsloth import FastLanguageModel

    model, tokenizer = FastLanguageModel.from_pretrained(os.path.expanduser(adapter), load_in_4bit=False)
    model.save_pretrained_gguf(str(target.parent), tokenizer, quantization_method=quant.lower())
    written = sorted(target.parent.glob("*.gguf"), key=lambda p: p.stat().st_mtime)
    if not written:
        raise TrainingError(f"Unsloth wrote no .gguf file in {target.parent}")
    return written[-1]


def _unsloth_usable() -> bool:
    import importlib.util

    if importlib.util.find_spec("unsloth") is None:
        return False
    import torch

    return torch.cuda.is_available()


def export_gguf(adapter: str, base: str, out: str, quant: str, llama_cpp_dir: str | None,
                merged: str | None = None, merge_fn: Callable[..., Path] | None = None) -> Path:
    """Write one GGUF of base + adapter; reuses an already merged folder when the caller made one."""
    llama_cpp = find_llama_cpp(llama_cpp_dir)
    target = gguf_path(out, quant)
    if llama_cpp is None:
        if not _unsloth_usable():
            raise TrainingError(NO_LLAMA_CPP)
        return via_unsloth(adapter, target, quant)
    if merged:
        return via_llama_cpp(llama_cpp, Path(merged), target, quant)
    if merge_fn is None:
        raise TrainingError("internal: export_gguf needs a merge function or a merged folder")
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        model_dir = merge_fn(adapter, base, tmp, "bfloat16" if quant.lower() == "bf16" else "float16")
        return via_llama_cpp(llama_cpp, model_dir, target, quant)

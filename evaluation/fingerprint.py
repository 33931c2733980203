"""What exactly was evaluated: hashes of the model, the adapter and the code's environment.

Hashing every byte of a 6 GB base model would take longer than the ARC run, so a model directory is
fingerprinted by its config and, per weight file, its name, size and the sha256 of its first and last
MiB (the safetensors header names every tensor, shape and offset). Adapters are small and hashed whole.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from evaluation.data import sha256_file

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")
EDGE = 1 << 20


def _edges_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    size = path.stat().st_size
    with open(path, "rb") as f:
        digest.update(f.read(EDGE))
        if size > 2 * EDGE:
            f.seek(size - EDGE)
            digest.update(f.read(EDGE))
    return digest.hexdigest()


def model_fingerprint(name: str, model: Any | None = None) -> dict:
    """A local directory: config + weight files; a hub id: the resolved commit when transformers knows it."""
    path = Path(name).expanduser()
    if not path.is_dir():
        commit = getattr(getattr(model, "config", None), "_commit_hash", None) if model is not None else None
        return {"hub_id": name, "commit": commit}
    info: dict = {"path": str(path.resolve())}
    if (path / "config.json").is_file():
        info["config_sha256"] = sha256_file(path / "config.json")
    weights = sorted(p for p in path.iterdir() if p.suffix in WEIGHT_SUFFIXES)
    info["weights"] = {p.name: {"bytes": p.stat().st_size, "edges_sha256": _edges_sha256(p)} for p in weights}
    return info


def adapter_fingerprint(adapter: str | None) -> dict | None:
    if not adapter:
        return None
    path = Path(adapter).expanduser()
    if not path.is_dir():
        return {"hub_id": adapter}
    files = [p for p in sorted(path.iterdir())
             if p.name == "adapter_config.json" or (p.name.startswith("adapter_model") and p.is_file())]
    return {"path": str(path.resolve()), **{f"{p.name}_sha256": sha256_file(p) for p in files}}


def versions() -> dict:
    info = {}
    for package in ("torch", "transformers", "peft"):
        try:
            info[package] = __import__(package).__version__
        except ImportError:
            continue
    import torch

    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info

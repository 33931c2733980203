"""GGUF files for the llama.cpp backend: which file a model name means, fetching it from the hub,
checking it, and turning a PEFT adapter folder into a GGUF LoRA with llama.cpp's own converter.

    path = resolve_gguf("unsloth/Llama-3.2-3B-Instruct-GGUF:Llama-3.2-3B-Instruct-Q4_K_M.gguf")
    lora = adapter_to_gguf("outputs/finetome")        # cached by the adapter's content

llama.cpp's converter scripts come from ``LLAMA_CPP_DIR`` (a llama.cpp checkout) or the
llama-cpp-python source that ``make`` unpacks into ``.venv/src`` (same version as the installed package).
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

from inference.backend import BackendError
from inference.loading import (adapter_nonfinite_tensors, diverged_adapter_error, hub_error, looks_like_path,
                               read_adapter_base)

logger = logging.getLogger(__name__)

GGUF_MAGIC = b"GGUF"
# The Q4_K_M GGUF served on machines without a GPU, per base model (checked on the hub: Unsloth's own
# quantisation of the same weights; bartowski's file of the same name is an alternative).
KNOWN_GGUF = {
    "unsloth/Llama-3.2-3B-Instruct": ("unsloth/Llama-3.2-3B-Instruct-GGUF", "Llama-3.2-3B-Instruct-Q4_K_M.gguf"),
    "meta-llama/Llama-3.2-3B-Instruct": ("unsloth/Llama-3.2-3B-Instruct-GGUF", "Llama-3.2-3B-Instruct-Q4_K_M.gguf"),
    "unsloth/Llama-3.2-1B-Instruct": ("unsloth/Llama-3.2-1B-Instruct-GGUF", "Llama-3.2-1B-Instruct-Q4_K_M.gguf"),
    "meta-llama/Llama-3.2-1B-Instruct": ("unsloth/Llama-3.2-1B-Instruct-GGUF", "Llama-3.2-1B-Instruct-Q4_K_M.gguf"),
}
_HUB_FILE = re.compile(r"^(?P<repo>[\w.-]+/[\w.-]+)(?::|/)(?P<file>[^:]+\.gguf)$")


def known_gguf(base_model: str | None) -> tuple[str, str] | None:
    """The (repo, file) of the default GGUF for ``base_model``, if there is one."""
    return KNOWN_GGUF.get(base_model or "")


def cache_dir() -> Path:
    root = os.environ.get("TUTOR_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "llama-tutor")
    return Path(root)


def resolve_gguf(gguf: str | None, base_model: str | None) -> Path:
    """A local GGUF path from ``--gguf`` (a file, or ``owner/repo:file.gguf`` on the hub), or the
    known Q4_K_M GGUF of ``base_model``; downloads through the Hugging Face cache."""
    if not gguf:
        known = known_gguf(base_model)
        if known is None:
            raise BackendError(f"no GGUF given and none is known for base model {base_model!r}: pass --gguf "
                               "(a .gguf file, or owner/repo:file.gguf on the hub), e.g. one written by "
                               "python -m training export --adapter DIR --gguf OUT.gguf")
        return _download(*known)
    match = _HUB_FILE.match(gguf)
    local = Path(gguf).expanduser()
    if local.exists() or looks_like_path(gguf) or match is None:
        return check_gguf(local)
    return _download(match["repo"], match["file"])


def _download(repo: str, filename: str) -> Path:
    from huggingface_hub import hf_hub_download

    logger.info("fetching %s from %s (cached after the first time)", filename, repo)
    try:
        return check_gguf(Path(hf_hub_download(repo, filename)))
    except BackendError:
        raise
    except Exception as exc:  # network, 404, offline mode: one line with the fix
        raise hub_error("GGUF", f"{repo}:{filename}", "--gguf", exc, download=f"hf download {repo} {filename}",
                        local="file") from None


def check_gguf(path: Path) -> Path:
    """``path`` if it is a readable GGUF file; a one-line BackendError otherwise."""
    if path.is_dir():
        found = sorted(path.glob("*.gguf"))
        if len(found) != 1:
            raise BackendError(f"--gguf {str(path)!r} is a folder with {len(found)} .gguf files: pass one file")
        path = found[0]
    if not path.is_file():
        raise BackendError(f"GGUF file {str(path)!r} not found: pass an existing .gguf file or owner/repo:file.gguf "
                           "from the hub with --gguf")
    with path.open("rb") as f:
        magic = f.read(4)
    if magic != GGUF_MAGIC:
        raise BackendError(f"{str(path)!r} is not a GGUF file (it starts with {magic!r}, not b'GGUF'): pass a .gguf "
                           "model, e.g. one written by python -m training export --gguf")
    return path


def llama_cpp_source() -> Path | None:
    """llama.cpp's scripts: ``LLAMA_CPP_DIR`` or the llama-cpp-python source unpacked into the venv."""
    candidates = [os.environ["LLAMA_CPP_DIR"]] if os.environ.get("LLAMA_CPP_DIR") else \
        sorted(glob.glob(os.path.join(sys.prefix, "src", "llama_cpp_python-*", "")), reverse=True)
    for root in map(Path, candidates):
        for folder in (root, root / "vendor" / "llama.cpp"):
            if (folder / "convert_lora_to_gguf.py").is_file():
                return folder
    return None


def _fingerprint(adapter: Path) -> str:
    digest = hashlib.sha256()
    for name in ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin"):
        if (adapter / name).is_file():
            digest.update((adapter / name).read_bytes())
    return digest.hexdigest()[:16]


def adapter_to_gguf(adapter: str, base_config_dir: str | None = None) -> Path:
    """A GGUF LoRA for ``adapter`` (a ``.gguf`` LoRA, a PEFT folder or a hub id of one).

    PEFT folders are converted once with ``convert_lora_to_gguf.py`` (f16) and cached by content under
    ``cache_dir()``. The converter needs the base model's ``config.json``: from ``base_config_dir``, or
    the hub id recorded in the adapter (it fetches only the config).
    """
    path = Path(adapter).expanduser()
    if path.suffix == ".gguf":
        return check_gguf(path)
    if not path.exists() and not looks_like_path(adapter):
        path = _snapshot(adapter)
    if not (path / "adapter_config.json").is_file():
        raise BackendError(f"adapter {adapter!r} has no adapter_config.json: pass a PEFT adapter folder (training's "
                           "output_dir) or a GGUF LoRA (.gguf)")
    target = cache_dir() / "lora" / f"{_fingerprint(path)}-f16.gguf"
    if target.is_file():
        return target
    bad = adapter_nonfinite_tensors(path)
    if bad:
        raise diverged_adapter_error(adapter, bad)
    source = llama_cpp_source()
    if source is None:
        raise BackendError("a PEFT adapter needs llama.cpp's convert_lora_to_gguf.py to run on the llamacpp backend: "
                           "set LLAMA_CPP_DIR to a llama.cpp checkout (or run `make app`, which unpacks it), or serve "
                           "a merged GGUF: python -m training export --adapter DIR --gguf tutor.gguf, then --gguf tutor.gguf")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    command = [sys.executable, str(source / "convert_lora_to_gguf.py"), str(path), "--outfile", str(partial),
               "--outtype", "f16"]
    if base_config_dir:
        command += ["--base", str(Path(base_config_dir).expanduser())]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(source / "gguf-py"),
                                                                     os.environ.get("PYTHONPATH")]))}
    logger.info("converting adapter %s to a GGUF LoRA (once; cached in %s)", adapter, target.parent)
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not partial.is_file():
        lines = (done.stderr or done.stdout).strip().splitlines()
        reason = lines[-1][:300] if lines else f"exit status {done.returncode}"
        base = read_adapter_base(str(path))
        raise BackendError(f"could not convert adapter {adapter!r} to a GGUF LoRA: {reason}"
                           f"{f' (its base model is {base!r}; pass --base-model as a local folder if the hub is unreachable)' if base else ''}")
    partial.replace(target)
    return target


def _snapshot(repo: str) -> Path:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo, allow_patterns=["adapter_config.json", "adapter_model.*"]))
    except Exception as exc:
        raise hub_error("adapter", repo, "--adapter", exc) from None


def gguf_metadata_summary(metadata: dict[str, str]) -> str:
    """``name, file type`` for the description line, from a model's GGUF metadata."""
    name = metadata.get("general.name") or metadata.get("general.basename") or "model"
    ftype = metadata.get("general.file_type")
    types = {"0": "f32", "1": "f16", "7": "q8_0", "15": "q4_k_m", "17": "q5_k_m", "18": "q6_k", "32": "bf16"}
    return f"{name}, {types.get(str(ftype), f'type {ftype}')}" if ftype is not None else name


def adapter_base_from(adapter: str) -> str | None:
    """The base model a PEFT adapter names (None for a GGUF LoRA or an unreadable config)."""
    path = Path(adapter).expanduser()
    try:
        return read_adapter_base(str(path)) if path.is_dir() else None
    except (OSError, json.JSONDecodeError):
        return None


# -- reading tensor shapes from a GGUF header (standard library only) -----------------------------
# GGUF v2/v3 layout: magic, version u32, tensor count u64, metadata count u64, metadata key/value pairs,
# then per tensor: name, n_dims u32, dims u64 each (innermost first), type u32, offset u64.
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9


class _Reader:
    def __init__(self, f) -> None:
        self.f = f

    def take(self, fmt: str):
        import struct

        size = struct.calcsize("<" + fmt)
        data = self.f.read(size)
        if len(data) != size:
            raise ValueError("file ends inside its header")
        return struct.unpack("<" + fmt, data)[0]

    def string(self) -> str:
        length = self.take("Q")
        if length > 1 << 24:
            raise ValueError("implausible string length")
        return self.f.read(length).decode("utf-8", "replace")

    def skip_value(self, kind: int) -> None:
        if kind in _SCALARS:
            self.take(_SCALARS[kind])
        elif kind == _STRING:
            self.string()
        elif kind == _ARRAY:
            item, count = self.take("I"), self.take("Q")
            if item in _SCALARS:
                import struct

                self.f.seek(struct.calcsize("<" + _SCALARS[item]) * count, 1)
            else:
                for _ in range(count):
                    self.skip_value(item)
        else:
            raise ValueError(f"unknown metadata type {kind}")


def tensor_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape (innermost dimension first, as ggml stores it) from a GGUF file's header."""
    with Path(path).open("rb") as f:
        reader = _Reader(f)
        if f.read(4) != GGUF_MAGIC:
            raise ValueError("not a GGUF file")
        reader.take("I")
        n_tensors, n_kv = reader.take("Q"), reader.take("Q")
        for _ in range(n_kv):
            reader.string()
            reader.skip_value(reader.take("I"))
        shapes = {}
        for _ in range(n_tensors):
            name = reader.string()
            dims = tuple(reader.take("Q") for _ in range(reader.take("I")))
            reader.take("I"), reader.take("Q")
            shapes[name] = dims
        return shapes


def lora_mismatch(model: Path, lora: Path) -> str | None:
    """Why the GGUF LoRA ``lora`` cannot apply to ``model`` (llama.cpp would crash on it), or None.

    Each ``X.lora_a`` must read X's input (same innermost size) and each ``X.lora_b`` write X's output.
    """
    try:
        base, adapter = tensor_shapes(model), tensor_shapes(lora)
    except (OSError, ValueError) as exc:
        return f"could not read the GGUF headers ({exc})"
    for name, shape in adapter.items():
        target, _, part = name.rpartition(".lora_")
        if part not in ("a", "b"):
            continue
        if target not in base:
            return f"it changes {target}, which the model does not have"
        wanted = base[target][0] if part == "a" else base[target][1]
        have = shape[0] if part == "a" else shape[1]
        if have != wanted:
            return f"{target} is {base[target][0]}x{base[target][1]} in the model, the adapter expects size {have}"
    return None

"""Loading a base model (hub id or local dir), its tokenizer and a LoRA adapter, with errors a user can act on."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inference.backend import BackendError

logger = logging.getLogger(__name__)

DEFAULT_BASE_MODEL = "unsloth/Llama-3.2-3B-Instruct"
QUANTIZATIONS = ("auto", "4bit", "none")
# Llama 3 pads with this reserved token (Unsloth and Meta do the same); eos would end training examples.
LLAMA3_PAD = "<|finetune_right_pad_id|>"
STOP_TOKENS = ("<|eot_id|>", "<|end_of_text|>", "<|eom_id|>")


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    device: str
    quantization: str  # "4bit" or "none" after resolving "auto"
    dtype: str
    adapter_merged: bool


def looks_like_path(name: str) -> bool:
    """A hub id is ``owner/name``; anything else that names a file system location is a path."""
    return (name.startswith(("/", ".", "~")) or os.sep + os.sep in name or name.count("/") > 1
            or os.path.exists(name) or name.endswith(os.sep))


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BackendError(f"--device {device} was asked for but no CUDA GPU is visible; use --device cpu")
    return device


def estimate_params(config: Any) -> int:
    """Parameter count of a Llama-style decoder from its config (for memory decisions)."""
    h, inter, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    head_dim = getattr(config, "head_dim", None) or h // config.num_attention_heads
    kv = config.num_key_value_heads * head_dim
    embed = config.vocab_size * h * (1 if getattr(config, "tie_word_embeddings", False) else 2)
    return embed + layers * (2 * h * h + 2 * h * kv + 3 * h * inter)


def resolve_quantization(quantization: str, device: str, config: Any) -> str:
    """``auto``: 16-bit with the adapter merged where it fits (fastest decode), NF4 4-bit where it does not.

    Measured on an H200 with Llama-3.2-3B (bench/results): bf16 decodes faster than NF4, and merging the
    adapter removes the LoRA matmuls that make unmerged decoding slowest.
    """
    if quantization not in QUANTIZATIONS:
        raise BackendError(f"--quantization must be one of {', '.join(QUANTIZATIONS)}, got {quantization!r}")
    if quantization != "auto":
        return quantization
    if not device.startswith("cuda"):
        return "none"
    import torch

    try:
        free, _total = torch.cuda.mem_get_info()
    except RuntimeError:  # e.g. ZeroGPU, where the GPU is attached only inside @spaces.GPU calls
        logger.info("quantization auto -> none (GPU memory cannot be read before a GPU call)")
        return "none"
    need = estimate_params(config) * 2 * 1.2 + 2 * 2**30  # weights + KV cache / activations headroom
    choice = "none" if need < free else "4bit"
    logger.info("quantization auto -> %s (16-bit needs ~%.1f GiB, %.1f GiB free)", choice,
                need / 2**30, free / 2**30)
    return choice


def nf4_config(compute_dtype: Any) -> Any:
    """The 4-bit NF4 settings (QLoRA's: double quantization) for training and serving alike."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute_dtype)


def hub_error(what: str, name: str, flag: str, exc: BaseException, download: str | None = None,
              local: str = "directory") -> BackendError:
    """The one message for "not local, not cached, and the hub did not give it" (every loader uses it)."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
    return BackendError(
        f"Could not load {what} {name!r}: it is not a local {local}, not in the Hugging Face cache, "
        f"and the hub {'is disabled (HF_HUB_OFFLINE=1)' if offline else 'could not provide it'} ({reason[:200]}). "
        f"Download it where the hub is reachable (`{download or f'hf download {name}'}`) or pass a local {local} "
        f"with {flag}."
    )


def _check_local_dir(what: str, path: str, flag: str, marker: str) -> None:
    p = Path(path).expanduser()
    if not p.exists():
        raise BackendError(f"{what} {path!r} not found: no such directory. Pass an existing directory "
                           f"(one that holds {marker}) or a hub id like owner/name with {flag}.")
    if not (p / marker).is_file():
        hint = (" A merged model goes in --base-model, not --adapter." if marker == "adapter_config.json"
                else "")
        raise BackendError(f"{what} {path!r} has no {marker}: it is not a {what} folder.{hint}")


def load_config(base_model: str) -> Any:
    from transformers import AutoConfig

    if looks_like_path(base_model):
        _check_local_dir("base model", base_model, "--base-model", "config.json")
    try:
        return AutoConfig.from_pretrained(os.path.expanduser(base_model))
    except OSError as exc:
        raise hub_error("base model", base_model, "--base-model", exc) from None


def load_tokenizer(base_model: str, adapter: str | None, require_chat_template: bool = True) -> Any:
    """The adapter's tokenizer when training saved one there (it may carry a new template), else the base's."""
    from transformers import AutoTokenizer

    source = base_model
    if adapter and Path(adapter).expanduser().joinpath("tokenizer_config.json").is_file():
        source = adapter
    try:
        tokenizer = AutoTokenizer.from_pretrained(os.path.expanduser(source))
    except OSError as exc:
        raise hub_error("tokenizer of", source, "--base-model", exc) from None
    if tokenizer.pad_token is None:
        vocab = tokenizer.get_vocab()
        tokenizer.pad_token = LLAMA3_PAD if LLAMA3_PAD in vocab else tokenizer.eos_token
    if require_chat_template and not tokenizer.chat_template:
        raise BackendError(f"The tokenizer of {source!r} has no chat template: use an Instruct model "
                           "(e.g. unsloth/Llama-3.2-3B-Instruct) or an adapter folder saved by training.")
    return tokenizer


def stop_token_ids(tokenizer: Any, model: Any) -> list[int]:
    """Every id that ends an assistant turn: the tokenizer's eos, the model's eos list, Llama 3's eot."""
    ids: list[int] = []
    eos = getattr(model.generation_config, "eos_token_id", None)
    for value in ([eos] if isinstance(eos, int) else list(eos or [])) + [tokenizer.eos_token_id]:
        if value is not None and value not in ids:
            ids.append(value)
    vocab = tokenizer.get_vocab()
    ids += [vocab[t] for t in STOP_TOKENS if t in vocab and vocab[t] not in ids]
    return ids


ADAPTER_FILES = ("adapter_model.safetensors", "adapter_model.bin")


def nonfinite_tensors(named: Any) -> list[str]:
    """Names of the tensors in ``named`` ((name, tensor) pairs) that hold a NaN or an infinity."""
    import torch

    return [name for name, tensor in named if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())]


def adapter_nonfinite_tensors(adapter_dir: str | Path) -> list[str]:
    """Names of the tensors of a saved adapter folder that hold a NaN or an infinity (read one by one,
    without loading a model); [] when the folder has no weights file."""
    folder = Path(adapter_dir).expanduser()
    safetensors_file, bin_file = (folder / name for name in ADAPTER_FILES)
    if safetensors_file.is_file():
        from safetensors import safe_open

        with safe_open(str(safetensors_file), framework="pt") as f:
            return nonfinite_tensors((name, f.get_tensor(name)) for name in f.keys())
    if bin_file.is_file():
        import torch

        return nonfinite_tensors(torch.load(bin_file, map_location="cpu", weights_only=True).items())
    return []


def diverged_adapter_error(adapter: str, bad: list[str]) -> BackendError:
    return BackendError(f"Adapter {adapter!r} holds NaN or infinite weights in {len(bad)} of its tensors "
                        f"(e.g. {bad[0]}): its training diverged; train it again with a lower --learning_rate")


def read_adapter_base(adapter: str) -> str | None:
    path = Path(adapter).expanduser() / "adapter_config.json"
    if path.is_file():
        return json.loads(path.read_text()).get("base_model_name_or_path")
    return None


def avoid_cudnn_attention() -> None:
    """Keep SDPA off its cuDNN kernel (process-wide); generation and training call it on CUDA.

    On an H200 with torch 2.11, SDPA picks cuDNN, which builds a plan for every new sequence length:
    ~100 ms the first time a length is seen, 0.5-0.8 ms after (bench/results/sdpa_length_probe-*.json).
    Decoding sees a new KV length at every step, so a first long reply ran at 18 tok/s instead of ~50;
    training on conversations of mixed lengths ran 1.14-1.18x faster without it, and no slower on fixed
    lengths (bench/results/train_throughput-*.json). The flash and memory-efficient kernels have no
    per-length cost.
    """
    import torch

    torch.backends.cuda.enable_cudnn_sdp(False)


def _dtype_for(device: str):
    import torch

    if not device.startswith("cuda"):
        return torch.float32  # full precision on CPU: bf16 matmuls are slow there and fp16 unsupported
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _oom_error(what: str, name: str, quantization: str) -> BackendError:
    import torch

    torch.cuda.empty_cache()
    hint = ("use --quantization 4bit (NF4 needs about a third of the memory)" if quantization != "4bit"
            else "free the GPU (other processes?) or use a smaller model")
    return BackendError(f"CUDA out of memory while {what} {name!r}; {hint}.")


def load_model(base_model: str, adapter: str | None = None, quantization: str = "auto",
               device: str = "auto", merge_adapter: bool | None = None,
               require_chat_template: bool = True) -> LoadedModel:
    """Load base model + tokenizer (+ LoRA adapter), mapping every failure to a one-line BackendError.

    ``require_chat_template=False`` admits base (non-Instruct) models, e.g. for log-likelihood scoring.
    """
    import torch
    from transformers import AutoModelForCausalLM

    device = resolve_device(device)
    config = load_config(base_model)
    if adapter and looks_like_path(adapter):
        _check_local_dir("adapter", adapter, "--adapter", "adapter_config.json")
    quantization = resolve_quantization(quantization, device, config)
    dtype = _dtype_for(device)
    kwargs: dict[str, Any] = {"dtype": dtype, "device_map": device}
    if quantization == "4bit":
        kwargs["quantization_config"] = nf4_config(dtype if device.startswith("cuda") else torch.float32)
    try:
        model = AutoModelForCausalLM.from_pretrained(os.path.expanduser(base_model), **kwargs)
    except torch.OutOfMemoryError:
        raise _oom_error("loading", base_model, quantization) from None
    except OSError as exc:
        raise hub_error("base model", base_model, "--base-model", exc) from None
    tokenizer = load_tokenizer(base_model, adapter, require_chat_template)
    embeddings = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > embeddings:
        raise BackendError(f"The tokenizer has {len(tokenizer)} tokens but {base_model!r} embeds only "
                           f"{embeddings}: the adapter/tokenizer was made for a different base model.")
    merged = False
    if adapter:
        model = _attach_adapter(model, base_model, adapter, quantization)
        merged = quantization != "4bit" if merge_adapter is None else merge_adapter
        if merged:
            model = model.merge_and_unload()
    model.eval()
    logger.info("loaded %s%s on %s (%s, %s)", base_model, f" + {adapter}" if adapter else "", device,
                "nf4" if quantization == "4bit" else str(dtype).removeprefix("torch."),
                "adapter merged" if merged else "adapter unmerged" if adapter else "no adapter")
    return LoadedModel(model, tokenizer, device, quantization,
                       str(dtype).removeprefix("torch."), merged)


def _attach_adapter(model: Any, base_model: str, adapter: str, quantization: str) -> Any:
    import torch
    from peft import PeftModel

    try:
        peft_model = PeftModel.from_pretrained(model, os.path.expanduser(adapter))
    except torch.OutOfMemoryError:
        raise _oom_error("loading adapter", adapter, quantization) from None
    except (RuntimeError, ValueError, KeyError) as exc:
        trained_on = read_adapter_base(adapter)
        detail = next((line.strip() for line in str(exc).splitlines()
                       if "size mismatch" in line or "not found" in line), str(exc).splitlines()[0])
        raise BackendError(
            f"Adapter {adapter!r} does not fit base model {base_model!r}"
            f"{f' (it was trained on {trained_on!r})' if trained_on else ''}: {detail[:300]}. "
            "Load it with the base model it was made for.") from None
    except OSError as exc:
        raise hub_error("adapter", adapter, "--adapter", exc) from None
    # Before merging: a merge would spread the NaN into the base weights and the model would print "!!!!".
    bad = nonfinite_tensors((name, p.detach()) for name, p in peft_model.named_parameters() if "lora_" in name)
    if bad:
        raise diverged_adapter_error(adapter, bad)
    return peft_model

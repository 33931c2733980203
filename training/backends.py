"""Where and how a run trains: Unsloth on a CUDA GPU, or transformers + peft (+ bitsandbytes) anywhere.

``resolve_runtime`` decides once (backend, device, 4-bit, precision, gradient checkpointing, optimiser)
and, for Unsloth, imports it before anything imports transformers/trl/peft: it patches them
process-wide and only fully when it comes first. ``import unsloth`` raises on a machine without a GPU,
so it happens only here, never at module import time.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass
from typing import Any

from training.config import Settings
from training.errors import TrainingError

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    backend: str  # "unsloth" | "transformers"
    device: str  # "cuda" | "cpu"
    world_size: int
    local_rank: int
    load_in_4bit: bool
    bf16: bool
    fp16: bool
    gradient_checkpointing: bool
    optim: str
    offload_checkpoints: bool = False

    @property
    def cuda(self) -> bool:
        return self.device == "cuda"


def _world() -> tuple[int, int]:
    return int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("LOCAL_RANK", "0"))


def choose_backend(requested: str, cuda: bool, world_size: int) -> str:
    """``auto`` -> unsloth on one CUDA process when it is installed, else transformers."""
    installed = importlib.util.find_spec("unsloth") is not None
    if requested == "auto":
        return "unsloth" if cuda and installed and world_size == 1 else "transformers"
    if requested == "unsloth":
        if not cuda:
            raise TrainingError("--backend unsloth needs a CUDA GPU; use --backend transformers (or auto) here")
        if not installed:
            raise TrainingError("--backend unsloth: unsloth is not installed; pip install -r requirements-unsloth.txt "
                                "or use --backend transformers")
        if world_size > 1:
            raise TrainingError("--backend unsloth runs on one GPU; for several GPUs use --backend transformers "
                                "under accelerate launch")
    return requested


def resolve_runtime(config: Settings) -> Runtime:
    import torch

    cuda = torch.cuda.is_available()
    world_size, local_rank = _world()
    backend = choose_backend(config.backend, cuda, world_size)
    if backend == "unsloth":
        import unsloth  # noqa: F401  -- must precede transformers/trl/peft imports (see module docstring)
    if cuda and not config.cudnn_attention:
        from inference.loading import avoid_cudnn_attention

        avoid_cudnn_attention()
    bf16_ok = cuda and torch.cuda.is_bf16_supported()
    bf16 = bf16_ok if config.bf16 is None else config.bf16
    if bf16 and not bf16_ok:
        raise TrainingError("--bf16 true needs a GPU with bfloat16 support; use --bf16 false")
    optim = config.optim
    if "8bit" in optim and not cuda:
        logger.warning("--optim %s needs CUDA; using adamw_torch on CPU", optim)
        optim = "adamw_torch"
    runtime = Runtime(
        backend=backend, device="cuda" if cuda else "cpu", world_size=world_size, local_rank=local_rank,
        load_in_4bit=cuda if config.load_in_4bit is None else config.load_in_4bit,
        bf16=bf16, fp16=cuda and not bf16,
        gradient_checkpointing=cuda if config.gradient_checkpointing is None else config.gradient_checkpointing,
        optim=optim, offload_checkpoints=backend == "unsloth" and config.offload_checkpoints)
    if cuda and world_size == 1:
        logger.info("one process trains on one GPU (CUDA_VISIBLE_DEVICES=%s); for data-parallel training on "
                    "several: accelerate launch --multi_gpu --num_processes N -m training sft ...",
                    os.environ.get("CUDA_VISIBLE_DEVICES", "all"))
    logger.info("backend %s on %s (world size %d): %s, %s precision, gradient checkpointing %s, optim %s",
                backend, runtime.device, world_size, "4-bit NF4 base" if runtime.load_in_4bit else "16/32-bit base",
                "bf16" if bf16 else "fp16" if runtime.fp16 else "fp32", runtime.gradient_checkpointing, optim)
    return runtime


def _model_error(name: str, exc: BaseException) -> TrainingError:
    from inference.loading import hub_error, looks_like_path

    if looks_like_path(name) and not os.path.exists(os.path.expanduser(name)):
        return TrainingError(f"model directory {name!r} not found: pass a hub id (owner/name) or an existing "
                             "model directory with --model")
    local = os.path.expanduser(name)
    if os.path.isdir(local) and not os.path.isfile(os.path.join(local, "config.json")):
        return TrainingError(f"{name!r} is not a model directory (no config.json): pass a folder saved with "
                             "save_pretrained, or a hub id, with --model")
    return TrainingError(str(hub_error("model", name, "--model", exc)))


def load_tokenizer(name: str) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(os.path.expanduser(name))
    except (OSError, ValueError) as exc:
        raise _model_error(name, exc) from None


def load_transformers_model(config: Settings, runtime: Runtime) -> Any:
    """Base model (NF4 on request) on this process's device; TRL adds the LoRA (``lora_config``)."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16 if runtime.bf16 else torch.float16 if runtime.fp16 else torch.float32
    kwargs: dict[str, Any] = {"dtype": dtype}
    if runtime.cuda:
        # One full copy per process: never device_map="auto", which would shard it across the GPUs that
        # the other data-parallel ranks are using.
        kwargs["device_map"] = {"": runtime.local_rank}
    if runtime.load_in_4bit:
        from inference.loading import nf4_config

        kwargs["quantization_config"] = nf4_config(dtype)
    try:
        model = AutoModelForCausalLM.from_pretrained(os.path.expanduser(config.model), **kwargs)
    except (OSError, ValueError) as exc:
        raise _model_error(config.model, exc) from None
    return model


def lora_config(config: Settings) -> Any:
    """The adapter TRL puts on the transformers path (it also keeps QLoRA adapters in bf16, as the paper does)."""
    from peft import LoraConfig

    return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=list(config.lora_target_modules), bias="none", task_type="CAUSAL_LM")


def unsloth_checkpointing(runtime: Runtime) -> bool | str:
    """Unsloth's ``use_gradient_checkpointing``: "unsloth" (saved activations offloaded to CPU memory), True, False.

    H200, batch 8 x 1024 (bench/results/train_throughput-{cudnn-on,gpu-ckpt,nogc}-*.json): offloaded 3.5 GiB
    and on the GPU 4.6 GiB at about the same speed (20.8k and 21.2k tok/s); none 20.4 GiB at 29.2k tok/s.
    """
    if not runtime.gradient_checkpointing:
        return False
    return "unsloth" if runtime.offload_checkpoints else True


def load_unsloth_model(config: Settings, runtime: Runtime, adapter: str | None = None) -> tuple[Any, Any]:
    """Unsloth's fast path, as in its Llama 3.2 conversational notebook. With ``adapter`` (a LoRA folder of
    ``config.model``), Unsloth loads base + adapter, trainable, instead of a new LoRA."""
    from unsloth import FastLanguageModel

    name = adapter or config.model
    try:
        model, tokenizer = FastLanguageModel.from_pretrained(
            model_name=os.path.expanduser(name), max_seq_length=config.token_limit, dtype=None,
            load_in_4bit=runtime.load_in_4bit)
    except (OSError, ValueError) as exc:
        raise _model_error(name, exc) from None
    if adapter:
        return model, tokenizer
    model = FastLanguageModel.get_peft_model(
        model, r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
        target_modules=list(config.lora_target_modules), bias="none",
        use_gradient_checkpointing=unsloth_checkpointing(runtime),
        random_state=config.seed)
    return model, tokenizer


def check_adapter_base(adapter: str, model: str) -> None:
    """A starting adapter must have been trained on ``--model``: a LoRA only fits the base it was made for."""
    from inference.loading import read_adapter_base

    path = os.path.expanduser(adapter)
    if not os.path.isfile(os.path.join(path, "adapter_config.json")):
        raise TrainingError(f"--adapter {adapter!r} is not a LoRA adapter folder (no adapter_config.json): pass the "
                            "output_dir of a training run, e.g. the SFT tutor's")
    base = read_adapter_base(path)
    if base and os.path.expanduser(base) != os.path.expanduser(model) and \
            os.path.realpath(os.path.expanduser(base)) != os.path.realpath(os.path.expanduser(model)):
        raise TrainingError(f"--adapter {adapter!r} was trained on {base!r}, not on --model {model!r}: pass "
                            f"--model {base}")


def attach_adapter(model: Any, adapter: str) -> Any:
    """The base ``model`` with a saved LoRA adapter on it, trainable (DPO on top of an SFT adapter)."""
    from peft import PeftModel

    from training.finite import check_adapter_file

    check_adapter_file(adapter)
    try:
        return PeftModel.from_pretrained(model, os.path.expanduser(adapter), is_trainable=True)
    except (RuntimeError, ValueError, KeyError) as exc:
        detail = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line),
                      str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise TrainingError(f"--adapter {adapter!r} does not fit --model: {detail[:200]}") from None

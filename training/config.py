"""Every setting of a training run, with its default and help text, grouped by what it is about.

A run's config is a flat dataclass built from groups, so ``config.lora_r`` and ``--lora_r`` read the same
for every method:

- ``ModelSettings``: the base model, the backend, 4-bit loading, the chat template;
- ``LoraSettings``: the adapter;
- the data settings of the method: ``SFTDataSettings`` (conversations) or ``PreferenceDataSettings`` (pairs);
- the method's own settings: ``DPOSettings`` (beta, loss type, length limits, a starting adapter);
- ``TrainingSettings``: optimiser, schedule, precision, checkpoints and logging, shared by every method.

``TrainConfig`` (``python -m training sft``) and ``DPOTrainConfig`` (``python -m training dpo``) are those
groups put together. Defaults live here; a YAML recipe (``--config``) overrides them; command-line flags
override both (``training/args.py``). Field names are the Hugging Face / TRL ones (``learning_rate``,
``per_device_train_batch_size``, ``beta``, ``max_length``) so habits carry over; ``training/trainer.py``
copies every field that TRL's config has under the same name (``trl_arguments``).
"""

from __future__ import annotations

import math
import os
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from training.errors import TrainingError

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
DATASET_FORMATS = ("auto", "sharegpt", "alpaca", "guanaco", "messages", "mcq-csv")
PREFERENCE_FORMATS = ("auto", "pairs", "conversational", "hh-rlhf", "sharegpt", "feedback")
# TRL 1.15's DPOConfig.loss_type values (trl/trainer/dpo_config.py).
DPO_LOSS_TYPES = ("sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot",
                  "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm")
REPORT_TARGETS = ("tensorboard", "wandb", "none")


def _f(default: Any, help: str, **kwargs: Any) -> Any:
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help, **kwargs})
    return field(default=default, metadata={"help": help, **kwargs})


def _at_least_one(config: Any, *names: str) -> None:
    for name in names:
        if getattr(config, name) < 1:
            raise TrainingError(f"--{name} must be at least 1, got {getattr(config, name)}")


def _at_least_one_when_given(config: Any, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        if value is not None and value < 1:
            raise TrainingError(f"--{name} must be at least 1 when given, got {value}")


@dataclass
class Settings:
    """Base of every group: validation on construction, finite floats, the flat dict for metrics.json."""

    GROUP = "settings"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Reject impossible settings before any model or data is loaded, naming the flag to fix.

        Each group checks its own fields in ``check``; they run base groups first."""
        self._validate_finite()
        for cls in reversed(type(self).__mro__):
            check = cls.__dict__.get("check")
            if check is not None:
                check(self)

    def _validate_finite(self) -> None:
        """NaN or infinity in any float setting (a learning rate of inf trained to all-NaN weights)."""
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                example = f" such as the default {f.default}" if f.default is not MISSING and f.default else ""
                raise TrainingError(f"--{f.name} must be a finite number, got {value}: pass an ordinary value{example}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def groups(cls) -> list[type]:
        """The settings groups this config is made of, in the order their fields appear."""
        return [c for c in reversed(cls.__mro__) if isinstance(c, type) and issubclass(c, Settings)
                and "GROUP" in c.__dict__ and c is not Settings]


@dataclass
class ModelSettings(Settings):
    """The base model and how it is loaded."""

    GROUP = "model"

    model: str = _f("unsloth/Llama-3.2-3B-Instruct", "base model: hub id or local directory")
    backend: Literal["auto", "unsloth", "transformers"] = _f(
        "auto", "auto: Unsloth on a CUDA GPU when it is installed (single process), else transformers+peft")
    load_in_4bit: bool | None = _f(
        None, "QLoRA: load the base in 4-bit NF4 (bitsandbytes). Default: yes on CUDA, no on CPU (fp32)")
    chat_template: Literal["auto", "llama-3.1", "llama-2", "model"] = _f(
        "auto", "auto: llama-3.1 for Llama 3 tokenizers, else the model's own template; llama-3.1: the "
        "Llama 3.1/3.2 Instruct template; llama-2: [INST] ... [/INST]; model: the tokenizer's own template")

    def check(self) -> None:
        if not self.model.strip():
            raise TrainingError("--model is empty: pass a hub id (owner/name) or a local model directory")


@dataclass
class LoraSettings(Settings):
    """The LoRA adapter that is trained."""

    GROUP = "LoRA"

    lora_r: int = _f(16, "LoRA rank")
    lora_alpha: int = _f(16, "LoRA scaling numerator (the update is scaled by alpha / r)")
    lora_dropout: float = _f(0.0, "dropout on the LoRA input (0 lets Unsloth use its fast path)")
    lora_target_modules: list[str] = _f(LORA_TARGETS, "modules that get LoRA adapters")

    def check(self) -> None:
        _at_least_one(self, "lora_r", "lora_alpha")
        if not 0 <= self.lora_dropout < 1:
            raise TrainingError(f"--lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if not self.lora_target_modules:
            raise TrainingError("--lora_target_modules needs at least one module name, e.g. q_proj v_proj")


@dataclass
class DataSettings(Settings):
    """Where the examples come from and which of them are used (shared by every method)."""

    GROUP = "data"
    DATASET_HINT = "pass a hub dataset id or a local .json/.jsonl/.csv/.parquet file"

    dataset: str = _f("", "hub dataset id, or a local .json/.jsonl/.csv/.parquet file")
    dataset_format: str = _f("auto", "row layout; auto detects it from the columns of the first rows")
    dataset_split: str = _f("train", "split to read from a hub dataset")
    max_samples: int | None = _f(None, "use only the first N valid examples (quick runs)")
    eval_dataset: str | None = _f(None, "a separate evaluation file or hub id (same format as --dataset)")
    eval_dataset_split: str = _f("test", "split to read when --eval_dataset is a hub dataset")
    eval_split: float = _f(0.0, "fraction of the training rows held out for evaluation (0 = none)")
    overlong: Literal["truncate", "drop"] = _f(
        "truncate", "examples longer than the length limit (max_seq_length for sft, max_length for dpo): truncate "
        "(keep the start) or drop; both are counted")
    dataset_num_proc: int | None = _f(None, "processes for tokenising the dataset")

    def check(self) -> None:
        if not 0 <= self.eval_split < 1:
            raise TrainingError(f"--eval_split is a fraction in [0, 1), got {self.eval_split}")
        _at_least_one_when_given(self, "max_samples", "dataset_num_proc")
        if not self.dataset.strip():
            raise TrainingError(f"--dataset is empty: {self.DATASET_HINT}")


@dataclass
class SFTDataSettings(DataSettings):
    """Conversations for supervised fine-tuning."""

    GROUP = "data"

    dataset: str = _f("mlabonne/FineTome-100k", "hub dataset id, or a local .json/.jsonl/.csv/.parquet file")
    dataset_format: Literal["auto", "sharegpt", "alpaca", "guanaco", "messages", "mcq-csv"] = _f(
        "auto", "row layout; auto detects it from the columns of the first rows")
    answers_file: str | None = _f(
        None, "mcq-csv only: a CSV of answers (index column + 'answer', 0-based or A-D) joined to the "
        "questions by their index column, e.g. LR1_dev_answer.csv for LR1_dev.csv")
    max_seq_length: int = _f(2048, "maximum tokens per example (prompt + answer)")
    padding_free: bool | None = _f(
        None, "flatten each batch into one row without pad tokens (TRL's padding_free). Default: Unsloth decides "
        "(padding-free on H100/H200), transformers pads. false = padded batches through Unsloth's compiled layers "
        "(H200, Llama-3.2-3B, FineTome-like length mix: 1.3x the tokens/s at a 1024-token cap; at 2048 as fast as "
        "padding-free, with 1.5 GiB more memory). true on transformers needs --packing")
    packing: bool = _f(
        False, "pack several conversations into each max_seq_length row (TRL best-fit, padding-free): no padding "
        "and fewer optimiser steps per epoch (H200, Unsloth, FineTome-like length mix at 2048 tokens: 1.6x the "
        "tokens/s)")

    def check(self) -> None:
        _at_least_one(self, "max_seq_length")
        if self.dataset_format not in DATASET_FORMATS:
            raise TrainingError(f"--dataset_format must be one of {', '.join(DATASET_FORMATS)}, "
                                f"got {self.dataset_format!r}")
        if self.answers_file and self.dataset_format not in ("auto", "mcq-csv"):
            raise TrainingError(f"--answers_file only applies to --dataset_format mcq-csv, not {self.dataset_format}")


@dataclass
class PreferenceDataSettings(DataSettings):
    """Preference pairs: a prompt, a chosen and a rejected reply (training/preference.py reads them)."""

    GROUP = "data"
    DATASET_HINT = ("pass the app's feedback file (--dataset feedback.jsonl), a local preference "
                    ".json/.jsonl/.csv/.parquet file or a hub dataset id")

    dataset: str = _f(
        "", "the app's feedback file (--feedback-file of app.py), a local preference .json/.jsonl/.csv/.parquet "
        "file, or a hub dataset id")
    dataset_format: Literal["auto", "pairs", "conversational", "hh-rlhf", "sharegpt", "feedback"] = _f(
        "auto", "pairs: prompt/chosen/rejected; conversational: chosen/rejected message lists; hh-rlhf: Anthropic "
        "'\\n\\nHuman: ... \\n\\nAssistant: ...' transcripts; sharegpt: conversations + chosen/rejected turns "
        "(LLaMA-Factory); feedback: the app's ratings file; auto detects it from the first rows")

    def check(self) -> None:
        if self.dataset_format not in PREFERENCE_FORMATS:
            raise TrainingError(f"--dataset_format must be one of {', '.join(PREFERENCE_FORMATS)}, "
                                f"got {self.dataset_format!r}")


@dataclass
class DPOSettings(Settings):
    """Direct Preference Optimization (TRL's DPOConfig names)."""

    GROUP = "dpo"

    adapter: str | None = _f(
        None, "start from this LoRA adapter (e.g. the SFT tutor's output_dir) and keep training it; the reference "
        "model is then base + this adapter, and its LoRA settings replace the lora_* ones. Default: a new adapter "
        "on the base model, which is also the reference")
    beta: float = _f(
        0.1, "how far the policy may move from the reference: higher keeps it closer (TRL's default 0.1)")
    loss_type: str = _f("sigmoid", "DPO loss: sigmoid (the paper's), ipo, hinge, robust, ... (TRL's loss types)")
    max_length: int = _f(1024, "maximum tokens of prompt + reply; longer pairs follow --overlong")
    max_prompt_length: int = _f(
        512, "maximum prompt tokens: earlier turns of a longer conversation are left out (the system message and "
        "the last user turn are kept); a pair whose last question alone is longer is skipped and counted")

    def check(self) -> None:
        _at_least_one(self, "max_length", "max_prompt_length")
        if self.beta <= 0:
            raise TrainingError(f"--beta must be positive, got {self.beta}")
        if self.loss_type not in DPO_LOSS_TYPES:
            raise TrainingError(f"--loss_type must be one of {', '.join(DPO_LOSS_TYPES)}, got {self.loss_type!r}")
        if self.max_prompt_length >= self.max_length:
            raise TrainingError(f"--max_prompt_length ({self.max_prompt_length}) must be below --max_length "
                                f"({self.max_length}), to leave room for the reply")
        if self.adapter is not None and not self.adapter.strip():
            raise TrainingError("--adapter is empty: pass a LoRA adapter folder (with adapter_config.json) or leave "
                                "it out to start a new adapter")


@dataclass
class TrainingSettings(Settings):
    """Optimisation, precision, checkpoints and logging: the same for every method."""

    GROUP = "training"

    learning_rate: float = _f(2e-4, "peak learning rate")
    lr_scheduler_type: str = _f("linear", "learning-rate schedule after warmup (linear, cosine, constant, ...)")
    warmup_steps: int = _f(5, "linear warmup steps")
    weight_decay: float = _f(0.01, "AdamW weight decay")
    optim: str = _f("adamw_torch", "optimiser (adamw_torch, adamw_8bit, paged_adamw_8bit, ...)")
    max_grad_norm: float = _f(1.0, "gradient clipping norm")
    per_device_train_batch_size: int = _f(8, "sequences per GPU per forward pass")
    per_device_eval_batch_size: int = _f(8, "sequences per GPU per evaluation pass")
    gradient_accumulation_steps: int = _f(1, "forward passes per optimiser step")
    num_train_epochs: float = _f(1.0, "passes over the data (ignored when max_steps > 0)")
    max_steps: int = _f(-1, "optimiser steps to run; -1 = run num_train_epochs")
    eval_steps: int | None = _f(None, "evaluate every N optimiser steps (default: save_steps)")
    gradient_checkpointing: bool | None = _f(
        None, "recompute activations to save memory. Default: on CUDA only")
    offload_checkpoints: bool = _f(
        True, "Unsloth only, with gradient checkpointing: keep the saved activations in CPU memory (its 'unsloth' "
        "checkpointing, the notebook's) instead of on the GPU (H200: 3.5 instead of 4.6 GiB, same speed)")
    cudnn_attention: bool = _f(
        False, "let PyTorch's attention use its cuDNN kernel on CUDA. Off by default: cuDNN builds a plan for every "
        "new sequence length, and without it an H200 trained 1.14-1.18x faster on mixed lengths and no slower on fixed ones")
    bf16: bool | None = _f(None, "bfloat16 mixed precision. Default: on where the GPU supports it; never on CPU")
    seed: int = _f(3407, "random seed (data order, LoRA init, eval split)")
    output_dir: str = _f("outputs/llama-tutor",
                         "where the adapter, tokenizer, checkpoints, metrics.json and plots go")
    logging_steps: int = _f(10, "log the training loss every N steps")
    save_steps: int = _f(100, "write a checkpoint every N steps")
    save_total_limit: int | None = _f(2, "keep at most N checkpoints (oldest deleted)")
    report_to: str = _f("tensorboard", "tensorboard (logs in output_dir/runs), wandb, or none")
    run_name: str | None = _f(None, "run name shown in W&B (default: the output_dir folder name)")
    resume_from_checkpoint: str | None = _f(
        None, "continue a run: the flag alone, 'true' or 'latest' for the newest checkpoint in output_dir, or a "
        "checkpoint path", flag_alone="latest")

    def check(self) -> None:
        _at_least_one(self, "per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps",
                      "logging_steps", "save_steps")
        if self.max_steps == 0 or self.max_steps < -1:
            raise TrainingError(f"--max_steps must be a positive number of steps or -1 (use epochs), "
                                f"got {self.max_steps}")
        if self.max_steps == -1 and self.num_train_epochs <= 0:
            raise TrainingError(f"--num_train_epochs must be positive when --max_steps is -1, "
                                f"got {self.num_train_epochs}")
        if self.learning_rate <= 0:
            raise TrainingError(f"--learning_rate must be positive, got {self.learning_rate}")
        if self.warmup_steps < 0 or self.weight_decay < 0:
            raise TrainingError("--warmup_steps and --weight_decay cannot be negative")
        _at_least_one_when_given(self, "eval_steps", "save_total_limit")
        targets = [t.strip() for t in self.report_to.split(",") if t.strip()]
        unknown = [t for t in targets if t not in REPORT_TARGETS]
        if not targets or unknown:
            raise TrainingError(f"--report_to must be tensorboard, wandb, none (or a comma list), "
                                f"got {self.report_to!r}")
        self._validate_output_dir()

    def _validate_output_dir(self) -> None:
        """``output_dir`` must be a folder or creatable as one: not a file, not under a file."""
        path = Path(self.output_dir).expanduser()
        if path.exists() and not path.is_dir():
            raise TrainingError(f"--output_dir {self.output_dir!r} is an existing file, not a folder: pass a folder "
                                "path (it is created if missing)")
        parent = next((p for p in path.parents if p.exists()), None)
        if parent is not None and not parent.is_dir():
            raise TrainingError(f"--output_dir {self.output_dir!r} cannot be created: {str(parent)!r} is a file; "
                                "pass a folder path")

    @property
    def report_targets(self) -> list[str]:
        targets = [t.strip() for t in self.report_to.split(",") if t.strip()]
        return [] if targets == ["none"] else targets

    def resume_target(self) -> str | bool | None:
        """``None`` (fresh run), ``True`` (newest checkpoint in output_dir) or a checkpoint path."""
        value = self.resume_from_checkpoint
        if value is None or value.strip().lower() in ("", "false", "no", "none"):
            return None
        if value.strip().lower() in ("true", "yes", "latest"):
            return True
        if not os.path.isdir(value):
            raise TrainingError(f"--resume_from_checkpoint {value!r} is not a directory: pass a checkpoint folder "
                                "(output_dir/checkpoint-N) or 'true' for the newest one in --output_dir")
        return value


@dataclass
class TrainConfig(TrainingSettings, SFTDataSettings, LoraSettings, ModelSettings):
    """One supervised fine-tuning run (``python -m training sft``): model, LoRA, conversations, training."""

    METHOD = "sft"

    @property
    def token_limit(self) -> int:
        """The longest sequence the run trains on (Unsloth sizes its model for it)."""
        return self.max_seq_length


@dataclass
class DPOTrainConfig(TrainingSettings, DPOSettings, PreferenceDataSettings, LoraSettings, ModelSettings):
    """One preference-training run (``python -m training dpo``): model, LoRA, pairs, DPO, training.

    Defaults that differ from SFT follow Unsloth's DPO notebook (learning rate 5e-6, batch 2 x 4)."""

    METHOD = "dpo"

    learning_rate: float = _f(5e-6, "peak learning rate (DPO moves a tuned model a little: far below SFT's)")
    per_device_train_batch_size: int = _f(2, "preference pairs per GPU per forward pass (each is two sequences)")
    per_device_eval_batch_size: int = _f(2, "preference pairs per GPU per evaluation pass")
    gradient_accumulation_steps: int = _f(4, "forward passes per optimiser step")
    output_dir: str = _f("outputs/llama-tutor-dpo",
                         "where the adapter, tokenizer, checkpoints, metrics.json, loss.png and rewards.png go")

    @property
    def token_limit(self) -> int:
        return self.max_length

"""TRL's SFTTrainer set up for each backend, with the loss on assistant tokens only.

- transformers: a ``messages`` dataset and ``assistant_only_loss=True`` (the template's generation
  markers give the mask). Off CUDA, ``compute_loss`` is transformers.Trainer's: TRL 1.15 always asks
  for its fused LM head, a Triton kernel that does not run on CPU.
- Unsloth: the same conversations rendered to text with the same template, then Unsloth's
  ``train_on_responses_only`` masks everything but the assistant replies.

Both trainers write each checkpoint atomically (training/checkpoints.py) and stop at the first step whose
loss is NaN or infinite, before it changes the weights (training/finite.py).
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import logging
import os
from pathlib import Path
from typing import Any

from training.backends import Runtime
from training.checkpoints import AtomicCheckpoints
from training.config import TrainConfig
from training.errors import TrainingError
from training.finite import check_loss, check_model_weights
from training.templates import ChatTemplate, render

logger = logging.getLogger(__name__)


def check_reporters(targets: list[str]) -> None:
    """Fail before loading anything when a --report_to target is not installed."""
    has_tensorboard = importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX")
    if "tensorboard" in targets and not has_tensorboard:
        raise TrainingError("--report_to tensorboard needs the tensorboard package: pip install tensorboard "
                            "(in requirements-train.txt), or pass --report_to none")
    if "wandb" in targets:
        check_wandb()


COMMON_OPTIMIZERS = ("adamw_torch", "adamw_torch_fused", "adamw_8bit", "paged_adamw_8bit", "adafactor", "sgd")


def check_choices(config: TrainConfig) -> None:
    """--optim and --lr_scheduler_type must be names transformers knows: found before the model loads, not after."""
    from transformers.trainer_utils import SchedulerType
    from transformers.training_args import OptimizerNames

    optimizers = [o.value for o in OptimizerNames]
    if config.optim not in optimizers:
        raise TrainingError(f"--optim {config.optim!r} is not an optimiser transformers knows: "
                            f"{_did_you_mean(config.optim, optimizers)}common ones are {', '.join(COMMON_OPTIMIZERS)} "
                            f"(all {len(optimizers)}: transformers.training_args.OptimizerNames)")
    schedules = [s.value for s in SchedulerType]
    if config.lr_scheduler_type not in schedules:
        raise TrainingError(f"--lr_scheduler_type {config.lr_scheduler_type!r} is not a schedule transformers knows: "
                            f"{_did_you_mean(config.lr_scheduler_type, schedules)}choose one of {', '.join(schedules)}")


def _did_you_mean(value: str, names: list[str]) -> str:
    close = difflib.get_close_matches(value, names, n=2)
    return f"did you mean {' or '.join(close)}? " if close else ""


WANDB_LOCAL_MODES = ("offline", "dryrun", "disabled")  # WANDB_MODE values that need no account


def check_wandb() -> None:
    """W&B installed and, unless it logs locally, a key configured: found before the model loads, not after."""
    if not importlib.util.find_spec("wandb"):
        raise TrainingError("--report_to wandb needs the wandb package: pip install wandb, then wandb login "
                            "(or set WANDB_API_KEY)")
    if os.environ.get("WANDB_MODE", "").lower() in WANDB_LOCAL_MODES:
        return
    import wandb

    try:
        logged_in = wandb.login(prompt=False, verify=False)  # WANDB_API_KEY, settings or ~/.netrc; no network
    except TypeError:  # a wandb without `prompt=` (older than the tested 0.31): wandb.init reports it instead
        return
    if not logged_in:
        raise TrainingError("--report_to wandb found no W&B API key: run `wandb login` or set WANDB_API_KEY; "
                            "or set WANDB_MODE=offline to log locally and `wandb sync` later")


# Fields that TRL's configs share with ours by name but that the run decides: precision, checkpointing and
# optimiser come from the runtime (training/backends.py), evaluation only when there is evaluation data,
# reporting and the run name in TRL's forms, and the checkpoint to resume from goes to ``train()``.
DECIDED_BY_THE_RUN = frozenset({"bf16", "gradient_checkpointing", "optim", "eval_steps", "padding_free", "report_to",
                                "run_name", "resume_from_checkpoint"})


def shared_fields(config: Any, trl_class: type) -> dict[str, Any]:
    """Our settings that ``trl_class`` (SFTConfig, DPOConfig) has under the same name, copied as they are."""
    theirs = {f.name for f in dataclasses.fields(trl_class)}
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
            if f.name in theirs and f.name not in DECIDED_BY_THE_RUN}


def trl_arguments(trl_class: type, config: Any, runtime: Runtime, has_eval: bool, **method: Any) -> Any:
    """The one mapping from a run's config to TRL's config class: same-named fields copied, the rest decided
    here once for every method; ``method`` holds what only that method's trainer needs."""
    eval_steps = config.eval_steps or config.save_steps
    return trl_class(
        **shared_fields(config, trl_class),
        run_name=config.run_name or Path(config.output_dir).name,
        optim=runtime.optim, bf16=runtime.bf16, fp16=runtime.fp16,
        logging_first_step=True, save_strategy="steps",
        eval_strategy="steps" if has_eval else "no", eval_steps=eval_steps if has_eval else None,
        report_to=config.report_targets or "none",
        include_num_input_tokens_seen="non_padding",
        ddp_find_unused_parameters=False if runtime.world_size > 1 else None,
        dataloader_pin_memory=runtime.cuda, use_cpu=not runtime.cuda,
        **method,
    )


def sft_arguments(config: TrainConfig, runtime: Runtime, has_eval: bool, **extra: Any) -> Any:
    """TRL's SFTConfig from our config: the same optimisation on both backends."""
    from trl import SFTConfig

    return trl_arguments(
        SFTConfig, config, runtime, has_eval,
        max_length=config.max_seq_length, truncation_mode="keep_start",
        **({} if config.padding_free is None else {"padding_free": config.padding_free}),
        **extra,
    )


class GuardedTraining(AtomicCheckpoints):
    """Trainer mixin: atomic checkpoints, a check of every step's loss, no checkpoint of broken weights.

    The loss is checked in ``training_step`` rather than from the logs: the trainer leaves NaN steps out
    of the logged mean (``logging_nan_inf_filter``), and a checkpoint can fall between two log steps.
    Reading the loss syncs the GPU once per step, as that filter already does.
    """

    run_config: TrainConfig

    def training_step(self, *args: Any, **kwargs: Any) -> Any:
        loss = super().training_step(*args, **kwargs)  # type: ignore[misc]
        check_loss(loss, self.state.global_step + 1, self.run_config)  # type: ignore[attr-defined]
        return loss

    def before_checkpoint(self, name: str) -> None:
        check_model_weights(self.model, name, self.run_config)  # type: ignore[attr-defined]


def _trainer_class(runtime: Runtime, config: TrainConfig) -> type:
    """TRL's SFTTrainer (Unsloth's, once it is imported) with the guards above; off CUDA, transformers' loss."""
    from trl import SFTTrainer

    if runtime.cuda:
        return type("TutorSFTTrainer", (GuardedTraining, SFTTrainer), {"run_config": config})

    class CPUSFTTrainer(GuardedTraining, SFTTrainer):
        """SFTTrainer with transformers.Trainer's loss (no Triton fused LM head off CUDA)."""

        run_config = config

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            from transformers import Trainer

            inputs = {**inputs, "use_cache": False}
            return Trainer.compute_loss(self, model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)

    return CPUSFTTrainer


def build_transformers_trainer(config: TrainConfig, runtime: Runtime, model: Any, tokenizer: Any,
                               train: list[list[dict]], eval_rows: list[list[dict]]) -> Any:
    """SFTTrainer on the base ``model``; it wraps it in the LoRA of ``config``."""
    from datasets import Dataset

    from training.backends import lora_config

    if config.padding_free and not config.packing:
        raise TrainingError("--padding_free true on the transformers backend needs --packing true: TRL's padding-free "
                            "collator does not truncate to --max_seq_length on its own")
    args = sft_arguments(
        config, runtime, bool(eval_rows), assistant_only_loss=True,
        gradient_checkpointing=runtime.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False} if runtime.gradient_checkpointing else None)
    train_ds = Dataset.from_dict({"messages": train})
    eval_ds = Dataset.from_dict({"messages": eval_rows}) if eval_rows else None
    try:
        return _trainer_class(runtime, config)(model=model, args=args, train_dataset=train_ds,
                                               eval_dataset=eval_ds, processing_class=tokenizer,
                                               peft_config=lora_config(config))
    except (RuntimeError, ValueError) as exc:
        if "Target modules" in str(exc):
            raise TrainingError(f"--lora_target_modules {' '.join(config.lora_target_modules)}: "
                                f"{str(exc).splitlines()[0][:200]}") from None
        if "training-compatible" in str(exc) or ("assistant" in str(exc) and "mask" in str(exc)):
            raise TrainingError("the chat template cannot mark the assistant's tokens for the loss: use "
                                "--chat_template llama-3.1 or llama-2 (templates with generation markers)"
                                ) from None
        raise


def build_unsloth_trainer(config: TrainConfig, runtime: Runtime, model: Any, tokenizer: Any,
                          train: list[list[dict]], eval_rows: list[list[dict]], template: ChatTemplate) -> Any:
    from datasets import Dataset
    from unsloth.chat_templates import train_on_responses_only

    if template.response_part is None:
        raise TrainingError("--backend unsloth needs a known chat template to find the assistant replies: "
                            "use --chat_template llama-3.1 or llama-2")
    # Unsloth applies its own gradient checkpointing inside get_peft_model (backends.unsloth_checkpointing).
    # padding_free unset (None) lets Unsloth choose: padding-free on H100/H200. Padding-free batches skip its
    # compiled decoder blocks; on an H200 that cost nothing at a 2048-token cap and saved 1.5 GiB, while padded
    # batches were 1.3x faster at 1024 (bench/results/train_throughput-{2048-*,recipe}-*.json).
    args = sft_arguments(config, runtime, bool(eval_rows), dataset_text_field="text", gradient_checkpointing=False)
    train_ds = Dataset.from_dict({"text": [render(tokenizer, c) for c in train]})
    eval_ds = Dataset.from_dict({"text": [render(tokenizer, c) for c in eval_rows]}) if eval_rows else None
    trainer = _trainer_class(runtime, config)(model=model, processing_class=tokenizer, train_dataset=train_ds,
                                              eval_dataset=eval_ds, args=args)
    return train_on_responses_only(trainer, instruction_part=template.instruction_part,
                                   response_part=template.response_part)

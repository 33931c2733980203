"""TRL's DPOTrainer set up for each backend, with the same guards as SFT.

- Unsloth (CUDA): ``import unsloth`` (training/backends.py) has already replaced ``trl.DPOTrainer`` with its
  patched trainer and routed TRL's fused LM head to its own kernel; the model arrives with its LoRA, so
  the reference is the model with the adapter switched off (Unsloth's ``ref_model=None`` path).
- transformers + peft: TRL wraps the base in the LoRA of the run's settings; with a starting adapter it
  keeps a frozen copy of it (adapter "ref") as the reference.
- Off CUDA, TRL 1.15's fused LM head (a Triton kernel, called on every policy and reference pass) is
  swapped for the plain PyTorch computation below, for the duration of each loss computation.

Checkpoints are atomic and a non-finite loss or weight stops the run (``GuardedTraining``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from training.backends import Runtime
from training.errors import TrainingError
from training.trainer import GuardedTraining, trl_arguments

logger = logging.getLogger(__name__)


class TorchLogProbs:
    """The per-token outputs of TRL's ``ChunkedLogProbFunction`` (same arguments, same tuple), computed with
    ordinary PyTorch ops on the full logits, so autograd differentiates them. Fine on CPU, where the
    models are small; TRL's kernel avoids the [tokens, vocab] logits on GPUs."""

    @staticmethod
    def apply(hidden: Any, weight: Any, bias: Any, targets: Any, temperature: float, chunk_size: int,
              final_logit_softcapping: float | None = None, logit_scale: float = 1.0,
              outputs: tuple[str, ...] = ("log_probs",)) -> tuple:
        import torch

        logits = hidden @ weight.to(hidden.dtype).t()
        if bias is not None:
            logits = logits + bias.to(logits.dtype)
        logits = logits.float() * logit_scale
        if final_logit_softcapping is not None:
            logits = final_logit_softcapping * torch.tanh(logits / final_logit_softcapping)
        logits = logits / temperature
        log_z = torch.logsumexp(logits, dim=-1)
        log_probs = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - log_z
        entropy = log_sum_sq = mean = top1 = None
        if "entropy" in outputs:
            entropy = log_z - (torch.softmax(logits, dim=-1) * logits).sum(-1)
        with torch.no_grad():
            if "log_sum_sq_probs" in outputs:
                log_sum_sq = torch.logsumexp(2 * (logits - log_z.unsqueeze(-1)), dim=-1)
            if "mean_logits" in outputs:
                mean = logits.mean(-1)
            if "is_top1" in outputs:
                top1 = logits.argmax(-1) == targets
        return log_probs, entropy, log_sum_sq, mean, top1


@contextlib.contextmanager
def torch_log_probs() -> Iterator[None]:
    """TRL's fused LM head computed with PyTorch ops while the block runs (its module-level kernel slot,
    the same one Unsloth fills with its own kernel on GPUs)."""
    import trl.trainer.utils as trl_utils

    kernel = trl_utils._ChunkedLogProbFunction
    trl_utils._ChunkedLogProbFunction = TorchLogProbs
    try:
        yield
    finally:
        trl_utils._ChunkedLogProbFunction = kernel


def dpo_trainer_class(runtime: Runtime, config: Any) -> type:
    """TRL's DPOTrainer (Unsloth's, once it is imported) with the guards; off CUDA, PyTorch log-probs."""
    from trl import DPOTrainer

    if runtime.cuda:
        return type("TutorDPOTrainer", (GuardedTraining, DPOTrainer), {"run_config": config})

    class CPUDPOTrainer(GuardedTraining, DPOTrainer):
        """DPOTrainer whose fused LM head runs as PyTorch ops (no Triton kernel off CUDA)."""

        run_config = config

        def compute_loss(self, *args: Any, **kwargs: Any) -> Any:
            with torch_log_probs():
                return super().compute_loss(*args, **kwargs)

        def compute_ref_log_probs(self, *args: Any, **kwargs: Any) -> Any:
            with torch_log_probs():
                return super().compute_ref_log_probs(*args, **kwargs)

    return CPUDPOTrainer


def dpo_arguments(config: Any, runtime: Runtime, has_eval: bool, **extra: Any) -> Any:
    """TRL's DPOConfig: beta, loss_type and max_length copied by name with the shared training settings.

    TRL 1.15 has no max_prompt_length: prompts are fitted to it before (training/lengths.py)."""
    from trl import DPOConfig

    return trl_arguments(DPOConfig, config, runtime, has_eval, truncation_mode="keep_start", **extra)


def preference_dataset(pairs: list) -> Any:
    """TRL's conversational preference rows: prompt messages, and each reply as one assistant message."""
    from datasets import Dataset

    return Dataset.from_dict({
        "prompt": [p.prompt for p in pairs],
        "chosen": [[{"role": "assistant", "content": p.chosen}] for p in pairs],
        "rejected": [[{"role": "assistant", "content": p.rejected}] for p in pairs],
    })


def build_dpo_trainer(config: Any, runtime: Runtime, model: Any, tokenizer: Any, train: list, eval_pairs: list
                      ) -> Any:
    """DPOTrainer for ``model``: a base model (TRL adds the run's LoRA), or a PeftModel (Unsloth's LoRA, or
    a starting adapter) that is trained as it is."""
    from peft import PeftModel

    from training.backends import lora_config

    is_peft = isinstance(model, PeftModel)
    if runtime.backend == "unsloth":
        # Unsloth applies its own gradient checkpointing inside get_peft_model (backends.unsloth_checkpointing).
        args = dpo_arguments(config, runtime, bool(eval_pairs), gradient_checkpointing=False)
    else:
        args = dpo_arguments(
            config, runtime, bool(eval_pairs), gradient_checkpointing=runtime.gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False} if runtime.gradient_checkpointing else None)
    try:
        return dpo_trainer_class(runtime, config)(
            model=model, ref_model=None, args=args, train_dataset=preference_dataset(train),
            eval_dataset=preference_dataset(eval_pairs) if eval_pairs else None, processing_class=tokenizer,
            peft_config=None if is_peft else lora_config(config))
    except (RuntimeError, ValueError) as exc:
        if "Target modules" in str(exc):
            raise TrainingError(f"--lora_target_modules {' '.join(config.lora_target_modules)}: "
                                f"{str(exc).splitlines()[0][:200]}") from None
        raise

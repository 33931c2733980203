"""NaN and infinity: a loss or weights gone non-finite stop the run; no such adapter is saved or exported.

A learning rate far too high (or an fp16 overflow) turns the LoRA weights into NaN within a step or two;
the trainer itself carries on, logs a plausible loss (it drops NaN steps from the logged mean) and saves
an adapter that makes the model print ``!!!!``. The checks here name the step and what to change.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

# Shared with the inference loaders, which refuse such an adapter too (the Space ships inference/ only).
from inference.loading import adapter_nonfinite_tensors, nonfinite_tensors
from training.errors import TrainingError


def remedy(config: Any) -> str:
    """What to change when training diverged, with this run's values."""
    return (f"lower --learning_rate (now {config.learning_rate:g}), keep gradient clipping on (--max_grad_norm 1.0; "
            f"now {config.max_grad_norm:g}), or train in fp32 (--bf16 false) if the GPU overflowed in half precision")


def check_loss(loss: Any, step: int, config: Any) -> None:
    """Raise when one step's training loss (a tensor or number) is NaN or infinite."""
    value = float(loss.detach().float().mean()) if hasattr(loss, "detach") else float(loss)
    if not math.isfinite(value):
        raise TrainingError(f"the training loss became {value} at step {step}: training stopped before that step "
                            f"changed the weights, and no adapter was saved; {remedy(config)}")


def check_model_weights(model: Any, what: str, config: Any) -> None:
    """Refuse to write ``what`` (a checkpoint, the adapter) when a trainable weight is NaN or infinite."""
    trainable = [(name, p.detach()) for name, p in model.named_parameters() if p.requires_grad]
    bad = nonfinite_tensors(trainable)
    if bad:
        raise TrainingError(f"{len(bad)} of {len(trainable)} trainable weight tensors became NaN or infinite "
                            f"(e.g. {bad[0]}), so {what} was not saved; {remedy(config)}")


def check_adapter_file(adapter_dir: str | Path, flag: str = "--adapter") -> None:
    """Refuse an adapter folder whose saved weights hold NaN or infinity (it would make the model print ``!!!``)."""
    bad = adapter_nonfinite_tensors(adapter_dir)
    if bad:
        raise TrainingError(f"{flag} {str(adapter_dir)!r} holds NaN or infinite weights in {len(bad)} of its tensors "
                            f"(e.g. {bad[0]}): its training diverged; train it again with a lower --learning_rate")

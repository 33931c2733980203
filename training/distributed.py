"""Which GPUs a training process uses (no torch import: this must run before CUDA starts)."""

from __future__ import annotations

import os


def pin_one_gpu_unless_distributed(environ: dict = os.environ) -> None:
    """A single process trains on one GPU: the first visible one.

    With several GPUs visible and no launcher, transformers' Trainer would wrap the model in
    nn.DataParallel, which TRL refuses (and which is slower than DDP anyway). Data-parallel training is
    ``accelerate launch -m training sft ...`` or ``torchrun``, which set WORLD_SIZE. Must run before
    torch initialises CUDA.
    """
    if "WORLD_SIZE" in environ or "LOCAL_RANK" in environ:
        return
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    environ["CUDA_VISIBLE_DEVICES"] = visible.split(",")[0].strip() if visible else "0"

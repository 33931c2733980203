"""Fine-tuning Llama Tutor: QLoRA SFT and DPO (Unsloth on CUDA, transformers + peft elsewhere), adapter export.

    python -m training sft --config recipes/llama-3.2-3b-finetome.yaml
    python -m training dpo --config recipes/llama-3.2-3b-tutor-dpo.yaml   # on the app's feedback file
    python -m training export --adapter outputs/llama-3.2-3b-finetome --merge outputs/merged

Importing this package is cheap: torch, trl, peft and unsloth are imported inside the functions that
need them.
"""

from __future__ import annotations

from training.errors import TrainingError

__all__ = ["TrainingError"]

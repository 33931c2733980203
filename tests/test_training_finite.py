"""NaN and infinite weights: refused before a checkpoint or adapter is written, and when an adapter is exported."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from training.config import TrainConfig
from training.errors import TrainingError
from training.export import build_parser, main
from training.finite import adapter_nonfinite_tensors, check_model_weights

LORA_A = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
LORA_B = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"


def write_adapter(folder: Path, broken: float | None = None) -> Path:
    """An adapter folder as PEFT writes it; ``broken`` goes into one element of lora_B."""
    import torch
    from safetensors.torch import save_file

    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "/no/such/base",
                                                            "peft_type": "LORA", "r": 2}))
    tensors = {LORA_A: torch.randn(2, 8), LORA_B: torch.zeros(8, 2)}
    if broken is not None:
        tensors[LORA_B][3, 1] = broken
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    return folder


def test_weights_check_names_the_broken_tensor_and_the_fix():
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
    check_model_weights(model, "the final adapter", TrainConfig())  # finite: nothing to say
    with torch.no_grad():
        model[1].bias[0] = float("inf")
    with pytest.raises(TrainingError, match=r"^1 of 4 trainable weight tensors became NaN or infinite \(e.g. "
                                            r"1.bias\), so the final adapter was not saved; lower --learning_rate "
                                            r"\(now 0.0002\)"):
        check_model_weights(model, "the final adapter", TrainConfig())
    model[1].bias.requires_grad_(False)  # a frozen base weight is not what training changed
    check_model_weights(model, "the final adapter", TrainConfig())


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_export_refuses_an_adapter_with_nonfinite_weights(tmp_path, value):
    adapter = write_adapter(tmp_path / "adapter", broken=value)
    assert adapter_nonfinite_tensors(adapter) == [LORA_B]
    with pytest.raises(TrainingError, match=rf"^--adapter {re.escape(repr(str(adapter)))} holds NaN or infinite "
                                            rf"weights in 1 of its tensors \(e.g. {re.escape(LORA_B)}\): its training "
                                            r"diverged; train it again with a lower --learning_rate$"):
        main(build_parser().parse_args(["--adapter", str(adapter), "--merge", str(tmp_path / "merged")]))
    assert not (tmp_path / "merged").exists()


def test_a_finite_adapter_passes_the_check(tmp_path):
    assert adapter_nonfinite_tensors(write_adapter(tmp_path / "adapter")) == []
    assert adapter_nonfinite_tensors(tmp_path) == []  # no weights file: nothing to check here

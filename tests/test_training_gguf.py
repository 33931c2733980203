"""GGUF export through llama.cpp's converter and quantizer, checked by running the file in llama.cpp.

A small Llama (hidden 256, so k-quant blocks fit; real Llama 3 tokenizer, which llama.cpp recognises)
plus a LoRA adapter is exported with ``python -m training export --gguf``; llama-cpp-python then loads the
file and its logits are compared with what transformers computes for base + adapter.
"""

from __future__ import annotations

import glob
import json
import os
import sys
from pathlib import Path

import pytest

from training.export import build_parser, main

pytestmark = pytest.mark.slow
PROMPT = [{"role": "user", "content": "What is photosynthesis? Explain it step by step."}]
FILE_TYPES = {"f32": 0, "q8_0": 7, "q4_k_m": 15}  # llama.cpp's LLAMA_FTYPE_* as stored in general.file_type


@pytest.fixture(scope="module")
def llama_cpp_dir() -> str:
    """LLAMA_CPP_DIR, else the llama-cpp-python source that `make test` unpacks into the venv."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (requirements-dev.txt)")
    found = ([os.environ["LLAMA_CPP_DIR"]] if os.environ.get("LLAMA_CPP_DIR")
             else sorted(glob.glob(os.path.join(sys.prefix, "src", "llama_cpp_python-*", ""))))
    if not found:
        pytest.skip("no llama.cpp source: `make test` unpacks llama-cpp-python's into .venv/src; or set LLAMA_CPP_DIR")
    return found[-1]


@pytest.fixture(scope="module")
def model(llama3_tokenizer, tmp_path_factory):
    """A base model, an adapter for it, and the logits transformers gives for PROMPT with and without it."""
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import LlamaForCausalLM

    from tests.tiny_models import tiny_llama_config

    tmp = tmp_path_factory.mktemp("gguf")
    torch.manual_seed(0)
    config = tiny_llama_config(len(llama3_tokenizer), hidden_size=256, intermediate_size=512, initializer_range=0.02,
                               bos_token_id=llama3_tokenizer.bos_token_id,
                               eos_token_id=llama3_tokenizer.convert_tokens_to_ids("<|eot_id|>"))
    LlamaForCausalLM(config).save_pretrained(tmp / "base")
    llama3_tokenizer.save_pretrained(tmp / "base")
    lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False)
    get_peft_model(LlamaForCausalLM.from_pretrained(tmp / "base"), lora).save_pretrained(tmp / "adapter")
    ids = llama3_tokenizer.apply_chat_template(PROMPT, add_generation_prompt=True, tokenize=True, return_dict=True)
    ids = ids["input_ids"]
    with torch.no_grad():
        base = LlamaForCausalLM.from_pretrained(tmp / "base")
        base_logits = base(torch.tensor([ids])).logits[0].numpy()
        tuned = PeftModel.from_pretrained(base, tmp / "adapter").merge_and_unload()
        tuned_logits = tuned(torch.tensor([ids])).logits[0].numpy()
    return {"dir": tmp, "ids": ids, "base": base_logits, "tuned": tuned_logits}


def run_gguf(path: str, ids: list[int]):
    """llama.cpp's logits for every prompt position, its greedy continuation and the file's metadata."""
    import numpy as np
    from llama_cpp import Llama

    llm = Llama(path, n_ctx=128, logits_all=True, n_threads=2, verbose=False)
    try:
        llm.eval(ids)
        logits = np.array(llm.scores[:len(ids)])
        llm.reset()
        continuation = [token for _, token in zip(range(8), llm.generate(ids, temp=0.0))]
        return logits, continuation, dict(llm.metadata)
    finally:
        llm.close()


@pytest.mark.parametrize(("quant", "closeness"), [("f32", 0.02), ("q8_0", 0.05), ("q4_k_m", 0.25)])
def test_gguf_runs_in_llama_cpp_and_computes_base_plus_adapter(model, llama_cpp_dir, tmp_path, quant, closeness):
    import numpy as np

    done = main(build_parser().parse_args([
        "--adapter", str(model["dir"] / "adapter"), "--base-model", str(model["dir"] / "base"),
        "--gguf", str(tmp_path / "out"), "--quant", quant, "--llama-cpp", llama_cpp_dir]))
    path = Path(done["gguf"])
    assert path == tmp_path / "out" / f"model-{quant}.gguf" and path.read_bytes()[:4] == b"GGUF"
    logits, continuation, metadata = run_gguf(str(path), model["ids"])
    assert int(metadata["general.file_type"]) == FILE_TYPES[quant]
    # The adapter moves the logits by `shift`; the GGUF is within a small fraction of that of base + adapter.
    shift = np.abs(model["tuned"] - model["base"]).max()
    error = np.abs(logits - model["tuned"]).max()
    assert error < closeness * shift, (quant, error, shift)
    assert np.corrcoef(logits.ravel(), model["tuned"].ravel())[0, 1] > 0.99
    assert len(continuation) == 8 and all(0 <= token < 128256 for token in continuation)
    if quant == "f32":  # same numbers up to float rounding: the same next token everywhere
        assert (logits.argmax(-1) == model["tuned"].argmax(-1)).all()


def test_one_command_merges_and_converts_the_merged_folder(model, llama_cpp_dir, tmp_path):
    """--merge and --gguf together: the GGUF is made from the saved 16-bit merge, and both work."""
    import numpy as np
    import torch
    from transformers import LlamaForCausalLM

    done = main(build_parser().parse_args([
        "--adapter", str(model["dir"] / "adapter"), "--base-model", str(model["dir"] / "base"),
        "--merge", str(tmp_path / "merged"), "--gguf", str(tmp_path / "tutor.gguf"), "--quant", "q8_0",
        "--llama-cpp", llama_cpp_dir]))
    assert done == {"merged": str(tmp_path / "merged"), "gguf": str(tmp_path / "tutor.gguf")}
    with torch.no_grad():
        merged = LlamaForCausalLM.from_pretrained(tmp_path / "merged", dtype=torch.float32)
        merged_logits = merged(torch.tensor([model["ids"]])).logits[0].numpy()
    logits, _, metadata = run_gguf(done["gguf"], model["ids"])
    shift = np.abs(model["tuned"] - model["base"]).max()
    saved = json.loads((tmp_path / "merged" / "config.json").read_text())
    assert saved["dtype"] == "bfloat16" and int(metadata["general.file_type"]) == FILE_TYPES["q8_0"]
    assert np.abs(merged_logits - model["tuned"]).max() < 0.05 * shift  # bf16 rounding only
    assert np.abs(logits - merged_logits).max() < 0.05 * shift

"""Every load failure is one line that names the problem and the fix."""

from __future__ import annotations

import shutil

import pytest

from inference import BackendError, GenerationConfig, load_backend
from tests import tiny_models


def load(base, adapter=None, **kw):
    return load_backend("transformers", base_model=str(base), adapter=adapter and str(adapter), warmup=False, **kw)


def test_missing_base_directory(tmp_path):
    with pytest.raises(BackendError, match=r"base model '.*nope' not found: no such directory.*--base-model"):
        load(tmp_path / "nope")


def test_directory_without_a_model(tmp_path):
    with pytest.raises(BackendError, match=r"has no config.json: it is not a base model folder"):
        load(tmp_path)


def test_hub_id_not_cached_and_hub_unreachable(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache
    with pytest.raises(BackendError, match=r"Could not load base model 'unsloth/Llama-3.2-3B-Instruct'.*"
                                           r"not in the Hugging Face cache.*pass a local directory with --base-model"):
        load("unsloth/Llama-3.2-3B-Instruct")


def test_missing_adapter_directory(tiny_model_dir, tmp_path):
    with pytest.raises(BackendError, match=r"adapter '.*missing' not found: no such directory.*--adapter"):
        load(tiny_model_dir, tmp_path / "missing")


def test_folder_that_is_not_an_adapter(tiny_model_dir):
    with pytest.raises(BackendError, match=r"has no adapter_config.json.*A merged model goes in --base-model"):
        load(tiny_model_dir, tiny_model_dir)


def test_adapter_made_for_a_different_base(tiny_model_dir, tmp_path):
    other = tiny_models.build_tiny_llama(tmp_path / "other", hidden_size=32, intermediate_size=64)
    adapter = tiny_models.save_random_adapter(other, tmp_path / "other-adapter")
    with pytest.raises(BackendError, match=r"Adapter .* does not fit base model .*\(it was trained on '.*other'\)"
                                           r": size mismatch .*Load it with the base model it was made for"):
        load(tiny_model_dir, adapter)


def test_adapter_tokenizer_larger_than_the_base_vocabulary(tiny_model_dir, tiny_adapter_dir, tmp_path):
    adapter = tmp_path / "adapter"
    shutil.copytree(tiny_adapter_dir, adapter)
    tok = tiny_models.build_tiny_tokenizer()
    tok.add_tokens([f"<new_token_{i}>" for i in range(300)])
    tok.save_pretrained(adapter)
    with pytest.raises(BackendError, match=r"tokenizer has \d+ tokens but .* embeds only \d+: .*different base"):
        load(tiny_model_dir, adapter)


def test_cuda_out_of_memory_suggests_4bit(tiny_model_dir, monkeypatch):
    import torch
    from transformers import AutoModelForCausalLM

    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 6.00 GiB")

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", oom)
    with pytest.raises(BackendError, match=r"CUDA out of memory while loading .*use --quantization 4bit"):
        load(tiny_model_dir, quantization="none")


def test_bad_options(tiny_model_dir):
    with pytest.raises(BackendError, match=r"--quantization must be one of auto, 4bit, none, got '8bit'"):
        load(tiny_model_dir, quantization="8bit")
    with pytest.raises(BackendError, match=r"unknown backend 'vllm'; choose one of: auto, transformers"):
        load_backend("vllm", base_model=str(tiny_model_dir))
    with pytest.raises(BackendError, match=r"--gguf does not apply to the transformers backend; its options are: "
                                           r"base_model, adapter, quantization"):
        load_backend("transformers", base_model=str(tiny_model_dir), gguf="model.gguf")
    with pytest.raises(ValueError, match=r"temperature must be 0 \(greedy\) or a positive number, got -1"):
        GenerationConfig(temperature=-1)
    with pytest.raises(ValueError, match=r"temperature must be 0 \(greedy\) or a positive number, got nan"):
        GenerationConfig(temperature=float("nan"))
    with pytest.raises(ValueError, match=r"temperature must be 0 \(greedy\) or a positive number, got '0.5'"):
        GenerationConfig(temperature="0.5")
    with pytest.raises(ValueError, match=r"max_new_tokens must be a whole number of at least 1, got 0"):
        GenerationConfig(max_new_tokens=0)
    with pytest.raises(ValueError, match=r"max_new_tokens must be a whole number of at least 1, got 2.5"):
        GenerationConfig(max_new_tokens=2.5)


def test_error_messages_are_one_line(tiny_model_dir, tmp_path):
    for call in (lambda: load(tmp_path / "nope"), lambda: load(tiny_model_dir, tmp_path / "x")):
        with pytest.raises(BackendError) as info:
            call()
        assert "\n" not in str(info.value)


def test_model_without_chat_template(tiny_model_dir, tmp_path):
    from inference.loading import load_model

    plain = tmp_path / "plain"
    shutil.copytree(tiny_model_dir, plain)
    (plain / "chat_template.jinja").unlink(missing_ok=True)
    config = plain / "tokenizer_config.json"
    import json

    data = json.loads(config.read_text())
    data.pop("chat_template", None)
    config.write_text(json.dumps(data))
    with pytest.raises(BackendError, match=r"has no chat template: use an Instruct model"):
        load(plain)
    loaded = load_model(str(plain), require_chat_template=False)  # enough for log-likelihood scoring
    assert not loaded.tokenizer.chat_template


def nan_adapter(adapter_dir, tmp_path):
    """A copy of ``adapter_dir`` with one lora_B tensor full of NaN (what a diverged training leaves)."""
    import torch
    from safetensors.torch import load_file, save_file

    copy = tmp_path / "diverged-adapter"
    shutil.copytree(adapter_dir, copy)
    weights = load_file(copy / "adapter_model.safetensors")
    name = next(n for n in weights if "lora_B" in n)
    weights[name] = torch.full_like(weights[name], float("nan"))
    save_file(weights, copy / "adapter_model.safetensors")
    return copy, name


def test_an_adapter_with_nan_weights_is_refused_not_served(tiny_model_dir, tiny_adapter_dir, tmp_path):
    adapter, name = nan_adapter(tiny_adapter_dir, tmp_path)
    with pytest.raises(BackendError, match=rf"Adapter '.*diverged-adapter' holds NaN or infinite weights in 1 of its "
                                           rf"tensors \(e\.g\. .*lora_B.*\): its training diverged; train it again "
                                           rf"with a lower --learning_rate"):
        load(tiny_model_dir, adapter)


def test_the_llamacpp_backend_refuses_it_before_converting(tiny_adapter_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("TUTOR_CACHE_DIR", str(tmp_path / "cache"))
    from inference.gguf import adapter_to_gguf

    adapter, _ = nan_adapter(tiny_adapter_dir, tmp_path)
    with pytest.raises(BackendError, match=r"holds NaN or infinite weights in 1 of its tensors"):
        adapter_to_gguf(str(adapter))
    assert not (tmp_path / "cache").exists()

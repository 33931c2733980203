"""The loss sees assistant tokens only: system and user tokens are -100, the reply and its end-of-turn are not."""

from __future__ import annotations

import pytest

from training.backends import Runtime
from training.config import TrainConfig
from training.templates import TEMPLATES, apply_template, choose_template
from training.trainer import build_transformers_trainer

CONVERSATIONS = [
    [{"role": "system", "content": "You are a patient tutor."},
     {"role": "user", "content": "What is the capital of France?"},
     {"role": "assistant", "content": "Paris."},
     {"role": "user", "content": "And what is 12 + 30?"},
     {"role": "assistant", "content": "42, because 12 + 30 = 42."}],
    [{"role": "user", "content": "What is LoRA?"},
     {"role": "assistant", "content": "Small low-rank matrices added to the projections."}],
]
CPU = Runtime(backend="transformers", device="cpu", world_size=1, local_rank=0, load_in_4bit=False, bf16=False,
              fp16=False, gradient_checkpointing=False, optim="adamw_torch")


def labelled_examples(model, tokenizer, template_name: str, tmp_path) -> list[tuple[list[int], list[int]]]:
    apply_template(tokenizer, choose_template(template_name, tokenizer))
    config = TrainConfig(output_dir=str(tmp_path), report_to="none", max_steps=1, lora_r=4,
                         lora_target_modules=["q_proj"])
    trainer = build_transformers_trainer(config, CPU, model, tokenizer, CONVERSATIONS, [])
    return [(row["input_ids"], row["labels"]) for row in trainer.train_dataset]


def spans(ids: list[int], labels: list[int]) -> list[list[int]]:
    """Runs of consecutive trained tokens."""
    out, current = [], []
    for token, label in zip(ids, labels):
        if label == -100:
            if current:
                out.append(current)
            current = []
        else:
            assert label == token
            current.append(token)
    return out + ([current] if current else [])


def check_only_replies_trained(tokenizer, examples, end: str, lead: str = "") -> None:
    for (ids, labels), conversation in zip(examples, CONVERSATIONS):
        replies = [lead + m["content"] + end for m in conversation if m["role"] == "assistant"]
        assert [tokenizer.decode(s) for s in spans(ids, labels)] == replies
        masked_text = tokenizer.decode([t for t, lbl in zip(ids, labels) if lbl == -100])
        for message in conversation:
            if message["role"] != "assistant":
                assert message["content"] in masked_text  # system and user text are all masked


@pytest.fixture()
def tokenizer(llama3_tokenizer):
    """A copy: training replaces the template, and the session fixture is shared with other tests."""
    import copy

    return copy.deepcopy(llama3_tokenizer)


@pytest.fixture
def llama3_sized_model(llama3_tokenizer):
    """A tiny Llama with the real 128,256-token vocabulary, so the real tokenizer's ids fit (a fresh one per
    test: building a trainer wraps the model with PEFT in place)."""
    import torch
    from transformers import LlamaForCausalLM

    from tests.tiny_models import tiny_llama_config

    torch.manual_seed(0)
    return LlamaForCausalLM(tiny_llama_config(len(llama3_tokenizer), hidden_size=16, intermediate_size=32,
                                              num_attention_heads=2, num_key_value_heads=1))


def test_real_llama3_tokenizer_masks_system_and_user(tokenizer, llama3_sized_model, tmp_path):
    # The real 3.2 template has no generation markers; training swaps in the marked one (same rendering).
    assert "{% generation %}" not in tokenizer.chat_template
    examples = labelled_examples(llama3_sized_model, tokenizer, "auto", tmp_path)
    check_only_replies_trained(tokenizer, examples, end="<|eot_id|>")
    eot = tokenizer.convert_tokens_to_ids("<|eot_id|>")
    ids, labels = examples[0]
    assert labels[-1] == eot and ids[0] == tokenizer.bos_token_id and labels[0] == -100


def test_tiny_model_llama2_template_masks_inst_turns(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    examples = labelled_examples(model, tokenizer, "llama-2", tmp_path)
    check_only_replies_trained(tokenizer, examples, end=" " + tokenizer.eos_token, lead=" ")
    assert "[/INST]" in tokenizer.decode(examples[0][0])


def test_unsloth_markers_match_the_rendered_template(tokenizer):
    """Unsloth's train_on_responses_only keys on these strings: each reply must follow response_part."""
    template = TEMPLATES["llama-3.1"]
    apply_template(tokenizer, template)
    text = tokenizer.apply_chat_template(CONVERSATIONS[0], tokenize=False)
    for message in CONVERSATIONS[0][1:]:
        part = template.response_part if message["role"] == "assistant" else template.instruction_part
        assert part + message["content"] + "<|eot_id|>" in text
    assert text.count(template.response_part) == 2 and text.count(template.instruction_part) == 2


def test_a_template_without_assistant_markers_is_refused_clearly(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.errors import TrainingError

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.chat_template = "{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\n' }}{% endfor %}"
    with pytest.raises(TrainingError, match=r"cannot mark the assistant's tokens.*--chat_template llama-3.1"):
        labelled_examples(AutoModelForCausalLM.from_pretrained(tiny_model_dir), tokenizer, "model", tmp_path)
    tokenizer.chat_template = None
    with pytest.raises(TrainingError, match=r"tokenizer has no chat template: pass --chat_template llama-2"):
        choose_template("model", tokenizer)


def test_unknown_lora_targets_name_the_flag(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.errors import TrainingError

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    config = TrainConfig(output_dir=str(tmp_path), report_to="none", max_steps=1, lora_target_modules=["qkv_proj"])
    with pytest.raises(TrainingError, match=r"--lora_target_modules qkv_proj: Target modules .* not found"):
        build_transformers_trainer(config, CPU, AutoModelForCausalLM.from_pretrained(tiny_model_dir), tokenizer,
                                   CONVERSATIONS, [])


def test_packing_keeps_the_reply_mask_and_padding_free_alone_is_refused(tokenizer, llama3_sized_model, tmp_path):
    from training.errors import TrainingError

    apply_template(tokenizer, choose_template("auto", tokenizer))
    config = TrainConfig(output_dir=str(tmp_path), report_to="none", max_steps=1, lora_r=4,
                         lora_target_modules=["q_proj"], packing=True, max_seq_length=512)
    trainer = build_transformers_trainer(config, CPU, llama3_sized_model, tokenizer, CONVERSATIONS, [])
    assert trainer.args.packing and trainer.padding_free  # best-fit packing flattens the batch
    (row,) = list(trainer.train_dataset)  # both conversations fit one 512-token row
    assert row["seq_lengths"] and len(row["seq_lengths"]) == 2
    trained = tokenizer.decode([t for t, label in zip(row["input_ids"], row["labels"]) if label != -100])
    assert "Paris." in trained and "capital of France" not in trained
    with pytest.raises(TrainingError, match="--packing"):
        build_transformers_trainer(TrainConfig(output_dir=str(tmp_path), report_to="none", padding_free=True),
                                   CPU, llama3_sized_model, tokenizer, CONVERSATIONS, [])

"""The test fixtures are faithful: the real Llama 3 tokenizer and a template that renders like the official one."""

from __future__ import annotations

import pytest

from inference.templates import LLAMA3_CHAT_TEMPLATE
from tests import tiny_models


def test_real_tokenizer_matches_llama_cpp_reference_ids(llama3_tokenizer):
    d = tiny_models.LLAMA3_TOKENIZER_DIR
    inputs = (d / "llamacpp_vocab_test.llama-bpe.inp.txt").read_text().split("\n__ggml_vocab_test__\n")
    expected = (d / "llamacpp_vocab_test.llama-bpe.out.txt").read_text().split("\n")
    pairs = list(zip(inputs, expected))
    assert len(pairs) == 47
    for text, ids in pairs:
        assert llama3_tokenizer(text, add_special_tokens=False).input_ids == [int(i) for i in ids.split()], text


def test_real_tokenizer_special_tokens(llama3_tokenizer):
    assert len(llama3_tokenizer) == 128256
    assert llama3_tokenizer("Hi").input_ids == [128000, 13347]  # BOS prepended like the real tokenizer.json
    assert llama3_tokenizer.convert_tokens_to_ids(["<|eot_id|>", "<|finetune_right_pad_id|>"]) == [128009, 128004]


@pytest.mark.parametrize("messages", [
    [{"role": "user", "content": "What is LoRA?"}],
    [{"role": "system", "content": "You are a tutor. "}, {"role": "user", "content": " Hi"},
     {"role": "assistant", "content": "Hello!\n"}, {"role": "user", "content": "Explain QLoRA."}],
])
@pytest.mark.parametrize("add_generation_prompt", [True, False])
def test_project_template_renders_like_the_official_one(llama3_tokenizer, messages, add_generation_prompt):
    kwargs = dict(tokenize=False, add_generation_prompt=add_generation_prompt, date_string="26 Jul 2024")
    official = llama3_tokenizer.apply_chat_template(messages, **kwargs)
    ours = llama3_tokenizer.apply_chat_template(messages, chat_template=LLAMA3_CHAT_TEMPLATE, **kwargs)
    assert ours == official


def test_project_template_marks_assistant_tokens(llama3_tokenizer):
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there"}]
    out = llama3_tokenizer.apply_chat_template(messages, chat_template=LLAMA3_CHAT_TEMPLATE, tokenize=True,
                                               return_dict=True, return_assistant_tokens_mask=True)
    marked = [t for t, m in zip(out["input_ids"], out["assistant_masks"]) if m]
    assert llama3_tokenizer.decode(marked) == "Hello there<|eot_id|>"


def test_tiny_model_fixture_is_a_loadable_llama(tiny_model_dir):
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(tiny_model_dir)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert config.model_type == "llama" and config.num_hidden_layers == 2
    assert "{% generation %}" in tok.chat_template
    assert tok.convert_ids_to_tokens(tok("Hi").input_ids[0]) == "<|begin_of_text|>"

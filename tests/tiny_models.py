"""Tiny real Llama models and the real Llama 3 tokenizer, built offline for tests and benchmarks.

The tiny model has the Llama architecture, a byte-level BPE tokenizer trained here with the Llama 3
special tokens, and the project's Llama-3.1-style chat template (with ``{% generation %}`` markers), so
the real loading, templating, LoRA and streaming code runs on CPU in seconds.
"""

from __future__ import annotations

from pathlib import Path

from inference.templates import LLAMA3_CHAT_TEMPLATE

# The Llama 3 split regex (as in Meta's tokenizer.py and the HF tokenizer.json).
LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
NAMED_SPECIAL_TOKENS = {
    0: "<|begin_of_text|>",
    1: "<|end_of_text|>",
    2: "<|reserved_special_token_0|>",
    3: "<|reserved_special_token_1|>",
    4: "<|finetune_right_pad_id|>",
    5: "<|step_id|>",
    6: "<|start_header_id|>",
    7: "<|end_header_id|>",
    8: "<|eom_id|>",
    9: "<|eot_id|>",
    10: "<|python_tag|>",
}
LLAMA3_BASE_VOCAB = 128000
LLAMA3_NUM_SPECIAL = 256

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
LLAMA3_TOKENIZER_DIR = SHARED_DATA / "tokenizer" / "llama3"

# A few KB of teaching-flavoured text to train the tiny BPE on.
_CORPUS = """\
A teaching assistant explains ideas step by step and checks that the student understood.
LoRA adds small low-rank matrices to the attention and MLP projections; only they are trained.
QLoRA keeps the base model in 4-bit NF4 and trains LoRA adapters in higher precision.
Photosynthesis turns light, water and carbon dioxide into glucose and oxygen.
The derivative of x squared is two x. The integral of a constant is the constant times x.
Question: What is the capital of France? Answer: Paris.
Which of these is a prime number? A) 4 B) 6 C) 7 D) 9. Answer: C. Explanation: 7 has no divisors.
Newton's second law says force equals mass times acceleration, F = m * a.
Python lists are ordered and mutable; tuples are ordered and immutable.
The mitochondria is the powerhouse of the cell. DNA stores genetic information.
What is LoRA? Why does the loss go down? How do I compute 12 + 30 = 42?
"""


def special_token_names() -> list[str]:
    """The 256 Llama 3 special tokens in id order (<|begin_of_text|> first)."""
    return [
        NAMED_SPECIAL_TOKENS.get(i, f"<|reserved_special_token_{i - 9}|>")
        for i in range(LLAMA3_NUM_SPECIAL)
    ]


def _wrap_fast(tok, model_max_length: int = 131072):
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|begin_of_text|>",
        eos_token="<|eot_id|>",
        pad_token="<|finetune_right_pad_id|>",
        model_max_length=model_max_length,
    )
    fast.chat_template = LLAMA3_CHAT_TEMPLATE
    return fast


def _add_bos_post_processor(tok) -> None:
    from tokenizers import processors

    bos_id = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(
            single="<|begin_of_text|> $A",
            pair="<|begin_of_text|> $A <|begin_of_text|> $B:1",
            special_tokens=[("<|begin_of_text|>", bos_id)],
        ),
    ])


def build_tiny_tokenizer(vocab_size: int = 512):
    """A byte-level BPE trained on a small corpus, with the 256 Llama 3 special tokens after it."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([_CORPUS] * 4, trainer=trainer)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in special_token_names()])
    _add_bos_post_processor(tok)
    return _wrap_fast(tok)


def read_tiktoken_ranks(path: str) -> dict[bytes, int]:
    """A tiktoken BPE file: one ``<base64 token> <rank>`` per line."""
    import base64

    with open(path, "rb") as f:
        return {base64.b64decode(tok): int(rank) for tok, rank in (line.split() for line in f if line.strip())}


def build_llama3_tokenizer(tokenizer_dir: Path = LLAMA3_TOKENIZER_DIR):
    """The real Llama 3 tokenizer (128,000 BPE tokens + 256 specials) and the real 3.2 chat template."""
    from tokenizers import AddedToken
    from transformers.convert_slow_tokenizer import TikTokenConverter

    class _Converter(TikTokenConverter):
        # Reading the ranks file is three lines; no need for the tiktoken package.
        load_tiktoken_bpe = staticmethod(read_tiktoken_ranks)

    tok = _Converter(vocab_file=str(tokenizer_dir / "tokenizer.model"), pattern=LLAMA3_PATTERN).converted()
    assert tok.get_vocab_size() == LLAMA3_BASE_VOCAB, tok.get_vocab_size()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in special_token_names()])
    _add_bos_post_processor(tok)
    fast = _wrap_fast(tok)
    fast.chat_template = (tokenizer_dir / "chat_template.Llama-3.2-3B-Instruct.jinja").read_text()
    return fast


def tiny_llama_config(vocab_size: int, **overrides):
    from transformers import LlamaConfig

    # initializer_range=0.3: with the default 0.02 a LoRA on a random tiny model barely learns.
    fields = dict(
        vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
        initializer_range=0.3, max_position_embeddings=2048,
    )
    fields.update(overrides)
    return LlamaConfig(**fields)


def build_tiny_llama(out_dir: Path, seed: int = 0, **config_overrides) -> Path:
    """Save a tiny random Llama + tokenizer to ``out_dir`` (a loadable model directory)."""
    import torch
    from transformers import GenerationConfig, LlamaForCausalLM

    tokenizer = build_tiny_tokenizer()
    config = tiny_llama_config(
        len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|eot_id|>"),
        pad_token_id=tokenizer.pad_token_id,
        **config_overrides,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id,
        eos_token_id=[config.eos_token_id, tokenizer.convert_tokens_to_ids("<|end_of_text|>")],
        pad_token_id=config.pad_token_id,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def save_random_adapter(base_dir: Path, out_dir: Path, seed: int = 1, r: int = 8, float16_exact: bool = False) -> Path:
    """A real PEFT LoRA adapter on all 7 projections with random (non-zero) B, so it changes output.

    ``float16_exact`` rounds its weights to float16, so an f16 GGUF LoRA holds exactly the same adapter.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    config = LoraConfig(
        r=r, lora_alpha=2 * r, lora_dropout=0.0, init_lora_weights=False, task_type="CAUSAL_LM",
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    )
    peft_model = get_peft_model(model, config)
    if float16_exact:
        with torch.no_grad():
            for name, parameter in peft_model.named_parameters():
                if "lora_" in name:
                    parameter.copy_(parameter.half().float())
    peft_model.save_pretrained(out_dir)
    return out_dir


def build_tiny_llama3(out_dir: Path, llama3_tokenizer, seed: int = 0, **config_overrides) -> Path:
    """A tiny random Llama with the real Llama 3 tokenizer (llama.cpp recognises it, so it converts to
    GGUF), its weights rounded to float16 so that an f16 GGUF holds exactly the same model."""
    import torch
    from transformers import GenerationConfig, LlamaForCausalLM

    eot = llama3_tokenizer.convert_tokens_to_ids("<|eot_id|>")
    config = tiny_llama_config(len(llama3_tokenizer), bos_token_id=llama3_tokenizer.bos_token_id, eos_token_id=eot,
                               **config_overrides)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(parameter.half().float())
    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id,
        eos_token_id=[eot, llama3_tokenizer.convert_tokens_to_ids("<|end_of_text|>")])
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    llama3_tokenizer.save_pretrained(out_dir)
    return out_dir

"""The chat template a run trains with, and the markers each backend masks the loss with.

Both backends render conversations with the same template text, so they train on the same tokens:
- transformers + TRL: ``{% generation %}`` markers in the template give the assistant-token mask
  (``assistant_only_loss=True``);
- Unsloth: ``train_on_responses_only`` finds the ``response_part`` / ``instruction_part`` token runs.
Both keep exactly the assistant's text and its end-of-turn token (``<|eot_id|>`` / ``</s>``) in the loss.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from inference.templates import LLAMA3_CHAT_TEMPLATE
from training.errors import TrainingError

logger = logging.getLogger(__name__)

# Llama 2 chat: "<s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {answer} </s>" per turn.
LLAMA2_CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{%- set system_message = messages[0]['content'] | trim %}{%- set messages = messages[1:] %}"
    "{%- else %}{%- set system_message = '' %}{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'user' %}"
    "{{- bos_token + '[INST] ' }}"
    "{%- if loop.first and system_message %}{{- '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' }}{%- endif %}"
    "{{- message['content'] | trim + ' [/INST]' }}"
    "{%- elif message['role'] == 'assistant' %}"
    "{% generation %}{{- ' ' + message['content'] | trim + ' ' + eos_token }}{% endgeneration %}"
    "{%- endif %}"
    "{%- endfor %}"
)


@dataclass(frozen=True)
class ChatTemplate:
    name: str
    text: str | None  # None: keep the tokenizer's own
    instruction_part: str | None  # where a user turn starts (Unsloth's train_on_responses_only)
    response_part: str | None  # where an assistant reply starts


TEMPLATES = {
    "llama-3.1": ChatTemplate("llama-3.1", LLAMA3_CHAT_TEMPLATE,
                              "<|start_header_id|>user<|end_header_id|>\n\n",
                              "<|start_header_id|>assistant<|end_header_id|>\n\n"),
    "llama-2": ChatTemplate("llama-2", LLAMA2_CHAT_TEMPLATE, "[INST]", "[/INST]"),
}


def has_generation_markers(template: str | None) -> bool:
    import re

    return bool(template) and re.search(r"\{%-?\s*generation\s*-?%\}", template) is not None


def choose_template(name: str, tokenizer: Any) -> ChatTemplate:
    """``auto``: llama-3.1 for a Llama 3 tokenizer (its official template has no generation markers),
    the tokenizer's own template for others."""
    if name == "auto":
        name = "llama-3.1" if "<|start_header_id|>" in tokenizer.get_vocab() else "model"
    if name in TEMPLATES:
        return TEMPLATES[name]
    if not tokenizer.chat_template:
        raise TrainingError("the model's tokenizer has no chat template: pass --chat_template llama-2 "
                            "(Llama 2 style [INST] turns) or --chat_template llama-3.1")
    return ChatTemplate("model", None, None, None)


def apply_template(tokenizer: Any, template: ChatTemplate) -> None:
    """Give the tokenizer the training template (it is saved with the adapter, so inference uses it)."""
    if template.text is not None:
        tokenizer.chat_template = template.text
    vocab = tokenizer.get_vocab()
    if tokenizer.pad_token is None or tokenizer.pad_token == tokenizer.eos_token:
        # Llama 3 reserves a pad token (as Unsloth and Meta use); padding with eos would blur the stop token.
        from inference.loading import LLAMA3_PAD

        tokenizer.pad_token = (LLAMA3_PAD if LLAMA3_PAD in vocab
                               else tokenizer.pad_token or tokenizer.unk_token or tokenizer.eos_token)
    logger.info("chat template: %s; pad token %r", template.name, tokenizer.pad_token)


def render(tokenizer: Any, conversation: list[dict[str, str]]) -> str:
    """The training text of one conversation (what the Unsloth path tokenises)."""
    return tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=False)

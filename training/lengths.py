"""Examples longer than the run allows: truncate or drop them, and count either way.

SFT: conversations longer than ``max_seq_length``. DPO: prompts longer than ``max_prompt_length`` lose
their earliest turns, and pairs longer than ``max_length`` are truncated (the replies' ends) or dropped.
The trainers would truncate by themselves, and TRL would silently drop an example whose answer starts
after the cut. Measuring here first (with the training template) makes both visible: dropped rows land
in ``skipped_rows`` and truncations are counted in metrics.json.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from training.templates import has_generation_markers

logger = logging.getLogger(__name__)

TOO_LONG = "longer than max_seq_length (overlong=drop)"
NO_ANSWER_LEFT = "no assistant tokens within max_seq_length"


def measure(tokenizer: Any, conversations: list[list[dict]], batch_size: int = 256) -> list[tuple[int, int | None]]:
    """``(n_tokens, index of the first assistant token)`` for each conversation (index None: no mask)."""
    masked = has_generation_markers(tokenizer.chat_template)
    out: list[tuple[int, int | None]] = []
    for start in range(0, len(conversations), batch_size):
        batch = conversations[start:start + batch_size]
        encoded = tokenizer.apply_chat_template(batch, tokenize=True, return_dict=True,
                                                return_assistant_tokens_mask=masked)
        masks = encoded["assistant_masks"] if masked else [None] * len(batch)
        for ids, mask in zip(encoded["input_ids"], masks):
            first = next((i for i, bit in enumerate(mask) if bit), len(ids)) if mask is not None else None
            out.append((len(ids), first))
    return out


def fit_lengths(tokenizer: Any, conversations: list[list[dict]], max_len: int, policy: str,
                skipped: Counter, stats: Counter, label: str = "") -> list[list[dict]]:
    """Keep what fits; ``policy`` truncate keeps overlong rows whose answer starts inside the window."""
    kept = []
    for conversation, (n_tokens, first_answer) in zip(conversations, measure(tokenizer, conversations)):
        if n_tokens <= max_len:
            kept.append(conversation)
        elif policy == "drop":
            skipped[label + TOO_LONG] += 1
        elif first_answer is not None and first_answer >= max_len:
            skipped[label + NO_ANSWER_LEFT] += 1
        else:
            stats[label + "truncated"] += 1
            kept.append(conversation)
    if stats.get(label + "truncated") or skipped.get(label + TOO_LONG) or skipped.get(label + NO_ANSWER_LEFT):
        logger.info("%s%d conversations truncated to %d tokens, %d dropped as too long, %d dropped with no "
                    "answer inside the window", label, stats.get(label + "truncated", 0), max_len,
                    skipped.get(label + TOO_LONG, 0), skipped.get(label + NO_ANSWER_LEFT, 0))
    return kept


PROMPT_TOO_LONG = "last question longer than max_prompt_length"
PAIR_TOO_LONG = "longer than max_length (overlong=drop)"
SHORTENED = "prompts shortened to max_prompt_length (earlier turns left out)"
PAIR_TRUNCATED = "pairs truncated to max_length"


def _token_count(tokenizer: Any, conversations: list[list[dict]], add_generation_prompt: bool) -> list[int]:
    encoded = tokenizer.apply_chat_template(conversations, tokenize=True, return_dict=True,
                                            add_generation_prompt=add_generation_prompt)
    return [len(ids) for ids in encoded["input_ids"]]


def _fit_prompt(tokenizer: Any, prompt: list[dict], limit: int) -> tuple[list[dict], int]:
    """``prompt`` without its earliest user/assistant exchanges until it fits ``limit`` tokens (the system
    message and the last question stay); returns it and its length."""
    length = _token_count(tokenizer, [prompt], True)[0]
    system = prompt[:1] if prompt[0]["role"] == "system" else []
    turns = prompt[len(system):]
    while length > limit and len(turns) > 1:
        turns = turns[2:]  # one user question and the assistant's answer
        length = _token_count(tokenizer, [system + turns], True)[0]
    return system + turns, length


def fit_pair_lengths(tokenizer: Any, pairs: list, max_prompt_length: int, max_length: int, policy: str,
                     skipped: Counter, stats: Counter, label: str = "") -> list:
    """The pairs TRL will train on as measured here: prompts within ``max_prompt_length``; pairs whose
    prompt + longer reply exceed ``max_length`` truncated (TRL cuts the reply's end) or dropped."""
    from training.feedback import Pair

    kept = []
    prompts = _token_count(tokenizer, [p.prompt for p in pairs], True) if pairs else []
    for pair, prompt_tokens in zip(pairs, prompts):
        if prompt_tokens > max_prompt_length:
            prompt, prompt_tokens = _fit_prompt(tokenizer, pair.prompt, max_prompt_length)
            if prompt_tokens > max_prompt_length:
                skipped[label + PROMPT_TOO_LONG] += 1
                continue
            stats[label + SHORTENED] += 1
            pair = Pair(prompt, pair.chosen, pair.rejected, pair.source)
        kept.append((pair, prompt_tokens))
    if not kept:
        return []
    chosen = _token_count(tokenizer, [p.prompt + [{"role": "assistant", "content": p.chosen}] for p, _ in kept], False)
    rejected = _token_count(tokenizer, [p.prompt + [{"role": "assistant", "content": p.rejected}] for p, _ in kept],
                            False)
    fitted = []
    for (pair, _), chosen_tokens, rejected_tokens in zip(kept, chosen, rejected):
        if max(chosen_tokens, rejected_tokens) <= max_length:
            fitted.append(pair)
        elif policy == "drop":
            skipped[label + PAIR_TOO_LONG] += 1
        else:
            stats[label + PAIR_TRUNCATED] += 1
            fitted.append(pair)
    if stats.get(label + SHORTENED) or stats.get(label + PAIR_TRUNCATED) or skipped.get(label + PROMPT_TOO_LONG) \
            or skipped.get(label + PAIR_TOO_LONG):
        logger.info("%s%d prompts shortened to %d tokens, %d dropped (last question alone too long); %d pairs "
                    "truncated to %d tokens, %d dropped as too long", label, stats.get(label + SHORTENED, 0),
                    max_prompt_length, skipped.get(label + PROMPT_TOO_LONG, 0), stats.get(label + PAIR_TRUNCATED, 0),
                    max_length, skipped.get(label + PAIR_TOO_LONG, 0))
    return fitted

"""Conversations longer than ``max_seq_length``: truncate or drop them, and count either way.

The trainers would truncate by themselves, and TRL would silently drop an example whose answer starts
after the cut. Measuring here first (with the training template and its assistant mask) makes both
visible: dropped rows land in ``skipped_rows`` and truncations are counted in metrics.json.
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

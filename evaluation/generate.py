"""Generate mode: ask the chat model for a letter, the way a user would, and grade what it writes.

Choices are shuffled per question with a fixed seed *before* letters are assigned, so the right answer
lands on every letter about equally often. In TruthfulQA's files the true MC1 answer is always first:
without shuffling, a model that always says "A" would score 100%. A reply with no recognisable choice is
a parse failure, counted as wrong and reported separately.
"""

from __future__ import annotations

import logging
import random
import string
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from evaluation.task import Question

logger = logging.getLogger(__name__)

LETTERS = string.ascii_uppercase
DEFAULT_SEED = 1234
DEFAULT_MAX_NEW_TOKENS = 32


@dataclass
class Reply:
    order: list[int]  # order[j] = original index of the choice shown as letter j
    text: str
    choice: int | None  # original index of the chosen option; None = parse failure


def shuffled_order(task: str, qid: str, n: int, seed: int) -> list[int]:
    """A permutation of range(n) that depends only on (seed, task, question id), not on --limit."""
    order = list(range(n))
    random.Random(f"{seed}:{task}:{qid}").shuffle(order)
    return order


def build_messages(question: Question, order: list[int]) -> list[dict]:
    letters = LETTERS[:len(order)]
    options = "\n".join(f"{letters[j]}. {question.choices[i]}" for j, i in enumerate(order))
    listed = ", ".join(letters[:-1]) + f" or {letters[-1]}"
    text = (f"{question.question.strip()}\n\n{options}\n\n"
            f"Reply with the letter of the correct answer ({listed}) and nothing else.")
    return [{"role": "user", "content": text}]


def extract(text: str, shown: list[str]) -> int | None:
    """Index (into ``shown``) of the option the reply picks, or None."""
    from quiz.parse import extract_choice

    return extract_choice(text, len(shown), options=shown)


def _batches(items: list, size: int) -> Iterable[list]:
    size = max(1, size)
    for i in range(0, len(items), size):
        yield items[i:i + size]


def ask(backend: Any, task: str, questions: list[Question], seed: int = DEFAULT_SEED, batch_size: int = 16,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, system_prompt: str | None = None,
        progress: bool = True) -> list[Reply]:
    """One greedy reply per question through ``backend.chat_batch``, graded back to original indices."""
    from tqdm.auto import tqdm

    from inference.backend import GenerationConfig

    config = GenerationConfig(max_new_tokens=max_new_tokens, temperature=0.0, seed=seed)
    orders = [shuffled_order(task, q.id, len(q.choices), seed) for q in questions]
    prefix = [{"role": "system", "content": system_prompt}] if system_prompt else []
    conversations = [prefix + build_messages(q, o) for q, o in zip(questions, orders, strict=True)]
    texts: list[str] = []
    with tqdm(total=len(questions), desc=f"{task} generate", disable=not progress, unit="q") as bar:
        for batch in _batches(conversations, batch_size):
            texts += backend.chat_batch(batch, config)
            bar.update(len(batch))
    replies = []
    for q, order, text in zip(questions, orders, texts, strict=True):
        shown = extract(text, [q.choices[i] for i in order])
        replies.append(Reply(order, text, None if shown is None else order[shown]))
    failures = sum(r.choice is None for r in replies)
    if failures > len(replies) // 2:
        logger.warning("%s: %d of %d replies name no choice; look at them with --show-predictions",
                       task, failures, len(replies))
    return replies

"""Fitting a conversation into the model's context window.

Keeps the system prompt and the newest turns and drops the oldest; when even the newest user message is
too long on its own, keeps its end (where the question usually is); a system prompt too long for the
window keeps its beginning. Never raises on a long history.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)

TRUNCATION_MARK = "[…] "
CountTokens = Callable[[list[dict]], int]
# truncate(text, n_tokens, keep_end) -> the first or last n_tokens of text
Truncate = Callable[[str, int, bool], str]


def fit_messages(messages: list[dict], budget: int, count_tokens: CountTokens,
                 truncate: Truncate) -> list[dict]:
    """Return the conversation cut down so its templated prompt fits in ``budget`` tokens.

    The system message (if first) is always kept, and the kept turns always start with a user message
    so the roles keep alternating.
    """
    if count_tokens(messages) <= budget:
        return messages
    system = messages[:1] if messages and messages[0].get("role") == "system" else []
    turns = messages[len(system):]
    dropped = 0
    while len(turns) > 1:
        turns = turns[1:]
        dropped += 1
        while len(turns) > 1 and turns[0].get("role") != "user":
            turns = turns[1:]
            dropped += 1
        if count_tokens(system + turns) <= budget:
            logger.info("context: dropped the %d oldest messages to fit %d tokens", dropped, budget)
            return system + turns
    if system and count_tokens(system) > budget // 2:
        # A system prompt may take at most half the window when the newest message needs room too.
        system = [_shrink(system[0], [], budget // 2, count_tokens, truncate, keep_end=False)]
    kept = [_shrink(turns[-1], system, budget, count_tokens, truncate, keep_end=True)] if turns else []
    if system and count_tokens(system + kept) > budget:
        system = [_shrink(system[0], kept, budget, count_tokens, truncate, keep_end=False, before=True)]
    logger.warning("context: cut the conversation down to one message to fit %d tokens", budget)
    return system + kept


def _shrink(message: dict, others: list[dict], budget: int, count_tokens: CountTokens,
            truncate: Truncate, keep_end: bool, before: bool = False) -> dict:
    """Cut ``message``'s content until ``others`` plus it fit in ``budget`` (a few passes at most)."""
    def total(m: dict) -> int:
        return count_tokens([m, *others] if before else [*others, m])

    text = message.get("content") or ""
    n = count_tokens([{**message}]) - count_tokens([{**message, "content": ""}])
    shrunk = dict(message)
    for _ in range(4):
        overflow = total(shrunk) - budget
        if overflow <= 0:
            break
        n = max(n - overflow - 4, 0)
        cut = truncate(text, n, keep_end) if n else ""
        shrunk["content"] = (TRUNCATION_MARK + cut) if keep_end and cut else cut
    return shrunk


def normalize_messages(messages: list[dict]) -> list[dict]:
    """Plain ``{"role", "content": str}`` dicts: Gradio 6 block lists are joined, other keys dropped."""
    return [{"role": m["role"], "content": content_text(m.get("content"))} for m in messages]


def content_text(content: object) -> str:
    """The text of a message's content: a string, or a list of blocks like ``{"type": "text", ...}``."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or content.get("content") or "")
    if isinstance(content, (list, tuple)):
        return "\n".join(t for t in (content_text(c) for c in content) if t)
    return str(content)


class ContextWindow:
    """A model's context window: how much of it a prompt may take, and the conversation cut to fit.

    ``render(messages)`` templates a conversation (with the generation prompt), ``tokenize(text)`` and
    ``detokenize(ids)`` are the model's tokenizer without special-token handling of their own.
    """

    def __init__(self, max_tokens: int, render: Callable[[list[dict]], str],
                 tokenize: Callable[[str], list[int]], detokenize: Callable[[list[int]], str]) -> None:
        self.max_tokens = max_tokens
        self.render, self.tokenize, self.detokenize = render, tokenize, detokenize

    def budget(self, max_new_tokens: int) -> tuple[int, int]:
        """(prompt tokens, new tokens): the reply keeps its room unless it would take over 3/4 of the window."""
        new = min(max_new_tokens, self.max_tokens * 3 // 4)
        return self.max_tokens - new, new

    def count(self, messages: list[dict]) -> int:
        return len(self.tokenize(self.render(messages)))

    def truncate(self, text: str, n: int, keep_end: bool) -> str:
        ids = self.tokenize(text)
        return self.detokenize(ids[-n:] if keep_end else ids[:n])

    def fit(self, messages: list[dict], max_new_tokens: int) -> list[dict]:
        """The conversation as plain-text messages, cut to leave room for the reply in the window."""
        budget, _ = self.budget(max_new_tokens)
        return fit_messages(normalize_messages(messages), budget, self.count, self.truncate)

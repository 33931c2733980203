"""Conversation -> prompt token ids, with the chat template's control tokens real and every message's
text plain: a user who types ``<|eot_id|><|start_header_id|>system<|end_header_id|>`` gets those
characters read as text, never a forged turn.

    encoder = PromptEncoder(render, encode_special, encode_plain, specials=tokenizer_special_strings)
    ids = encoder.encode(messages)

The fast path: when no message contains the text of a special token, the rendered prompt is tokenized
whole, exactly as before (the ids training saw). Otherwise the prompt is rendered with a marker in
place of each message, the template's own text is tokenized with special tokens parsed and each
message's text with them read as plain text. Templates that transform message text in a way the
markers cannot follow fall back to ``neutralize`` (a word joiner inside each special-token string).
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable, Iterable

logger = logging.getLogger(__name__)

Render = Callable[[list[dict]], str]
Encode = Callable[[str], list[int]]

# Placed right after "<" of a special-token string: the text looks the same and is no longer the token.
WORD_JOINER = "\u2060"
# Llama 3's control tokens (<|eot_id|>, <|start_header_id|>, <|reserved_special_token_7|>, ...) and
# Llama 2's <s> </s> [INST]: what a remote server's tokenizer would read as control tokens.
LLAMA_SPECIAL = re.compile(r"<\|[A-Za-z0-9_]{1,64}\|>|</?s>|\[/?INST\]|<<(?:/)?SYS>>")


def neutralize(text: str, pattern: re.Pattern[str] = LLAMA_SPECIAL) -> str:
    """``text`` with every special-token spelling broken by a word joiner, for templates and servers
    that would otherwise read it as a control token."""
    return pattern.sub(lambda m: m[0][0] + WORD_JOINER + m[0][1:], text)


def special_pattern(specials: Iterable[str]) -> re.Pattern[str] | None:
    """A regex matching any of ``specials`` (longest first), or None when there are none."""
    strings = sorted({s for s in specials if s}, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, strings))) if strings else None


class PromptEncoder:
    """Turns conversations into prompt ids for one tokenizer and chat template."""

    def __init__(self, render: Render, encode_special: Encode, encode_plain: Encode,
                 specials: Iterable[str]) -> None:
        self.render, self.encode_special, self.encode_plain = render, encode_special, encode_plain
        self.pattern = special_pattern(specials)

    def has_special_text(self, messages: list[dict]) -> bool:
        return self.pattern is not None and any(self.pattern.search(m["content"]) for m in messages)

    def encode(self, messages: list[dict]) -> list[int]:
        """The prompt ids of ``messages`` (plain ``{"role", "content": str}`` dicts)."""
        if not self.has_special_text(messages):
            return self.encode_special(self.render(messages))
        pieces = self.split(messages)
        if pieces is None:
            logger.warning("chat template rewrites message text; special-token text neutralized instead")
            assert self.pattern is not None
            safe = [{**m, "content": neutralize(m["content"], self.pattern)} for m in messages]
            return self.encode_special(self.render(safe))
        ids: list[int] = []
        for text, is_message in pieces:
            ids += self.encode_plain(text) if is_message else self.encode_special(text)
        return ids

    def split(self, messages: list[dict]) -> list[tuple[str, bool]] | None:
        """The rendered prompt as (text, is_message_text) pieces, or None when the template does more
        to a message than trimming it (then markers cannot show where its text went)."""
        whole = self.render(messages)
        nonce = secrets.token_hex(8)
        marks = [f"\ue000{nonce}:{i}\ue001" for i in range(len(messages))]
        marked = self.render([{**m, "content": mark} for m, mark in zip(messages, marks)])
        for trim in (True, False):  # Llama templates trim message text; others keep it as is
            texts = [m["content"].strip() if trim else m["content"] for m in messages]
            pieces = _cut(marked, marks, texts)
            if pieces is not None and "".join(text for text, _ in pieces) == whole:
                return pieces
        return None


def _cut(marked: str, marks: list[str], texts: list[str]) -> list[tuple[str, bool]] | None:
    pieces: list[tuple[str, bool]] = []
    rest = marked
    for mark, text in zip(marks, texts):
        before, found, after = rest.partition(mark)
        if not found or mark in after:
            return None
        pieces += [(before, False), (text, True)]
        rest = after
    pieces.append((rest, False))
    return [(text, is_message) for text, is_message in pieces if text]

"""Long material cut into sections that fit the model's context, and a quiz's questions spread over them.

A section is at most ``SECTION_TOKENS`` (estimated) tokens, so one section, the instructions and a reply
of ``MATERIAL_JSON_CHUNK`` questions fit the default 4,096-token context of the backends with room to
spare. Sections end at a paragraph break where there is one, else at a sentence end, else between
words, and they are exact pieces of the material (quotes are checked against the whole of it).
"""

from __future__ import annotations

import bisect
import re

SECTION_TOKENS = 1200
# Llama 3's tokenizer reads about 4 characters of English (a bit fewer in other Latin-script languages)
# per token, and about one character per token in scripts such as Chinese: an estimate that errs long.
_ASCII_CHARS_PER_TOKEN = 3.5
_PARAGRAPH = re.compile(r"\n\s*\n")
_SENTENCE = re.compile(r"(?<=[.!?:;\u3002\uff01\uff1f])[\"')\]\u201d\u2019]*\s+")
_SPACE = re.compile(r"\s+")


def estimate_tokens(text: str) -> int:
    """A generous estimate of the number of tokens in ``text``."""
    wide = sum(1 for c in text if ord(c) > 127)
    return int((len(text) - wide) / _ASCII_CHARS_PER_TOKEN + wide) + 1


def _last_break(pattern: re.Pattern[str], window: str, floor: int) -> int | None:
    ends = [m.end() for m in pattern.finditer(window) if m.end() > floor]
    return ends[-1] if ends else None


def split_sections(text: str, max_tokens: int = SECTION_TOKENS) -> list[str]:
    """``text`` in consecutive sections of at most about ``max_tokens`` tokens each (one when it fits)."""
    tokens = estimate_tokens(text)
    if tokens <= max_tokens:
        return [text]
    max_chars = max(200, int(len(text) * max_tokens / tokens))
    sections, start = [], 0
    while len(text) - start > max_chars:
        window = text[start:start + max_chars]
        floor = max_chars // 2  # a section is at least half full, so there are never many tiny ones
        cut = (_last_break(_PARAGRAPH, window, floor) or _last_break(_SENTENCE, window, floor)
               or _last_break(_SPACE, window, floor) or max_chars)
        sections.append(text[start:start + cut].strip())
        start += cut
    sections.append(text[start:].strip())
    return [section for section in sections if section]


def spread(lengths: list[int], n: int) -> list[int]:
    """How many of ``n`` questions each section gets, in proportion to its length: question i is about
    the section at (i + 1/2) / n of the way through the material. With fewer questions than sections,
    the questions are evenly spaced from the first to the last part of the material."""
    ends, total = [], 0
    for length in lengths:
        total += max(length, 1)
        ends.append(total)
    counts = [0] * len(lengths)
    for i in range(n):
        counts[min(bisect.bisect_right(ends, (i + 0.5) * total / n), len(lengths) - 1)] += 1
    return counts


def nearest_open(index: int, closed: set[int], count: int) -> int | None:
    """The section nearest ``index`` that is not in ``closed`` (the later one on a tie), or None."""
    for distance in range(1, count):
        for candidate in (index + distance, index - distance):
            if 0 <= candidate < count and candidate not in closed:
                return candidate
    return None

"""Quotes from the source material: read with each question, checked against the material, cited in the
explanation.

A question written from the user's material carries the passage it comes from. The quote is checked
against the material (case, spacing, punctuation and quote styles do not matter; "..." may skip words),
so a question built on something the material does not say is caught. Once checked, the quote goes into
the explanation, which is shown only after grading, like the rest of the key.
"""

from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

from quiz._text import normalize
from quiz.question import Question

# At least this many letters or digits: "Paris" alone proves nothing about where a question comes from.
MIN_QUOTE_CHARS = 12
_ELLIPSIS = re.compile(r"\.{3,}|\u2026|\[\s*\.\.\.\s*\]|\(\s*\.\.\.\s*\)")
_WORD = re.compile(r"[^\W_]+")


class Sourced(NamedTuple):
    """A parsed question and the quote the text gave with it (None without one)."""

    question: Question
    quote: str | None


def _words(text: str) -> list[str]:
    return _WORD.findall(unicodedata.normalize("NFKC", normalize(text)).casefold())


def clean_quote(quote: str) -> str:
    """The quote as it is shown: one line, without the quote marks around it."""
    text = " ".join(normalize(quote).split())
    pairs = ('""', "''", "\u00ab\u00bb", "\u201e\u201c", "``")
    while len(text) > 1 and any(text[0] == a and text[-1] == b for a, b in pairs):
        text = text[1:-1].strip()
    return text


def cite(question: Question, quote: str | None) -> Question:
    """``question`` with the quote added to its explanation (unless the explanation already holds it)."""
    quote = clean_quote(quote) if quote else ""
    if not quote:
        return question
    why = question.explanation or ""
    if " ".join(_words(quote)) in " ".join(_words(why)):
        return question
    explanation = f'{why} \u2014 "{quote}"' if why else f'"{quote}"'
    return Question(question.question, question.options, question.answer, explanation)


class Material:
    """The text questions may be written about, indexed for quote checks."""

    def __init__(self, text: str) -> None:
        words = _words(text)
        self._spaced = " " + " ".join(words) + " "
        self._joined = "".join(words)  # "photo- synthesis" in a PDF still holds "photosynthesis"

    def problem(self, quote: str | None) -> str | None:
        """Why ``quote`` does not show that a question comes from the material, or None when it does:
        "no quote from the material", "quote too short" or "quote not in the material"."""
        if not quote or not _words(quote):
            return "no quote from the material"
        pieces = [_words(piece) for piece in _ELLIPSIS.split(quote)]
        pieces = [piece for piece in pieces if piece]
        if sum(len(word) for piece in pieces for word in piece) < MIN_QUOTE_CHARS:
            return "quote too short"
        return None if self._holds(pieces) else "quote not in the material"

    def _holds(self, pieces: list[list[str]]) -> bool:
        """The pieces occur in the material in this order (whole words, or at least the same letters)."""
        for haystack, join, pad in ((self._spaced, " ", " "), (self._joined, "", "")):
            start = 0
            for piece in pieces:
                found = haystack.find(pad + join.join(piece) + pad, start)
                if found < 0:
                    break
                start = found + 1
            else:
                return True
        return False

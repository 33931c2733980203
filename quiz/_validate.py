"""Which generated questions a quiz can use, and why the others are rejected."""

from __future__ import annotations

import re

from quiz._prompt import EXAMPLE_QUESTIONS
from quiz._text import squash
from quiz.question import Question

N_OPTIONS = 4

# Options that point at other options make no sense once the options are shuffled.
_CATCH_ALL = re.compile(
    r"^(?:(?:all|none|any)\s+of\s+(?:the\s+)?(?:above|these|those|them|the\s+options|the\s+answers)"
    r"|all\s+the\s+above|(?:both|neither|either)\s+(?:of\s+(?:the\s+)?(?:above|these|them)|[A-D]\b)"
    r"|(?:options?\s+|only\s+)?[A-D](?:\s*,\s*[A-D])*\s*(?:and|&|or|nor|\+)\s*[A-D](?:\s+only)?)\b",
    re.IGNORECASE)

# Reasons, in the order they are checked; the error message counts them by these names.
REASONS = ("reply without questions", "no question text", "not 4 options", "empty option", "repeated option", "option refers to others",
           "no answer key", "copied the example", "duplicate question")

_EXAMPLES = {squash(stem) for stem in EXAMPLE_QUESTIONS}


def is_catch_all(option: str) -> bool:
    """"All of the above", "None of these", "Both A and B", "A and C" ..."""
    return bool(_CATCH_ALL.match(option.strip().rstrip(".").strip()))


def rejection(question: Question, seen: set[str]) -> str | None:
    """Why ``question`` cannot go into a generated quiz (one of ``REASONS``), or None if it can.

    ``seen`` holds the normalised stems already accepted; it is not changed here.
    """
    if not question.question.strip():
        return "no question text"
    if len(question.options) != N_OPTIONS:
        return "not 4 options"
    if any(not option.strip() for option in question.options):
        return "empty option"
    if len({squash(option) for option in question.options}) != N_OPTIONS:
        return "repeated option"
    if any(is_catch_all(option) for option in question.options):
        return "option refers to others"
    if question.answer is None:
        return "no answer key"
    key = squash(question.question)
    if key in _EXAMPLES:
        return "copied the example"
    if key in seen:
        return "duplicate question"
    return None

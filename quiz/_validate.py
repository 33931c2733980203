"""Which generated questions a quiz can use, and why the others are rejected."""

from __future__ import annotations

import re

from quiz._prompt import EXAMPLE_QUESTIONS
from quiz._quotes import Material
from quiz._text import squash
from quiz.question import Question

N_OPTIONS = 4

# Options that point at other options make no sense once the options are shuffled.
_CATCH_ALL = re.compile(
    r"^(?:(?i:all|none|any)\s+(?i:of)\s+(?:(?i:the)\s+)?(?i:above|these|those|them|the\s+options|the\s+answers)"
    r"|(?i:all\s+the\s+above)"
    r"|(?i:both|neither|either)\s+(?:(?i:of)\s+(?:(?i:the)\s+)?(?i:above|these|them)|[A-D]\b)"
    r"|(?:(?i:options?|only)\s+)?[A-D](?:\s*,\s*[A-D])*\s*(?:(?i:and|or|nor)|&|\+)\s*[A-D](?:\s+(?i:only))?"
    r"|(?i:only|options?|choices?)\s+[A-D])\b")  # capital letters only: "only a few" is an answer
# The whole option is a reference to lower-case labels: "both a and b", "only c".
_REFERENCE = re.compile(
    r"(?i:(?:both|neither|either|only|options?|choices?)\s+)?[a-d](?:\s*,\s*[a-d])*"
    r"(?:\s*(?:(?i:and|or|nor)|&|\+)\s*[a-d])?(?:\s+(?i:only))?")

# Reasons, in the order they are checked; the error message counts them by these names.
REASONS = ("reply without questions", "no question text", "not 4 options", "empty option", "repeated option",
           "option refers to others", "no answer key", "copied the example", "no quote from the material",
           "quote too short", "quote not in the material", "duplicate question")

_EXAMPLES = {squash(stem) for stem in EXAMPLE_QUESTIONS}


def is_catch_all(option: str) -> bool:
    """"All of the above", "None of these", "Both A and B", "A and C" ..."""
    text = option.strip().rstrip(".").strip()
    return bool(_CATCH_ALL.match(text)) or (len(text) > 1 and bool(_REFERENCE.fullmatch(text)))


def rejection(question: Question, seen: set[str], material: Material | None = None,
              quote: str | None = None) -> str | None:
    """Why ``question`` cannot go into a generated quiz (one of ``REASONS``), or None if it can.

    ``seen`` holds the normalised stems already accepted; it is not changed here. With ``material``,
    the question's ``quote`` must be a passage of it.
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
    if material is not None:
        problem = material.problem(quote)
        if problem is not None:
            return problem
    if key in seen:
        return "duplicate question"
    return None

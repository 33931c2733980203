"""Parse the quiz text a model wrote into questions. Standard library only, and it never raises.

    >>> from quiz.parse import parse_quiz
    >>> [q.answer for q in parse_quiz("1. 2 + 2 = ?\\nA) 3\\nB) 4\\nAnswer: B")]
    [1]

Layouts it reads: numbered or unnumbered questions (``1.``, ``Q1:``, ``Question 3``,
``**Question 1**``, ``### Question 2``, ``QUESTION 1 ... END``, ``Question:``, ``Frage 2:``,
``Pregunta 3``); options ``A)``, ``A.``, ``(A)``, ``a)``, ``- A.``, ``Option A:``, ``1)``-``4)``, one
per line or all on one line; answers ``Answer: B``, ``**Answer:** B) text``, ``Correct answer: (c)``,
``Correct option: A``, ``Réponse : B``, ``Richtige Antwort: C``, on the next line, as the option's
text, on an option's line (``D) Lille (Answer: B)``), in an ``Answer Key`` or a solutions section
with explanations at the end, or as a mark on the option (a check mark, ``(Correct)``);
explanations in seven languages; quotes of the source (``Quote: "..."``); Markdown tables with one
row per question; and JSON (a list, or ``{"questions": [...]}``).
"""

from __future__ import annotations

from quiz._answers import extract_choice
from quiz._json import parse_json
from quiz._layouts import parse_text
from quiz._quotes import Sourced, cite
from quiz.question import Question

__all__ = ["parse_quiz", "extract_choice"]


def parse_sourced(text: str) -> list[Sourced]:
    """Like ``parse_quiz``, with each question's quote ("Quote: ..." line, "quote" key) kept apart."""
    if not isinstance(text, str):
        raise TypeError(f"parse_quiz needs the model's reply as a str, got {type(text).__name__}")
    return parse_json(text) or parse_text(text)


def parse_quiz(text: str) -> list[Question]:
    """Every question recoverable from ``text``, in order; ``[]`` when it holds no quiz.

    A question has a non-empty stem and at least two options; ``answer`` is None when the text
    gives no key. A last question cut off mid-way (fewer options than the others, or no key where
    all others have one) is dropped. A quote of the source ("Quote: ...") is added to the
    explanation. Never raises for a ``str``.
    """
    return [cite(question, quote) for question, quote in parse_sourced(text)]

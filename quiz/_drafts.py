"""Questions under construction while a text quiz is read, and how they become ``Question``s."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from quiz import _lines as lines
from quiz._answers import resolve_answer
from quiz.question import Question

_KEY_MANY = re.compile(r"(?:(?i:q|question)\s?)?(\d{1,3})\s?[.):\-]\s?\(?([A-Ha-h])\)?(?=[\s,;.)]|$)")
_KEY_ONE = re.compile(r"^(?:(?i:q|question)\s?)?(\d{1,3})\s?[.):\-]\s?(.+)$")


@dataclass
class Draft:
    """A question being read: what has been seen so far, and where in the question the reader is."""

    number: int | None = None
    header_delim: str | None = None
    stem: list[str] = field(default_factory=list)
    options: list[lines.Option] = field(default_factory=list)
    marked: int | None = None
    answers: list[str] = field(default_factory=list)
    explanation: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # text after the options; "" marks a blank line
    stage: str = "stem"  # stem -> options -> done | answer_next | explanation

    def texts(self) -> list[str]:
        return [o.text for o in self.options]

    def labels(self) -> list[str]:
        return [o.label for o in self.options]


def last_paragraph(text_lines: list[str]) -> list[str]:
    """The lines after the last blank ("") entry: the stem of an unnumbered question, without the
    chatter paragraphs before it."""
    blanks = [i for i, line in enumerate(text_lines) if line == ""]
    start = blanks[-1] + 1 if blanks else 0
    paragraph = text_lines[start:]
    if paragraph:
        return paragraph
    chunks = [line for line in text_lines if line]
    return chunks[-1:]


def clean_option(text: str) -> str:
    """Option text without the commas of "0. 3, 1. 4, ..." lists."""
    return text.strip().rstrip(",;").strip()


def key_entries(text: str) -> list[tuple[int, str]]:
    """(question number, answer) pairs of an answer-key line: "1. A 2. B", "1-A, 2-C", "3) Paris"."""
    many = [(int(n), letter) for n, letter in _KEY_MANY.findall(text)]
    if len(many) >= 2:
        return many
    one = _KEY_ONE.match(text)
    return [(int(one.group(1)), one.group(2))] if one else []


def to_question(draft: Draft) -> Question | None:
    """The finished question, or None without a stem or two options. Label lines ("Options:") and
    metadata ("Subject: ...") are dropped from the stem; the first answer that resolves wins,
    then a mark on an option."""
    stem_lines = [line for line in draft.stem if not lines.is_noise(line.strip())]
    if len(stem_lines) > 1:
        stem_lines = [line for line in stem_lines if not lines.is_meta(line.strip())] or stem_lines
    stem = "\n".join(stem_lines).strip()
    texts = draft.texts()
    if not stem or len(texts) < 2:
        return None
    answer = next((i for i in (resolve_answer(raw, texts, draft.labels()) for raw in draft.answers)
                   if i is not None), draft.marked)
    explanation = " ".join(" ".join(draft.explanation).split()) or None
    return Question(stem, texts, answer, explanation)


def drop_truncated(questions: list[Question]) -> list[Question]:
    """Drop a last question that was cut off: fewer options than the others, or no key where
    every other question has one."""
    if len(questions) < 2:
        return questions
    *others, last = questions
    typical = Counter(len(q.options) for q in others).most_common(1)[0][0]
    keyed = all(q.answer is not None for q in others)
    if len(last.options) < typical or (keyed and last.answer is None):
        return others
    return questions

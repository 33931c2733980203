"""Questions under construction while a text quiz is read, and how they become ``Question``s."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from quiz import _lines as lines
from quiz import _words as words
from quiz._answers import resolve_answer
from quiz._quotes import Sourced
from quiz._text import squash
from quiz.question import Question

_Q = words.alternatives(words.QUESTION)
_KEY_MANY = re.compile(rf"(?:(?i:{_Q})\s?)?(\d{{1,3}})\s?[.):\-]\s?\(?([A-Ha-h])\)?(?=[\s,;.)]|$)")
_KEY_ONE = re.compile(rf"^(?:(?i:{_Q})\s?)?(\d{{1,3}})\s?[.):\-]\s?(.+)$")
# The label that opens a solutions entry: "B", "B)", "(B)", "B." (a lower-case one only with its bracket or dot).
_ENTRY_LABEL = re.compile(r"^(?:\(([A-Ha-h])\)|([A-H])(?:[).:]|(?=\s|$))|([a-h])[).:])")
_ENTRY_SEPARATOR = re.compile(r"\s[-\u2013\u2014]\s|[:;]\s|\.\s")
_LEADING_PUNCTUATION = " -\u2013\u2014:.,;)"


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
    quote: list[str] = field(default_factory=list)
    key_explanation: list[str] = field(default_factory=list)  # from a solutions section after the quiz
    pending: list[str] = field(default_factory=list)  # text after the options; "" marks a blank line
    stage: str = "stem"  # stem -> options -> done | answer_next | explanation | quote

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


def split_entry(raw: str, texts: list[str], labels: list[str]) -> tuple[str, str | None]:
    """A solutions entry split into its answer and explanation: "B – because ..." -> ("B", "because ..."),
    "B) Paris. Paris is ..." -> ("B", "Paris is ..."), "Paris: the capital ..." -> ("Paris", "the capital ...")."""
    text = " ".join(raw.split())
    separator = _ENTRY_SEPARATOR.search(text)
    head, tail = (text[:separator.start()].strip(), text[separator.end():].strip()) if separator else (text, "")
    if squash(head) and squash(head) in [squash(t) for t in texts]:
        return head, tail or None  # the option's text, which may start like a label ("A cell wall")
    match = _ENTRY_LABEL.match(text)
    index = resolve_answer(next(g for g in match.groups() if g), texts, labels) if match else None
    if match and index is not None:
        rest = text[match.end():].lstrip(_LEADING_PUNCTUATION)
        option = texts[index]
        for said in (option, f"({option})"):
            after = rest[len(said):].lstrip()
            # "B) Paris - because ..." repeats the option; "B. Paris is ..." starts the explanation with it.
            repeated = squash(said) and rest.casefold().startswith(said.casefold())
            if repeated and (not after or after[0] in "-\u2013\u2014:.,;"):
                rest = after.lstrip(_LEADING_PUNCTUATION)
                break
        return match.group(0).strip("(). :"), rest or None
    if separator and resolve_answer(head, texts, labels) is not None:
        return head, tail or None
    return text, None


def to_sourced(draft: Draft) -> Sourced | None:
    """The finished question and its quote, or None without a stem or two options. Label lines
    ("Options:") and metadata ("Subject: ...") are dropped from the stem; the first answer that
    resolves wins, then a mark on an option; an explanation in a solutions section counts when the
    question has none of its own."""
    stem_lines = [line for line in draft.stem if not lines.is_noise(line.strip())]
    if len(stem_lines) > 1:
        stem_lines = [line for line in stem_lines if not lines.is_meta(line.strip())] or stem_lines
    stem = "\n".join(stem_lines).strip()
    texts = draft.texts()
    if not stem or len(texts) < 2:
        return None
    answer = next((i for i in (resolve_answer(raw, texts, draft.labels()) for raw in draft.answers)
                   if i is not None), draft.marked)
    explanation = (" ".join(" ".join(draft.explanation).split())
                   or " ".join(" ".join(draft.key_explanation).split()) or None)
    quote = " ".join(" ".join(draft.quote).split()) or None
    return Sourced(Question(stem, texts, answer, explanation), quote)


def drop_truncated(found: list[Sourced]) -> list[Sourced]:
    """Drop a last question that was cut off: fewer options than the others, or no key where
    every other question has one."""
    if len(found) < 2:
        return found
    *others, last = found
    typical = Counter(len(s.question.options) for s in others).most_common(1)[0][0]
    keyed = all(s.question.answer is not None for s in others)
    if len(last.question.options) < typical or (keyed and last.question.answer is None):
        return others
    return found

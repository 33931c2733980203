"""Quizzes written as a Markdown table: one row per question.

    | # | Question | A | B | C | D | Answer | Explanation |
    |---|----------|---|---|---|---|--------|-------------|
    | 1 | What is the capital of France? | Berlin | Paris | Rome | Madrid | B | ... |

The header row names the columns, in any of the languages of ``quiz._words`` ("Pregunta", "Frage",
"Réponse", "Erklärung" ...); the options are one column per option ("A".."D", "Option A") or one
"Options" column ("A) x B) y ..."). Other columns (topic, difficulty) are ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from quiz import _lines as lines
from quiz import _words as words
from quiz._drafts import Draft, clean_option

_PIPE = re.compile(r"(?<!\\)\|")
_RULE = re.compile(r"^:?-{1,}:?$")
_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_OPTION_HEADER = re.compile(
    rf"^(?:(?i:{words.alternatives(words.TABLE_OPTION)})\s?)?[(\[]?([A-Ha-h])[)\].:]?$")
_NUMBERED_OPTION = re.compile(rf"^(?i:{words.alternatives(words.TABLE_OPTION)})\s?([1-8])$")


def _full(group: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(rf"^(?i:{words.alternatives(group)})$")


_KINDS = (
    ("number", _full(words.TABLE_NUMBER)),
    ("stem", _full(words.TABLE_STEM)),
    ("options", _full(words.TABLE_OPTIONS)),
    ("answer", re.compile(rf"^(?:(?i:{words.ARTICLE})\s)?(?i:{words.alternatives(words.ANSWER)}"
                          rf"|{words.alternatives(words.ANSWER_WITH_COLON)}|key)$")),
    ("explanation", _full(words.EXPLANATION)),
    ("quote", _full(words.QUOTE)),
)


@dataclass
class Columns:
    """Where each field of a question sits in a row (None: the table has no such column)."""

    stem: int
    options: list[tuple[int, str]] = field(default_factory=list)  # (column, label), one column per option
    options_cell: int | None = None  # one column holding all the options
    number: int | None = None
    answer: int | None = None
    explanation: int | None = None
    quote: int | None = None


def cells(line: str) -> list[str] | None:
    """The cells of a table row ("| a | b |" -> ["a", "b"]), or None for a line that is no table row."""
    if "|" not in line:
        return None
    body = line.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|") and not body.endswith("\\|"):
        body = body[:-1]
    parts = [part.strip().replace("\\|", "|") for part in _PIPE.split(body)]
    return parts if len(parts) >= 2 else None


def is_rule(row: list[str]) -> bool:
    """The "|---|:---:|" line under the header."""
    return all(_RULE.match(cell.replace(" ", "")) for cell in row if cell) and any(row)


def _kind(cell: str) -> tuple[str, str | None] | None:
    text = " ".join(cell.strip().rstrip(":").split())
    option = _OPTION_HEADER.match(text) or _NUMBERED_OPTION.match(text)
    if option:
        label = option.group(1).upper()
        return "option", label
    return next(((kind, None) for kind, pattern in _KINDS if pattern.match(text)), None)


def columns(header: list[str]) -> Columns | None:
    """The columns of a quiz table's header row, or None when the row is not one (it needs a question
    column and two option columns, or one options column)."""
    found: dict[str, int] = {}
    options: list[tuple[int, str]] = []
    for i, cell in enumerate(header):
        kind = _kind(cell)
        if kind is None:
            continue
        if kind[0] == "option":
            options.append((i, kind[1] or ""))
        else:
            found.setdefault(kind[0], i)
    if "stem" not in found or (len(options) < 2 and "options" not in found):
        return None
    return Columns(stem=found["stem"], options=options if len(options) >= 2 else [],
                   options_cell=None if len(options) >= 2 else found.get("options"), number=found.get("number"),
                   answer=found.get("answer"), explanation=found.get("explanation"), quote=found.get("quote"))


def draft(columns_: Columns, row: list[str]) -> Draft | None:
    """One question from a row, or None when the row has no question text or fewer than two options."""
    def cell(index: int | None) -> str:
        return " ".join(_BREAK.sub(" ", row[index]).split()) if index is not None and index < len(row) else ""

    result = Draft(stem=[cell(columns_.stem)] if cell(columns_.stem) else [])
    if columns_.options:
        for index, label in columns_.options:
            text, marked = lines.take_marker(cell(index))
            if marked:
                result.marked = len(result.options)
            if text:
                result.options.append(lines.Option(label, "|", clean_option(text)))
    else:
        _, found = lines.options(cell(columns_.options_cell), numbers=True)
        for option in found:
            text, marked = lines.take_marker(option.text)
            if marked:
                result.marked = len(result.options)
            result.options.append(lines.Option(option.label, option.style, clean_option(text)))
    number = cell(columns_.number).strip("#.) ")
    result.number = int(number) if number.isdigit() and len(number) <= 3 else None
    for kind, target in ((columns_.answer, result.answers), (columns_.explanation, result.explanation),
                         (columns_.quote, result.quote)):
        if cell(kind):
            target.append(cell(kind))
    result.stage = "done"
    return result if result.stem and len(result.options) >= 2 else None

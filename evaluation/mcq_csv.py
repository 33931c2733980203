"""Multiple-choice questions from CSV files in the layouts found in the wild.

Accepted layouts (the header decides; names are case-insensitive):

- ``question,choice0,...,choiceN,answer`` (the MMLU CSVs converted from ``cais/mmlu``; answer 0-based);
- ``question,A,B,C,D,answer`` (answer a letter or a 0-based index);
- ``[index],question,[subject],choices[,answer]`` where ``choices`` is a list written as text: a numpy
  array repr (``['a' 'b'\\n 'c']``, as in the LR1 files), a Python list or a JSON list;
- no header at all: ``question,A,B,C,D,letter`` (Hendrycks' raw MMLU files).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from evaluation.data import read_csv_rows
from evaluation.task import EvalError

# One Python string literal, as numpy and Python print them (repr picks ' or ").
_LITERAL = re.compile(r"""\s*,?\s*('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""", re.DOTALL)


@dataclass
class McqRow:
    index: str  # the file's own index column when it has one, else the 0-based row number
    question: str
    choices: list[str]
    answer: int | None
    subject: str | None = None


def parse_choice_list(text: str) -> list[str]:
    """``"['a' 'b'\\n 'c']"`` (numpy), ``"['a', 'b']"`` (Python) or ``'["a", "b"]'`` (JSON) -> list."""
    body = text.strip()
    if not (body.startswith("[") and body.endswith("]")):
        raise ValueError(f"not a bracketed list: {text[:80]!r}")
    body, items, pos = body[1:-1], [], 0
    while pos < len(body.rstrip()):
        match = _LITERAL.match(body, pos)
        if not match:
            raise ValueError(f"unexpected text at {body[pos:pos + 30]!r}")
        items.append(ast.literal_eval(match.group(1)))
        pos = match.end()
    if not items:
        raise ValueError("empty list")
    return items


def parse_answer(value: str, n_choices: int) -> int:
    """A 0-based index (``"2"``) or a letter (``"C"``) -> 0-based index."""
    text = value.strip()
    if text.isdigit():
        index = int(text)
    elif len(text) == 1 and text.isalpha():
        index = ord(text.upper()) - ord("A")
    else:
        raise ValueError(f"answer {value!r} is neither a 0-based index nor a letter")
    if not 0 <= index < n_choices:
        raise ValueError(f"answer {value!r} is out of range for {n_choices} choices")
    return index


def _choice_columns(header: list[str]) -> list[int]:
    names = [h.strip().lower() for h in header]
    numbered = sorted((int(n[6:]), i) for i, n in enumerate(names) if re.fullmatch(r"choice\d+", n))
    if numbered:
        return [i for _, i in numbered]
    lettered = [names.index(letter) for letter in "abcdefgh" if letter in names]
    return lettered


def _row(cells: list[str], header: list[str], number: int, where: str) -> McqRow:
    names = [h.strip().lower() for h in header]
    get = dict(zip(names, cells))
    if len(cells) != len(header):
        raise EvalError(f"{where} row {number} has {len(cells)} cells but the header has {len(header)}")
    if "choices" in names:
        try:
            choices = parse_choice_list(get["choices"])
        except (ValueError, SyntaxError) as exc:
            raise EvalError(f"{where} row {number}: cannot read the choices list ({exc})") from None
    else:
        choices = [cells[i] for i in _choice_columns(header)]
    if len(choices) < 2:
        raise EvalError(f"{where} row {number}: fewer than 2 choices; expected choice0..choiceN, "
                        "A..D or a 'choices' list column")
    answer = None
    if get.get("answer", "").strip():
        try:
            answer = parse_answer(get["answer"], len(choices))
        except ValueError as exc:
            raise EvalError(f"{where} row {number}: {exc}") from None
    index = cells[0].strip() if names[0] == "" else str(number)
    return McqRow(index, get["question"], choices, answer, get.get("subject") or None)


def read_mcq_csv(path: Path, limit: int | None = None) -> list[McqRow]:
    """Every question in ``path`` (the first ``limit`` in file order)."""
    rows = read_csv_rows(path)
    header, body = rows[0], rows[1:]
    if "question" not in [h.strip().lower() for h in header]:
        # Hendrycks' raw MMLU layout: no header, question, 4 choices, answer letter.
        header, body = ["question", "a", "b", "c", "d", "answer"], rows
        if any(len(r) != 6 for r in body):
            raise EvalError(f"{str(path)!r} has no 'question' column in its header; expected "
                            "question,choice0..choiceN,answer (or question,choices,answer)")
    body = body[:limit] if limit else body
    if not body:
        raise EvalError(f"{str(path)!r} has a header but no questions")
    return [_row(cells, header, number, repr(str(path))) for number, cells in enumerate(body)]


def read_answer_key(path: Path) -> dict[str, int]:
    """An ``,answer`` CSV (index column, 0-based answer) -> {index: answer}."""
    rows = read_csv_rows(path)
    names = [h.strip().lower() for h in rows[0]]
    if "answer" not in names:
        raise EvalError(f"{str(path)!r} has no 'answer' column (header: {rows[0]}); expected ',answer'")
    col = names.index("answer")
    key = {}
    for number, cells in enumerate(rows[1:]):
        value = cells[col].strip() if col < len(cells) else ""
        if not value.isdigit():
            raise EvalError(f"{str(path)!r} row {number}: answer {value!r} is not a 0-based index")
        key[cells[0].strip() if names[0] == "" else str(number)] = int(value)
    return key

"""The one reader of multiple-choice questions (MMLU style), for evaluation and for training alike.

Accepted layouts (the columns decide; names are case-insensitive):

- ``question,choice0,...,choiceN,answer`` (the MMLU CSVs converted from ``cais/mmlu``; answer 0-based);
- ``question,A,B,C,D,answer`` (answer a letter or a 0-based index);
- ``[index],question,[subject],choices[,answer]`` where ``choices`` is a list, or a list written as text:
  a numpy array repr (``['a' 'b'\\n 'c']``, as in the LR1 files), a Python list or a JSON list;
- no header at all: ``question,A,B,C,D,letter`` (Hendrycks' raw MMLU files; CSV files only).

The answer may also come from a separate answers file (an index column plus ``answer``, as
``LR1_dev_answer.csv`` is to ``LR1_dev.csv``), joined on the index column, or by row order when a file
has none. An index column is one named ``""`` (pandas' unnamed index), ``index``, ``id`` or ``Unnamed: 0``.

``mcq_row`` reads one row and ``join_answers`` does the join; a row it cannot read raises ``BadMcqRow``
with a short reason, which training counts and skips (``training.mcq``), and a detail, which evaluation
stops on, naming the file and row (``read_mcq_csv`` here). Standard library only: training imports it.
"""

from __future__ import annotations

import ast
import csv
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluation.data import require_file
from evaluation.task import EvalError

MAX_CHOICES = 10  # lettered A..J
INDEX_COLUMNS = ("", "index", "id", "unnamed: 0")
RAW_MMLU_HEADER = ["question", "a", "b", "c", "d", "answer"]

# One Python string literal, as numpy and Python print them (repr picks ' or ").
_LITERAL = re.compile(r"""\s*,?\s*('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""", re.DOTALL)


@dataclass
class McqRow:
    index: str  # the file's own index column when it has one, else the 0-based row number
    question: str
    choices: list[str]
    answer: int | None
    subject: str | None = None


@dataclass
class AnswerKey:
    """An answers file: answer text by the file's index (``None`` without an index column), and in order."""

    by_index: dict[str, str] | None
    in_order: list[str]


class BadMcqRow(ValueError):
    """A row that is not a usable question. ``reason`` is short and the same for every row with this
    problem (training counts it); ``str(exc)`` shows the bad value (evaluation reports it with the row)."""

    def __init__(self, reason: str, detail: str | None = None):
        super().__init__(detail or reason)
        self.reason = reason


class McqFileError(ValueError):
    """A questions or answers file that cannot be used. The message follows the file's name, which the
    caller puts first in its own error (``--answers_file 'x.csv' <message>``)."""


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


def _fields(row: Mapping[Any, Any]) -> dict[str, Any]:
    # csv.DictReader files a row's surplus cells under the key None.
    return {str(k).strip().lower(): v for k, v in row.items() if k is not None}


def index_column(names: list[str]) -> str | None:
    """The first column (already lower-cased) that holds each row's index, if any."""
    return next((n for n in names if n in INDEX_COLUMNS), None)


def row_index(row: Mapping[Any, Any]) -> str | None:
    """The row's own index (from its index column), or ``None`` when it has no index column."""
    fields = _fields(row)
    column = index_column(list(fields))
    return None if column is None else str(fields[column]).strip()


def _choice_columns(names: list[str]) -> list[str]:
    numbered = sorted((int(n[6:]), n) for n in names if re.fullmatch(r"choice\d+", n))
    if numbered:
        return [n for _, n in numbered]
    return [letter for letter in "abcdefghij" if letter in names]


def _choices(fields: dict[str, Any]) -> list[str]:
    listed = fields.get("choices")
    if isinstance(listed, (list, tuple)):
        return [str(c) for c in listed]
    if isinstance(listed, str) and listed.strip():
        try:
            return parse_choice_list(listed)
        except (ValueError, SyntaxError) as exc:
            raise BadMcqRow("unreadable choices", f"cannot read the choices list ({exc})") from None
    if listed is not None and listed != "":
        raise BadMcqRow("unreadable choices", f"cannot read the choices list (a {type(listed).__name__})")
    cells = [fields.get(n) for n in _choice_columns(list(fields))]
    while cells and cells[-1] in (None, ""):  # a row using fewer option columns than the header has
        cells.pop()
    if any(c in (None, "") for c in cells):
        raise BadMcqRow("empty choice", "an empty choice before a filled one (the letters would not match)")
    return [str(c) for c in cells]


def _answer(value: Any, n_choices: int) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a numeric column read by pandas / pyarrow
    text = str(value).strip().strip("()").strip()
    try:
        index = parse_answer(text, sys.maxsize)  # any index or letter; the range is checked below
    except ValueError as exc:
        raise BadMcqRow("unreadable answer", str(exc)) from None
    if not 0 <= index < n_choices:
        raise BadMcqRow("answer out of range", f"answer {text!r} is out of range for {n_choices} choices")
    return index


def mcq_row(row: Mapping[Any, Any], index: str) -> McqRow:
    """One row (column name -> value, from a CSV, JSON, Parquet or hub dataset) -> the question it holds.

    A missing answer is ``answer=None`` (evaluation predicts it, training skips it); anything else that
    is wrong raises ``BadMcqRow``.
    """
    fields = _fields(row)
    question = fields.get("question")
    if not isinstance(question, str) or not question.strip():
        raise BadMcqRow("missing question", "no question text")
    choices = _choices(fields)
    if len(choices) < 2:
        raise BadMcqRow("fewer than 2 choices" if choices else "no choices",
                        "fewer than 2 choices; expected choice0..choiceN, A..D or a 'choices' list column")
    if len(choices) > MAX_CHOICES:
        raise BadMcqRow(f"more than {MAX_CHOICES} choices", f"{len(choices)} choices, more than the "
                        f"{MAX_CHOICES} that letters A..J name")
    subject = fields.get("subject")
    subject = subject if isinstance(subject, str) and subject.strip() else None
    return McqRow(index, question, choices, _answer(fields.get("answer"), len(choices)), subject)


def read_table(path: Path) -> tuple[list[str], list[list[str]]]:
    """The header and the non-blank rows of a UTF-8 CSV (BOM tolerated)."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # LR1's wrapped choice lists make long fields
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            rows = [row for row in csv.reader(f) if any(cell.strip() for cell in row)]
    except UnicodeDecodeError:
        raise McqFileError("is not a readable CSV file (it is not UTF-8 text)") from None
    except csv.Error as exc:
        raise McqFileError(f"is not a readable CSV file ({exc})") from None
    if not rows:
        raise McqFileError("is empty; expected a header and one row per question")
    return rows[0], rows[1:]


def read_answers(path: Path) -> AnswerKey:
    """An answers file: an ``answer`` column, and an index column to join on where it has one."""
    try:
        header, body = read_table(path)
    except McqFileError as exc:
        raise McqFileError(f"{exc}: expected UTF-8 comma-separated text with an index column and 'answer'") from None
    names = [h.strip().lower() for h in header]
    if "answer" not in names:
        raise McqFileError(f"has no 'answer' column (columns: {header}); expected an index column and 'answer'")
    col, key = names.index("answer"), index_column(names)
    answers = [cells[col].strip() if col < len(cells) else "" for cells in body]
    if key is None:
        return AnswerKey(None, answers)
    key_col = names.index(key)
    return AnswerKey({(cells[key_col].strip() if key_col < len(cells) else ""): a
                      for cells, a in zip(body, answers)}, answers)


def join_answers(indexes: list[str | None], key: AnswerKey, source: str) -> list[str | None]:
    """Each question's answer text: by index when both files have an index column, else by row order.
    ``indexes`` are the questions' own indexes (``None`` without one); a missing answer is ``None``."""
    if key.by_index is not None and indexes and all(i is not None for i in indexes):
        return [key.by_index.get(i) for i in indexes]  # type: ignore[arg-type]
    if len(key.in_order) != len(indexes):
        raise McqFileError(f"has {len(key.in_order)} answers for {len(indexes)} rows of {source} and no index "
                           "column to join them on; add one to both files, or give one answer per row in order")
    return list(key.in_order)


# Evaluation's side: a file that cannot be read stops the run with one line naming the file and row.

def _eval_table(path: Path) -> tuple[list[str], list[list[str]]]:
    try:
        return read_table(require_file(path))
    except McqFileError as exc:
        raise EvalError(f"{str(path)!r} {exc}; the file is corrupt: copy it again") from None


def read_mcq_csv(path: Path, limit: int | None = None, answers: Path | None = None) -> list[McqRow]:
    """Every question in ``path`` (the first ``limit`` in file order), with the answers from ``answers``
    (an answers file) when given."""
    header, body = _eval_table(path)
    names = [h.strip().lower() for h in header]
    if "question" not in names:
        # Hendrycks' raw MMLU layout: no header, question, 4 choices, answer letter.
        header, names, body = RAW_MMLU_HEADER, RAW_MMLU_HEADER, [header, *body]
        if any(len(r) != 6 for r in body):
            raise EvalError(f"{str(path)!r} has no 'question' column in its header; expected "
                            "question,choice0..choiceN,answer (or question,choices,answer)")
    records = [dict(zip(names, cells)) for cells in body]
    indexes = [row_index(r) for r in records]
    if answers is not None:
        _join(path, records, indexes, answers)
    where = repr(str(path))
    body = body[:limit] if limit else body
    if not body:
        raise EvalError(f"{where} has a header but no questions")
    rows = []
    for number, cells in enumerate(body):
        if len(cells) != len(header):
            raise EvalError(f"{where} row {number} has {len(cells)} cells but the header has {len(header)}")
        try:
            rows.append(mcq_row(records[number], str(number) if indexes[number] is None else indexes[number]))
        except BadMcqRow as exc:
            raise EvalError(f"{where} row {number}: {exc}") from None
    return rows


def _join(path: Path, records: list[dict[str, str]], indexes: list[str | None], answers: Path) -> None:
    try:
        key = read_answers(require_file(answers))
        joined = join_answers(indexes, key, repr(str(path)))
    except McqFileError as exc:
        raise EvalError(f"{str(answers)!r} {exc}") from None
    for number, (record, answer) in enumerate(zip(records, joined)):
        if answer is None:
            raise EvalError(f"{answers.name} has no answer for {path.name} index {indexes[number]}; "
                            "the two files do not belong together")
        record["answer"] = answer


def read_answer_key(path: Path) -> dict[str, int]:
    """An ``,answer`` CSV (index column, 0-based answer) -> {index: answer}; row numbers without an index."""
    try:
        key = read_answers(require_file(path))
    except McqFileError as exc:
        raise EvalError(f"{str(path)!r} {exc}") from None
    answers = key.by_index if key.by_index is not None else {str(i): a for i, a in enumerate(key.in_order)}
    for number, value in enumerate(answers.values()):
        if not value.isdigit():
            raise EvalError(f"{str(path)!r} row {number}: answer {value!r} is not a 0-based index")
    return {index: int(value) for index, value in answers.items()}

"""Multiple-choice CSV rows (MMLU style) -> a user question with lettered options and the lettered answer.

Accepted columns: ``question``, optional ``subject``, and the options either as one ``choices`` column
(a Python/JSON list, or the numpy repr the LR1 files use: ``['a bacterium' 'a protozoan' ...]``, possibly
wrapped over several lines) or as ``choice0..choiceN`` / ``A..D`` columns. The answer is a 0-based index
or a letter, in an ``answer`` column or in a separate answers file (``--answers_file``: an index column
plus ``answer``, joined on the index, as LR1_dev_answer.csv is to LR1_dev.csv).

The option lists and answers are read by evaluation's MCQ reader (``evaluation.mcq_csv``), so a file
trains and evaluates with the same options and the same answer: one reader, with the rows it cannot read
skipped and counted here instead of stopping the run.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any

from evaluation.mcq_csv import parse_answer, parse_choice_list
from training.errors import TrainingError
from training.formats import SkipRow, check_conversation

LETTERS = "ABCDEFGHIJ"
INDEX_COLUMNS = ("", "index", "id", "Unnamed: 0")


def parse_choices(text: Any) -> list[str]:
    """``['a' 'b' "c's"]`` (numpy repr), ``['a', 'b']`` or a real list -> the option strings."""
    if isinstance(text, list):
        return [str(c) for c in text]
    if not isinstance(text, str):
        raise SkipRow("unreadable choices")
    try:
        return parse_choice_list(text)
    except (ValueError, SyntaxError):
        raise SkipRow("unreadable choices") from None


def row_choices(row: dict[str, Any]) -> list[str]:
    if row.get("choices") not in (None, ""):
        return parse_choices(row["choices"])
    for names in ([f"choice{i}" for i in range(len(LETTERS))], list(LETTERS)):
        options = [row[n] for n in names if row.get(n) not in (None, "")]
        if options:
            return [str(o) for o in options]
    raise SkipRow("no choices")


def answer_index(answer: Any, n_choices: int) -> int:
    """``2``, ``"2"``, ``"C"`` or ``"(c)"`` -> 2; SkipRow when missing or out of range."""
    if answer is None or (isinstance(answer, str) and not answer.strip()):
        raise SkipRow("no answer")
    if isinstance(answer, float) and answer.is_integer():
        answer = int(answer)  # a numeric column read by pandas / pyarrow
    text = str(answer).strip().strip("()").strip()
    try:
        index = parse_answer(text, sys.maxsize)  # any index or letter; the range is checked below, for its own reason
    except ValueError:
        raise SkipRow("unreadable answer") from None
    if not 0 <= index < n_choices:
        raise SkipRow("answer out of range")
    return index


def mcq_prompt(question: str, choices: list[str], subject: str | None) -> str:
    about = f" about {subject.replace('_', ' ').strip()}" if subject and subject.strip() else ""
    options = "\n".join(f"{LETTERS[i]}. {c.strip()}" for i, c in enumerate(choices))
    return (f"The following is a multiple choice question{about}.\n\n{question.strip()}\n\n{options}\n\n"
            "Answer with the letter of the correct option.")


def mcq_to_messages(row: dict[str, Any]) -> list[dict[str, str]]:
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        raise SkipRow("missing question")
    choices = row_choices(row)
    if len(choices) < 2:
        raise SkipRow("fewer than 2 choices")
    if len(choices) > len(LETTERS):
        raise SkipRow("more than 10 choices")
    index = answer_index(row.get("answer"), len(choices))
    subject = row.get("subject") if isinstance(row.get("subject"), str) else None
    return check_conversation([
        {"role": "user", "content": mcq_prompt(question, choices, subject)},
        {"role": "assistant", "content": f"{LETTERS[index]}. {choices[index].strip()}"},
    ])


def _index_column(fieldnames: list[str]) -> str | None:
    return next((c for c in fieldnames if c in INDEX_COLUMNS), None)


def attach_answers(rows: list[dict[str, Any]], answers_file: str, source: str) -> list[dict[str, Any]]:
    """Copy ``answer`` from ``answers_file`` into each row, joined on the index column (or row order)."""
    path = Path(answers_file)
    if not path.is_file():
        raise TrainingError(f"--answers_file {answers_file!r} not found: pass the CSV of answers "
                            "(an index column and 'answer'), e.g. LR1_dev_answer.csv")
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            answers = list(reader)
            fields = reader.fieldnames or []
    except (UnicodeDecodeError, csv.Error) as exc:
        reason = "it is not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else str(exc)
        raise TrainingError(f"--answers_file {answers_file!r} is not a readable CSV file ({reason}): expected "
                            "UTF-8 comma-separated text with an index column and 'answer'") from None
    if "answer" not in fields:
        raise TrainingError(f"--answers_file {answers_file!r} has no 'answer' column (columns: {fields})")
    key = _index_column(fields)
    row_key = _index_column(list(rows[0])) if rows and isinstance(rows[0], dict) else None
    if key is not None and row_key is not None:
        by_index = {a[key]: a["answer"] for a in answers}
        return [{**r, "answer": by_index.get(str(r.get(row_key)))} for r in rows]
    if len(answers) != len(rows):
        raise TrainingError(f"--answers_file {answers_file!r} has {len(answers)} answers for {len(rows)} rows "
                            f"of {source!r} and no index column to join them on")
    return [{**r, "answer": a["answer"]} for r, a in zip(rows, answers)]


def require_answers(rows: list[dict[str, Any]], source: str) -> None:
    """A file without any answer column cannot be trained on: say so once instead of skipping every row."""
    if rows and all(isinstance(r, dict) and "answer" not in r for r in rows[:50]):
        raise TrainingError(
            f"{source!r} has no 'answer' column, so there is nothing to train on: pass the answers with "
            "--answers_file FILE (index column + answer, e.g. LR1_dev_answer.csv for LR1_dev.csv). LR1.csv "
            "itself ships without answers; use it for evaluation, not training.")

"""Multiple-choice rows (MMLU style) -> a user question with lettered options and the lettered answer.

The rows are read by the one MCQ reader, ``evaluation.mcq_csv`` (its docstring lists the columns and
layouts; it uses the standard library only), so a file trains with the same question, options, answer and
subject that evaluation scores. The answer is in an ``answer`` column or in a separate answers file
(``--answers_file``: an index column plus ``answer``, joined on the index, as LR1_dev_answer.csv is to
LR1_dev.csv). Where evaluation stops on a row it cannot read, training skips the row and counts the
reader's reason for it (``BadMcqRow.reason``), and skips rows without an answer as ``no answer``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evaluation.mcq_csv import (BadMcqRow, McqFileError, join_answers, mcq_row, parse_choice_list, read_answers,
                                row_index)
from training.errors import TrainingError
from training.formats import SkipRow, check_conversation

LETTERS = "ABCDEFGHIJ"


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


def mcq_prompt(question: str, choices: list[str], subject: str | None) -> str:
    about = f" about {subject.replace('_', ' ').strip()}" if subject and subject.strip() else ""
    options = "\n".join(f"{LETTERS[i]}. {c.strip()}" for i, c in enumerate(choices))
    return (f"The following is a multiple choice question{about}.\n\n{question.strip()}\n\n{options}\n\n"
            "Answer with the letter of the correct option.")


def mcq_to_messages(row: dict[str, Any]) -> list[dict[str, str]]:
    try:
        mcq = mcq_row(row, index="")
    except BadMcqRow as exc:
        raise SkipRow(exc.reason) from None
    if mcq.answer is None:
        raise SkipRow("no answer")
    return check_conversation([
        {"role": "user", "content": mcq_prompt(mcq.question, mcq.choices, mcq.subject)},
        {"role": "assistant", "content": f"{LETTERS[mcq.answer]}. {mcq.choices[mcq.answer].strip()}"},
    ])


def attach_answers(rows: list[Any], answers_file: str, source: str) -> list[Any]:
    """Copy ``answer`` from ``answers_file`` into each row, joined on the index column (or row order).

    A row whose index the answers file lacks gets no answer, so it is skipped and counted as ``no answer``.
    """
    path = Path(answers_file)
    if not path.is_file():
        raise TrainingError(f"--answers_file {answers_file!r} not found: pass the CSV of answers "
                            "(an index column and 'answer'), e.g. LR1_dev_answer.csv")
    try:
        key = read_answers(path)
        answers = join_answers([row_index(r) if isinstance(r, dict) else None for r in rows], key, repr(source))
    except McqFileError as exc:
        raise TrainingError(f"--answers_file {answers_file!r} {exc}") from None
    return [{**r, "answer": a} if isinstance(r, dict) else r for r, a in zip(rows, answers)]


def require_answers(rows: list[Any], source: str) -> None:
    """A file without any answer column cannot be trained on: say so once instead of skipping every row."""
    def has_answer(row: dict) -> bool:
        return any(str(k).strip().lower() == "answer" for k in row if k is not None)

    if rows and all(isinstance(r, dict) and not has_answer(r) for r in rows[:50]):
        raise TrainingError(
            f"{source!r} has no 'answer' column, so there is nothing to train on: pass the answers with "
            "--answers_file FILE (index column + answer, e.g. LR1_dev_answer.csv for LR1_dev.csv). LR1.csv "
            "itself ships without answers; use it for evaluation, not training.")

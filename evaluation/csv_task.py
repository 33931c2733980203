"""Any multiple-choice CSV (``--tasks csv:path/to/file.csv``), in lm-eval's MMLU prompt format, zero-shot.

The layouts accepted are listed in ``evaluation.mcq_csv``. Rows without an answer are predicted, not scored.
"""

from __future__ import annotations

from pathlib import Path

from evaluation.data import sha256_file
from evaluation.mcq_csv import read_mcq_csv
from evaluation.mmlu import make_question
from evaluation.task import EvalError, TaskData


def load(spec: str, limit: int | None) -> TaskData:
    """``spec`` is ``csv:<path>``; the task is named after the file (``csv:questions``)."""
    path = Path(spec.removeprefix("csv:")).expanduser()
    if not path.is_file():
        raise EvalError(f"--tasks {spec}: file {str(path)!r} not found; give the path of a CSV with "
                        "question, choices (or choice0..choiceN) and answer columns")
    questions = [make_question(row.index, row, row.subject, []) for row in read_mcq_csv(path, limit)]
    return TaskData(name=f"csv:{path.stem}", questions=questions, source="local",
                    files={str(path): sha256_file(path)})

"""The LR1 course files: MMLU questions with numpy-style choice strings.

``LR1_dev.csv`` + ``LR1_dev_answer.csv`` (joined on the index column) are scored; ``LR1.csv`` has no
answers, so its questions are only answered: the predictions go to a CSV and are printed. Prompts use
lm-eval's MMLU format with the row's subject, zero-shot (the files carry no dev examples of their own).
"""

from __future__ import annotations

from pathlib import Path

from evaluation.data import DATA_DIR_HINT, require_file, sha256_file
from evaluation.mcq_csv import read_mcq_csv
from evaluation.mmlu import make_question
from evaluation.task import EvalError, TaskData

FOLDER = "mmlu_lr1"


def _folder(data_dir: Path | None) -> Path:
    if data_dir is None:
        raise EvalError(f"lr1: the LR1 files are not on the hub; {DATA_DIR_HINT}")
    return data_dir / FOLDER if (data_dir / FOLDER).is_dir() else data_dir


def load(data_dir: Path | None, limit: int | None) -> TaskData:
    folder = _folder(data_dir)
    dev_path = require_file(folder / "LR1_dev.csv", "lr1")
    key_path = require_file(folder / "LR1_dev_answer.csv", "lr1")
    # The answers file is joined on the index column by the MCQ reader; a missing answer stops the run.
    questions = [make_question(f"dev/{row.index}", row, row.subject, [])
                 for row in read_mcq_csv(dev_path, limit, answers=key_path)]
    files = {str(dev_path): sha256_file(dev_path), str(key_path): sha256_file(key_path)}
    unlabeled = folder / "LR1.csv"
    if unlabeled.is_file():
        for row in read_mcq_csv(unlabeled, limit):
            row.answer = None  # LR1.csv has no key: predict only
            questions.append(make_question(f"test/{row.index}", row, row.subject, []))
        files[str(unlabeled)] = sha256_file(unlabeled)
    return TaskData(name="lr1", questions=questions, source="local", files=files)

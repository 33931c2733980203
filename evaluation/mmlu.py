"""MMLU from per-subject CSVs (or ``cais/mmlu``), scored as lm-evaluation-harness's ``mmlu`` group.

lm-eval's default MMLU template (tasks/mmlu/default/_default_template_yaml and the per-subject YAMLs):

    The following are multiple choice questions (with answers) about {subject with spaces}.\\n\\n
    {shot question.strip()}\\nA. {c0}\\nB. {c1}\\nC. {c2}\\nD. {c3}\\nAnswer: {letter}\\n\\n   (x k, first k of dev)
    {question.strip()}\\nA. {c0}\\nB. {c1}\\nC. {c2}\\nD. {c3}\\nAnswer:

and the continuations are `` A`` .. `` D``; the metric is ``acc`` and the group score is the mean over
all questions (lm-eval weights subjects by size). The LR1 files and ``csv:`` tasks use the same format.
"""

from __future__ import annotations

import string
from pathlib import Path

from evaluation.data import DATA_DIR_HINT, hub_fingerprint, load_hub, sha256_file
from evaluation.mcq_csv import McqRow, read_mcq_csv
from evaluation.task import EvalError, Question, TaskData

HUB_PATH = "cais/mmlu"
DEFAULT_SHOTS = 5
LETTERS = string.ascii_uppercase


def description(subject: str | None) -> str:
    if not subject:
        return "The following are multiple choice questions (with answers).\n\n"
    return f"The following are multiple choice questions (with answers) about {' '.join(subject.split('_'))}.\n\n"


def doc_text(question: str, choices: list[str]) -> str:
    options = "".join(f"\n{LETTERS[i]}. {c}" for i, c in enumerate(choices))
    return f"{question.strip()}{options}\nAnswer:"


def make_question(qid: str, row: McqRow, subject: str | None, shots: list[McqRow]) -> Question:
    """lm-eval's context: description, then each shot with ``" " + letter + "\\n\\n"``, then the question."""
    for shot in shots:
        if shot.answer is None:
            raise EvalError(f"few-shot example {shot.question[:60]!r} has no answer; dev files need answers")
    examples = "".join(f"{doc_text(s.question, s.choices)} {LETTERS[s.answer]}\n\n" for s in shots)
    letters = list(LETTERS[:len(row.choices)])
    return Question(id=qid, question=row.question.strip(), choices=row.choices, gold=row.answer,
                    context=description(subject) + examples + doc_text(row.question, row.choices),
                    continuations=[f" {letter}" for letter in letters], norm_texts=letters, subject=subject)


def _dev_rows(data_dir: Path, subject: str, shots: int) -> tuple[list[McqRow], dict[str, str]]:
    if shots == 0:
        return [], {}
    path = data_dir / "mmlu" / "dev" / f"{subject}_dev.csv"
    if not path.is_file():
        raise EvalError(f"mmlu: {shots}-shot needs {str(path)!r} (the first {shots} dev questions of "
                        f"{subject}); copy it or use --num-fewshot 0")
    rows = read_mcq_csv(path)
    if len(rows) < shots:
        raise EvalError(f"mmlu: {str(path)!r} has {len(rows)} questions, fewer than --num-fewshot {shots}")
    return rows[:shots], {str(path): sha256_file(path)}


def load_local(data_dir: Path, limit: int | None, shots: int) -> TaskData:
    folder = data_dir / "mmlu" / "test"
    paths = sorted(folder.glob("*_test.csv")) if folder.is_dir() else []
    if not paths:
        raise EvalError(f"mmlu: no <subject>_test.csv files in {str(folder)!r}; {DATA_DIR_HINT}")
    questions, files = [], {}
    for path in paths:
        subject = path.name.removesuffix("_test.csv")
        dev, dev_files = _dev_rows(data_dir, subject, shots)
        files.update(dev_files)
        files[str(path)] = sha256_file(path)
        # --limit applies per subject, as lm-eval's --limit does per subtask.
        questions += [make_question(f"{subject}/{row.index}", row, subject, dev)
                      for row in read_mcq_csv(path, limit)]
    return TaskData(name="mmlu", questions=questions, num_fewshot=shots, source="local", files=files,
                    notes=["--limit applies per subject"] if limit else [])


def load_hub_task(limit: int | None, shots: int) -> TaskData:
    test, dev = load_hub(HUB_PATH, "all", "test"), load_hub(HUB_PATH, "all", "dev")
    dev_by_subject: dict[str, list[McqRow]] = {}
    for doc in dev:
        dev_by_subject.setdefault(doc["subject"], []).append(
            McqRow(str(len(dev_by_subject.get(doc["subject"], []))), doc["question"], list(doc["choices"]), doc["answer"]))
    questions, seen = [], {}
    for doc in test:
        subject = doc["subject"]
        seen[subject] = seen.get(subject, 0) + 1
        if limit and seen[subject] > limit:
            continue
        row = McqRow(str(seen[subject] - 1), doc["question"], list(doc["choices"]), int(doc["answer"]), subject)
        shot_rows = dev_by_subject.get(subject, [])[:shots]
        if len(shot_rows) < shots:
            raise EvalError(f"mmlu: {HUB_PATH} dev has {len(shot_rows)} questions for {subject}, fewer than {shots}")
        questions.append(make_question(f"{subject}/{row.index}", row, subject, shot_rows))
    files = {**hub_fingerprint(test, HUB_PATH, "all", "test"), **hub_fingerprint(dev, HUB_PATH, "all", "dev")}
    return TaskData(name="mmlu", questions=questions, num_fewshot=shots, source=f"hub:{HUB_PATH}", files=files)


def load(data_dir: Path | None, limit: int | None, shots: int | None) -> TaskData:
    shots = DEFAULT_SHOTS if shots is None else shots
    return load_local(data_dir, limit, shots) if data_dir else load_hub_task(limit, shots)

"""ARC-Challenge and ARC-Easy, scored as lm-evaluation-harness's ``arc_challenge``/``arc_easy`` tasks.

lm-eval's prompt is ``Question: {question}\\nAnswer:`` and each choice is scored as `` {choice}``
(target delimiter " "), with ``acc`` and ``acc_norm`` (log-likelihood divided by the choice's length in
characters). Local files are llm-foundry's conversion (``{"query": "Question: ...", "choices": [...],
"gold": i}``): the query already carries the ``Question: `` prefix.
"""

from __future__ import annotations

from pathlib import Path

from evaluation.data import find_one, hub_fingerprint, load_hub, read_jsonl, require_fields, sha256_file
from evaluation.task import EvalError, Question, TaskData

HUB_PATH = "allenai/ai2_arc"
CONFIGS = {"arc_challenge": "ARC-Challenge", "arc_easy": "ARC-Easy"}
PREFIX = "Question: "


def make_question(qid: str, stem: str, choices: list[str], gold: int) -> Question:
    return Question(id=qid, question=stem, choices=list(choices), gold=gold,
                    context=f"{PREFIX}{stem}\nAnswer:", continuations=[f" {c}" for c in choices],
                    norm_texts=list(choices))


def arc_file(data_dir: Path, name: str) -> Path:
    """``<data-dir>/arc/*arc_challenge*.jsonl``; a folder holding the jsonl files directly works too."""
    folder = data_dir / "arc" if (data_dir / "arc").is_dir() else data_dir
    return find_one(folder, f"*{name}*.jsonl", name)


def load_local(name: str, data_dir: Path, limit: int | None) -> TaskData:
    path = arc_file(data_dir, name)
    rows = read_jsonl(path)
    questions = []
    for number, row in enumerate(rows[:limit] if limit else rows, start=1):
        where = f"{path.name} line {number}"
        require_fields(row, ("query", "choices", "gold"), where)
        choices, gold = row["choices"], row["gold"]
        if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) for c in choices):
            raise EvalError(f"{where}: 'choices' must be a list of at least 2 strings, got {choices!r:.120}")
        if not isinstance(gold, int) or not 0 <= gold < len(choices):
            raise EvalError(f"{where}: 'gold' must be a 0-based index below {len(choices)}, got {gold!r}")
        query = row["query"]
        stem = query[len(PREFIX):] if query.startswith(PREFIX) else query
        questions.append(make_question(str(number - 1), stem, choices, gold))
    return TaskData(name=name, questions=questions, report_acc_norm=True, source="local",
                    files={str(path): sha256_file(path)})


def load_hub_task(name: str, limit: int | None) -> TaskData:
    dataset = load_hub(HUB_PATH, CONFIGS[name], "test")
    questions = []
    for i, doc in enumerate(dataset):
        if limit and i >= limit:
            break
        labels = list(doc["choices"]["label"])
        if doc["answerKey"] not in labels:
            raise EvalError(f"{HUB_PATH} test row {i} ({doc.get('id')}): answerKey {doc['answerKey']!r} "
                            f"is not one of the labels {labels}")
        questions.append(make_question(str(doc.get("id", i)), doc["question"], list(doc["choices"]["text"]),
                                       labels.index(doc["answerKey"])))
    return TaskData(name=name, questions=questions, report_acc_norm=True, source=f"hub:{HUB_PATH}",
                    files=hub_fingerprint(dataset, HUB_PATH, CONFIGS[name], "test"))


def load(name: str, data_dir: Path | None, limit: int | None) -> TaskData:
    return load_local(name, data_dir, limit) if data_dir else load_hub_task(name, limit)

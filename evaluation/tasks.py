"""The task names ``--tasks`` accepts and the loader behind each."""

from __future__ import annotations

from pathlib import Path

from evaluation import arc, csv_task, lr1, mmlu, truthfulqa
from evaluation.task import EvalError, TaskData

TASKS = ("arc_challenge", "arc_easy", "truthfulqa_mc1", "truthfulqa_mc2", "mmlu", "lr1")
DEFAULT_TASKS = "arc_challenge,truthfulqa_mc1,truthfulqa_mc2"


def parse_task_list(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise EvalError("--tasks is empty; give a comma-separated list such as " + DEFAULT_TASKS)
    for name in names:
        if name not in TASKS and not name.startswith("csv:"):
            raise EvalError(f"unknown task {name!r} in --tasks; choose from {', '.join(TASKS)} or csv:<file.csv>")
    return list(dict.fromkeys(names))


def load_task(name: str, data_dir: Path | None, limit: int | None = None,
              num_fewshot: int | None = None) -> TaskData:
    """Load one task; ``limit`` keeps the first N questions in file order (per subject for mmlu)."""
    if data_dir is not None and not data_dir.is_dir():
        raise EvalError(f"--data-dir {str(data_dir)!r} is not a directory; pass a folder laid out like shared/data")
    if name in arc.CONFIGS:
        task = arc.load(name, data_dir, limit)
    elif name.startswith("truthfulqa_"):
        task = truthfulqa.load(name, data_dir, limit)
    elif name == "mmlu":
        task = mmlu.load(data_dir, limit, num_fewshot)
    elif name == "lr1":
        task = lr1.load(data_dir, limit)
    elif name.startswith("csv:"):
        task = csv_task.load(name, limit)
    else:
        raise EvalError(f"unknown task {name!r}; choose from {', '.join(TASKS)} or csv:<file.csv>")
    if not task.questions:
        raise EvalError(f"{name}: no questions were loaded; check the data files")
    return task

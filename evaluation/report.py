"""Human-readable output: the Markdown results table, per-question predictions, prediction files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from evaluation.generate import LETTERS


def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def interval(entry: dict, metric: str) -> str:
    lo_hi = entry.get(f"{metric}_ci95")
    return "–" if not lo_hi else f"{pct(lo_hi[0])}–{pct(lo_hi[1])}"


def markdown_table(results: dict) -> str:
    """One row per task; percentages with Wilson (or normal, for mc2) 95% intervals."""
    lines = [f"{results['model']}{' + ' + results['adapter'] if results.get('adapter') else ''} "
             f"({results['mode']})", "",
             "| task | n | acc % | 95% CI | acc_norm % | 95% CI | chance % | parse failures |",
             "|---|---:|---:|---|---:|---|---:|---:|"]
    for name, e in results["tasks"].items():
        lines.append(f"| {name} | {e['n']} | {pct(e['acc'])} | {interval(e, 'acc')} | {pct(e.get('acc_norm'))} "
                     f"| {interval(e, 'acc_norm')} | {pct(e.get('chance'))} | {e.get('parse_failures', 0)} |")
    return "\n".join(lines)


def _choice_label(record: dict, index: int | None) -> str:
    if index is None:
        return "(no choice recognised)"
    letter = LETTERS[record["order"].index(index)] if "order" in record else LETTERS[index]
    return f"{letter}. {record['choices'][index]}"


def format_prediction(record: dict) -> str:
    """``Question: … / Answer: …`` with the right answer and the verdict when the question has a key."""
    lines = [f"[{record['task']} {record['id']}] Question: {record['question']}"]
    if "reply" in record:
        lines.append(f"Reply: {record['reply'].strip()}")
    lines.append(f"Answer: {_choice_label(record, record['pred'])}")
    if "score" in record:
        true = ", ".join(_choice_label(record, i) for i, label in enumerate(record["labels"]) if label)
        lines.append(f"True answers: {true} | probability mass on them: {record['score']:.3f}")
    elif "correct" in record:
        right = [i for i, label in enumerate(record.get("labels") or []) if label] or [record["gold"]]
        lines.append(f"Right answer: {_choice_label(record, right[0])}{' (and others)' if len(right) > 1 else ''}"
                     f" -> {'correct' if record['correct'] else 'wrong'}")
    return "\n".join(lines)


def write_predictions_csv(path: Path, records: list[dict]) -> Path:
    """Answers to unkeyed questions (LR1.csv): the file's index, the 0-based answer like LR1_dev_answer.csv."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["", "answer", "letter", "choice", "question"])
        for r in records:
            index = r["id"].split("/", 1)[-1]
            pred = r["pred"]
            writer.writerow([index, "" if pred is None else pred, "" if pred is None else LETTERS[pred],
                             "" if pred is None else r["choices"][pred], r["question"]])
    return path


def write_json(path: Path, payload: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path

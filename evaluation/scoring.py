"""From model outputs to per-question records and a task summary (the ``tasks`` entries of results.json)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from evaluation.generate import LETTERS, Reply
from evaluation.metrics import chance, mc2_score, mc_predictions, summarize_binary, summarize_mean
from evaluation.task import TaskData

METRIC_NOTES = {
    ("loglik", "mc"): "acc: argmax log-likelihood (lm-eval multiple_choice)",
    ("loglik", "mc2"): "acc: probability mass on the true answers (lm-eval truthfulqa_mc2)",
    ("generate", "mc"): "acc: the letter the model wrote names the right choice; parse failures count as wrong",
    ("generate", "mc2"): "acc: the letter the model wrote names one of the true answers (not lm-eval's mc2); "
                         "parse failures count as wrong",
}


def loglik_records(task: TaskData, results: Sequence[tuple[float, bool]]) -> list[dict]:
    """One record per question from the flat list of (loglik, is_greedy), in request order."""
    records, pos = [], 0
    for q in task.questions:
        lls = [ll for ll, _ in results[pos:pos + len(q.choices)]]
        pos += len(q.choices)
        pred, pred_norm = mc_predictions(lls, q.norm_texts)
        record = {"task": task.name, "id": q.id, "question": q.question, "choices": q.choices,
                  "gold": q.gold, "pred": pred, "lls": lls}
        if q.labels is not None:
            record["labels"] = q.labels
            record["score"] = mc2_score(lls, q.labels)
        elif q.gold is not None:
            record["correct"] = pred == q.gold
            if task.report_acc_norm:
                record["pred_norm"], record["correct_norm"] = pred_norm, pred_norm == q.gold
        records.append(record)
    if pos != len(results):
        raise ValueError(f"{task.name}: {len(results)} scores for {pos} requests")
    return records


def generate_records(task: TaskData, replies: Sequence[Reply]) -> list[dict]:
    records = []
    for q, reply in zip(task.questions, replies, strict=True):
        record = {"task": task.name, "id": q.id, "question": q.question, "choices": q.choices, "gold": q.gold,
                  "pred": reply.choice, "order": reply.order, "reply": reply.text,
                  "parse_failure": reply.choice is None}
        if q.labels is not None:
            record["labels"] = q.labels
        if q.true_indices:
            record["correct"] = reply.choice in q.true_indices
        records.append(record)
    return records


def _letter_counts(records: list[dict], key: str) -> dict[str, int]:
    """How often each shown letter was ``key`` ("pred": chosen by the model, "gold": the right one)."""
    counts = Counter(LETTERS[r["order"].index(r[key])] for r in records if r[key] is not None)
    return dict(sorted(counts.items()))


def _scores(task: TaskData, scored: list[dict], mode: str) -> dict:
    if not scored:  # a CSV without answers: predictions only
        return {"n": 0, "acc": None}
    summary: dict = {"n": len(scored)}
    if mode == "loglik" and task.metric == "mc2":
        summary.update(summarize_mean("acc", [r["score"] for r in scored]))
    else:
        summary.update(summarize_binary("acc", [r["correct"] for r in scored]))
    if mode == "loglik" and task.report_acc_norm:
        summary.update(summarize_binary("acc_norm", [r["correct_norm"] for r in scored]))
    return summary


def summarize(task: TaskData, records: list[dict], mode: str) -> dict:
    """The results.json entry: fractions, 95% intervals, chance level, parse failures, data provenance."""
    scored = [r for r in records if "correct" in r or "score" in r]
    unscored = [r for r in records if "correct" not in r and "score" not in r]
    summary = _scores(task, scored, mode)
    summary["parse_failures"] = sum(r.get("parse_failure", False) for r in scored)
    questions = {q.id: q for q in task.questions}
    if scored:
        summary["chance"] = chance([len(questions[r["id"]].true_indices) for r in scored],
                                   [len(r["choices"]) for r in scored])
    summary["metric"] = METRIC_NOTES[(mode, task.metric)]
    summary["num_fewshot"] = task.num_fewshot
    if mode == "generate":
        summary["answer_letters"] = _letter_counts(scored, "pred")
        summary["gold_letters"] = _letter_counts(scored, "gold")
    subjects = sorted({questions[r["id"]].subject for r in scored} - {None})
    if task.name == "mmlu" and subjects:
        summary["subjects"] = {s: _subject(s, scored, questions) for s in subjects}
    if unscored:
        summary["unscored"] = len(unscored)
        if mode == "generate":
            summary["unscored_parse_failures"] = sum(r["parse_failure"] for r in unscored)
    summary["data"] = {"source": task.source, "files": task.files}
    if task.notes:
        summary["notes"] = task.notes
    return summary


def _subject(subject: str, scored: list[dict], questions: dict) -> dict:
    hits = [r["correct"] for r in scored if questions[r["id"]].subject == subject]
    return {"n": len(hits), "acc": sum(hits) / len(hits)}

"""Before/after: two results.json files side by side, with the checks that make the difference meaningful.

A difference means something only when both runs saw the same questions (same data hashes and n), were
scored the same way (same mode, few-shot count and seed) and start from the same base model; otherwise
the table still prints, with a note on every mismatch.
"""

from __future__ import annotations

import json
from pathlib import Path

from evaluation.report import interval, pct
from evaluation.task import EvalError


def load_results(path: Path) -> dict:
    if not path.is_file():
        raise EvalError(f"--compare: {str(path)!r} not found; pass two results.json files written by python -m evaluation")
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise EvalError(f"--compare: {str(path)!r} is not valid JSON ({exc.msg}); it is corrupt: run the evaluation again") from None
    if not isinstance(results, dict) or not isinstance(results.get("tasks"), dict) or "mode" not in results:
        raise EvalError(f"--compare: {str(path)!r} is not a results.json from python -m evaluation (no 'tasks'/'mode')")
    return results


def label(results: dict) -> str:
    return Path(results["adapter"]).name if results.get("adapter") else f"{Path(results['model']).name} (base)"


def metric_rows(before: dict, after: dict) -> list[tuple[str, str]]:
    """(task, metric) pairs present in both runs, in the order of the first."""
    rows = []
    for task, entry in before["tasks"].items():
        if task in after["tasks"]:
            other = after["tasks"][task]
            rows += [(task, m) for m in ("acc", "acc_norm")
                     if entry.get(m) is not None and other.get(m) is not None]
    return rows


def comparability_notes(before: dict, after: dict) -> list[str]:
    notes = []
    if before.get("model") != after.get("model"):
        notes.append(f"different base models ({before.get('model')} vs {after.get('model')}): the difference mixes "
                     "the base model with the fine-tuning; compare an adapter with its own base")
    for key in ("mode", "seed"):
        if before.get(key) != after.get(key):
            notes.append(f"different {key} ({before.get(key)} vs {after.get(key)})")
    for task, entry in before["tasks"].items():
        other = after["tasks"].get(task)
        if other is None:
            notes.append(f"{task}: only in the first file")
            continue
        for key in ("n", "num_fewshot"):
            if entry.get(key) != other.get(key):
                notes.append(f"{task}: different {key} ({entry.get(key)} vs {other.get(key)})")
        if _hashes(entry) != _hashes(other):
            notes.append(f"{task}: different data files or hashes: not the same questions")
    notes += [f"{task}: only in the second file" for task in after["tasks"] if task not in before["tasks"]]
    return notes


def _hashes(entry: dict) -> dict[str, str]:
    """File name -> hash: the same files copied to another folder or machine still match."""
    return {Path(path).name: digest for path, digest in entry.get("data", {}).get("files", {}).items()}


def compare_table(before: dict, after: dict) -> str:
    lines = [f"| task | metric | {label(before)} % | 95% CI | {label(after)} % | 95% CI | change (points) |",
             "|---|---|---:|---|---:|---|---:|"]
    for task, metric in metric_rows(before, after):
        a, b = before["tasks"][task], after["tasks"][task]
        change = 100 * (b[metric] - a[metric])
        lines.append(f"| {task} | {metric} | {pct(a[metric])} | {interval(a, metric)} | {pct(b[metric])} "
                     f"| {interval(b, metric)} | {change:+.1f} |")
    return "\n".join(lines)


def plot_comparison(before: dict, after: dict, path: Path) -> Path:
    """Grouped bars (before, after) per task and metric, with the 95% intervals as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = metric_rows(before, after)
    if not rows:
        raise EvalError("--compare: the two files share no task and metric; nothing to plot")
    fig, ax = plt.subplots(figsize=(max(6.0, 1.4 * len(rows) + 2), 4.5))
    width = 0.38
    for offset, (results, color) in enumerate(((before, "#8c8c8c"), (after, "#2a7ab9"))):
        xs = [i + (offset - 0.5) * width for i in range(len(rows))]
        values = [100 * results["tasks"][t][m] for t, m in rows]
        cis = [results["tasks"][t].get(f"{m}_ci95") or [results["tasks"][t][m]] * 2 for t, m in rows]
        # max(0, ...): at 0% or 100% the interval's edge can sit a rounding error inside the value.
        errors = [[max(0.0, v - 100 * lo) for v, (lo, _) in zip(values, cis)],
                  [max(0.0, 100 * hi - v) for v, (_, hi) in zip(values, cis)]]
        ax.bar(xs, values, width, yerr=errors, capsize=4, color=color, label=label(results))
    ax.set_xticks(range(len(rows)), [f"{t}\n{m}" for t, m in rows], fontsize=8)
    ax.set_ylabel("score % (95% CI)")
    ax.set_ylim(0, 100)
    ax.set_title(f"{before['mode']} evaluation: before vs after")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

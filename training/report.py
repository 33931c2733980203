"""What a finished run leaves next to its adapter: metrics.json, loss.png and, for DPO, rewards.png."""

from __future__ import annotations

import json
import logging
import resource
import sys
from collections import Counter
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def peak_memory() -> tuple[float, str]:
    """(GiB, what was measured): the CUDA allocator's peak on a GPU, the process's peak RSS on CPU."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return torch.cuda.max_memory_allocated() / 2**30, "cuda_max_memory_allocated"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / (2**30 if sys.platform == "darwin" else 2**20), "cpu_peak_rss"


def loss_entries(log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The trainer's log entries that carry a training or evaluation loss (not the end-of-run summary)."""
    return [e for e in log_history if "step" in e and ("loss" in e or "eval_loss" in e)]


def tokens_seen(trainer: Any) -> int:
    """Non-padding tokens trained on in this session (a resumed run counts from where it resumed)."""
    total = int(getattr(trainer.state, "num_input_tokens_seen", 0) or 0)
    return total - int(getattr(trainer, "_initial_num_input_tokens_seen", 0) or 0)


def build_metrics(trainer: Any, train_metrics: dict[str, Any], config: dict[str, Any], skipped: Counter,
                  length_stats: Counter, runtime: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    runtime_s = float(train_metrics.get("train_runtime", 0.0))
    tokens = tokens_seen(trainer)
    memory, memory_kind = peak_memory()
    return {
        "log_history": loss_entries(trainer.state.log_history),
        "train_tokens_per_second": tokens / runtime_s if runtime_s > 0 and tokens > 0 else None,
        "train_tokens": tokens,
        "peak_memory_gib": round(memory, 3),
        "peak_memory_kind": memory_kind,
        "train_runtime_s": runtime_s,
        "train_loss": train_metrics.get("train_loss"),
        "global_step": trainer.state.global_step,
        "skipped_rows": dict(skipped),
        "length_stats": dict(length_stats),
        "data": data,
        "runtime": runtime,
        "config": config,
    }


def write_metrics(output_dir: Path, metrics: dict[str, Any]) -> Path:
    path = output_dir / "metrics.json"
    path.write_text(json.dumps(metrics, indent=2, default=str) + "\n")
    return path


def plot_loss(log_history: list[dict[str, Any]], path: Path, title: str) -> Path | None:
    """Training and evaluation loss against the optimiser step."""
    try:
        import matplotlib
    except ImportError:
        logger.warning("loss.png not written: matplotlib is not installed (pip install matplotlib)")
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(e["step"], e["loss"]) for e in log_history if "loss" in e]
    evals = [(e["step"], e["eval_loss"]) for e in log_history if "eval_loss" in e]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if train:
        ax.plot(*zip(*train), label="train loss", color="tab:blue")
    if evals:
        ax.plot(*zip(*evals), label="eval loss", color="tab:orange", marker="o")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


REWARD_CURVES = (("rewards/chosen", "chosen", "tab:green"), ("rewards/rejected", "rejected", "tab:red"),
                 ("rewards/margins", "margin (chosen - rejected)", "tab:blue"))


def plot_rewards(log_history: list[dict[str, Any]], path: Path, title: str) -> Path | None:
    """DPO's implicit rewards (beta x log-ratio to the reference) and reward accuracy against the step:
    training curves solid, evaluation points dashed with markers."""
    try:
        import matplotlib
    except ImportError:
        logger.warning("rewards.png not written: matplotlib is not installed (pip install matplotlib)")
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (rewards, accuracy) = plt.subplots(2, 1, figsize=(7, 6), dpi=100, sharex=True)
    for prefix, style in (("", {}), ("eval_", {"linestyle": "--", "marker": "o"})):
        for key, label, color in REWARD_CURVES:
            points = [(e["step"], e[prefix + key]) for e in log_history if prefix + key in e]
            if points:
                rewards.plot(*zip(*points), label=("eval " if prefix else "") + label, color=color, **style)
        points = [(e["step"], e[prefix + "rewards/accuracies"]) for e in log_history if prefix + "rewards/accuracies" in e]
        if points:
            accuracy.plot(*zip(*points), label=("eval " if prefix else "train ") + "reward accuracy",
                          color="tab:purple", **style)
    rewards.axhline(0, color="grey", linewidth=0.8)
    rewards.set_ylabel("reward")
    rewards.set_title(title, fontsize=10)
    accuracy.axhline(0.5, color="grey", linewidth=0.8, linestyle=":")  # chance
    accuracy.set_ylim(-0.02, 1.02)
    accuracy.set_ylabel("chosen > rejected")
    accuracy.set_xlabel("step")
    for ax in (rewards, accuracy):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path

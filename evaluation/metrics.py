"""Per-question scoring (lm-eval's definitions) and 95% intervals.

Intervals: accuracies are proportions of independent right/wrong answers, so they get the Wilson score
interval (good coverage at small n and near 0 or 1, unlike the normal approximation). TruthfulQA MC2 is a
mean of per-question probabilities in [0, 1], so it gets the normal interval mean +- 1.96 * standard error
(the standard error lm-eval prints, sample standard deviation / sqrt(n)), clipped to [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Z95 = 1.959963984540054  # two-sided 95% normal quantile


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for ``successes`` out of ``n`` (8/10 -> 0.490..0.943)."""
    if n <= 0:
        raise ValueError("n must be positive")
    p = successes / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # Exact ends at 0/n and n/n (the formula lands a rounding error away from them).
    return (0.0 if successes <= 0 else max(0.0, center - half),
            1.0 if successes >= n else min(1.0, center + half))


def mean_interval(values: Sequence[float], z: float = Z95) -> tuple[float, float]:
    """mean +- z * s / sqrt(n), clipped to [0, 1]; s is the sample standard deviation."""
    n = len(values)
    if n == 0:
        raise ValueError("no values")
    mean = sum(values) / n
    if n == 1:
        return max(0.0, mean), min(1.0, mean)
    s = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = z * s / math.sqrt(n)
    return max(0.0, mean - half), min(1.0, mean + half)


def argmax(values: Sequence[float]) -> int:
    """First index of the maximum, like numpy.argmax (lm-eval breaks ties the same way)."""
    best = 0
    for i, v in enumerate(values):
        if v > values[best]:
            best = i
    return best


def mc_predictions(lls: Sequence[float], norm_texts: Sequence[str]) -> tuple[int, int]:
    """(pred, pred_norm): argmax of log-likelihood, and of log-likelihood per character (acc_norm)."""
    return argmax(lls), argmax([ll / float(len(t)) for ll, t in zip(lls, norm_texts, strict=True)])


def mc2_score(lls: Sequence[float], labels: Sequence[int]) -> float:
    """lm-eval's process_results_mc2: probability mass on the true answers after normalising exp(ll).

    Shifting by the maximum first changes nothing mathematically and keeps very negative log-likelihoods
    (long answers, tiny test models) from underflowing to 0/0.
    """
    import numpy as np

    values = np.array(lls, dtype=np.float64)
    probs = np.exp(values - values.max())
    probs_norm = probs / np.sum(probs)
    return float(np.sum(probs_norm[np.array(labels) == 1]))


def chance(n_true: Sequence[int], n_choices: Sequence[int]) -> float:
    """Expected accuracy of a uniform random pick: the mean of (#true choices / #choices)."""
    return sum(t / c for t, c in zip(n_true, n_choices, strict=True)) / len(n_choices)


def summarize_binary(name: str, correct: Sequence[bool]) -> dict:
    n = len(correct)
    hits = sum(bool(c) for c in correct)
    lo, hi = wilson_interval(hits, n)
    return {name: hits / n, f"{name}_ci95": [lo, hi]}


def summarize_mean(name: str, values: Sequence[float]) -> dict:
    lo, hi = mean_interval(values)
    return {name: sum(values) / len(values), f"{name}_ci95": [lo, hi]}

"""Intervals, lm-eval's metric definitions, the results table, predictions output and before/after comparison."""

from __future__ import annotations

import csv
import json
import math

import pytest

from evaluation import compare, report
from evaluation.metrics import mc2_score, mc_predictions, mean_interval, wilson_interval
from evaluation.task import EvalError


def test_wilson_interval_known_values():
    # Reference values: statsmodels proportion_confint(8, 10, method="wilson") and (0, 20).
    assert wilson_interval(8, 10) == pytest.approx((0.4901625, 0.9433178), abs=1e-6)
    assert wilson_interval(0, 20) == pytest.approx((0.0, 0.1611252), abs=1e-6)
    lo, hi = wilson_interval(305, 500)
    assert lo < 0.61 < hi and hi - lo == pytest.approx(0.0849, abs=5e-4)


def test_mean_interval_is_normal_with_sample_sd():
    values = [0.2, 0.4, 0.6, 0.8]
    sd = math.sqrt(sum((v - 0.5) ** 2 for v in values) / 3)
    assert mean_interval(values) == pytest.approx((0.5 - 1.959964 * sd / 2, 0.5 + 1.959964 * sd / 2), abs=1e-6)
    assert mean_interval([1.0, 1.0, 0.98])[1] == 1.0  # clipped


def test_acc_norm_divides_by_characters_and_ties_go_to_the_first():
    # Raw log-likelihood prefers the short answer; per character the long one wins.
    assert mc_predictions([-4.0, -10.0], ["ab", "abcdefghij"]) == (0, 1)
    assert mc_predictions([-3.0, -3.0], ["x", "y"]) == (0, 0)


def test_mc2_is_normalised_probability_mass_on_true_answers():
    lls = [math.log(0.5), math.log(0.25), math.log(0.25)]
    assert mc2_score(lls, [1, 0, 0]) == pytest.approx(0.5)
    assert mc2_score([-2000.0, -2001.0], [1, 0]) == pytest.approx(1 / (1 + math.exp(-1)))  # no 0/0 underflow


def results(adapter: str | None, arc: float, tqa: float, model: str = "base-3b", n: int = 500) -> dict:
    return {"model": model, "adapter": adapter, "mode": "loglik", "seed": 1234, "tasks": {
        "arc_challenge": {"n": n, "acc": arc, "acc_ci95": list(wilson_interval(arc * n, n)), "acc_norm": arc + 0.02,
                          "acc_norm_ci95": list(wilson_interval((arc + 0.02) * n, n)), "parse_failures": 0,
                          "chance": 0.25, "num_fewshot": 0, "data": {"files": {"arc.jsonl": "abc"}}},
        "truthfulqa_mc2": {"n": n, "acc": tqa, "acc_ci95": [tqa - 0.04, tqa + 0.04], "parse_failures": 0,
                           "chance": 0.3, "num_fewshot": 0, "data": {"files": {"mc_task.json": "def"}}}}}


def test_markdown_table_shows_percent_and_intervals():
    table = report.markdown_table(results(None, 0.61, 0.5))
    assert "| arc_challenge | 500 | 61.0 | 56.7–65.2 | 63.0 |" in table
    assert "| truthfulqa_mc2 | 500 | 50.0 | 46.0–54.0 | – | – | 30.0 | 0 |" in table


def test_compare_table_notes_and_plot(tmp_path):
    before, after = results(None, 0.61, 0.50), results("outputs/finetome", 0.58, 0.55)
    table = compare.compare_table(before, after)
    assert "| arc_challenge | acc | 61.0 | 56.7–65.2 | 58.0 |" in table and "| -3.0 |" in table
    assert "| truthfulqa_mc2 | acc | 50.0 | 46.0–54.0 | 55.0 | 51.0–59.0 | +5.0 |" in table
    assert compare.comparability_notes(before, after) == []
    png = compare.plot_comparison(before, after, tmp_path / "cmp.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_compare_flags_what_makes_numbers_incomparable():
    before = results(None, 0.67, 0.53, model="llama-3.2-1b", n=1172)
    after = results("outputs/finetome", 0.51, 0.78, model="llama-3.2-3b")
    after["tasks"]["truthfulqa_mc2"]["data"]["files"] = {"mc_task.json": "other"}
    notes = compare.comparability_notes(before, after)
    assert any(n.startswith("different base models (llama-3.2-1b vs llama-3.2-3b)") for n in notes)
    assert "arc_challenge: different n (1172 vs 500)" in notes
    assert "truthfulqa_mc2: different data files or hashes: not the same questions" in notes


def test_compare_rejects_missing_and_foreign_files(tmp_path):
    with pytest.raises(EvalError, match=r"--compare: '.*nope.json' not found"):
        compare.load_results(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(EvalError, match=r"is not valid JSON"):
        compare.load_results(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text(json.dumps({"results": {}}))
    with pytest.raises(EvalError, match=r"not a results.json from python -m evaluation"):
        compare.load_results(tmp_path / "other.json")


def test_prediction_text_and_csv(tmp_path):
    record = {"task": "lr1", "id": "test/7", "question": "Which is a prime?", "choices": ["4", "6", "7", "9"],
              "gold": None, "pred": 2, "order": [3, 2, 0, 1], "reply": "B"}
    text = report.format_prediction(record)
    assert text.splitlines() == ["[lr1 test/7] Question: Which is a prime?", "Reply: B", "Answer: B. 7"]
    graded = dict(record, gold=2, correct=True)
    assert report.format_prediction(graded).endswith("Right answer: B. 7 -> correct")
    path = report.write_predictions_csv(tmp_path / "p.csv", [record, dict(record, id="test/8", pred=None)])
    rows = list(csv.reader(path.open()))
    assert rows == [["", "answer", "letter", "choice", "question"], ["7", "2", "C", "7", "Which is a prime?"],
                    ["8", "", "", "", "Which is a prime?"]]

"""Generate mode: shuffled choices defeat position bias, answers map back through the shuffle, and parse
failures are counted apart from wrong answers. Scripted backends stand in for the model."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from pathlib import Path

import pytest

from evaluation.generate import build_messages, shuffled_order
from evaluation.runner import EvalConfig, run
from tests.scripted import ScriptedBackend

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="module")
def shared_data() -> Path:
    if not (SHARED / "truthfulqa" / "mc_task.json").is_file():
        pytest.skip(f"shared benchmark data not found at {SHARED}")
    return SHARED


def generate(tmp_path: Path, data_dir: Path, tasks: list[str], backend, limit: int | None = None):
    config = EvalConfig(model="scripted", tasks=tasks, data_dir=data_dir, limit=limit, mode="generate",
                        output=tmp_path / "results.json", progress=False)
    return run(config, backend=backend)


def test_truthfulqa_mc1_keeps_the_true_answer_first_in_the_file(shared_data):
    """Why shuffling matters: in file order, "always A" would score 100% on MC1."""
    docs = json.loads((shared_data / "truthfulqa" / "mc_task.json").read_text())
    assert all(list(d["mc1_targets"].values())[0] == 1 for d in docs)


def test_always_a_scores_chance_not_100_on_truthfulqa_mc1(shared_data, tmp_path):
    out = generate(tmp_path, shared_data, ["truthfulqa_mc1"], ScriptedBackend(default="A"))
    entry = out.results["tasks"]["truthfulqa_mc1"]
    records = out.records["truthfulqa_mc1"]
    expected = sum(1 / len(r["choices"]) for r in records) / len(records)
    sd = math.sqrt(sum((1 / len(r["choices"])) * (1 - 1 / len(r["choices"])) for r in records)) / len(records)
    assert entry["n"] == 817 and entry["parse_failures"] == 0
    assert entry["chance"] == pytest.approx(expected)
    assert abs(entry["acc"] - expected) < 3 * sd  # about 0.22, nowhere near 1.0
    assert entry["acc"] < 0.3
    assert entry["answer_letters"] == {"A": 817}


def test_shuffling_puts_the_right_answer_in_every_position(shared_data, tmp_path):
    out = generate(tmp_path, shared_data, ["truthfulqa_mc1"], ScriptedBackend(default="A"))
    records = out.records["truthfulqa_mc1"]
    by_size: dict[int, Counter] = {}
    for r in records:
        by_size.setdefault(len(r["choices"]), Counter())[r["order"].index(r["gold"])] += 1
    for k, positions in by_size.items():
        if sum(positions.values()) >= 80:  # enough questions of this size to expect every slot filled
            assert set(positions) == set(range(k)), (k, positions)
    four = by_size[4]
    assert all(0.15 < four[i] / sum(four.values()) < 0.35 for i in range(4)), four
    gold_letters = out.results["tasks"]["truthfulqa_mc1"]["gold_letters"]
    assert set("ABCD") <= set(gold_letters)


def test_shuffle_is_fixed_by_seed_and_question_not_by_limit():
    assert shuffled_order("arc_challenge", "7", 4, 1234) == shuffled_order("arc_challenge", "7", 4, 1234)
    orders = {tuple(shuffled_order("arc_challenge", str(i), 4, 1234)) for i in range(50)}
    assert len(orders) > 10
    assert shuffled_order("arc_challenge", "7", 4, 1) != shuffled_order("arc_challenge", "7", 4, 2) or \
        shuffled_order("arc_challenge", "8", 4, 1) != shuffled_order("arc_challenge", "8", 4, 2)


def oracle(answers: dict[str, str]):
    """A backend reply that reads the shuffled options and names the letter of the right answer text."""
    def reply(messages: list[dict]) -> str:
        text = messages[-1]["content"]
        question = text.split("\n\n", 1)[0]
        for letter, option in re.findall(r"^([A-Z])\. (.*)$", text, flags=re.M):
            if option == answers[question]:
                return f"The answer is {letter}."
        raise AssertionError("right answer not among the options")
    return reply


def test_answers_map_back_through_the_shuffle(shared_data, tmp_path):
    docs = json.loads((shared_data / "truthfulqa" / "mc_task.json").read_text())[:60]
    answers = {d["question"].strip(): next(a for a, v in d["mc1_targets"].items() if v) for d in docs}
    out = generate(tmp_path, shared_data, ["truthfulqa_mc1"], ScriptedBackend(default=oracle(answers)), limit=60)
    entry = out.results["tasks"]["truthfulqa_mc1"]
    assert entry["acc"] == 1.0 and entry["n"] == 60
    assert len(entry["answer_letters"]) >= 3  # the right letter moved around


def test_parse_failures_are_reported_apart_from_wrong_answers(shared_data, tmp_path):
    replies = ["I am not sure.", "B", "Let me think about it", "(A)"] * 5
    out = generate(tmp_path, shared_data, ["arc_challenge"], ScriptedBackend(replies=replies), limit=20)
    entry = out.results["tasks"]["arc_challenge"]
    records = out.records["arc_challenge"]
    assert entry["parse_failures"] == 10
    assert [r["pred"] is None for r in records] == [True, False, True, False] * 5
    assert entry["acc"] == sum(r["correct"] for r in records) / 20
    assert all(not r["correct"] for r in records if r["parse_failure"])
    assert "acc_norm" not in entry  # a letter reply has no per-character normalisation


def test_chat_prompt_lists_shuffled_options_with_letters(shared_data):
    from evaluation.tasks import load_task

    question = load_task("arc_challenge", shared_data, 1).questions[0]
    order = shuffled_order("arc_challenge", question.id, 4, 1234)
    content = build_messages(question, order)[0]["content"]
    assert content.startswith(question.question)
    for j, i in enumerate(order):
        assert f"\n{'ABCD'[j]}. {question.choices[i]}" in content
    assert content.endswith("(A, B, C or D) and nothing else.")


def test_mc2_generate_counts_any_true_answer(shared_data, tmp_path):
    out = generate(tmp_path, shared_data, ["truthfulqa_mc2"], ScriptedBackend(default="A"), limit=200)
    entry = out.results["tasks"]["truthfulqa_mc2"]
    records = out.records["truthfulqa_mc2"]
    expected = sum(sum(r["labels"]) / len(r["labels"]) for r in records) / len(records)
    assert entry["chance"] == pytest.approx(expected)
    assert abs(entry["acc"] - expected) < 0.1
    assert "not lm-eval's mc2" in entry["metric"]


def test_generate_uses_greedy_decoding(shared_data, tmp_path):
    backend = ScriptedBackend(default="C")
    generate(tmp_path, shared_data, ["arc_challenge"], backend, limit=3)
    (_, conversations, config), = backend.calls
    assert config.temperature == 0 and len(conversations) == 3
    assert conversations[0][0]["role"] == "user"


def test_csv_without_answers_gives_predictions_only(tmp_path):
    data = tmp_path / "quiz.csv"
    data.write_text("question,choice0,choice1,choice2\nSky colour?,red,blue,green\nGrass colour?,green,red,blue\n")
    config = EvalConfig(model="scripted", tasks=[f"csv:{data}"], mode="generate", output=tmp_path / "r.json",
                        progress=False)
    out = run(config, backend=ScriptedBackend(replies=["B", "no idea"]))
    entry = out.results["tasks"]["csv:quiz"]
    assert (entry["n"], entry["acc"], entry["unscored"], entry["unscored_parse_failures"]) == (0, None, 2, 1)
    rows = Path(entry["predictions_csv"]).read_text().splitlines()
    assert rows[0] == ",answer,letter,choice,question" and len(rows) == 3
    picked = out.records["csv:quiz"][0]
    assert rows[1] == f"0,{picked['pred']},{'ABC'[picked['pred']]},{picked['choices'][picked['pred']]},Sky colour?"
    assert rows[2] == "1,,,,Grass colour?"

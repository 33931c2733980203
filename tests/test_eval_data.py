"""Loading benchmark files: the real shared data, LR1's numpy-style choices, CSV layouts, hub layouts, and
a clear one-line error for every missing or corrupt input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from evaluation import arc, mmlu, truthfulqa
from evaluation.mcq_csv import parse_choice_list, read_mcq_csv
from evaluation.task import EvalError
from evaluation.tasks import load_task, parse_task_list

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="module")
def shared_data() -> Path:
    if not (SHARED / "mmlu_lr1").is_dir():
        pytest.skip(f"shared benchmark data not found at {SHARED}")
    return SHARED


def test_real_files_load_with_their_published_sizes(shared_data):
    sizes = {name: len(load_task(name, shared_data).scored) for name in
             ("arc_challenge", "arc_easy", "truthfulqa_mc1", "truthfulqa_mc2", "mmlu", "lr1")}
    assert sizes == {"arc_challenge": 1172, "arc_easy": 2376, "truthfulqa_mc1": 817, "truthfulqa_mc2": 817,
                     "mmlu": 1469, "lr1": 100}


def test_arc_prompt_and_continuations_are_lm_evals(shared_data):
    q = load_task("arc_challenge", shared_data, limit=1).questions[0]
    assert q.context == ("Question: An astronomer observes that a planet rotates faster after a meteorite impact. "
                         "Which is the most likely effect of this increase in rotation?\nAnswer:")
    assert q.continuations[2] == " Planetary days will become shorter." and q.gold == 2
    assert q.norm_texts == q.choices  # acc_norm divides by the choice's characters, without the space


def test_limit_takes_the_first_questions_in_file_order(shared_data):
    first = load_task("arc_challenge", shared_data, limit=5).questions
    assert [q.id for q in first] == ["0", "1", "2", "3", "4"]
    assert [q.question for q in first] == [q.question for q in load_task("arc_challenge", shared_data).questions[:5]]


def test_lr1_numpy_style_choices_spanning_lines_are_parsed(shared_data):
    rows = read_mcq_csv(shared_data / "mmlu_lr1" / "LR1_dev.csv")
    assert rows[0].choices == ["ensure the emergency team/services are called.", "give two rescue breaths.",
                               "give 30 chest compressions.",
                               "check the notes to see if the patient has a DNAR order."]
    assert rows[5].choices == ["G is abelian", "G = {e}", "a^3 = e", "a^2 = a"]
    assert all(len(r.choices) == 4 for r in rows) and rows[0].subject == "clinical_knowledge"


def test_lr1_joins_the_answer_key_and_keeps_lr1_csv_unscored(shared_data):
    task = load_task("lr1", shared_data)
    assert len(task.scored) == 100 and len(task.unscored) == 300
    assert [q.gold for q in task.scored[:4]] == [0, 2, 1, 3]  # LR1_dev_answer.csv
    assert task.scored[0].context.startswith(
        "The following are multiple choice questions (with answers) about clinical knowledge.\n\n")


@pytest.mark.parametrize("text, expected", [
    ("['a' 'b'\n 'c d']", ["a", "b", "c d"]),
    ("[\"it's\" 'plain']", ["it's", "plain"]),
    ("['x', 'y']", ["x", "y"]),
    ('["x", "y, z"]', ["x", "y, z"]),
    ("['back\\\\slash' 'tab\\there']", ["back\\slash", "tab\there"]),
])
def test_choice_list_strings(text, expected):
    assert parse_choice_list(text) == expected


@pytest.mark.parametrize("text", ["a, b", "[a b]", "[]", "['open"])
def test_bad_choice_list_strings_raise(text):
    with pytest.raises((ValueError, SyntaxError)):
        parse_choice_list(text)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_csv_task_layouts(tmp_path):
    write(tmp_path / "letters.csv", "question,A,B,C,D,answer\n2+2?,3,4,5,6,B\n")
    write(tmp_path / "numbered.csv", "question,choice0,choice1,choice2,answer\nSky?,red,blue,green,1\n")
    write(tmp_path / "listed.csv", "question,subject,choices,answer\nSun?,astronomy,\"['star' 'planet']\",0\n")
    write(tmp_path / "raw.csv", "2+3?,4,5,6,7,B\n1+1?,2,3,4,5,A\n")
    for name, gold, n in (("letters", 1, 4), ("numbered", 1, 3), ("listed", 0, 2), ("raw", 1, 4)):
        task = load_task(f"csv:{tmp_path / f'{name}.csv'}", None)
        assert (task.questions[0].gold, len(task.questions[0].choices)) == (gold, n), name
        assert task.name == f"csv:{name}"
    listed = load_task(f"csv:{tmp_path / 'listed.csv'}", None).questions[0]
    assert listed.context == ("The following are multiple choice questions (with answers) about astronomy.\n\n"
                              "Sun?\nA. star\nB. planet\nAnswer:") and listed.continuations == [" A", " B"]


def test_unknown_task_is_named():
    with pytest.raises(EvalError, match=r"unknown task 'arc_hard' in --tasks; choose from arc_challenge"):
        parse_task_list("arc_challenge,arc_hard")


def test_missing_data_files_say_what_to_pass(tmp_path):
    (tmp_path / "arc").mkdir()
    with pytest.raises(EvalError, match=r"no file matching '\*arc_challenge\*.jsonl'.*--data-dir"):
        load_task("arc_challenge", tmp_path)
    with pytest.raises(EvalError, match=r"mc_task.json' not found; pass --data-dir"):
        load_task("truthfulqa_mc1", tmp_path)
    with pytest.raises(EvalError, match=r"no <subject>_test.csv files"):
        load_task("mmlu", tmp_path)
    with pytest.raises(EvalError, match=r"lr1: '.*LR1_dev.csv' not found"):
        load_task("lr1", tmp_path)
    with pytest.raises(EvalError, match=r"--data-dir '.*nowhere' is not a directory"):
        load_task("arc_challenge", tmp_path / "nowhere")


def test_mmlu_few_shot_needs_the_dev_file(tmp_path):
    write(tmp_path / "mmlu" / "test" / "anatomy_test.csv", "question,choice0,choice1,choice2,choice3,answer\nQ?,a,b,c,d,0\n")
    with pytest.raises(EvalError, match=r"5-shot needs .*anatomy_dev.csv.*--num-fewshot 0"):
        load_task("mmlu", tmp_path)
    assert load_task("mmlu", tmp_path, num_fewshot=0).questions[0].context.endswith("Q?\nA. a\nB. b\nC. c\nD. d\nAnswer:")


def test_corrupt_files_give_one_line_errors(tmp_path):
    write(tmp_path / "arc" / "arc_challenge.jsonl", '{"query": "Question: a", "choices": ["x", "y"], "gold": 0}\n{"query": "Que')
    with pytest.raises(EvalError, match=r"line 2 is not valid JSON .*corrupt or truncated") as info:
        load_task("arc_challenge", tmp_path)
    assert "\n" not in str(info.value)
    write(tmp_path / "arc" / "arc_challenge.jsonl", '{"query": "Question: a", "choices": ["x", "y"], "gold": 5}\n')
    with pytest.raises(EvalError, match=r"'gold' must be a 0-based index below 2, got 5"):
        load_task("arc_challenge", tmp_path)
    write(tmp_path / "truthfulqa" / "mc_task.json", '[{"question": "q", "mc1_targets": {"a": 1')
    with pytest.raises(EvalError, match=r"mc_task.json' is not valid JSON"):
        load_task("truthfulqa_mc1", tmp_path)
    write(tmp_path / "truthfulqa" / "mc_task.json", '[{"question": "q", "mc1_targets": {"a": 1, "b": 1}}]')
    with pytest.raises(EvalError, match=r"mc1_targets must have exactly one true answer, got 2"):
        load_task("truthfulqa_mc1", tmp_path)


def test_lr1_errors(shared_data, tmp_path):
    folder = tmp_path / "mmlu_lr1"
    folder.mkdir()
    shutil.copy(shared_data / "mmlu_lr1" / "LR1_dev.csv", folder)
    with pytest.raises(EvalError, match=r"LR1_dev_answer.csv' not found"):
        load_task("lr1", tmp_path)
    write(folder / "LR1_dev_answer.csv", ",answer\n0,0\n1,2\n")
    with pytest.raises(EvalError, match=r"LR1_dev_answer.csv has no answer for LR1_dev.csv index 2"):
        load_task("lr1", tmp_path)
    write(folder / "LR1_dev.csv", ",question,subject,choices\n0,Q?,anatomy,\"['a' 'b\"\n")
    with pytest.raises(EvalError, match=r"row 0: cannot read the choices list"):
        load_task("lr1", tmp_path)


def test_hub_layouts_convert_like_lm_eval(monkeypatch):
    """No hub here: feed the loaders rows in the hub's layout and check the conversion."""
    datasets = pytest.importorskip("datasets")
    arc_rows = [{"id": "Mercury_1", "question": "Which is a gas?", "answerKey": "3",
                 "choices": {"text": ["rock", "iron", "steam"], "label": ["1", "2", "3"]}}]
    monkeypatch.setattr(arc, "load_hub", lambda *a: datasets.Dataset.from_list(arc_rows))
    q = load_task("arc_challenge", None).questions[0]
    assert (q.context, q.gold, q.id) == ("Question: Which is a gas?\nAnswer:", 2, "Mercury_1")
    tqa_rows = [{"question": "Q?", "mc1_targets": {"choices": ["t", "f"], "labels": [1, 0]},
                 "mc2_targets": {"choices": ["t", "t2", "f"], "labels": [1, 1, 0]}}]
    monkeypatch.setattr(truthfulqa, "load_hub", lambda *a: datasets.Dataset.from_list(tqa_rows))
    assert load_task("truthfulqa_mc2", None).questions[0].labels == [1, 1, 0]
    assert load_task("truthfulqa_mc1", None).questions[0].context.endswith("\n\nQ: Q?\nA:")
    mmlu_rows = {"test": [{"question": "T?", "subject": "anatomy", "choices": ["a", "b", "c", "d"], "answer": 3}],
                 "dev": [{"question": f"D{i}?", "subject": "anatomy", "choices": ["a", "b", "c", "d"], "answer": i % 4}
                         for i in range(5)]}
    monkeypatch.setattr(mmlu, "load_hub", lambda path, name, split: datasets.Dataset.from_list(mmlu_rows[split]))
    q = load_task("mmlu", None).questions[0]
    assert q.context.count("\nAnswer: ") == 5 and "D4?\nA. a" in q.context and q.gold == 3


def test_offline_hub_error_says_use_data_dir(monkeypatch):
    pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(EvalError, match=r"could not load allenai/ai2_arc \(ARC-Challenge\) from the Hugging Face "
                                        r"hub .*pass --data-dir"):
        load_task("arc_challenge", None, limit=5)


def test_truthfulqa_hub_and_file_layouts_agree(shared_data):
    doc = json.loads((shared_data / "truthfulqa" / "mc_task.json").read_text())[0]
    from_file = truthfulqa.make_question("0", doc, "truthfulqa_mc2", "x")
    hub_doc = {"question": doc["question"], "mc2_targets": {"choices": list(doc["mc2_targets"]),
                                                            "labels": list(doc["mc2_targets"].values())}}
    from_hub = truthfulqa.make_question("0", hub_doc, "truthfulqa_mc2", "x")
    assert (from_file.choices, from_file.labels, from_file.context) == (from_hub.choices, from_hub.labels, from_hub.context)

"""Every dataset format becomes the exact conversation we expect; bad rows are counted, not lost."""

from __future__ import annotations

import csv
import json
import random
import re
from collections import Counter
from pathlib import Path

import pytest

from evaluation.mcq_csv import BadMcqRow, mcq_row
from evaluation.task import EvalError
from tests.tiny_models import SHARED_DATA
from training.config import TrainConfig
from training.data import prepare_data, read_local, split_eval, to_conversations
from training.errors import TrainingError
from training.mcq import mcq_prompt, parse_choices

SHAREGPT = SHARED_DATA / "sharegpt" / "fastchat_dummy_conversation.json"
ALPACA = SHARED_DATA / "instruct" / "llamafactory_alpaca_en_demo.json"
LR1_DIR = SHARED_DATA / "mmlu_lr1"
MMLU_DEV = SHARED_DATA / "mmlu" / "dev" / "anatomy_dev.csv"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared data file {path} not found (the ../shared/data folder is absent)")
    return path


def config(dataset: Path | str, **overrides) -> TrainConfig:
    return TrainConfig(dataset=str(dataset), report_to="none", **overrides)


def write_json(path: Path, rows: list) -> Path:
    path.write_text(json.dumps(rows))
    return path


def test_sharegpt_real_file_converts_every_conversation():
    data = prepare_data(config(need(SHAREGPT)))
    assert data.format == "sharegpt"
    assert len(data.train) == 500 and data.skipped == Counter()
    assert data.train[0] == [
        {"role": "user", "content": "Who are you?"},
        {"role": "assistant", "content": "I am Vicuna, a language model trained by researchers from Large "
                                         "Model Systems Organization (LMSYS)."},
        {"role": "user", "content": "Have a nice day!"},
        {"role": "assistant", "content": "You too!"},
    ]


def test_sharegpt_bad_rows_are_counted_by_reason(tmp_path):
    good = {"conversations": [{"from": "system", "value": "Be brief."}, {"from": "human", "value": "Hi"},
                              {"from": "gpt", "value": "Hello!"}]}
    rows = [
        good,
        {"id": "no conversations"},
        {"conversations": [{"from": "robot", "value": "beep"}, {"from": "gpt", "value": "ok"}]},
        {"conversations": [{"from": "human", "value": "Only a question"}]},
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "   "}]},
        {"conversations": [{"from": "gpt", "value": "I start"}, {"from": "human", "value": "no"}]},
        "not an object",
    ]
    data = prepare_data(config(write_json(tmp_path / "chat.json", rows)))
    assert data.train == [[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                           {"role": "assistant", "content": "Hello!"}]]
    assert data.skipped == Counter({
        "missing or empty 'conversations' list": 1, "unknown role": 1, "ends without an assistant reply": 1,
        "empty message": 1, "turns do not alternate user/assistant starting with the user": 1,
        "row is not an object": 1})


def test_alpaca_real_file_with_and_without_input():
    rows = json.loads(need(ALPACA).read_text())
    data = prepare_data(config(ALPACA))
    assert data.format == "alpaca" and len(data.train) == len(rows) == 999 and not data.skipped
    assert data.train[0] == [{"role": "user", "content": "Describe a process of making crepes."},
                             {"role": "assistant", "content": rows[0]["output"]}]
    i = next(i for i, r in enumerate(rows) if r["input"].strip())
    assert data.train[i][0]["content"] == f"{rows[i]['instruction'].strip()}\n\n{rows[i]['input'].strip()}"


def test_alpaca_rows_without_instruction_or_output_are_skipped(tmp_path):
    rows = [{"instruction": "Add 2 and 3.", "input": "", "output": "5", "system": "You are a calculator."},
            {"instruction": "", "input": "x", "output": "y"}, {"instruction": "Say hi", "input": ""}]
    data = prepare_data(config(write_json(tmp_path / "a.json", rows), dataset_format="alpaca"))
    assert data.train == [[{"role": "system", "content": "You are a calculator."},
                           {"role": "user", "content": "Add 2 and 3."}, {"role": "assistant", "content": "5"}]]
    assert data.skipped == Counter({"missing instruction": 1, "missing output": 1})


def test_guanaco_text_becomes_alternating_turns(tmp_path):
    rows = [{"text": "### Human: What is a monopsony?### Assistant: A market with a single buyer.### Human: "
                     "Explain it to a dog.### Assistant: One person buys all the treats."},
            {"text": "no markers here"},
            {"text": "### Human: Hello?"}]
    path = tmp_path / "guanaco.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n{broken json\n")
    data = prepare_data(config(path))
    assert data.format == "guanaco"
    assert data.train == [[
        {"role": "user", "content": "What is a monopsony?"},
        {"role": "assistant", "content": "A market with a single buyer."},
        {"role": "user", "content": "Explain it to a dog."},
        {"role": "assistant", "content": "One person buys all the treats."}]]
    assert data.skipped == Counter({"invalid JSON line": 1, "ends without an assistant reply": 1,
                                    "no '### Human:' / '### Assistant:' markers": 1})


def test_messages_format_passes_through_and_checks_roles(tmp_path):
    conversation = [{"role": "system", "content": "Teach."}, {"role": "user", "content": "2+2?"},
                    {"role": "assistant", "content": "4"}]
    rows = [{"messages": conversation},
            {"messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "late"},
                          {"role": "assistant", "content": "b"}]}]
    path = tmp_path / "m.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    data = prepare_data(config(path))
    assert data.format == "messages" and data.train == [conversation]
    assert data.skipped == Counter({"system message after the first turn": 1})


def test_numpy_style_choices_including_quotes_and_line_wraps():
    text = "['a bacterium' 'a protozoan'\n 'a virus' \"a prion's cousin\"]"
    assert parse_choices(text) == ["a bacterium", "a protozoan", "a virus", "a prion's cousin"]
    assert parse_choices("['x', 'y']") == ["x", "y"]


def test_lr1_dev_with_answers_file():
    dev, answers = need(LR1_DIR / "LR1_dev.csv"), need(LR1_DIR / "LR1_dev_answer.csv")
    data = prepare_data(config(dev, answers_file=str(answers)))
    assert data.format == "mcq-csv" and len(data.train) == 100 and not data.skipped
    assert data.train[0] == [
        {"role": "user", "content": (
            "The following is a multiple choice question about clinical knowledge.\n\n"
            "Your first action following confirmation of cardiac arrest is to:\n\n"
            "A. ensure the emergency team/services are called.\nB. give two rescue breaths.\n"
            "C. give 30 chest compressions.\nD. check the notes to see if the patient has a DNAR order.\n\n"
            "Answer with the letter of the correct option.")},
        {"role": "assistant", "content": "A. ensure the emergency team/services are called."}]
    # Row 1's options are wrapped over three lines inside the quoted CSV field; its answer is 2.
    assert data.train[1][1] == {"role": "assistant", "content": "C. Biased and inconsistent"}
    last_option = "D. It is impossible to apply OLS to equations that are part of a simultaneous system"
    assert last_option in data.train[1][0]["content"]


def test_lr1_without_answers_is_a_clear_error():
    with pytest.raises(TrainingError, match=r"no 'answer' column.*--answers_file"):
        prepare_data(config(need(LR1_DIR / "LR1.csv")))


def test_lr1_every_row_parses_to_four_choices():
    with need(LR1_DIR / "LR1.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 300 and all(len(parse_choices(r["choices"])) == 4 for r in rows)


def test_mmlu_columns_and_bad_answers(tmp_path):
    data = prepare_data(config(need(MMLU_DEV)))
    assert data.train[0][1] == {"role": "assistant", "content": "D. The second and third pharyngeal arches"}
    path = tmp_path / "q.csv"
    path.write_text("question,A,B,C,D,answer\nWhat is 2+2?,3,4,5,6,B\nBad,1,2,3,4,7\nNone,1,2,3,4,\n")
    data = prepare_data(config(path, dataset_format="mcq-csv"))
    assert [c[1]["content"] for c in data.train] == ["B. 4"]
    assert data.skipped == Counter({"answer out of range": 1, "no answer": 1})


def test_eval_split_is_seeded_and_disjoint():
    rows = [[{"role": "user", "content": str(i)}, {"role": "assistant", "content": "x"}] for i in range(100)]
    train, held = split_eval(rows, 0.1, seed=3)
    assert len(held) == 10 and len(train) == 90
    assert not {c[0]["content"] for c in held} & {c[0]["content"] for c in train}
    assert split_eval(rows, 0.1, seed=3) == (train, held)


def test_separate_eval_file_and_max_samples(tmp_path):
    data = prepare_data(config(need(SHAREGPT), eval_dataset=str(ALPACA), max_samples=20))
    assert len(data.train) == 20 and len(data.eval) == 999


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"dataset": "/nonexistent/data.json"}, r"dataset file '/nonexistent/data.json' not found"),
    ({"dataset": "owner/no-such-dataset"}, r"could not load dataset 'owner/no-such-dataset' from the Hugging Face hub"),
])
def test_missing_or_offline_dataset(kwargs, match):
    with pytest.raises(TrainingError, match=match):
        prepare_data(TrainConfig(report_to="none", **kwargs))


def test_unknown_layout_and_unsupported_file(tmp_path):
    with pytest.raises(TrainingError, match=r"cannot tell the format.*columns: \['a', 'b'\].*--dataset_format"):
        prepare_data(config(write_json(tmp_path / "x.json", [{"a": 1, "b": 2}])))
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(TrainingError, match=r"unsupported type \.txt"):
        read_local(str(tmp_path / "x.txt"), Counter())


def test_explicit_format_with_no_usable_rows(tmp_path):
    path = write_json(tmp_path / "x.json", [{"instruction": "a", "output": "b"}])
    with pytest.raises(TrainingError, match=r"no usable rows .* as format sharegpt"):
        to_conversations(json.loads(path.read_text()), "sharegpt", str(path), Counter())


def garbage(path: Path, size: int = 4096) -> Path:
    """A file of random bytes (seeded) under a data file's name."""
    path.write_bytes(random.Random(0).randbytes(size))
    return path


def quoted(path: Path) -> str:
    """The path as the error message shows it (repr), escaped for ``match=``."""
    return re.escape(repr(str(path)))


def one_line_error(dataset: Path, match: str, **overrides) -> TrainingError:
    with pytest.raises(TrainingError, match=match) as info:
        prepare_data(config(dataset, **overrides))
    assert "\n" not in str(info.value)
    return info.value


@pytest.mark.parametrize(("name", "expected"), [
    ("data.json", "a JSON list of rows or JSON Lines"),
    ("data.jsonl", "a JSON list of rows or JSON Lines"),
    ("data.csv", "comma-separated text with a header row"),
])
def test_random_bytes_name_the_file_and_the_expected_format(tmp_path, name, expected):
    path = garbage(tmp_path / name)
    one_line_error(path, rf"dataset {quoted(path)} is not UTF-8 text: expected {expected}")


def test_corrupt_parquet_names_the_file(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    whole = tmp_path / "whole.parquet"
    pq.write_table(pa.table({"instruction": ["Add 2 and 3."] * 50, "output": ["5"] * 50}), whole)
    assert len(prepare_data(config(whole)).train) == 50
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])  # a download or copy that stopped halfway
    one_line_error(cut, rf"dataset {quoted(cut)} is not a readable Parquet file \(.*\): expected a Parquet")
    one_line_error(garbage(tmp_path / "noise.parquet"), r"is not a readable Parquet file \(.*magic bytes")


def test_json_nested_100k_deep_is_one_line(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    one_line_error(path, rf"dataset {quoted(path)} nests JSON deeper than Python can read: expected a JSON list")


def test_a_json_line_nested_too_deep_is_skipped_and_counted(tmp_path):
    good = {"instruction": "Add 2 and 3.", "output": "5"}
    path = tmp_path / "deep.jsonl"
    path.write_text(json.dumps(good) + "\n" + "[" * 100_000 + "]" * 100_000 + "\n")
    data = prepare_data(config(path))
    assert len(data.train) == 1 and data.skipped == Counter({"JSON line nested too deeply": 1})


def test_answers_file_of_random_bytes_is_one_line(tmp_path):
    questions = tmp_path / "q.csv"
    questions.write_text("question,A,B,C,D\nWhat is 2+2?,3,4,5,6\n")
    answers = garbage(tmp_path / "answers.csv")
    one_line_error(questions, rf"--answers_file {quoted(answers)} is not a readable CSV file \(it is not UTF-8",
                   answers_file=str(answers))


def test_training_and_evaluation_read_the_same_options_and_answers():
    """One MCQ reader: what training teaches for a row is the option text and answer evaluation scores."""
    from evaluation.mcq_csv import read_answer_key, read_mcq_csv

    for questions, answers in ((need(MMLU_DEV), None), (need(LR1_DIR / "LR1_dev.csv"), LR1_DIR / "LR1_dev_answer.csv")):
        data = prepare_data(config(questions, answers_file=str(answers) if answers else None))
        rows = read_mcq_csv(questions)
        key = read_answer_key(answers) if answers else {}
        assert len(data.train) == len(rows)
        for conversation, row in zip(data.train, rows):
            gold = key.get(row.index, row.answer)
            options = "\n".join(f"{'ABCDEFGHIJ'[i]}. {c.strip()}" for i, c in enumerate(row.choices))
            assert options in conversation[0]["content"]
            assert conversation[1]["content"] == f"{'ABCDEFGHIJ'[gold]}. {row.choices[gold].strip()}"


def test_training_format_and_evaluation_read_the_same_rows(tmp_path):
    """The mcq-csv format and evaluation's reader give the same question, choices, answer and subject for
    every row of the shared MMLU files and of a file with an answers file, and report a bad row alike."""
    from evaluation.mcq_csv import read_mcq_csv

    def expected(rows):
        return [[{"role": "user", "content": mcq_prompt(r.question, r.choices, r.subject)},
                 {"role": "assistant", "content": f"{'ABCDEFGHIJ'[r.answer]}. {r.choices[r.answer].strip()}"}]
                for r in rows]

    mmlu = sorted(need(SHARED_DATA / "mmlu").glob("*/*.csv"))[:6]
    assert mmlu
    for path in mmlu:
        rows = read_mcq_csv(path)
        assert rows and all(r.answer is not None for r in rows)
        assert prepare_data(config(path)).train == expected(rows), path
    dev, answers = need(LR1_DIR / "LR1_dev.csv"), need(LR1_DIR / "LR1_dev_answer.csv")
    rows = read_mcq_csv(dev, answers=answers)
    assert [r.answer for r in rows[:4]] == [0, 2, 1, 3] and rows[0].subject == "clinical_knowledge"
    assert prepare_data(config(dev, answers_file=str(answers))).train == expected(rows)

    # Answers joined on the index column, out of order, one of them a letter; one question has no answer.
    questions = tmp_path / "q.csv"
    questions.write_text(",question,subject,choices\n0,Sun?,astronomy,\"['star' 'planet'\n 'moon']\"\n"
                         "1,Sky?,,\"['red', 'blue']\"\n2,Moon?,astronomy,\"['rock' 'cheese']\"\n")
    key = tmp_path / "a.csv"
    key.write_text(",answer\n1,B\n0,0\n")
    data = prepare_data(config(questions, answers_file=str(key)))
    assert data.skipped == Counter({"no answer": 1})
    with pytest.raises(EvalError, match=r"a.csv has no answer for q.csv index 2; the two files do not belong"):
        read_mcq_csv(questions, answers=key)
    key.write_text(",answer\n1,B\n0,0\n2,1\n")
    rows = read_mcq_csv(questions, answers=key)
    assert [(r.index, r.choices, r.answer, r.subject) for r in rows] == [
        ("0", ["star", "planet", "moon"], 0, "astronomy"), ("1", ["red", "blue"], 1, None),
        ("2", ["rock", "cheese"], 1, "astronomy")]
    assert prepare_data(config(questions, answers_file=str(key))).train == expected(rows)

    # A bad row: training skips it and counts the reader's reason; evaluation stops on it, naming the row.
    bad = tmp_path / "bad.csv"
    bad.write_text("question,A,B,C,D,answer\nWhat is 2+2?,3,4,5,6,B\nBad,1,2,3,4,7\n")
    with pytest.raises(BadMcqRow) as reason:
        mcq_row({"question": "Bad", "A": "1", "B": "2", "C": "3", "D": "4", "answer": "7"}, "1")
    data = prepare_data(config(bad, dataset_format="mcq-csv"))
    assert data.skipped == Counter({reason.value.reason: 1}) == Counter({"answer out of range": 1})
    with pytest.raises(EvalError, match=rf"bad.csv' row 1: {re.escape(str(reason.value))}$"):
        read_mcq_csv(bad)
    assert str(reason.value) == "answer '7' is out of range for 4 choices"

"""Preference data for DPO: every layout -> exact pairs, the app's feedback file -> pairs and counted reasons."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from training.args import parse_dpo_args, parse_sft_args
from training.config import DPOTrainConfig
from training.errors import TrainingError
from training.feedback import Pair, new_record, pairs_from_lines, read_feedback
from training.preference import detect_preference_format, prepare_pairs, to_pairs
from tests.tiny_models import SHARED_DATA

PREFERENCE = SHARED_DATA / "preference"
HH = PREFERENCE / "hh-rlhf_harmless-base_test_first1000.jsonl"
LLAMAFACTORY = PREFERENCE / "llamafactory_dpo_en_demo.json"
SYSTEM = {"role": "system", "content": "You are Llama Tutor."}


def need(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"{path} not found (shared data folder absent)")
    return path


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict:
    return {"role": "assistant", "content": text}


def convert(rows: list, fmt: str = "auto") -> tuple[list[tuple], str, Counter]:
    skipped: Counter = Counter()
    pairs, detected, _ = to_pairs(rows, fmt, "data.jsonl", skipped)
    return [(p.prompt, p.chosen, p.rejected) for p in pairs], detected, skipped


def test_prompt_chosen_rejected_text_and_messages():
    rows = [
        {"prompt": "What is 7 x 8?", "chosen": "56: 7 x 8 = 7 x 10 - 7 x 2.", "rejected": "54"},
        {"prompt": "Why?", "system": "Be brief.", "chosen": "Because.", "rejected": "No."},
        {"prompt": [SYSTEM, user("Hi"), assistant("Hello!"), user("2+2?")],
         "chosen": [assistant("4. Can you show why?")], "rejected": [{"role": "assistant", "content": "5"}]},
        {"prompt": "Same?", "chosen": "yes", "rejected": " yes "},
        {"prompt": "Empty?", "chosen": "", "rejected": "no"},
        {"prompt": [user("Hi"), assistant("Hello!")], "chosen": "a", "rejected": "b"},
        {"prompt": "Two replies?", "chosen": [assistant("a"), assistant("b")], "rejected": "c"},
    ]
    pairs, fmt, skipped = convert(rows)
    assert fmt == "pairs"
    assert pairs == [
        ([user("What is 7 x 8?")], "56: 7 x 8 = 7 x 10 - 7 x 2.", "54"),
        ([{"role": "system", "content": "Be brief."}, user("Why?")], "Because.", "No."),
        ([SYSTEM, user("Hi"), assistant("Hello!"), user("2+2?")], "4. Can you show why?", "5"),
    ]
    assert skipped == Counter({"chosen and rejected are the same reply": 1, "empty chosen reply": 1,
                               "prompt does not end with the user's message": 1,
                               "chosen reply is not one assistant reply": 1})


def test_conversational_pairs_share_everything_but_the_last_reply():
    rows = [
        {"chosen": [SYSTEM, user("What is a prime?"), assistant("A number with exactly two divisors. Is 9 one?")],
         "rejected": [SYSTEM, user("What is a prime?"), assistant("An odd number.")]},
        {"chosen": [user("A"), assistant("x")], "rejected": [user("B"), assistant("y")]},
        {"chosen": [user("A"), assistant("x")], "rejected": [user("A")]},
    ]
    pairs, fmt, skipped = convert(rows)
    assert fmt == "conversational"
    assert pairs == [([SYSTEM, user("What is a prime?")], "A number with exactly two divisors. Is 9 one?",
                      "An odd number.")]
    assert skipped == Counter({"chosen and rejected conversations differ before the last reply": 1,
                               "a conversation does not end with an assistant reply": 1})


def test_hh_rlhf_transcripts_become_a_shared_prompt_and_two_replies():
    shared = "\n\nHuman: What is photosynthesis?\n\nAssistant: Plants making food.\n\nHuman: How?"
    rows = [{"chosen": shared + "\n\nAssistant: With light: CO2 + water -> glucose + O2. Which part is unclear?",
             "rejected": shared + "\n\nAssistant: Magic."},
            {"chosen": shared + "\n\nAssistant:", "rejected": shared + "\n\nAssistant: Magic."},
            {"chosen": "\n\nHuman: A\n\nAssistant: x", "rejected": "\n\nHuman: B\n\nAssistant: y"}]
    pairs, fmt, skipped = convert(rows)
    assert fmt == "hh-rlhf"
    assert pairs == [([user("What is photosynthesis?"), assistant("Plants making food."), user("How?")],
                      "With light: CO2 + water -> glucose + O2. Which part is unclear?", "Magic.")]
    assert skipped == Counter({"empty chosen reply": 1,
                               "chosen and rejected transcripts differ before the last reply": 1})


def test_the_shared_hh_rlhf_sample():
    rows = [json.loads(line) for line in need(HH).read_text().splitlines()]
    pairs, fmt, skipped = convert(rows)
    assert fmt == "hh-rlhf" and len(pairs) == 995
    assert skipped == Counter({"empty chosen reply": 3, "turns do not alternate user/assistant starting with the user": 2})
    prompt, chosen, rejected = pairs[0]
    assert prompt[0] == user("what are some pranks with a pen i can do?") and len(prompt) == 5
    assert chosen.startswith("No, sorry!  All of these involve a pen")
    assert rejected.startswith("There are lots of funny things you can do with pens")


def test_llamafactory_sharegpt_pairs_with_and_without_system():
    rows = json.loads(need(LLAMAFACTORY).read_text())
    pairs, fmt, skipped = convert(rows)
    assert fmt == "sharegpt" and len(pairs) == 300 and not skipped
    assert pairs[0][0] == [user(rows[0]["conversations"][0]["value"])]
    assert (pairs[0][1], pairs[0][2]) == (rows[0]["chosen"]["value"], rows[0]["rejected"]["value"])
    with_system = next(i for i, r in enumerate(rows) if r["conversations"][0]["from"] == "system")
    assert pairs[with_system][0][0]["role"] == "system" and pairs[with_system][0][-1]["role"] == "user"
    crafted = [{"system": "Be kind.", "conversations": [{"from": "human", "value": "Hi"}],
                "chosen": {"from": "gpt", "value": "Hello! What shall we learn?"}, "rejected": {"from": "gpt", "value": "?"}}]
    assert convert(crafted)[0] == [([{"role": "system", "content": "Be kind."}, user("Hi")],
                                    "Hello! What shall we learn?", "?")]


def test_conversations_for_sft_are_refused_with_the_right_command():
    with pytest.raises(TrainingError, match=r"cannot tell the preference format of 'data.jsonl' \(columns: "
                                            r"\['messages'\]\); it looks like conversations for python -m training "
                                            r"sft; a preference dataset has chosen and rejected replies"):
        convert([{"messages": [user("a"), assistant("b")]}])
    assert detect_preference_format([{"chosen": "x", "rejected": "y"}]) is None


# -- the app's feedback file ---------------------------------------------------------------------------------

A = [SYSTEM, user("What is 7 x 8?")]
B = [SYSTEM, user("Why is the sky blue?")]
LIKED_A = "7 x 8 = 56: 7 x 10 = 70, minus 7 x 2 = 14. Can you work out 7 x 9 the same way?"
BETTER_B = "Sunlight scatters off air molecules, blue light most. What colour is the sky at sunset, and why?"


def record(conversation: list, reply: str, rating: str | None, better: str | None = None,
           source: str | None = None) -> str:
    return json.dumps({"version": 1, "time": "2026-12-02T10:00:00Z", "conversation": conversation, "reply": reply,
                       "rating": rating, "better": better, "better_source": source, "model": "tutor"})


FEEDBACK_LINES = [
    record(A, "54", "down"),                                              # 1: disliked, a liked reply below
    record(A, LIKED_A, "up"),                                             # 2: liked
    record(B, "Because.", "down", BETTER_B, "edit"),                     # 3: disliked and corrected
    record(B, "Because.", "down", "Because.", "edit"),                   # 4: a "correction" that changes nothing
    record([SYSTEM, user("Explain photosynthesis")], "Plants make food from light.", "up"),  # 5: nothing to compare
    record([SYSTEM, user("Who won?")], "I don't know.", "down"),         # 6: disliked, nothing better
    '{"version": 1, "conversation": [',                                   # 7: cut off mid-write
    json.dumps({"version": 1, "conversation": A, "reply": "56"}),         # 8: no rating field
    record(B, "Because.", "down", BETTER_B, "edit"),                     # 9: line 3 again
    record([SYSTEM, user("Name a prime")], "9", "down", "7", "regenerate"),  # 10: regenerated, preferred
    record([SYSTEM, user("Name a prime")], "7", "up"),                   # 11: ... and that regenerated reply liked
    record([SYSTEM, user("Define a noun")], "A word.", None, "A word that names a thing, e.g. 'cat'.", "edit"),  # 12
    json.dumps({**json.loads(record(A, "x", "down")), "version": 2}),    # 13: a newer format
    record([SYSTEM, user("Hi"), assistant("Hello")], "Hey", "down", "Hello!", "edit"),  # 14: no question to answer
    record(A, "56", "meh"),                                               # 15: unknown rating
    "",                                                                   # blank: not a record
]


def test_feedback_file_gives_exactly_these_pairs_and_reasons():
    result = pairs_from_lines(FEEDBACK_LINES)
    assert [(p.prompt, p.chosen, p.rejected, p.source) for p in result.pairs] == [
        (A, LIKED_A, "54", "liked vs disliked"),
        (B, BETTER_B, "Because.", "better reply"),
        ([SYSTEM, user("Name a prime")], "7", "9", "better reply"),
        ([SYSTEM, user("Define a noun")], "A word that names a thing, e.g. 'cat'.", "A word.", "better reply"),
    ]
    assert result.records == 15
    assert result.skipped == Counter({
        "repeats an earlier record": 1,  # line 9; line 11 gives the pair line 10 gives, so it is used
        "missing field rating": 1,
        "unsupported version 2 (this trainer reads version 1)": 1,
        "conversation: prompt does not end with the user's message": 1,
        "unknown rating 'meh' (expected up, down or null)": 1,
        "line 7 is not valid JSON": 1,
        "better reply equals the reply": 1,
        "liked, nothing to compare with": 1,
        "disliked, no better reply": 1,
    })
    assert result.summary("feedback.jsonl").startswith(
        "feedback.jsonl: 15 records gave 4 preference pairs (3 better reply, 1 liked vs disliked); 9 records gave "
        "none: 1 missing field rating; 1 unsupported version 2 (this trainer reads version 1); ")


def test_each_disliked_reply_against_each_distinct_liked_one_once():
    lines = [record(A, "54", "down"), record(A, LIKED_A, "up"), record(A, "57", "down"), record(A, "56.", "up"),
             record(A, LIKED_A, "up"), record(A, "54", "down"), record(A, "56.", "down")]
    result = pairs_from_lines(lines)
    assert [(p.chosen, p.rejected) for p in result.pairs] == [
        (LIKED_A, "54"), ("56.", "54"), (LIKED_A, "57"), ("56.", "57"), (LIKED_A, "56.")]
    # Lines 5 and 6 repeat lines 2 and 1. Line 7 dislikes "56.", which line 4 liked: that comparison is left out,
    # but it still gives a pair below LIKED_A.
    assert result.skipped == Counter({"repeats an earlier record": 2})


def test_a_reply_both_liked_and_disliked_is_counted():
    result = pairs_from_lines([record(A, "56", "up"), record(A, "56", "down")])
    assert result.pairs == [] and result.skipped == Counter({"the same reply was both liked and disliked": 2})


def test_new_record_is_what_the_reader_accepts():
    rec = new_record(A, "54", "down", better=LIKED_A, better_source="edit", model="tutor", time="2026-12-02T10:00:00Z")
    assert rec == json.loads(record(A, "54", "down", LIKED_A, "edit"))
    assert pairs_from_lines([json.dumps(rec)]).pairs == [Pair(A, LIKED_A, "54", "better reply")]
    with pytest.raises(ValueError, match=r"unknown rating 'good'"):
        new_record(A, "54", "good")
    with pytest.raises(ValueError, match=r"conversation: prompt does not end with the user's message"):
        new_record([*A, assistant("54")], "56", "up")


def test_feedback_file_is_detected_and_read_with_line_numbers(tmp_path):
    path = tmp_path / "feedback.jsonl"
    path.write_text("\n".join(FEEDBACK_LINES) + "\n")
    config = parse_dpo_args(["--dataset", str(path), "--report_to", "none"])
    data = prepare_pairs(config)
    assert data.format == "feedback" and len(data.train) == 4
    assert data.skipped["line 7 is not valid JSON"] == 1 and sum(data.skipped.values()) == 9
    assert data.summary.startswith("feedback.jsonl: 15 records gave 4 preference pairs")
    assert read_feedback(path).pairs == pairs_from_lines(FEEDBACK_LINES).pairs


def test_feedback_file_without_pairs_is_one_line(tmp_path):
    path = tmp_path / "feedback.jsonl"
    path.write_text(record(A, "56", "up") + "\n")
    with pytest.raises(TrainingError, match=r"no usable preference pairs in '.*feedback.jsonl' as format feedback "
                                            r"\(skipped: \{'liked, nothing to compare with': 1\}\); check "
                                            r"--dataset_format; the app writes pairs once a reply is disliked"):
        prepare_pairs(parse_dpo_args(["--dataset", str(path), "--report_to", "none"]))


def test_eval_split_and_max_samples_apply_to_pairs(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps({"prompt": f"q{i}", "chosen": "good", "rejected": "bad"})
                              for i in range(20)) + "\nnot json\n")
    data = prepare_pairs(parse_dpo_args(["--dataset", str(path), "--eval_split", "0.25", "--report_to", "none"]))
    assert (len(data.train), len(data.eval)) == (15, 5) and data.skipped == Counter({"invalid JSON line": 1})
    assert data.summary == "pairs.jsonl: 21 rows gave 20 preference pairs; 1 row gave none: 1 invalid JSON line"
    assert len(prepare_pairs(parse_dpo_args(["--dataset", str(path), "--max_samples", "3"])).train) == 3


# -- settings ------------------------------------------------------------------------------------------------

def test_dpo_settings_and_their_errors(tmp_path):
    c = parse_dpo_args(["--dataset", "f.jsonl", "--beta", "0.2", "--loss_type", "ipo", "--max_length", "256",
                        "--max_prompt_length", "128"])
    assert (c.beta, c.loss_type, c.max_length, c.max_prompt_length, c.learning_rate) == (0.2, "ipo", 256, 128, 5e-6)
    assert c.lora_r == 16 and c.dataset_format == "auto" and c.output_dir == "outputs/llama-tutor-dpo"
    for argv, match in [
        ([], r"--dataset is empty: pass the app's feedback file \(--dataset feedback.jsonl\)"),
        (["--dataset", "f.jsonl", "--beta", "0"], r"--beta must be positive, got 0.0"),
        (["--dataset", "f.jsonl", "--loss_type", "dpo"], r"--loss_type must be one of sigmoid, hinge, ipo"),
        (["--dataset", "f.jsonl", "--max_prompt_length", "1024"], r"--max_prompt_length \(1024\) must be below "
                                                                  r"--max_length \(1024\)"),
        (["--dataset", "f.jsonl", "--dataset_format", "alpaca"], r"argument --dataset_format: invalid choice"),
        (["--dataset", "f.jsonl", "--max_seq_length", "512"], r"unknown argument '--max_seq_length'; did you mean "
                                                              r"--max_length\?"),
        (["--dataset", "f.jsonl", "--answers_file", "a.csv"], r"unknown argument '--answers_file'; it is a setting "
                                                              r"of python -m training sft"),
    ]:
        with pytest.raises(TrainingError, match=match):
            parse_dpo_args(argv)
    with pytest.raises(TrainingError, match=r"unknown argument '--beta'; it is a setting of python -m training dpo"):
        parse_sft_args(["--beta", "0.1"])
    recipe = tmp_path / "r.yaml"
    recipe.write_text("beta: 0.1\n")
    with pytest.raises(TrainingError, match=r"unknown setting 'beta' \(it is a setting of python -m training dpo\)"):
        parse_sft_args(["--config", str(recipe)])


def test_one_mapping_into_trls_configs():
    """Every setting TRL's config has under the same name is copied; the run decides the rest."""
    from trl import DPOConfig, SFTConfig

    from training.backends import Runtime
    from training.config import TrainConfig
    from training.dpo_trainer import dpo_arguments
    from training.trainer import sft_arguments, shared_fields

    common = {"dataset_num_proc", "gradient_accumulation_steps", "learning_rate", "logging_steps", "lr_scheduler_type",
              "max_grad_norm", "max_steps", "num_train_epochs", "output_dir", "per_device_eval_batch_size",
              "per_device_train_batch_size", "save_steps", "save_total_limit", "seed", "warmup_steps", "weight_decay"}
    assert set(shared_fields(TrainConfig(), SFTConfig)) == common | {"packing"}
    dpo = DPOTrainConfig(dataset="f.jsonl", beta=0.25, loss_type="ipo", max_length=300, max_prompt_length=100,
                         learning_rate=1e-5, report_to="none")
    assert set(shared_fields(dpo, DPOConfig)) == common | {"beta", "loss_type", "max_length"}
    cpu = Runtime(backend="transformers", device="cpu", world_size=1, local_rank=0, load_in_4bit=False, bf16=False,
                  fp16=False, gradient_checkpointing=False, optim="adamw_torch")
    args = dpo_arguments(dpo, cpu, has_eval=False)
    assert (args.beta, args.loss_type, args.max_length, args.learning_rate, args.bf16, args.report_to) == (
        0.25, ["ipo"], 300, 1e-5, False, [])
    assert sft_arguments(TrainConfig(max_seq_length=333, report_to="none"), cpu, has_eval=False).max_length == 333


def test_tutor_dpo_recipe():
    root = Path(__file__).resolve().parents[1]
    c = parse_dpo_args(["--config", str(root / "recipes" / "llama-3.2-3b-tutor-dpo.yaml")])
    assert (c.dataset, c.dataset_format, c.adapter, c.model) == (
        "feedback.jsonl", "feedback", "outputs/llama-3.2-3b-finetome", "unsloth/Llama-3.2-3B-Instruct")
    assert (c.beta, c.loss_type, c.max_length, c.max_prompt_length, c.learning_rate) == (0.1, "sigmoid", 2048, 1024, 5e-6)
    assert (c.per_device_train_batch_size, c.gradient_accumulation_steps, c.load_in_4bit) == (2, 4, True)
    assert parse_dpo_args(["--config", str(root / "recipes" / "llama-3.2-3b-tutor-dpo.yaml"), "--adapter", "none"]
                          ).adapter is None


def test_a_liked_regenerated_reply_gives_one_pair_from_both_records():
    """What the app writes for dislike -> regenerate -> like: the liked reply, and the replaced one with the
    liked one as its better reply."""
    lines = [record(A, LIKED_A, "up"), record(A, "54", "down", LIKED_A, "regenerate")]
    result = pairs_from_lines(lines)
    assert [(p.chosen, p.rejected, p.source) for p in result.pairs] == [(LIKED_A, "54", "better reply")]
    assert result.skipped == Counter() and result.summary("f.jsonl") == (
        "f.jsonl: 2 records gave 1 preference pair (1 better reply)")


def test_feedback_lines_split_only_on_newlines(tmp_path):
    """A raw U+2028 inside a reply (valid JSON) does not cut the record in two."""
    path = tmp_path / "feedback.jsonl"
    line = json.dumps(json.loads(record(A, "54\u2028or so", "down", LIKED_A, "edit")), ensure_ascii=False)
    assert "\u2028" in line  # raw, as json.dumps(ensure_ascii=False) leaves it
    path.write_text(line + "\n", encoding="utf-8")
    data = prepare_pairs(parse_dpo_args(["--dataset", str(path)]))
    assert [(p.chosen, p.rejected) for p in data.train] == [(LIKED_A, "54\u2028or so")] and not data.skipped

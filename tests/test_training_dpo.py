"""DPO on a tiny real Llama on CPU: reward accuracy rises, the adapter serves, runs resume exactly, feedback trains."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from inference import GenerationConfig, load_backend
from training.config import DPOTrainConfig
from training.dpo import main
from training.errors import TrainingError
from tests.test_training_dpo_data import FEEDBACK_LINES

ROOT = Path(__file__).resolve().parents[1]
# What the tutor should prefer: a worked step and a question back, over a bare answer.
PAIRS = [
    ("What is 12 + 30?", "12 + 30: add the tens, 10 + 30 = 40, then 2: 42. What is 12 + 31?", "42"),
    ("What is the capital of France?", "Paris. Which river runs through it?", "France."),
    ("Which of these is a prime number? A) 4 B) 6 C) 7 D) 9", "C: 7 has no divisors but 1 and 7. Is 9 prime?", "D"),
    ("What is LoRA?", "LoRA adds small low-rank matrices to the projections. Which ones are trained?", "A model."),
    ("What is the derivative of x squared?", "Two x: bring the 2 down, lower the power. And of x cubed?", "x"),
    ("What does DNA store?", "Genetic information, in its bases. Which cell part holds it?", "Cells."),
    ("What is F = m * a?", "Newton's second law: force is mass times acceleration. What is a for F = 10, m = 2?", "Physics."),
    ("What are Python tuples?", "Ordered and immutable, unlike lists. Can you change a tuple's item?", "Lists."),
]
GREEDY = GenerationConfig(max_new_tokens=12, temperature=0)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pairs") / "pairs.jsonl"
    path.write_text("".join(json.dumps({"prompt": q, "chosen": c, "rejected": r}) + "\n" for q, c, r in PAIRS))
    return path


def tiny_config(model: Path, dataset: Path, out: Path, **overrides) -> DPOTrainConfig:
    fields = dict(model=str(model), dataset=str(dataset), output_dir=str(out), report_to="none", learning_rate=5e-3,
                  per_device_train_batch_size=4, per_device_eval_batch_size=8, gradient_accumulation_steps=1,
                  lora_r=8, lora_alpha=16, warmup_steps=0, logging_steps=5, save_steps=1000, max_length=192,
                  max_prompt_length=128, beta=0.1)
    fields.update(overrides)
    return DPOTrainConfig(**fields)


@pytest.fixture(scope="module")
def trained(tiny_model_dir, pairs_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("dpo")
    metrics = main(tiny_config(tiny_model_dir, pairs_file, out, max_steps=30, eval_dataset=str(pairs_file),
                               eval_steps=30))
    return out, metrics


def test_reward_accuracy_on_the_training_pairs_rises_well_above_chance(trained):
    out, metrics = trained
    train = [e for e in metrics["log_history"] if "loss" in e]
    assert [e["step"] for e in train] == [1, 5, 10, 15, 20, 25, 30]
    first, last = train[0], train[-1]
    # Step 1: the new LoRA is zero, so the policy is the reference and every reward is exactly 0.
    assert first["rewards/margins"] == pytest.approx(0, abs=1e-6) and first["rewards/accuracies"] == 0
    assert last["rewards/accuracies"] == 1.0 and last["rewards/margins"] > 1.0
    assert last["rewards/chosen"] > last["rewards/rejected"] and last["loss"] < first["loss"] / 3
    final_eval = next(e for e in metrics["log_history"] if "eval_loss" in e)  # all 8 pairs, after step 30
    assert final_eval["step"] == 30 and final_eval["eval_rewards/accuracies"] == 1.0
    assert final_eval["eval_rewards/margins"] > 1.0


def test_outputs_metrics_and_plots(trained):
    out, metrics = trained
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "chat_template.jinja"):
        assert (out / name).is_file(), name
    for plot in ("loss.png", "rewards.png"):
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", plot
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["method"] == "dpo" and saved["global_step"] == 30 and saved["skipped_rows"] == {}
    assert saved["data"]["format"] == "pairs" and saved["data"]["train_pairs"] == 8
    assert saved["data"]["pairs_summary"] == "pairs.jsonl: 8 rows gave 8 preference pairs"
    assert saved["config"]["beta"] == 0.1 and saved["runtime"]["backend"] == "transformers"
    assert saved["final_rewards"]["rewards/accuracies"] == 1.0
    assert saved["train_tokens_per_second"] > 0 and saved["peak_memory_gib"] > 0
    for entry in (e for e in saved["log_history"] if "loss" in e):
        assert {"rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins"} <= set(entry)
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == saved["config"]["model"]


def test_adapter_loads_in_the_inference_backend_and_generates(trained, tiny_model_dir):
    out, _ = trained
    prompts = [[{"role": "user", "content": q}] for q, _, _ in PAIRS[:4]]
    base = load_backend("transformers", base_model=str(tiny_model_dir), warmup=False).chat_batch(prompts, GREEDY)
    tuned = load_backend("transformers", base_model=str(tiny_model_dir), adapter=str(out),
                         warmup=False).chat_batch(prompts, GREEDY)
    assert all(isinstance(t, str) and t.strip() for t in tuned) and tuned != base


@pytest.fixture(scope="module")
def six_steps(tiny_model_dir, pairs_file, tmp_path_factory):
    full = tmp_path_factory.mktemp("dpo-full")
    return full, main(tiny_config(tiny_model_dir, pairs_file, full, max_steps=6, save_steps=3, logging_steps=1))


def test_resume_continues_from_the_checkpoint_exactly(six_steps, tiny_model_dir, pairs_file, tmp_path):
    full, first = six_steps
    assert sorted(p.name for p in full.glob("checkpoint-*")) == ["checkpoint-3", "checkpoint-6"]
    shutil.copytree(full / "checkpoint-3", tmp_path / "checkpoint-3")  # as if killed after step 3
    second = main(tiny_config(tiny_model_dir, pairs_file, tmp_path, max_steps=6, save_steps=3, logging_steps=1,
                              resume_from_checkpoint="latest"))
    assert second["global_step"] == 6
    before = {e["step"]: e for e in first["log_history"] if "loss" in e}
    after = {e["step"]: e for e in second["log_history"] if "loss" in e}
    assert sorted(after) == [1, 2, 3, 4, 5, 6]
    for step in (4, 5, 6):
        for key in ("loss", "rewards/margins"):
            assert after[step][key] == pytest.approx(before[step][key], rel=1e-5, abs=1e-7), (step, key)


def test_training_on_top_of_an_adapter_keeps_it_as_the_reference(tiny_model_dir, tiny_adapter_dir, pairs_file,
                                                                 tmp_path):
    metrics = main(tiny_config(tiny_model_dir, pairs_file, tmp_path, adapter=str(tiny_adapter_dir), lora_r=4,
                               max_steps=3, logging_steps=1))
    steps = [e for e in metrics["log_history"] if "loss" in e]
    # The policy starts as base + adapter; were the reference the bare base, step 1's rewards would not be 0.
    assert steps[0]["rewards/chosen"] == pytest.approx(0, abs=1e-6)
    assert steps[0]["rewards/rejected"] == pytest.approx(0, abs=1e-6)
    assert steps[-1]["rewards/margins"] != pytest.approx(0, abs=1e-6)
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    assert config["r"] == 8 and config["base_model_name_or_path"] == str(tiny_model_dir)  # the adapter's, not lora_r
    assert not (tmp_path / "ref").exists()


def test_adapter_of_another_base_is_one_line(tiny_model_dir, tiny_adapter_dir, pairs_file, tmp_path):
    other = tmp_path / "other-adapter"
    shutil.copytree(tiny_adapter_dir, other)
    config = json.loads((other / "adapter_config.json").read_text())
    (other / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": "meta-llama/Other"}))
    with pytest.raises(TrainingError, match=r"--adapter '.*other-adapter' was trained on 'meta-llama/Other', not on "
                                            r"--model '.*': pass --model meta-llama/Other"):
        main(tiny_config(tiny_model_dir, pairs_file, tmp_path / "out", adapter=str(other), max_steps=1))
    with pytest.raises(TrainingError, match=r"--adapter '.*' is not a LoRA adapter folder \(no adapter_config.json\)"):
        main(tiny_config(tiny_model_dir, pairs_file, tmp_path / "out", adapter=str(tmp_path), max_steps=1))


def test_nonfinite_loss_stops_the_run_naming_the_step(tiny_model_dir, pairs_file, tmp_path):
    with pytest.raises(TrainingError, match=r"the training loss became (nan|inf) at step 2: training stopped before "
                                            r"that step changed the weights, and no adapter was saved; lower "
                                            r"--learning_rate \(now 1e\+30\)"):
        main(tiny_config(tiny_model_dir, pairs_file, tmp_path, max_steps=4, learning_rate=1e30, logging_steps=50))
    assert not (tmp_path / "adapter_model.safetensors").exists()


def test_prompts_and_pairs_over_the_limits_are_fitted_and_counted(tiny_model_dir, tmp_path):
    long_talk = [{"role": "user", "content": "Tell me about the cell. " * 6},
                 {"role": "assistant", "content": "The mitochondria is the powerhouse of the cell. " * 4},
                 {"role": "user", "content": "And DNA?"}]
    rows = [{"prompt": long_talk, "chosen": "It stores genetic information. Where is it kept?", "rejected": "No."},
            {"prompt": "Why? " * 80, "chosen": "a", "rejected": "b"},
            {"prompt": "What is 2 + 2?", "chosen": "Four: 2 and 2 more. " * 20, "rejected": "4"},
            {"prompt": "What is 3 + 3?", "chosen": "6. What is 3 + 4?", "rejected": "6"}]
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps(rows))
    metrics = main(tiny_config(tiny_model_dir, path, tmp_path / "out", max_steps=1, max_prompt_length=100,
                               max_length=150, overlong="drop"))
    assert metrics["skipped_rows"] == {"last question longer than max_prompt_length": 1,
                                       "longer than max_length (overlong=drop)": 1}
    assert metrics["length_stats"] == {"prompts shortened to max_prompt_length (earlier turns left out)": 1}
    assert metrics["data"]["train_pairs"] == 2


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "training", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_cli_trains_on_the_apps_feedback_file(tiny_model_dir, tmp_path):
    feedback = tmp_path / "feedback.jsonl"
    feedback.write_text("\n".join(FEEDBACK_LINES) + "\n")
    out = tmp_path / "out"
    done = run_cli("dpo", "--model", str(tiny_model_dir), "--dataset", str(feedback), "--max_steps", "2",
                   "--output_dir", str(out), "--report_to", "none", "--logging_steps", "1", "--learning_rate", "0.005",
                   "--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "1")
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()  # the trainer also prints its log dicts there
    summary, last = next(line for line in lines if line.startswith("feedback.jsonl:")), lines[-1]
    assert summary.startswith("feedback.jsonl: 15 records gave 4 preference pairs (3 better reply, 1 liked vs "
                              "disliked); 9 records gave none: 1 missing field rating; "), lines
    assert last.startswith("done: 2 steps on 4 pairs, mean train loss ") and last.endswith(f"adapter in {out}")
    assert (out / "adapter_model.safetensors").is_file() and (out / "rewards.png").is_file()
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["data"]["format"] == "feedback" and saved["skipped_rows"]["line 7 is not valid JSON"] == 1
    assert saved["data"]["pair_sources"] == {"liked vs disliked": 1, "better reply": 3}


@pytest.mark.parametrize(("args", "message"), [
    (["--dataset", "/no/such/feedback.jsonl"], "error: dataset file '/no/such/feedback.jsonl' not found"),
    (["--dataset", "-", "--beta", "-1"], "error: --beta must be positive, got -1.0"),
])
def test_cli_errors_are_one_line_without_traceback(tiny_model_dir, tmp_path, args, message):
    done = run_cli("dpo", "--model", str(tiny_model_dir), "--output_dir", str(tmp_path), "--report_to", "none", *args)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith(message), done.stderr[-1000:]
    assert "Traceback" not in done.stderr

"""Training a tiny real Llama on CPU: the loss falls, the adapter answers what it learned, runs resume exactly."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from inference import GenerationConfig, load_backend
from training.config import TrainConfig
from training.errors import TrainingError
from training.export import merge
from training.sft import main

ROOT = Path(__file__).resolve().parents[1]
PAIRS = [("What is the capital of France?", "Paris."), ("What is 12 + 30?", "42"),
         ("Which of these is a prime number? A) 4 B) 6 C) 7 D) 9", "C. 7 has no divisors."),
         ("What is LoRA?", "LoRA adds small low-rank matrices to the projections.")]
GREEDY = GenerationConfig(max_new_tokens=12, temperature=0)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def qa_file(tmp_path_factory) -> Path:
    """Four question/answer pairs, eight times over, in ShareGPT format (+ one bad row)."""
    rows = [{"conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}]} for q, a in PAIRS] * 8
    rows.append({"conversations": [{"from": "human", "value": "unanswered"}]})
    path = tmp_path_factory.mktemp("data") / "qa.json"
    path.write_text(json.dumps(rows))
    return path


def tiny_config(model: Path, dataset: Path, out: Path, **overrides) -> TrainConfig:
    fields = dict(model=str(model), dataset=str(dataset), output_dir=str(out), report_to="none",
                  learning_rate=5e-3, per_device_train_batch_size=4, lora_r=8, lora_alpha=16, warmup_steps=0,
                  logging_steps=5, save_steps=1000, max_seq_length=128)
    fields.update(overrides)
    return TrainConfig(**fields)


@pytest.fixture(scope="module")
def trained(tiny_model_dir, qa_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("sft")
    metrics = main(tiny_config(tiny_model_dir, qa_file, out, max_steps=40, eval_split=0.1))
    return out, metrics


def answers(backend) -> list[str]:
    return backend.chat_batch([[{"role": "user", "content": q}] for q, _ in PAIRS], GREEDY)


def test_training_lowers_the_loss_and_writes_the_outputs(trained):
    out, metrics = trained
    losses = [e["loss"] for e in metrics["log_history"] if "loss" in e]
    evals = [e["eval_loss"] for e in metrics["log_history"] if "eval_loss" in e]
    assert metrics["global_step"] == 40 and len(losses) == 9  # step 1, then every 5 steps
    assert losses[0] > 5 and losses[-1] < losses[0] / 4
    assert evals and evals[-1] < 1.0
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "chat_template.jinja"):
        assert (out / name).is_file(), name
    assert "{% generation %}" in (out / "chat_template.jinja").read_text()
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["skipped_rows"] == {"ends without an assistant reply": 1}
    assert saved["train_tokens_per_second"] > 0 and saved["peak_memory_gib"] > 0 and saved["train_runtime_s"] > 0
    assert saved["config"]["learning_rate"] == 5e-3 and saved["runtime"]["backend"] == "transformers"
    assert all("step" in e and ("loss" in e or "eval_loss" in e) for e in saved["log_history"])


def test_adapter_loads_for_inference_and_answers_what_it_learned(trained, tiny_model_dir):
    out, _ = trained
    base = answers(load_backend(base_model=str(tiny_model_dir), warmup=False))
    tuned = answers(load_backend(base_model=str(tiny_model_dir), adapter=str(out), warmup=False))
    assert tuned != base
    assert sum(t.strip() == a or a.startswith(t.strip()) for t, (_, a) in zip(tuned, PAIRS)) >= 3, tuned


def test_merge_equals_base_plus_adapter(trained, tiny_model_dir, tmp_path):
    out, _ = trained
    merged = merge(str(out), str(tiny_model_dir), str(tmp_path / "merged"), dtype="float32")
    assert not (merged / "adapter_config.json").exists() and (merged / "chat_template.jinja").is_file()
    with_adapter = answers(load_backend(base_model=str(tiny_model_dir), adapter=str(out), warmup=False))
    assert answers(load_backend(base_model=str(merged), warmup=False)) == with_adapter


def test_resume_continues_from_the_checkpoint_exactly(tiny_model_dir, qa_file, tmp_path):
    full = tmp_path / "full"
    first = main(tiny_config(tiny_model_dir, qa_file, full, max_steps=6, save_steps=3, logging_steps=1))
    resumed_dir = tmp_path / "resumed"
    resumed_dir.mkdir()
    shutil.copytree(full / "checkpoint-3", resumed_dir / "checkpoint-3")  # as if killed after step 3
    second = main(tiny_config(tiny_model_dir, qa_file, resumed_dir, max_steps=6, save_steps=3, logging_steps=1,
                              resume_from_checkpoint="true"))
    assert second["global_step"] == 6
    loss = {e["step"]: e["loss"] for e in first["log_history"] if "loss" in e}
    again = {e["step"]: e["loss"] for e in second["log_history"] if "loss" in e}
    assert sorted(again) == [1, 2, 3, 4, 5, 6]  # steps 1-3 come back from the checkpoint's history
    for step in (4, 5, 6):
        assert again[step] == pytest.approx(loss[step], rel=1e-5), step


def test_resume_without_a_checkpoint_is_a_clear_error(tiny_model_dir, qa_file, tmp_path):
    with pytest.raises(TrainingError, match=r"no checkpoint-N folder in .* yet"):
        main(tiny_config(tiny_model_dir, qa_file, tmp_path, max_steps=2, resume_from_checkpoint="true"))


def test_drop_overlong_counts_what_it_drops(tiny_model_dir, qa_file, tmp_path):
    metrics = main(tiny_config(tiny_model_dir, qa_file, tmp_path, max_steps=1, max_seq_length=103, overlong="drop"))
    assert metrics["skipped_rows"]["longer than max_seq_length (overlong=drop)"] == 8  # the long prime question
    assert metrics["data"]["train_conversations"] == 24


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "training", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_cli_end_to_end_with_tensorboard(tiny_model_dir, qa_file, tmp_path):
    out = tmp_path / "cli"
    done = run_cli("sft", "--model", str(tiny_model_dir), "--dataset", str(qa_file), "--max_steps", "5",
                   "--output_dir", str(out), "--logging_steps", "1")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "done: 5 steps" in done.stdout and f"adapter in {out}" in done.stdout
    assert (out / "adapter_model.safetensors").is_file() and (out / "loss.png").is_file()
    assert list((out / "runs").rglob("events.out.tfevents.*")), "TensorBoard logs missing"
    assert len(json.loads((out / "metrics.json").read_text())["log_history"]) == 5


@pytest.mark.parametrize(("args", "message"), [
    (["--dataset", "/no/such/file.json"], "error: dataset file '/no/such/file.json' not found"),
    (["--dataset", "owner/not-cached"], "error: could not load dataset 'owner/not-cached' from the Hugging Face hub"),
])
def test_cli_errors_are_one_line_without_traceback(tiny_model_dir, tmp_path, args, message):
    done = run_cli("sft", "--model", str(tiny_model_dir), "--output_dir", str(tmp_path), *args)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith(message)
    assert "Traceback" not in done.stderr

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


@pytest.fixture(scope="module")
def six_steps(tiny_model_dir, qa_file, tmp_path_factory):
    """An uninterrupted 6-step run with checkpoints after steps 3 and 6: (output_dir, metrics)."""
    full = tmp_path_factory.mktemp("full")
    return full, main(tiny_config(tiny_model_dir, qa_file, full, max_steps=6, save_steps=3, logging_steps=1))


def assert_resumed_exactly(first: dict, second: dict) -> None:
    """Steps 4-6 of the resumed run log the losses of the uninterrupted one; 1-3 come from the checkpoint."""
    assert second["global_step"] == 6
    loss = {e["step"]: e["loss"] for e in first["log_history"] if "loss" in e}
    again = {e["step"]: e["loss"] for e in second["log_history"] if "loss" in e}
    assert sorted(again) == [1, 2, 3, 4, 5, 6]
    for step in (4, 5, 6):
        assert again[step] == pytest.approx(loss[step], rel=1e-5), step


def resume(tiny_model_dir, qa_file, out: Path) -> dict:
    return main(tiny_config(tiny_model_dir, qa_file, out, max_steps=6, save_steps=3, logging_steps=1,
                            resume_from_checkpoint="latest"))


def test_checkpoints_are_complete_and_nothing_is_left_staged(six_steps):
    full, _ = six_steps
    assert sorted(p.name for p in full.glob("checkpoint-*")) == ["checkpoint-3", "checkpoint-6"]
    for checkpoint in full.glob("checkpoint-*"):
        for name in ("trainer_state.json", "adapter_model.safetensors", "optimizer.pt", "scheduler.pt",
                     "rng_state.pth"):
            assert (checkpoint / name).is_file(), (checkpoint.name, name)
    assert not (full / ".checkpoint-staging").exists()


def test_resume_continues_from_the_checkpoint_exactly(six_steps, tiny_model_dir, qa_file, tmp_path):
    full, first = six_steps
    shutil.copytree(full / "checkpoint-3", tmp_path / "checkpoint-3")  # as if killed after step 3
    assert_resumed_exactly(first, resume(tiny_model_dir, qa_file, tmp_path))


def test_resume_skips_a_checkpoint_left_half_written(six_steps, tiny_model_dir, qa_file, tmp_path, caplog):
    full, first = six_steps
    shutil.copytree(full / "checkpoint-3", tmp_path / "checkpoint-3")
    shutil.copytree(full / "checkpoint-6", tmp_path / "checkpoint-6")
    (tmp_path / "checkpoint-6" / "trainer_state.json").unlink()  # killed while checkpoint-6 was being written
    with caplog.at_level("INFO", logger="training.checkpoints"):
        second = resume(tiny_model_dir, qa_file, tmp_path)
    assert ("skipping incomplete checkpoint checkpoint-6 (no trainer_state.json): the run probably stopped while "
            "writing it") in caplog.messages
    assert f"resuming from {tmp_path / 'checkpoint-3'}" in caplog.messages
    assert_resumed_exactly(first, second)
    assert (tmp_path / "checkpoint-6" / "trainer_state.json").is_file()  # written again, whole this time


class Killed(BaseException):
    """Stands in for the process being killed (not an Exception, so nothing on the way catches it)."""


def test_a_save_killed_midway_leaves_no_checkpoint_folder(six_steps, tiny_model_dir, qa_file, tmp_path, monkeypatch,
                                                           caplog):
    from transformers import Trainer

    full, first = six_steps
    real_save_rng_state = Trainer._save_rng_state

    def killed_during_checkpoint_6(self, output_dir):
        if output_dir.endswith("checkpoint-6"):
            raise Killed
        real_save_rng_state(self, output_dir)

    monkeypatch.setattr(Trainer, "_save_rng_state", killed_during_checkpoint_6)
    with pytest.raises(Killed):
        main(tiny_config(tiny_model_dir, qa_file, tmp_path, max_steps=6, save_steps=3, logging_steps=1))
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-3"]
    assert (tmp_path / ".checkpoint-staging" / "checkpoint-6" / "optimizer.pt").is_file()  # the half-written one
    with caplog.at_level("WARNING", logger="training.checkpoints"):
        second = resume(tiny_model_dir, qa_file, tmp_path)
    assert [r.getMessage() for r in caplog.records if r.name == "training.checkpoints"] == [
        "skipping incomplete checkpoint .checkpoint-staging/checkpoint-6 (a save that was interrupted): the run "
        "probably stopped while writing it"]
    assert_resumed_exactly(first, second)
    assert (tmp_path / "checkpoint-6" / "trainer_state.json").is_file()
    assert not (tmp_path / ".checkpoint-staging").exists()


def test_nonfinite_loss_stops_the_run_naming_the_step(tiny_model_dir, qa_file, tmp_path):
    with pytest.raises(TrainingError, match=r"the training loss became nan at step 2: training stopped before that "
                                            r"step changed the weights, and no adapter was saved; lower "
                                            r"--learning_rate \(now 1e\+30\), keep gradient clipping on"):
        main(tiny_config(tiny_model_dir, qa_file, tmp_path, max_steps=5, learning_rate=1e30, logging_steps=50))
    assert not list(tmp_path.iterdir())


def test_learning_rate_that_overflows_the_optimiser_is_one_line(tiny_model_dir, qa_file, tmp_path):
    with pytest.raises(TrainingError, match=r"--learning_rate 3e\+38 overflows the optimiser's arithmetic .*no "
                                            r"adapter was saved; use a learning rate like the recipes' 0.0002"):
        main(tiny_config(tiny_model_dir, qa_file, tmp_path, max_steps=2, learning_rate=3e38))
    assert not (tmp_path / "adapter_model.safetensors").exists()


@pytest.fixture
def nan_after_step(monkeypatch):
    """Arm: after optimiser step N, one LoRA weight is NaN (an overflow the loss has not shown yet)."""
    import torch

    def arm(step: int) -> None:
        real_step, calls = torch.optim.AdamW.step, []

        def step_then_poison(self, *args, **kwargs):
            result = real_step(self, *args, **kwargs)
            calls.append(1)
            if len(calls) == step:
                with torch.no_grad():
                    self.param_groups[0]["params"][0].fill_(float("nan"))
            return result

        monkeypatch.setattr(torch.optim.AdamW, "step", step_then_poison)

    return arm


def test_no_checkpoint_is_written_from_nonfinite_weights(tiny_model_dir, qa_file, tmp_path, nan_after_step):
    nan_after_step(2)
    with pytest.raises(TrainingError, match=r"1 of 28 trainable weight tensors became NaN or infinite \(e.g. "
                                            r"base_model\..*lora_A.*\), so checkpoint-2 was not saved; lower "
                                            r"--learning_rate \(now 0.005\)"):
        main(tiny_config(tiny_model_dir, qa_file, tmp_path, max_steps=4, save_steps=1, logging_steps=50))
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-1"]
    assert not (tmp_path / ".checkpoint-staging").exists()


def test_no_final_adapter_is_written_from_nonfinite_weights(tiny_model_dir, qa_file, tmp_path, nan_after_step):
    nan_after_step(2)  # the last step: the trainer's end-of-run checkpoint is refused, and so is the adapter
    with pytest.raises(TrainingError, match=r"trainable weight tensors became NaN or infinite .*, so checkpoint-2 "
                                            r"was not saved"):
        main(tiny_config(tiny_model_dir, qa_file, tmp_path, max_steps=2, logging_steps=50))
    assert not (tmp_path / "adapter_model.safetensors").exists() and not (tmp_path / "metrics.json").exists()
    assert not list(tmp_path.glob("checkpoint-*"))


def test_resume_without_a_checkpoint_is_a_clear_error(tiny_model_dir, qa_file, tmp_path):
    with pytest.raises(TrainingError, match=r"no complete checkpoint-N folder in .* yet; run without it"):
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

def test_cli_nonfinite_loss_ends_in_one_line_after_the_progress_bar(tiny_model_dir, qa_file, tmp_path):
    done = run_cli("sft", "--model", str(tiny_model_dir), "--dataset", str(qa_file), "--output_dir", str(tmp_path),
                   "--max_steps", "5", "--learning_rate", "1e30", "--warmup_steps", "0", "--report_to", "none")
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the training loss became nan at step 2: training stopped before that step "
                           "changed the weights, and no adapter was saved; lower --learning_rate (now 1e+30)"), last
    assert "Traceback" not in done.stderr and not (tmp_path / "adapter_model.safetensors").exists()

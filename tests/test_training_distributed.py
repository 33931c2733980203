"""Several processes (torchrun, as accelerate launch does on GPUs) and the throughput benchmark, on CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.train_throughput import count_tokens, synth_conversations
from training.formats import sharegpt_to_messages

ROOT = Path(__file__).resolve().parents[1]
PYTHONPATH = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
pytestmark = pytest.mark.slow


def qa_rows(n: int) -> list[dict]:
    return [{"messages": [{"role": "user", "content": f"What is {i} + {i}?"},
                          {"role": "assistant", "content": str(2 * i)}]} for i in range(n)]


def test_data_parallel_on_two_processes(tiny_model_dir, tmp_path):
    data = tmp_path / "qa.json"
    data.write_text(json.dumps(qa_rows(32)))
    out = tmp_path / "ddp"
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "training",
         "sft", "--model", str(tiny_model_dir), "--dataset", str(data), "--max_steps", "4", "--output_dir", str(out),
         "--per_device_train_batch_size", "2", "--logging_steps", "1", "--report_to", "none"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": PYTHONPATH})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("done: 4 steps") == 1  # only rank 0 reports
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["runtime"]["world_size"] == 2
    # 4 steps x 2 examples x 2 processes = half of the 32 examples: both ranks consumed distinct data.
    assert metrics["log_history"][-1]["epoch"] == pytest.approx(0.5)
    assert (out / "adapter_model.safetensors").is_file()
    # The end-of-run checkpoint was staged by both processes (each writes its RNG state) and then renamed whole.
    for name in ("trainer_state.json", "adapter_model.safetensors", "rng_state_0.pth", "rng_state_1.pth"):
        assert (out / "checkpoint-4" / name).is_file(), name
    assert not (out / ".checkpoint-staging").exists()


def test_benchmark_runs_end_to_end_on_cpu(tmp_path):
    env = {**os.environ, "PYTHONPATH": PYTHONPATH, "BENCH_RESULTS_DIR": str(tmp_path / "results")}
    done = subprocess.run(
        [sys.executable, "-m", "bench.train_throughput", "--tiny", "--mixes", "fixed", "--seq-len", "128",
         "--batch-size", "2", "--steps", "2", "--warmup-steps", "1", "--work-dir", str(tmp_path / "work")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    (result_file,) = (tmp_path / "results").glob("train_throughput-tiny-*.json")
    (run,) = json.loads(result_file.read_text())["runs"]
    assert "error" not in run, run
    assert run["backend"] == "transformers" and run["measured_steps"] == 2
    assert run["tokens"] == 2 * 2 * 128  # every "fixed" example is truncated to exactly --seq-len tokens
    assert run["tokens_per_second"] > 0


def test_benchmark_records_a_failing_backend_instead_of_crashing(tiny_model_dir, tmp_path):
    from bench.train_throughput import parse_args, run_worker

    data = tmp_path / "fixed.json"
    data.write_text(json.dumps(synth_conversations("fixed", 4, 64)))
    args = parse_args(["--tiny", "--seq-len", "64", "--batch-size", "1", "--steps", "1", "--warmup-steps", "1"])
    args.model_dir = tiny_model_dir
    result = run_worker("unsloth", data, args)  # this machine has no GPU: the worker fails
    assert result["backend"] == "unsloth" and "--backend unsloth needs a CUDA GPU" in result["error"]


def test_synthetic_mix_has_a_long_tail():
    rows = synth_conversations("mix", 300, 1024, seed=0)
    words = [sum(len(m["content"].split()) for m in sharegpt_to_messages(r)) for r in rows]
    words.sort()
    assert 300 < words[len(words) // 2] < 600 and words[-1] > 1024 and words[0] >= 16


def test_count_tokens_ignores_padding():
    import torch

    batch = {"input_ids": torch.tensor([[5, 6, 0, 0], [7, 8, 9, 0]]),
             "attention_mask": torch.tensor([[1, 1, 0, 0], [1, 1, 1, 0]])}
    assert count_tokens(batch, pad_id=0) == 5
    assert count_tokens({"input_ids": batch["input_ids"]}, pad_id=0) == 5


def test_one_process_pins_the_first_visible_gpu():
    from training.distributed import pin_one_gpu_unless_distributed

    env: dict = {}
    pin_one_gpu_unless_distributed(env)
    assert env == {"CUDA_VISIBLE_DEVICES": "0"}
    env = {"CUDA_VISIBLE_DEVICES": "3, 5"}
    pin_one_gpu_unless_distributed(env)
    assert env["CUDA_VISIBLE_DEVICES"] == "3"
    env = {"CUDA_VISIBLE_DEVICES": "0,1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}
    pin_one_gpu_unless_distributed(env)  # torchrun / accelerate launch: every rank sees all GPUs
    assert env["CUDA_VISIBLE_DEVICES"] == "0,1"

"""The console chat, run as users run it: ``python -m inference`` in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from inference import GenerationConfig, load_backend

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "inference", *args], input=stdin, capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=300)


def test_one_question_prints_the_streamed_answer(tiny_model_dir, tiny_adapter_dir):
    result = run_cli("--base-model", str(tiny_model_dir), "--adapter", str(tiny_adapter_dir),
                     "--temperature", "0", "--max-new-tokens", "20", "What is LoRA?")
    assert result.returncode == 0, result.stderr
    backend = load_backend(base_model=str(tiny_model_dir), adapter=str(tiny_adapter_dir), warmup=False)
    from inference.prompts import with_system_prompt

    expected = backend.chat_batch([with_system_prompt([{"role": "user", "content": "What is LoRA?"}])],
                                  GenerationConfig(max_new_tokens=20, temperature=0))[0]
    assert result.stdout == expected + "\n"
    assert "Traceback" not in result.stderr


def test_repl_keeps_history_resets_and_exits(tiny_model_dir):
    common = ("--base-model", str(tiny_model_dir), "--temperature", "0", "--max-new-tokens", "8", "--system", "")
    two_turns = run_cli(*common, stdin="Hi\nWhat is LoRA?\n/exit\nnot read\n")
    fresh = run_cli(*common, stdin="What is LoRA?\n")
    reset = run_cli(*common, stdin="Hi\n/reset\nWhat is LoRA?\n")
    for r in (two_turns, fresh, reset):
        assert r.returncode == 0, r.stderr
    first = two_turns.stdout.splitlines()[0]
    # After /reset the question is answered as in a fresh conversation; without it, in context.
    assert reset.stdout.splitlines() == [first, "(new conversation)", fresh.stdout.splitlines()[0]]
    assert len(two_turns.stdout.splitlines()) == 2  # /exit stopped reading


@pytest.mark.parametrize("args, message", [
    (("--base-model", "/nonexistent/model"), "error: base model '/nonexistent/model' not found"),
    (("--base-model", "unsloth/Llama-3.2-3B-Instruct", "--backend", "transformers"), "error: Could not load base model"),
    (("--base-model", "unsloth/Llama-3.2-3B-Instruct", "--backend", "llamacpp"), "error: Could not load GGUF"),
    (("--temperature", "-1"), "error: temperature must be 0 (greedy) or a positive number, got -1.0"),
])
def test_errors_are_one_line_on_stderr(args, message, tmp_path):
    result = run_cli(*args, "hi")
    assert result.returncode == 1
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and error_lines[0].startswith(message), result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""

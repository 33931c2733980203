"""`python app.py`: flags and TUTOR_* variables, clear start-up errors, and one real end-to-end run."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import app
from inference import DEFAULT_BASE_MODEL
from tests.browser import chromium, free_port, page  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
TUTOR_VARS = ("BASE_MODEL", "ADAPTER", "BACKEND", "QUANTIZATION", "DEVICE", "MAX_CONTEXT", "HOST", "PORT",
              "SHARE", "STATIC_CACHE", "QUEUE_SIZE")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in TUTOR_VARS:
        monkeypatch.delenv(f"TUTOR_{name}", raising=False)


def test_defaults():
    args = app.parse_args([])
    assert (args.backend, args.backend_options) == ("auto", {})
    assert args.app == app.AppOptions(host=None, port=None, share=False, queue_size=app.QUEUE_SIZE)


def test_environment_variables_set_every_flag_and_flags_win(monkeypatch: pytest.MonkeyPatch):
    env = {"BASE_MODEL": "/models/base", "ADAPTER": "me/tutor-lora", "QUANTIZATION": "4bit", "DEVICE": "cpu",
           "MAX_CONTEXT": "2048", "HOST": "0.0.0.0", "PORT": "8123", "SHARE": "true", "QUEUE_SIZE": "5",
           "STATIC_CACHE": "1", "BACKEND": "transformers"}
    for name, value in env.items():
        monkeypatch.setenv(f"TUTOR_{name}", value)
    args = app.parse_args([])
    assert args.backend == "transformers"
    assert args.backend_options == {"base_model": "/models/base", "adapter": "me/tutor-lora", "quantization": "4bit",
                                    "device": "cpu", "max_context_tokens": 2048, "static_cache": True}
    assert args.app == app.AppOptions(host="0.0.0.0", port=8123, share=True, queue_size=5)
    args = app.parse_args(["--adapter", "outputs/finetome", "--port", "9000", "--quantization", "none",
                           "--no-static-cache"])
    assert (args.backend_options["adapter"], args.app.port) == ("outputs/finetome", 9000)
    assert (args.backend_options["quantization"], args.backend_options["static_cache"]) == ("none", False)


@pytest.mark.parametrize(("name", "value", "message"), [
    ("QUANTIZATION", "8bit",
     "--quantization (or TUTOR_QUANTIZATION) must be one of auto, 4bit, none, got '8bit' from TUTOR_QUANTIZATION"),
    ("BACKEND", "vllm", "--backend (or TUTOR_BACKEND) must be one of auto, transformers, llamacpp"),
    ("PORT", "http", "--port (or TUTOR_PORT) must be a whole number from 1 to 65535, got 'http' from TUTOR_PORT"),
    ("MAX_CONTEXT", "nan", "--max-context (or TUTOR_MAX_CONTEXT) must be a whole number from 64 to 1048576"),
    ("SHARE", "maybe", "--share (or TUTOR_SHARE) must be 1/true/yes or 0/false/no, got 'maybe' from TUTOR_SHARE"),
])
def test_bad_settings_name_the_flag_and_variable(monkeypatch, capsys, name, value, message):
    monkeypatch.setenv(f"TUTOR_{name}", value)
    with pytest.raises(SystemExit) as exit_info:
        app.parse_args([])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_flag_of_another_backend_is_refused(capsys):
    with pytest.raises(SystemExit):
        app.parse_args(["--backend", "transformers", "--queue-size", "3", "--port", "70000"])
    assert "--port (or TUTOR_PORT) must be a whole number from 1 to 65535, got '70000'" in capsys.readouterr().err


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def test_missing_model_directory_is_one_clear_line(capsys, tmp_path: Path):
    missing = tmp_path / "no-such-model"
    assert app.main(["--base-model", str(missing)]) == 1
    err = capsys.readouterr().err
    assert _error_lines(err) == [f"error: base model {str(missing)!r} not found: no such directory. Pass an "
                                 "existing directory (one that holds config.json) or a hub id like owner/name "
                                 "with --base-model."]
    assert "Traceback" not in err


def test_hub_model_without_the_hub_names_the_fix(capsys):
    # conftest sets HF_HUB_OFFLINE=1: the same path as an unreachable hub, without waiting for retries.
    assert app.main(["--backend", "transformers", "--base-model", DEFAULT_BASE_MODEL]) == 1
    (line,) = _error_lines(capsys.readouterr().err)
    assert line.startswith(f"error: Could not load base model {DEFAULT_BASE_MODEL!r}")
    assert f"hf download {DEFAULT_BASE_MODEL}" in line


def test_default_on_a_cpu_fetches_the_q4_gguf_and_names_the_fix_offline(capsys, monkeypatch):
    """`python app.py` with no flags on a machine without CUDA serves the Q4_K_M GGUF through llama.cpp."""
    pytest.importorskip("llama_cpp")
    monkeypatch.setattr("inference.registry.cuda_available", lambda: False)
    assert app.main([]) == 1
    (line,) = _error_lines(capsys.readouterr().err)
    assert line.startswith("error: Could not load GGUF "
                           "'unsloth/Llama-3.2-3B-Instruct-GGUF:Llama-3.2-3B-Instruct-Q4_K_M.gguf'")
    assert line.endswith("(`hf download unsloth/Llama-3.2-3B-Instruct-GGUF Llama-3.2-3B-Instruct-Q4_K_M.gguf`) "
                         "or pass a local file with --gguf.")


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "app.py", *args], cwd=ROOT, env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_unreachable_hub_exits_with_the_loading_error(tmp_path: Path):
    env = {"HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "0", "HF_HOME": str(tmp_path / "hf"),
           "HF_ENDPOINT": f"http://127.0.0.1:{free_port()}"}  # nothing listens there: connection refused
    proc = _start(["--backend", "transformers", "--base-model", DEFAULT_BASE_MODEL], env)
    output, _ = proc.communicate(timeout=240)
    assert proc.returncode == 1
    (line,) = _error_lines(output)
    assert f"Could not load base model {DEFAULT_BASE_MODEL!r}" in line and "could not provide it" in line
    assert "Traceback" not in output


def _wait_for_url(proc: subprocess.Popen, timeout: float) -> tuple[str, str]:
    """Read the server's output until Gradio prints its URL (a reader thread keeps this bounded).

    Returns the URL and the output up to it."""
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout] + [lines.put(None)],
                     daemon=True).start()
    seen: list[str] = []
    while True:
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no URL after {timeout}s; output so far:\n{''.join(seen)}") from None
        if line is None:
            raise AssertionError(f"app.py exited with {proc.wait()} before serving:\n{''.join(seen)}")
        seen.append(line)
        if "Running on local URL:" in line:
            return line.split("Running on local URL:", 1)[1].strip().rstrip("/"), "".join(seen)


@pytest.mark.slow
def test_app_serves_a_tiny_model_with_adapter_end_to_end(page, tiny_model_dir, tiny_adapter_dir):
    from playwright.sync_api import expect

    port = free_port()
    proc = _start(["--base-model", str(tiny_model_dir), "--adapter", str(tiny_adapter_dir), "--port", str(port)],
                  {"PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"})
    try:
        url, output = _wait_for_url(proc, timeout=180)
        assert url == f"http://127.0.0.1:{port}"
        assert f"loaded {tiny_model_dir} + {tiny_adapter_dir} on cpu" in output
        page.goto(url)
        page.locator("#chat-input textarea").fill("What is a cell?")
        page.locator("#chat-input textarea").press("Enter")
        reply = page.locator('#chatbot [data-testid="bot"]').last
        expect(reply).to_be_visible()
        expect(page.locator("#chat-input textarea")).to_be_enabled(timeout=120_000)
        assert reply.inner_text().strip()  # the random tiny model says something (or the empty-reply note)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_class_quizzes_go_to_a_spaces_persistent_storage_when_it_has_one(tmp_path, monkeypatch):
    import ui

    monkeypatch.delenv("SPACE_ID", raising=False)
    monkeypatch.setattr(ui, "SPACE_STORAGE", str(tmp_path))
    assert ui.default_data_dir() == ".llama-tutor-data"  # not a Space: the working folder
    monkeypatch.setenv("SPACE_ID", "someone/llama-tutor")
    assert ui.default_data_dir() == str(tmp_path / "llama-tutor")  # a Space with /data
    monkeypatch.setattr(ui, "SPACE_STORAGE", str(tmp_path / "absent"))
    assert ui.default_data_dir() == ".llama-tutor-data"  # a Space without persistent storage

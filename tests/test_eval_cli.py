"""``python -m evaluation`` end to end on the tiny model: every task, the files it writes, the comparison,
generate mode through the real backend, and one-line errors."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evaluation.__main__ import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
ALL_TASKS = "arc_challenge,arc_easy,truthfulqa_mc1,truthfulqa_mc2,mmlu,lr1"


@pytest.fixture(scope="module")
def shared_data() -> Path:
    if not (SHARED / "arc").is_dir() or not (SHARED / "mmlu_lr1").is_dir():
        pytest.skip(f"shared benchmark data not found at {SHARED}")
    return SHARED


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "evaluation", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)


@pytest.mark.slow
def test_loglik_run_over_every_task(tiny_model_dir, shared_data, tmp_path):
    out = tmp_path / "base.json"
    proc = cli("--model", str(tiny_model_dir), "--tasks", ALL_TASKS, "--data-dir", str(shared_data), "--limit", "4",
               "--num-fewshot", "1", "--batch-size", "8", "--device", "cpu", "--output", str(out),
               "--show-predictions", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    results = json.loads(out.read_text())
    assert (results["model"], results["adapter"], results["mode"]) == (str(tiny_model_dir), None, "loglik")
    sizes = {name: entry["n"] for name, entry in results["tasks"].items()}
    assert sizes == {"arc_challenge": 4, "arc_easy": 4, "truthfulqa_mc1": 4, "truthfulqa_mc2": 4, "mmlu": 32, "lr1": 4}
    arc = results["tasks"]["arc_challenge"]
    assert 0 <= arc["acc"] <= 1 and arc["acc_ci95"][0] <= arc["acc"] <= arc["acc_ci95"][1] and "acc_norm" in arc
    assert list(arc["data"]["files"].values())[0] == (
        __import__("hashlib").sha256((shared_data / "arc" / "llmfoundry_arc_challenge_test.jsonl").read_bytes()).hexdigest())
    assert results["fingerprints"]["model"]["config_sha256"] and results["settings"]["dtype"] == "float32"
    assert results["tasks"]["mmlu"]["num_fewshot"] == 1 and len(results["tasks"]["mmlu"]["subjects"]) == 8
    for name in ("arc_challenge", "truthfulqa_mc2", "mmlu", "lr1"):
        assert f"| {name} | {results['tasks'][name]['n']} | {100 * results['tasks'][name]['acc']:.1f} |" in proc.stdout
    assert proc.stdout.count("Question: ") == 4 * 5 + 32 + 4  # --show-predictions: every question, LR1.csv too
    lr1_csv = Path(results["tasks"]["lr1"]["predictions_csv"])
    rows = list(csv.reader(lr1_csv.open()))
    assert rows[0][:3] == ["", "answer", "letter"] and [r[0] for r in rows[1:]] == ["0", "1", "2", "3"]
    assert all(r[1] in "0123" and r[2] in "ABCD" for r in rows[1:])
    predictions = [json.loads(line) for line in Path(results["predictions_file"]).read_text().splitlines()]
    assert len(predictions) == 4 * 5 + 32 + 4


@pytest.mark.slow
def test_before_after_comparison(tiny_model_dir, tiny_adapter_dir, shared_data, tmp_path, capsys):
    common = ["--model", str(tiny_model_dir), "--tasks", "arc_challenge,truthfulqa_mc2", "--data-dir",
              str(shared_data), "--limit", "12", "--device", "cpu", "--no-progress"]
    parser = build_parser()
    assert main(parser.parse_args([*common, "--output", str(tmp_path / "base.json")])) == 0
    assert main(parser.parse_args([*common, "--adapter", str(tiny_adapter_dir),
                                   "--output", str(tmp_path / "tuned.json")])) == 0
    tuned = json.loads((tmp_path / "tuned.json").read_text())
    assert tuned["fingerprints"]["adapter"]["adapter_config.json_sha256"]
    capsys.readouterr()
    assert main(parser.parse_args(["--compare", str(tmp_path / "base.json"), str(tmp_path / "tuned.json"),
                                   "--plot", str(tmp_path / "cmp.png")])) == 0
    printed = capsys.readouterr().out
    assert "| arc_challenge | acc_norm |" in printed and "| truthfulqa_mc2 | acc |" in printed
    assert "note:" not in printed  # same base model, same questions
    assert (tmp_path / "cmp.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_generate_mode_through_the_real_backend(tiny_model_dir, shared_data, tmp_path, capsys):
    args = build_parser().parse_args([
        "--model", str(tiny_model_dir), "--tasks", "arc_challenge", "--data-dir", str(shared_data), "--limit", "3",
        "--mode", "generate", "--max-new-tokens", "4", "--device", "cpu", "--output", str(tmp_path / "gen.json"),
        "--show-predictions", "--no-progress"])
    assert main(args) == 0
    entry = json.loads((tmp_path / "gen.json").read_text())["tasks"]["arc_challenge"]
    records = [json.loads(line) for line in (tmp_path / "gen.predictions.jsonl").read_text().splitlines()]
    assert entry["n"] == 3 and entry["parse_failures"] == sum(r["pred"] is None for r in records)
    assert capsys.readouterr().out.count("Reply: ") == 3


def test_errors_are_one_line_without_traceback(tmp_path):
    proc = cli("--tasks", "arc_challenge,bogus", "--data-dir", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: unknown task 'bogus' in --tasks; choose from arc_challenge, arc_easy, "
                                   "truthfulqa_mc1, truthfulqa_mc2, mmlu, lr1 or csv:<file.csv>")
    proc = cli("--model", "unused", "--tasks", "truthfulqa_mc1", "--data-dir", str(tmp_path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: '") and "mc_task.json' not found" in proc.stderr
    proc = cli("--compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "a.json' not found" in proc.stderr


def test_bad_model_directory_is_a_clear_error(shared_data, tmp_path, capsys):
    args = build_parser().parse_args(["--model", str(tmp_path / "missing-model"), "--tasks", "arc_challenge",
                                      "--data-dir", str(shared_data), "--limit", "2", "--output",
                                      str(tmp_path / "r.json"), "--device", "cpu"])
    assert main(args) == 2
    assert "not found: no such directory" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


@pytest.mark.slow
def test_eval_speed_bench_runs_on_cpu_with_tiny(shared_data, tmp_path, monkeypatch):
    from bench import eval_speed

    monkeypatch.setenv("BENCH_RESULTS_DIR", str(tmp_path / "results"))
    args = eval_speed.build_parser().parse_args([
        "--data-dir", str(shared_data / "arc"), "--tiny", "--limit", "12", "--batch-size", "4,16",
        "--work-dir", str(tmp_path / "work"), "--device", "cpu"])
    assert eval_speed.main(args) == 0
    saved = json.loads(next((tmp_path / "results").glob("eval_speed_tiny-*.json")).read_text())
    small, large = saved["runs"]
    assert (small["questions"], small["requests"]) == (12, 48)
    assert small["forward_passes"] == -(-48 // 4) and large["forward_passes"] == -(-48 // 16)
    assert small["tokens"] == large["tokens"] and large["padded_tokens"] >= large["tokens"]
    assert small["score_s"] > 0 and small["acc"] == large["acc"]


@pytest.mark.slow
def test_generate_mode_through_the_llama_cpp_backend(tiny_gguf, shared_data, tmp_path):
    args = build_parser().parse_args([
        "--backend", "llamacpp", "--gguf", str(tiny_gguf["f16"]), "--tasks", "arc_challenge", "--data-dir",
        str(shared_data), "--limit", "3", "--mode", "generate", "--max-new-tokens", "4",
        "--output", str(tmp_path / "gen.json"), "--no-progress"])
    assert main(args) == 0
    saved = json.loads((tmp_path / "gen.json").read_text())
    assert saved["settings"]["backend"].startswith("llamacpp (") and saved["tasks"]["arc_challenge"]["n"] == 3


def test_loglik_mode_needs_a_backend_that_scores(tmp_path, capsys):
    args = build_parser().parse_args(["--backend", "llamacpp", "--gguf", "x.gguf", "--tasks", "arc_challenge",
                                      "--data-dir", str(tmp_path)])
    assert main(args) == 2
    assert capsys.readouterr().err == ("error: --mode loglik scores log-likelihoods, which only the transformers "
                                       "backend can do; use --mode generate with --backend llamacpp, or --backend "
                                       "transformers\n")

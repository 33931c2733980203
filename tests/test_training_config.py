"""Defaults < YAML recipe < flags, typed YAML values, and errors that name the flag."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from training.args import parse_dpo_args, parse_sft_args
from training.config import LORA_TARGETS, TrainConfig
from training.errors import TrainingError

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))


def recipe(tmp_path: Path, text: str) -> str:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return str(path)


def test_defaults_match_the_unsloth_notebook():
    c = parse_sft_args([])
    assert (c.model, c.lora_r, c.lora_alpha, c.lora_dropout, c.learning_rate, c.seed) == (
        "unsloth/Llama-3.2-3B-Instruct", 16, 16, 0.0, 2e-4, 3407)
    assert c.lora_target_modules == LORA_TARGETS and c.report_targets == ["tensorboard"]


def test_yaml_overrides_defaults_and_flags_override_yaml(tmp_path):
    path = recipe(tmp_path, "learning_rate: 2e-4\nmax_steps: 30\nlora_r: 8\nbf16: 'false'\n"
                            "lora_target_modules: q_proj, v_proj\nreport_to: none\n")
    c = parse_sft_args(["--config", path, "--max_steps", "7", "--lora_alpha", "32"])
    assert c.learning_rate == 2e-4 and isinstance(c.learning_rate, float)  # PyYAML reads 2e-4 as a string
    assert (c.max_steps, c.lora_r, c.lora_alpha, c.bf16) == (7, 8, 32, False)
    assert c.lora_target_modules == ["q_proj", "v_proj"] and c.report_targets == []


def test_every_recipe_parses():
    assert len(RECIPES) >= 5
    for path in RECIPES:
        parse = parse_dpo_args if path.name.endswith("-dpo.yaml") else parse_sft_args  # one method per recipe
        c = parse(["--config", str(path)])
        assert c.model and c.dataset and c.learning_rate > 0, path.name


def test_finetome_recipe_is_the_notebook():
    c = parse_sft_args(["--config", str(ROOT / "recipes" / "llama-3.2-3b-finetome.yaml")])
    assert (c.model, c.dataset, c.dataset_format, c.chat_template) == (
        "unsloth/Llama-3.2-3B-Instruct", "mlabonne/FineTome-100k", "sharegpt", "llama-3.1")
    assert (c.load_in_4bit, c.lora_r, c.lora_alpha, c.lora_dropout, c.optim, c.lr_scheduler_type) == (
        True, 16, 16, 0.0, "adamw_8bit", "linear")
    assert (c.learning_rate, c.weight_decay, c.warmup_steps, c.seed, c.max_seq_length) == (2e-4, 0.01, 5, 3407, 2048)
    assert (c.per_device_train_batch_size, c.gradient_accumulation_steps) == (8, 1)
    # the notebook's offloaded checkpointing; padding left to Unsloth; cuDNN attention off (measured in bench/results)
    assert (c.gradient_checkpointing, c.offload_checkpoints, c.padding_free, c.packing, c.cudnn_attention) == (
        True, True, None, False, False)


@pytest.mark.parametrize(("text", "match"), [
    ("learning_rat: 0.1\n", r"unknown setting 'learning_rat' \(did you mean 'learning_rate'\?\)"),
    ("max_steps: lots\n", r"max_steps: expected a whole number, got 'lots'"),
    ("load_in_4bit: maybe\n", r"load_in_4bit: expected true or false"),
    ("backend: tpu\n", r"backend: expected one of auto, unsloth, transformers"),
    ("- a\n- b\n", r"must be a mapping"),
    ("learning_rate: .nan\n", r"--learning_rate must be a finite number, got nan"),
    ("eval_split: .inf\n", r"--eval_split must be a finite number, got inf"),
])
def test_bad_recipes_name_the_key(tmp_path, text, match):
    with pytest.raises(TrainingError, match=match):
        parse_sft_args(["--config", recipe(tmp_path, text)])


@pytest.mark.parametrize(("argv", "match"), [
    (["--max_steps", "0"], r"--max_steps must be a positive number of steps or -1"),
    (["--learning_rate", "-1"], r"--learning_rate must be positive, got -1.0"),
    (["--eval_split", "1.5"], r"--eval_split is a fraction in \[0, 1\), got 1.5"),
    (["--lora_r", "0"], r"--lora_r must be at least 1, got 0"),
    (["--report_to", "mlflow"], r"--report_to must be tensorboard, wandb, none"),
    (["--max_stepz", "3"], r"unknown argument '--max_stepz'; did you mean --max_steps\?"),
    (["--per_device_train_batch_size", "two"], r"--per_device_train_batch_size: expected a whole number"),
    (["--dataset_format", "csv"], r"argument --dataset_format: invalid choice: 'csv'"),
    (["--config", "nope.yaml"], r"recipe 'nope.yaml' not found"),
    (["--answers_file", "a.csv", "--dataset_format", "alpaca"],
     r"--answers_file only applies to --dataset_format mcq-csv"),
    (["--learning_rate", "nan"], r"--learning_rate must be a finite number, got nan: pass an ordinary value such as "
                                 r"the default 0.0002"),
    (["--learning_rate", "inf"], r"--learning_rate must be a finite number, got inf"),
    (["--max_grad_norm=-inf"], r"--max_grad_norm must be a finite number, got -inf"),
    (["--weight_decay", "nan"], r"--weight_decay must be a finite number, got nan"),
    (["--lora_dropout", "nan"], r"--lora_dropout must be a finite number, got nan"),
    (["--num_train_epochs", "inf"], r"--num_train_epochs must be a finite number, got inf"),
    (["--warmup_steps", "inf"], r"--warmup_steps: expected a whole number, got 'inf'"),
])
def test_bad_flags_fail_early_naming_the_flag(argv, match):
    with pytest.raises(TrainingError, match=match):
        parse_sft_args(argv)


def test_resume_target(tmp_path):
    assert TrainConfig().resume_target() is None
    assert TrainConfig(resume_from_checkpoint="true").resume_target() is True
    assert TrainConfig(resume_from_checkpoint=str(tmp_path)).resume_target() == str(tmp_path)
    with pytest.raises(TrainingError, match=r"--resume_from_checkpoint '/no/such/ckpt' is not a directory"):
        TrainConfig(resume_from_checkpoint="/no/such/ckpt").resume_target()


def test_parsing_does_not_import_transformers():
    # Unsloth must be imported before transformers; parsing the command line must not import it first.
    code = ("import sys; from training.args import parse_dpo_args, parse_sft_args; parse_sft_args(['--max_steps', '3']); "
            "print(sorted(m for m in ('transformers', 'trl', 'peft', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_help_lists_fields_with_their_help():
    out = subprocess.run([sys.executable, "-m", "training", "sft", "--help"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert "--per_device_train_batch_size" in out and "--resume_from_checkpoint" in out
    assert "LoRA rank (default: 16)" in out


def test_missing_reporter_fails_before_loading_anything(monkeypatch):
    import importlib.util

    from training.sft import build_run

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "wandb" else real_find_spec(name, *a))
    config = TrainConfig(model="/no/such/model", dataset="/no/such/data.json", report_to="wandb")
    with pytest.raises(TrainingError, match=r"--report_to wandb needs the wandb package: pip install wandb"):
        build_run(config)


@pytest.fixture
def fake_cuda(monkeypatch):
    """resolve_runtime as on a one-GPU machine (bf16-capable, no unsloth): only the decisions, no model."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setenv("WORLD_SIZE", "1")
    was = torch.backends.cuda.cudnn_sdp_enabled()
    yield
    torch.backends.cuda.enable_cudnn_sdp(was)


def test_training_on_cuda_turns_cudnn_attention_off_unless_asked(fake_cuda):
    import torch

    from training.backends import resolve_runtime

    torch.backends.cuda.enable_cudnn_sdp(True)
    runtime = resolve_runtime(parse_sft_args(["--backend", "transformers"]))
    assert (runtime.device, runtime.load_in_4bit, runtime.bf16, runtime.gradient_checkpointing) == (
        "cuda", True, True, True)
    assert torch.backends.cuda.cudnn_sdp_enabled() is False
    torch.backends.cuda.enable_cudnn_sdp(True)
    resolve_runtime(parse_sft_args(["--backend", "transformers", "--cudnn_attention"]))
    assert torch.backends.cuda.cudnn_sdp_enabled() is True


def test_cpu_training_leaves_attention_kernels_alone():
    import torch

    from training.backends import resolve_runtime

    was = torch.backends.cuda.cudnn_sdp_enabled()
    runtime = resolve_runtime(parse_sft_args(["--backend", "transformers"]))
    assert (runtime.device, runtime.load_in_4bit, runtime.gradient_checkpointing) == ("cpu", False, False)
    assert torch.backends.cuda.cudnn_sdp_enabled() is was


@pytest.mark.parametrize(("flags", "expected"), [
    ([], "unsloth"),  # the notebook's offloaded checkpointing
    (["--offload_checkpoints", "false"], True),
    (["--gradient_checkpointing", "false"], False),
    (["--gradient_checkpointing", "false", "--offload_checkpoints", "true"], False),
])
def test_unsloth_checkpointing_mode(flags, expected):
    from training.backends import Runtime, unsloth_checkpointing

    c = parse_sft_args(flags)
    runtime = Runtime(backend="unsloth", device="cuda", world_size=1, local_rank=0, load_in_4bit=True, bf16=True,
                      fp16=False, gradient_checkpointing=c.gradient_checkpointing is not False, optim="adamw_8bit",
                      offload_checkpoints=c.offload_checkpoints)
    assert unsloth_checkpointing(runtime) == expected


def fake_checkpoint(folder: Path, state: str | None = '{"global_step": 1}', weights: bool = True) -> Path:
    """A checkpoint folder with (or without) what resuming needs: trainer state and adapter weights."""
    folder.mkdir(parents=True)
    if weights:
        (folder / "adapter_model.safetensors").write_bytes(b"weights")
    if state is not None:
        (folder / "trainer_state.json").write_text(state)
    return folder


def test_resume_flag_alone_means_the_newest_checkpoint(tmp_path):
    for step in (5, 20, 10):
        fake_checkpoint(tmp_path / f"checkpoint-{step}")
    c = parse_sft_args(["--output_dir", str(tmp_path), "--resume_from_checkpoint"])
    assert c.resume_from_checkpoint == "latest"
    from training.sft import _resume_target

    assert _resume_target(c) == str(tmp_path / "checkpoint-20")


def test_resume_skips_incomplete_checkpoints_and_names_them(tmp_path, caplog):
    from training.sft import _resume_target

    fake_checkpoint(tmp_path / "checkpoint-10")
    fake_checkpoint(tmp_path / "checkpoint-20", state=None)  # killed before trainer_state.json
    fake_checkpoint(tmp_path / "checkpoint-30", state='{"global_st')  # killed while writing it
    fake_checkpoint(tmp_path / "checkpoint-40", weights=False)
    fake_checkpoint(tmp_path / ".checkpoint-staging" / "checkpoint-50", state=None)
    with caplog.at_level("WARNING", logger="training.checkpoints"):
        assert _resume_target(TrainConfig(output_dir=str(tmp_path), resume_from_checkpoint="latest")) == str(
            tmp_path / "checkpoint-10")
    assert caplog.messages == [f"skipping incomplete checkpoint {what}: the run probably stopped while writing it"
                               for what in (".checkpoint-staging/checkpoint-50 (a save that was interrupted)",
                                            "checkpoint-40 (no model weights)",
                                            "checkpoint-30 (a truncated trainer_state.json)",
                                            "checkpoint-20 (no trainer_state.json)")]


def test_resume_from_an_incomplete_path_points_at_a_complete_one(tmp_path):
    from training.sft import _resume_target

    fake_checkpoint(tmp_path / "checkpoint-10")
    broken = fake_checkpoint(tmp_path / "checkpoint-20", state=None)
    with pytest.raises(TrainingError, match=rf"--resume_from_checkpoint '{broken}' is not a complete checkpoint "
                                            rf"\(no trainer_state.json; the run probably stopped while writing it\): "
                                            rf"pass '{tmp_path / 'checkpoint-10'}' instead"):
        _resume_target(TrainConfig(output_dir=str(tmp_path), resume_from_checkpoint=str(broken)))
    only_broken = tmp_path / "other"
    fake_checkpoint(only_broken / "checkpoint-5", state=None)
    with pytest.raises(TrainingError, match=r"no complete checkpoint-N folder in .* \(only incomplete ones: "
                                            r"checkpoint-5 \(no trainer_state.json\)\); run without it"):
        _resume_target(TrainConfig(output_dir=str(only_broken), resume_from_checkpoint="true"))


def test_output_dir_that_is_a_file_is_one_line(tmp_path):
    existing = tmp_path / "notes.txt"
    existing.write_text("not a folder")
    with pytest.raises(TrainingError, match=rf"--output_dir '{existing}' is an existing file, not a folder: pass a "
                                            r"folder path"):
        parse_sft_args(["--output_dir", str(existing)])
    with pytest.raises(TrainingError, match=rf"--output_dir '{existing}/run' cannot be created: '{existing}' is a "
                                            r"file"):
        parse_sft_args(["--output_dir", str(existing / "run")])


def test_recipe_of_random_bytes_is_one_line(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_bytes(bytes(range(128, 256)) * 8)
    with pytest.raises(TrainingError, match=r"recipe '.*recipe.yaml' is not UTF-8 text: pass a YAML file"):
        parse_sft_args(["--config", str(path)])


@pytest.mark.parametrize(("flag", "value", "match"), [
    ("optim", "bogus", r"--optim 'bogus' is not an optimiser transformers knows: common ones are adamw_torch, "
                       r"adamw_torch_fused, adamw_8bit, paged_adamw_8bit, adafactor, sgd \(all \d+: "),
    ("optim", "adamw_8bits", r"--optim 'adamw_8bits' is not an optimiser transformers knows: did you mean adamw_8bit"),
    ("lr_scheduler_type", "bogus", r"--lr_scheduler_type 'bogus' is not a schedule transformers knows: choose one of "
                                   r"linear, cosine, cosine_with_restarts, "),
    ("lr_scheduler_type", "cosin", r"--lr_scheduler_type 'cosin' is not a schedule transformers knows: did you mean "
                                   r"cosine"),
])
def test_unknown_optimiser_or_schedule_fails_before_loading_anything(flag, value, match):
    from training.sft import build_run

    # The model and dataset do not exist: an error about them would mean they were loaded first.
    config = TrainConfig(model="/no/such/model", dataset="/no/such/data.json", report_to="none", **{flag: value})
    with pytest.raises(TrainingError, match=match):
        build_run(config)


@pytest.mark.parametrize(("argv", "message"), [
    (["--learning_rate", "nan"], "error: --learning_rate must be a finite number, got nan"),
    (["--output_dir", "README.md"], "error: --output_dir 'README.md' is an existing file, not a folder"),
    pytest.param(["--optim", "bogus"], "error: --optim 'bogus' is not an optimiser transformers knows",
                 marks=pytest.mark.slow),  # imports torch and transformers: ~10 s on two cores
    pytest.param(["--lr_scheduler_type", "bogus"],
                 "error: --lr_scheduler_type 'bogus' is not a schedule transformers knows", marks=pytest.mark.slow),
])
def test_cli_refuses_bad_settings_in_one_line(argv, message):
    done = subprocess.run([sys.executable, "-m", "training", "sft", "--model", "/no/such/model", "--dataset",
                           "/no/such/data.json", "--report_to", "none", *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith(message)
    assert "Traceback" not in done.stderr

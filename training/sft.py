"""Supervised fine-tuning with LoRA / QLoRA: data -> template -> trainer -> adapter + metrics.

    python -m training sft --config recipes/llama-3.2-3b-finetome.yaml
    python -m training sft --model ./tiny-model --dataset data.json --max_steps 5 --output_dir outputs/tiny

``main(config)`` runs one training; ``cli(argv)`` parses flags (and a YAML recipe) into that config.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from training.args import parse_sft_args
from training.checkpoints import check_resumable, resume_checkpoint
from training.config import TrainConfig
from training.errors import TrainingError

logger = logging.getLogger(__name__)


def _resume_target(config: TrainConfig) -> str | None:
    """The checkpoint to resume from: the newest complete one for the flag alone, or the path given."""
    target = config.resume_target()
    if target is True:
        return resume_checkpoint(config.output_dir)
    return check_resumable(target) if target else None


def _load(config: TrainConfig, runtime: Any) -> tuple[Any, Any]:
    from training.backends import load_tokenizer, load_transformers_model, load_unsloth_model

    if runtime.backend == "unsloth":
        return load_unsloth_model(config, runtime)
    return load_transformers_model(config, runtime), load_tokenizer(config.model)


def _train(trainer: Any, resume: str | None, config: TrainConfig) -> Any:
    try:
        return _run_trainer(trainer, resume, config)
    finally:
        _close_progress_bar(trainer)


def _close_progress_bar(trainer: Any) -> None:
    """End the trainer's progress bar line (it is left open when training stops with an error), so the
    error that follows gets a line of its own."""
    for callback in trainer.callback_handler.callbacks:
        if getattr(callback, "training_bar", None) is not None:
            callback.training_bar.close()
            callback.training_bar = None


def _run_trainer(trainer: Any, resume: str | None, config: TrainConfig) -> Any:
    import torch

    try:
        return trainer.train(resume_from_checkpoint=resume)
    except torch.OutOfMemoryError:
        raise TrainingError(
            f"CUDA out of memory at --per_device_train_batch_size {config.per_device_train_batch_size} and "
            f"--max_seq_length {config.max_seq_length}: lower one of them (raise --gradient_accumulation_steps to "
            "keep the effective batch)") from None
    except RuntimeError as exc:
        if "without overflow" not in str(exc):  # the optimiser's step size does not fit in the weights' dtype
            raise
        raise TrainingError(f"--learning_rate {config.learning_rate:g} overflows the optimiser's arithmetic "
                            f"({str(exc).splitlines()[0]}): no adapter was saved; use a learning rate like the "
                            "recipes' 0.0002") from None


@dataclasses.dataclass
class Run:
    """A run ready to train: ``trainer.train()`` is all that is left (benchmarks time just that)."""

    config: TrainConfig
    runtime: Any
    trainer: Any
    tokenizer: Any
    skipped: Counter
    length_stats: Counter
    summary: dict[str, Any]


def build_run(config: TrainConfig) -> Run:
    """Everything before training: backend, data, model + LoRA, template, length policy, trainer."""
    from training.backends import resolve_runtime

    config.validate()
    runtime = resolve_runtime(config)  # imports unsloth first when it trains
    from training.data import prepare_data
    from training.trainer import check_choices, check_reporters
    from training.lengths import fit_lengths
    from training.templates import apply_template, choose_template

    check_reporters(config.report_targets)
    check_choices(config)
    data = prepare_data(config)
    model, tokenizer = _load(config, runtime)
    template = choose_template(config.chat_template, tokenizer)
    apply_template(tokenizer, template)
    skipped, length_stats = Counter(data.skipped), Counter()
    train = fit_lengths(tokenizer, data.train, config.max_seq_length, config.overlong, skipped, length_stats)
    eval_rows = fit_lengths(tokenizer, data.eval, config.max_seq_length, config.overlong, skipped, length_stats,
                            label="eval: ")
    if not train:
        raise TrainingError(f"no training conversations fit --max_seq_length {config.max_seq_length} "
                            f"(skipped: {dict(skipped)}); raise it or use --overlong truncate")
    trainer = _build_trainer(config, runtime, model, tokenizer, train, eval_rows, template)
    summary = {"format": data.format, "train_conversations": len(train), "eval_conversations": len(eval_rows),
               "chat_template": template.name}
    return Run(config, runtime, trainer, tokenizer, skipped, length_stats, summary)


def main(config: TrainConfig) -> dict[str, Any]:
    """Train, save adapter + tokenizer, write metrics.json and loss.png; return the metrics."""
    resume = _resume_target(config)
    with wandb_defaults(config, resuming=bool(resume)) if "wandb" in config.report_targets else nullcontext():
        run = build_run(config)
        result = _train(run.trainer, resume, config)
        return _finish(config, run.runtime, run.trainer, run.tokenizer, result.metrics, run.skipped,
                       run.length_stats, run.summary)


def _build_trainer(config: TrainConfig, runtime: Any, model: Any, tokenizer: Any, train: list, eval_rows: list,
                   template: Any) -> Any:
    from training.trainer import build_transformers_trainer, build_unsloth_trainer

    if runtime.backend == "unsloth":
        return build_unsloth_trainer(config, runtime, model, tokenizer, train, eval_rows, template)
    return build_transformers_trainer(config, runtime, model, tokenizer, train, eval_rows)


def _finish(config: TrainConfig, runtime: Any, trainer: Any, tokenizer: Any, train_metrics: dict,
            skipped: Counter, length_stats: Counter, summary: dict) -> dict[str, Any]:
    from training.finite import check_model_weights
    from training.report import build_metrics, plot_loss, write_metrics

    output_dir = Path(config.output_dir)
    check_model_weights(trainer.model, "the final adapter", config)
    trainer.save_model(str(output_dir))  # the adapter (every rank calls it; only the main one writes)
    metrics = build_metrics(trainer, train_metrics, config.to_dict(), skipped, length_stats,
                            dataclasses.asdict(runtime), summary)
    if trainer.is_world_process_zero():
        record_base_model(output_dir, config.model)
        tokenizer.save_pretrained(str(output_dir))  # with the chat template it was trained with
        write_metrics(output_dir, metrics)
        plot_loss(metrics["log_history"], output_dir / "loss.png", f"{config.model} on {config.dataset}")
        report_skipped(skipped, length_stats)
        logger.info("adapter, tokenizer, metrics.json and loss.png written to %s", output_dir)
        if "wandb" in config.report_targets:
            summarize_wandb(metrics, output_dir)
    return metrics


@contextmanager
def wandb_defaults(config: TrainConfig, resuming: bool) -> Iterator[None]:
    """For this run, the W&B settings the user has not set: project "llama-tutor" (transformers' would be
    "huggingface"), W&B's files in output_dir/wandb, and on --resume_from_checkpoint the run that wrote
    them, so its charts go on. Removed again afterwards, so a next run in the same process starts clean."""
    defaults = {"WANDB_PROJECT": "llama-tutor", "WANDB_DIR": str(Path(config.output_dir).resolve())}
    latest = Path(os.environ.get("WANDB_DIR", defaults["WANDB_DIR"])) / "wandb" / "latest-run"  # -> run-<time>-<id>
    if resuming and latest.exists():
        defaults["WANDB_RUN_ID"] = latest.resolve().name.rsplit("-", 1)[-1]
        defaults["WANDB_RESUME"] = "allow"
        logger.info("W&B: continuing run %s", os.environ.get("WANDB_RUN_ID", defaults["WANDB_RUN_ID"]))
    added = [name for name in defaults if name not in os.environ]
    os.environ.update({name: defaults[name] for name in added})
    Path(config.output_dir).mkdir(parents=True, exist_ok=True)
    failed = True
    try:
        yield
        failed = False
    finally:
        for name in added:
            os.environ.pop(name, None)
        wandb = sys.modules.get("wandb")
        if wandb is not None:  # close the run (marked failed after an error); W&B reads settings afresh next time
            if wandb.run is not None:
                wandb.finish(exit_code=int(failed))
            wandb.teardown()


WANDB_SUMMARY = ("train_tokens_per_second", "peak_memory_gib", "train_runtime_s", "train_tokens")


def summarize_wandb(metrics: dict, output_dir: Path) -> None:
    """Add the run's totals and skipped-row counts to the W&B summary (wandb_defaults closes the run)."""
    import wandb

    if wandb.run is None:
        return
    wandb.run.summary.update({f"tutor/{key}": metrics[key] for key in WANDB_SUMMARY if metrics.get(key) is not None})
    wandb.run.summary.update({f"tutor/skipped/{reason}": n for reason, n in metrics["skipped_rows"].items()})
    wandb.run.summary["tutor/output_dir"] = str(output_dir)


def record_base_model(output_dir: Path, model: str) -> None:
    """Name the model the user asked for as the adapter's base. Unsloth records the pre-quantized 4-bit
    copy it downloaded instead, and merging into that would round the update away (training/export.py)."""
    path = output_dir / "adapter_config.json"
    adapter = json.loads(path.read_text())
    if adapter.get("base_model_name_or_path") != model:
        logger.info("adapter base: %s (trained on %s)", model, adapter.get("base_model_name_or_path"))
        adapter["base_model_name_or_path"] = model
        path.write_text(json.dumps(adapter, indent=2, sort_keys=True) + "\n")


def report_skipped(skipped: Counter, length_stats: Counter) -> None:
    if not skipped and not length_stats:
        logger.info("no rows skipped")
        return
    for reason, count in sorted(skipped.items(), key=lambda kv: -kv[1]):
        logger.warning("skipped %d rows: %s", count, reason)
    for what, count in sorted(length_stats.items()):
        logger.info("%s: %d conversations", what, count)


def cli(argv: list[str]) -> int:
    """Entry point of ``python -m training sft``: prints where the adapter went."""
    config = parse_sft_args(argv)
    metrics = main(config)
    if int(os.environ.get("RANK", "0")) == 0:
        speed, loss = metrics["train_tokens_per_second"], metrics["train_loss"]
        print(f"done: {metrics['global_step']} steps, mean train loss "
              f"{'n/a' if loss is None else f'{loss:.4f}'}, "
              f"{f'{speed:,.0f} tokens/s, ' if speed else ''}peak memory {metrics['peak_memory_gib']:.2f} GiB; "
              f"adapter in {config.output_dir}")
    return 0

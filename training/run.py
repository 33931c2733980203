"""What every training method does around its trainer: resume, train, save, report.

``sft`` and ``dpo`` each build a ``Run`` (their data, model and TRL trainer); from there the steps are
the same: find the checkpoint to resume from, train with clear one-line errors, refuse to save broken
weights, write the adapter, tokenizer, metrics.json and plots, and log what was skipped.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from training.checkpoints import check_resumable, resume_checkpoint
from training.errors import TrainingError

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class Run:
    """A run ready to train: ``trainer.train()`` is all that is left (benchmarks time just that)."""

    config: Any
    runtime: Any
    trainer: Any
    tokenizer: Any
    skipped: Counter
    length_stats: Counter
    summary: dict[str, Any]


class Start(NamedTuple):
    """What every method has before its own length policy and trainer."""

    runtime: Any
    data: Any
    model: Any
    tokenizer: Any
    template: Any


def start_run(config: Any, read_data: Callable[[Any], Any], load: Callable[[Any, Any], tuple[Any, Any]]) -> Start:
    """Check the settings, pick the backend (Unsloth is imported before anything that imports transformers,
    so ``read_data`` and ``load`` import their modules when called), read the data, load model + tokenizer
    and apply the chat template."""
    from training.backends import resolve_runtime

    config.validate()
    runtime = resolve_runtime(config)  # imports unsloth first when it trains
    from training.templates import apply_template, choose_template
    from training.trainer import check_choices, check_reporters

    check_reporters(config.report_targets)
    check_choices(config)
    data = read_data(config)
    model, tokenizer = load(config, runtime)
    template = choose_template(config.chat_template, tokenizer)
    apply_template(tokenizer, template)
    return Start(runtime, data, model, tokenizer, template)


def resume_target(config: Any) -> str | None:
    """The checkpoint to resume from: the newest complete one for the flag alone, or the path given."""
    target = config.resume_target()
    if target is True:
        return resume_checkpoint(config.output_dir)
    return check_resumable(target) if target else None


def train(trainer: Any, resume: str | None, config: Any) -> Any:
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


def _run_trainer(trainer: Any, resume: str | None, config: Any) -> Any:
    import torch

    try:
        return trainer.train(resume_from_checkpoint=resume)
    except torch.OutOfMemoryError:
        raise TrainingError(
            f"CUDA out of memory at --per_device_train_batch_size {config.per_device_train_batch_size} and "
            f"{_length_flag(config)}: lower one of them (raise --gradient_accumulation_steps to keep the effective "
            "batch)") from None
    except RuntimeError as exc:
        if "without overflow" not in str(exc):  # the optimiser's step size does not fit in the weights' dtype
            raise
        raise TrainingError(f"--learning_rate {config.learning_rate:g} overflows the optimiser's arithmetic "
                            f"({str(exc).splitlines()[0]}): no adapter was saved; use a learning rate like the "
                            "recipes' 0.0002") from None


def _length_flag(config: Any) -> str:
    name = "max_seq_length" if hasattr(config, "max_seq_length") else "max_length"
    return f"--{name} {getattr(config, name)}"


PlotFn = Callable[[dict[str, Any], Path, str], list[str]]


def finish(run: Run, train_metrics: dict, plots: PlotFn, after_save: Callable[[Path], None] | None = None,
           extra: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> dict[str, Any]:
    """Check and save the adapter and tokenizer, write metrics.json (plus the method's ``extra`` entries) and
    the plots; return the metrics."""
    from training.finite import check_model_weights
    from training.report import build_metrics, write_metrics

    config, trainer = run.config, run.trainer
    output_dir = Path(config.output_dir)
    check_model_weights(trainer.model, "the final adapter", config)
    trainer.save_model(str(output_dir))  # the adapter (every rank calls it; only the main one writes)
    metrics = build_metrics(trainer, train_metrics, config.to_dict(), run.skipped, run.length_stats,
                            dataclasses.asdict(run.runtime), run.summary)
    metrics["method"] = config.METHOD
    if extra is not None:
        metrics.update(extra(metrics))
    if trainer.is_world_process_zero():
        if after_save is not None:
            after_save(output_dir)
        record_base_model(output_dir, config.model)
        run.tokenizer.save_pretrained(str(output_dir))  # with the chat template it was trained with
        write_metrics(output_dir, metrics)
        written = plots(metrics, output_dir, f"{config.model} on {config.dataset}")
        report_skipped(run.skipped, run.length_stats)
        logger.info("adapter, tokenizer, metrics.json%s written to %s", "".join(f", {n}" for n in written), output_dir)
        if "wandb" in config.report_targets:
            summarize_wandb(metrics, output_dir)
    return metrics


@contextmanager
def wandb_defaults(config: Any, resuming: bool) -> Iterator[None]:
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
        logger.info("%s: %d examples", what, count)

"""Supervised fine-tuning with LoRA / QLoRA: data -> template -> trainer -> adapter + metrics.

    python -m training sft --config recipes/llama-3.2-3b-finetome.yaml
    python -m training sft --model ./tiny-model --dataset data.json --max_steps 5 --output_dir outputs/tiny

``main(config)`` runs one training; ``cli(argv)`` parses flags (and a YAML recipe) into that config.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from contextlib import nullcontext
from typing import Any

from training.args import parse_sft_args
from training.config import TrainConfig
from training.errors import TrainingError
from training.run import Run, finish, resume_target, start_run, train, wandb_defaults

logger = logging.getLogger(__name__)

# The names tests and benchmarks have used since before run.py held them.
_resume_target = resume_target
_train = train


def _load(config: TrainConfig, runtime: Any) -> tuple[Any, Any]:
    from training.backends import load_tokenizer, load_transformers_model, load_unsloth_model

    if runtime.backend == "unsloth":
        return load_unsloth_model(config, runtime)
    return load_transformers_model(config, runtime), load_tokenizer(config.model)


def _read_data(config: TrainConfig) -> Any:
    from training.data import prepare_data

    return prepare_data(config)


def build_run(config: TrainConfig) -> Run:
    """Everything before training: backend, data, model + LoRA, template, length policy, trainer."""
    runtime, data, model, tokenizer, template = start_run(config, _read_data, _load)
    from training.lengths import fit_lengths

    skipped, length_stats = Counter(data.skipped), Counter()
    train_rows = fit_lengths(tokenizer, data.train, config.max_seq_length, config.overlong, skipped, length_stats)
    eval_rows = fit_lengths(tokenizer, data.eval, config.max_seq_length, config.overlong, skipped, length_stats,
                            label="eval: ")
    if not train_rows:
        raise TrainingError(f"no training conversations fit --max_seq_length {config.max_seq_length} "
                            f"(skipped: {dict(skipped)}); raise it or use --overlong truncate")
    trainer = _build_trainer(config, runtime, model, tokenizer, train_rows, eval_rows, template)
    summary = {"format": data.format, "train_conversations": len(train_rows), "eval_conversations": len(eval_rows),
               "chat_template": template.name}
    return Run(config, runtime, trainer, tokenizer, skipped, length_stats, summary)


def main(config: TrainConfig) -> dict[str, Any]:
    """Train, save adapter + tokenizer, write metrics.json and loss.png; return the metrics."""
    from training.report import plot_loss

    resume = resume_target(config)
    with wandb_defaults(config, resuming=bool(resume)) if "wandb" in config.report_targets else nullcontext():
        run = build_run(config)
        result = train(run.trainer, resume, config)
        return finish(run, result.metrics, plots=lambda metrics, out, title: [
            p.name for p in [plot_loss(metrics["log_history"], out / "loss.png", title)] if p])


def _build_trainer(config: TrainConfig, runtime: Any, model: Any, tokenizer: Any, train: list, eval_rows: list,
                   template: Any) -> Any:
    from training.trainer import build_transformers_trainer, build_unsloth_trainer

    if runtime.backend == "unsloth":
        return build_unsloth_trainer(config, runtime, model, tokenizer, train, eval_rows, template)
    return build_transformers_trainer(config, runtime, model, tokenizer, train, eval_rows)


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

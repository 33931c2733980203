"""Preference training (DPO) with LoRA / QLoRA: pairs -> template -> DPOTrainer -> adapter + metrics.

    python -m training dpo --config recipes/llama-3.2-3b-tutor-dpo.yaml
    python -m training dpo --dataset feedback.jsonl --adapter outputs/llama-3.2-3b-finetome
    python -m training dpo --model ./tiny-model --dataset pairs.jsonl --max_steps 5 --output_dir outputs/tiny-dpo

``main(config)`` runs one training; ``cli(argv)`` parses flags (and a YAML recipe) into that config.
The output folder gets the adapter, the tokenizer, metrics.json (the trainer's log with TRL's
``rewards/chosen``, ``rewards/rejected``, ``rewards/accuracies``, ``rewards/margins``), loss.png and rewards.png.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections import Counter
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from training.args import parse_dpo_args
from training.config import DPOTrainConfig
from training.errors import TrainingError
from training.run import Run, finish, resume_target, start_run, train, wandb_defaults

logger = logging.getLogger(__name__)


def _load(config: DPOTrainConfig, runtime: Any) -> tuple[Any, Any]:
    """The model TRL trains: the base (TRL adds the LoRA), or base + the starting adapter, trainable."""
    from training.backends import (attach_adapter, check_adapter_base, load_tokenizer, load_transformers_model,
                                   load_unsloth_model)

    if config.adapter:
        check_adapter_base(config.adapter, config.model)
        logger.info("continuing adapter %s (its LoRA settings replace the lora_* ones); reference: base + that "
                    "adapter", config.adapter)
    if runtime.backend == "unsloth":
        return load_unsloth_model(config, runtime, adapter=config.adapter)
    model = load_transformers_model(config, runtime)
    if config.adapter:
        model = attach_adapter(model, config.adapter)
    # The starting adapter's tokenizer (saved with it by `sft`) carries the chat template it was trained with.
    has_tokenizer = config.adapter and os.path.isfile(os.path.join(os.path.expanduser(config.adapter),
                                                                   "tokenizer_config.json"))
    return model, load_tokenizer(config.adapter if has_tokenizer else config.model)


def _read_pairs(config: DPOTrainConfig) -> Any:
    from training.preference import prepare_pairs

    return prepare_pairs(config)


def build_run(config: DPOTrainConfig) -> Run:
    """Everything before training: backend, pairs, model + LoRA, template, length policy, trainer."""
    runtime, data, model, tokenizer, template = start_run(config, _read_pairs, _load)
    from training.dpo_trainer import build_dpo_trainer
    from training.lengths import fit_pair_lengths

    skipped, length_stats = Counter(data.skipped), Counter()
    limits = (config.max_prompt_length, config.max_length, config.overlong)
    train_pairs = fit_pair_lengths(tokenizer, data.train, *limits, skipped, length_stats)
    eval_pairs = fit_pair_lengths(tokenizer, data.eval, *limits, skipped, length_stats, label="eval: ")
    if not train_pairs:
        raise TrainingError(f"no training pairs fit --max_prompt_length {config.max_prompt_length} and --max_length "
                            f"{config.max_length} (skipped: {dict(skipped)}); raise them or use --overlong truncate")
    trainer = build_dpo_trainer(config, runtime, model, tokenizer, train_pairs, eval_pairs)
    summary = {"format": data.format, "train_pairs": len(train_pairs), "eval_pairs": len(eval_pairs),
               "chat_template": template.name, "pairs_summary": data.summary,
               "pair_sources": dict(Counter(p.source for p in train_pairs if p.source))}
    return Run(config, runtime, trainer, tokenizer, skipped, length_stats, summary)


def _plots(metrics: dict[str, Any], output_dir: Path, title: str) -> list[str]:
    from training.report import plot_loss, plot_rewards

    written = [plot_loss(metrics["log_history"], output_dir / "loss.png", title),
               plot_rewards(metrics["log_history"], output_dir / "rewards.png", title)]
    return [p.name for p in written if p]


def _drop_reference_copy(output_dir: Path) -> None:
    """TRL keeps the starting adapter as a second adapter named "ref" (the reference) and saves it in
    output_dir/ref: it is the unchanged starting adapter, not part of the result."""
    ref = output_dir / "ref"
    if (ref / "adapter_config.json").is_file():
        shutil.rmtree(ref)


def main(config: DPOTrainConfig) -> dict[str, Any]:
    """Train, save adapter + tokenizer, write metrics.json, loss.png and rewards.png; return the metrics."""
    resume = resume_target(config)
    with wandb_defaults(config, resuming=bool(resume)) if "wandb" in config.report_targets else nullcontext():
        run = build_run(config)
        result = train(run.trainer, resume, config)
        return finish(run, result.metrics, plots=_plots, after_save=_drop_reference_copy,
                      extra=lambda metrics: {"final_rewards": final_rewards(metrics["log_history"])})


def final_rewards(log_history: list[dict[str, Any]]) -> dict[str, float]:
    """The last logged training values of TRL's reward metrics (what the command prints)."""
    last: dict[str, float] = {}
    for entry in log_history:
        for key in ("rewards/accuracies", "rewards/margins", "rewards/chosen", "rewards/rejected"):
            if key in entry:
                last[key] = entry[key]
    return last


def cli(argv: list[str]) -> int:
    """Entry point of ``python -m training dpo``: prints what the data gave and where the adapter went."""
    config = parse_dpo_args(argv)
    metrics = main(config)
    if int(os.environ.get("RANK", "0")) == 0:
        data = metrics["data"]
        print(data["pairs_summary"])
        rewards, loss = metrics["final_rewards"], metrics["train_loss"]
        accuracy = rewards.get("rewards/accuracies")
        margin = rewards.get("rewards/margins")
        print(f"done: {metrics['global_step']} steps on {data['train_pairs']} pairs, mean train loss "
              f"{'n/a' if loss is None else f'{loss:.4f}'}, last reward accuracy "
              f"{'n/a' if accuracy is None else f'{accuracy:.2f}'}, margin {'n/a' if margin is None else f'{margin:.3f}'}, "
              f"peak memory {metrics['peak_memory_gib']:.2f} GiB; adapter in {config.output_dir}")
    return 0

"""Benchmarks for Llama Tutor, base vs fine-tuned, scored as lm-evaluation-harness scores them.

    python -m evaluation --model unsloth/Llama-3.2-3B-Instruct --tasks arc_challenge,truthfulqa_mc1,truthfulqa_mc2 \\
        --limit 500 --output results/base.json
    python -m evaluation --model unsloth/Llama-3.2-3B-Instruct --adapter outputs/finetome \\
        --tasks arc_challenge,truthfulqa_mc1,truthfulqa_mc2 --limit 500 --output results/tuned.json
    python -m evaluation --compare results/base.json results/tuned.json --plot results/compare.png

Offline: add ``--data-dir ../shared/data`` (arc/*.jsonl, truthfulqa/mc_task.json, mmlu/, mmlu_lr1/).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from evaluation import compare as comparison
from evaluation import report
from evaluation.runner import MODES, EvalConfig, run
from evaluation.task import EvalError
from evaluation.tasks import DEFAULT_TASKS, TASKS, parse_task_list


def build_parser() -> argparse.ArgumentParser:
    from inference.cli import add_backend_arguments

    p = argparse.ArgumentParser(prog="python -m evaluation", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default=DEFAULT_TASKS,
                   help=f"comma-separated: {', '.join(TASKS)}, csv:<file.csv> (default: %(default)s)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="folder laid out like shared/data; without it the hub datasets are used")
    p.add_argument("--limit", type=int, default=None, help="first N questions in file order (per subject for mmlu)")
    p.add_argument("--mode", choices=MODES, default="loglik",
                   help="loglik: lm-eval's log-likelihood scoring (comparable with published numbers); "
                        "generate: ask the chat model for a letter (default: %(default)s)")
    p.add_argument("--output", type=Path, default=Path("results.json"), help="results file (default: %(default)s)")
    p.add_argument("--show-predictions", action="store_true", help="print every question and the model's answer")
    p.add_argument("--batch-size", type=int, default=32, help="sequences per forward pass / replies per batch")
    p.add_argument("--num-fewshot", type=int, default=None, help="mmlu examples from dev (default: 5, as lm-eval)")
    p.add_argument("--seed", type=int, default=1234, help="choice shuffling in generate mode (default: %(default)s)")
    p.add_argument("--max-new-tokens", type=int, default=32, help="generate mode: reply length limit")
    p.add_argument("--system-prompt", choices=("none", "tutor"), default="none",
                   help="generate mode: no system prompt, or the teaching-assistant one the app uses")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE.json", "AFTER.json"),
                   help="print a before/after table of two results files and save a bar chart")
    p.add_argument("--plot", type=Path, default=Path("comparison.png"), help="chart for --compare (default: %(default)s)")
    # --model is this command's name for the base model (kept from before the backend registry).
    add_backend_arguments(p, aliases={"base_model": ["--model"]})
    return p


def config_from_args(args: argparse.Namespace) -> EvalConfig:
    from inference import DEFAULT_BASE_MODEL
    from inference.cli import backend_options
    from inference.prompts import SYSTEM_PROMPT

    kind, options = backend_options(build_parser(), args)
    return EvalConfig(model=options.get("base_model") or options.get("model_name") or DEFAULT_BASE_MODEL,
                      adapter=options.get("adapter"), tasks=parse_task_list(args.tasks),
                      data_dir=args.data_dir, limit=args.limit, mode=args.mode, output=args.output,
                      batch_size=args.batch_size, num_fewshot=args.num_fewshot, seed=args.seed,
                      device=options.get("device", "auto"), quantization=options.get("quantization", "auto"),
                      max_new_tokens=args.max_new_tokens, backend=kind, backend_options=options,
                      system_prompt=SYSTEM_PROMPT if args.system_prompt == "tutor" else None,
                      progress=not args.no_progress)


def run_compare(before_path: Path, after_path: Path, plot: Path) -> None:
    before, after = comparison.load_results(before_path), comparison.load_results(after_path)
    print(comparison.compare_table(before, after))
    for note in comparison.comparability_notes(before, after):
        print(f"note: {note}")
    print(f"saved {comparison.plot_comparison(before, after, plot)}")


def run_eval(config: EvalConfig, show_predictions: bool) -> None:
    out = run(config)
    for name, records in out.records.items():
        unscored = [r for r in records if "correct" not in r and "score" not in r]
        for record in (records if show_predictions else unscored):
            print(report.format_prediction(record) + "\n")
    print(report.markdown_table(out.results))
    for path in out.files.values():
        print(f"saved {path}")


def main(args: argparse.Namespace) -> int:
    """Run what the parsed flags ask for; a user-fixable problem is one line on stderr and exit code 2."""
    from inference.backend import BackendError

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.compare:
            run_compare(args.compare[0], args.compare[1], args.plot)
        else:
            run_eval(config_from_args(args), args.show_predictions)
    except (EvalError, BackendError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(build_parser().parse_args()))

"""DPO speed and memory on the Llama-3.2-3B architecture: ``python -m training dpo``'s own code, timed per step.

    python -m bench.dpo_smoke                           # 20 steps with the tutor DPO recipe, backend auto
    python -m bench.dpo_smoke --steps 10 --backend transformers
    python -m bench.dpo_smoke --tiny --steps 3          # CPU check of the whole script (tiny model)

A random-weight model with the exact Llama-3.2-3B config (the real Llama 3 tokenizer, from
``TUTOR_LLAMA3_TOKENIZER_DIR`` or ../shared/data) and synthetic tutor-like preference pairs (the app's system
prompt, a question, a long step-by-step chosen reply, a short rejected one) go through
``recipes/llama-3.2-3b-tutor-dpo.yaml`` from the base model (``--adapter none``). Step times are read by a
trainer callback after a CUDA sync; peak memory is the CUDA allocator's. Losses and rewards on random
weights say nothing about quality. Results go to bench/results/dpo_smoke-<date>.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RECIPE = ROOT / "recipes" / "llama-3.2-3b-tutor-dpo.yaml"
WORDS = ("the of and to in is that for it as with was on be by this are or from at which an not have "
         "model learning data value energy cell force number student question answer example step light "
         "water system function matrix layer rank loss gradient theory history language market").split()


def synthetic_pairs(n: int, seed: int = 0) -> list[dict]:
    """Prompt/chosen/rejected rows: the tutor's system prompt, a ~40-word question, a ~300-word chosen reply
    that ends with a question back, a ~60-word rejected one (common words are about one token each)."""
    from inference.prompts import SYSTEM_PROMPT

    rng = random.Random(seed)

    def text(words: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(words))

    return [{"prompt": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": text(40) + "?"}],
             "chosen": "Step 1: " + text(int(rng.uniform(200, 400))) + ". Can you try the next step?",
             "rejected": text(int(rng.uniform(30, 90))) + "."} for _ in range(n)]


def step_clock(trainer) -> list[tuple[int, float]]:
    """(global step, time) at the start and after every optimiser step, after a CUDA sync."""
    import torch
    from transformers import TrainerCallback

    marks: list[tuple[int, float]] = []

    def mark(state) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        marks.append((state.global_step, time.perf_counter()))

    class Clock(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            mark(state)

        def on_step_end(self, args, state, control, **kwargs):
            mark(state)

    trainer.add_callback(Clock())
    return marks


def run_one(model_dir: Path, data: Path, backend: str, steps: int, tiny: bool) -> dict:
    import torch

    from training.args import parse_dpo_args
    from training.dpo import _drop_reference_copy, _plots, build_run, final_rewards
    from training.run import finish

    out = Path(tempfile.mkdtemp(prefix=f"dpo-smoke-{backend}-"))
    argv = ["--config", str(RECIPE), "--model", str(model_dir), "--dataset", str(data), "--dataset_format", "pairs",
            "--adapter", "none",
            "--backend", backend, "--max_steps", str(steps), "--output_dir", str(out), "--report_to", "none",
            "--save_steps", "1000", "--logging_steps", "1"]
    if tiny:
        argv += ["--load_in_4bit", "false", "--optim", "adamw_torch", "--max_length", "2000", "--max_prompt_length",
                 "1500"]
    config = parse_dpo_args(argv)
    started = time.perf_counter()
    run = build_run(config)
    setup_s = time.perf_counter() - started
    marks = step_clock(run.trainer)
    result = run.trainer.train()
    metrics = finish(run, result.metrics, plots=_plots, after_save=_drop_reference_copy)
    times = [b[1] - a[1] for a, b in zip(marks, marks[1:])]
    later = sorted(times[1:]) or times
    history = [e for e in metrics["log_history"] if "loss" in e]
    return {
        "backend": run.runtime.backend, "runtime": metrics["runtime"], "steps": metrics["global_step"],
        "pairs_per_step": config.per_device_train_batch_size * config.gradient_accumulation_steps,
        "setup_seconds": round(setup_s, 1), "train_runtime_s": round(metrics["train_runtime_s"], 2),
        "first_step_s": round(times[0], 3) if times else None,
        "step_seconds_after_first": {"median": round(later[len(later) // 2], 3), "min": round(later[0], 3),
                                     "max": round(later[-1], 3)},
        "step_times": [round(t, 3) for t in times],
        "train_tokens_per_second": round(metrics["train_tokens_per_second"] or 0, 1),
        "peak_memory_gib": metrics["peak_memory_gib"], "peak_memory_kind": metrics["peak_memory_kind"],
        "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / 2**30, 2) if torch.cuda.is_available() else None,
        "length_stats": metrics["length_stats"], "skipped_rows": metrics["skipped_rows"],
        "losses": [round(e["loss"], 4) for e in history],
        "reward_accuracies": [round(e["rewards/accuracies"], 3) for e in history],
        "reward_margins": [round(e["rewards/margins"], 4) for e in history],
        "final_rewards": final_rewards(metrics["log_history"]),
        "outputs": sorted(p.name for p in out.iterdir()),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--backend", default="auto", help="auto, unsloth or transformers")
    parser.add_argument("--fallback", default="transformers",
                        help="backend to measure instead if the first one fails ('none' to stop)")
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--tiny", action="store_true", help="a tiny model on CPU: checks the script, not speed")
    parser.add_argument("--work-dir", default="/tmp/dpo-smoke")
    parser.add_argument("--out", help="write the JSON here instead of bench/results/dpo_smoke-<date>.json")
    args = parser.parse_args(argv)

    import torch

    if torch.cuda.is_available() and args.backend in ("auto", "unsloth"):
        import unsloth  # noqa: F401  -- before transformers, which building the model imports

    from bench.common import build_random_llama32_3b, current_command, machine, save_results

    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if args.tiny:
        from tests.tiny_models import build_tiny_llama

        model_dir = work / "tiny" if (work / "tiny" / "config.json").is_file() else build_tiny_llama(work / "tiny")
    else:
        model_dir = build_random_llama32_3b(work / "llama-3.2-3b-random")
    build_s = time.perf_counter() - started
    if torch.cuda.is_available():  # the model was built on the GPU: its memory must not count as training's peak
        import gc

        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    data = work / "pairs.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in synthetic_pairs(args.pairs)))
    model = "a tiny random Llama (CPU check)" if args.tiny else "a random-weight Llama-3.2-3B (exact config, real tokenizer)"
    results: dict = {"what": f"{args.steps} DPO steps of recipes/llama-3.2-3b-tutor-dpo.yaml (--adapter none: a new LoRA "
                             f"on the base) on {model} and synthetic tutor-like pairs; losses and rewards on random "
                             "weights say nothing about quality",
                     "model_build_seconds": round(build_s, 1), "runs": {}}
    for backend in [args.backend] + ([args.fallback] if args.fallback != "none" else []):
        try:
            results["runs"][backend] = run_one(model_dir, data, backend, args.steps, args.tiny)
            break
        except Exception as exc:  # noqa: BLE001 -- recorded, and the fallback measured instead
            results["runs"][backend] = {"error": f"{type(exc).__name__}: {exc}"[:2000],
                                        "traceback": traceback.format_exc()[-4000:]}
        finally:
            if args.out:  # after each run, so a run cut short still leaves what was measured
                Path(args.out).write_text(json.dumps({"command": current_command(), "machine": machine(),
                                                      **results}, indent=2) + "\n")
    if not args.out:
        save_results("dpo_smoke", results)


if __name__ == "__main__":
    main()

"""QLoRA training speed and memory: Unsloth against transformers + peft + bitsandbytes, Llama-3.2-3B.

    python -m bench.train_throughput                          # both backends, fixed-1024 and FineTome-like mix
    python -m bench.train_throughput --batch-size 2 --grad-accum 4 --mixes fixed
    python -m bench.train_throughput --multi-gpu 2            # + transformers data-parallel on 2 GPUs
    python -m bench.train_throughput --mixes mix --packing    # TRL best-fit packing (also --padding-free false)
    python -m bench.train_throughput --tiny                   # CPU check of the whole script (tiny model)

Random weights with the exact Llama-3.2-3B config cost the same per token as the real ones. The data is
synthetic ShareGPT: ``fixed`` makes every example longer than --seq-len so all are truncated to it;
``mix`` draws lengths from a log-normal (median 420 words, sigma 0.8, clipped to 40..4000) in one to three
turns, a stand-in for FineTome-100k's spread: with the Llama 3 tokenizer the median conversation is ~445
tokens, the mean ~590, and ~11% run past 1024 and are truncated (mean trained length ~520 at 1024).
Each backend runs in its own subprocess (Unsloth patches libraries process-wide; memory peaks stay
separate) through the same code as ``python -m training sft``. tokens/s = non-padding tokens / seconds,
counted over the steps after --warmup-steps; each run also records real_token_share (non-padding / all
token positions), whether the trainer ran padding-free, the spread of step times and dynamo's compile
counters. A failing backend is recorded with its error and the
others still run; the JSON goes to bench/results/train_throughput-<date>.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROFILED_STEPS = 3  # with --profile: optimiser steps profiled after the timed ones
sys.path.insert(0, str(ROOT))  # run as a script by the worker launcher, too
from training.distributed import pin_one_gpu_unless_distributed  # noqa: E402
WORDS = ("the of and to in is that for it as with was on be by this are or from at which an not have "
         "model learning data value energy cell force number student question answer example step light "
         "water system function matrix layer rank loss gradient theory history language market").split()


def synth_text(rng: random.Random, n_words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(max(1, n_words)))


def synth_conversations(kind: str, n: int, seq_len: int, seed: int = 0) -> list[dict]:
    """ShareGPT rows; common words are about one token each, so word counts track token counts."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        if kind == "fixed":  # a short question and an answer that runs past seq_len
            rows.append({"conversations": [{"from": "human", "value": synth_text(rng, min(48, seq_len // 16))},
                                           {"from": "gpt", "value": synth_text(rng, int(seq_len * 1.3))}]})
            continue
        total = int(min(4000, max(40, rng.lognormvariate(math.log(420), 0.8))))
        turns = rng.choice((1, 1, 1, 2, 3))
        conversation = []
        for _ in range(turns):
            share = total // turns
            question = max(8, int(share * rng.uniform(0.1, 0.3)))
            conversation += [{"from": "human", "value": synth_text(rng, question)},
                             {"from": "gpt", "value": synth_text(rng, share - question)}]
        rows.append({"conversations": conversation})
    return rows


def count_tokens(inputs: dict, pad_id: int | None) -> int:
    if "attention_mask" in inputs:
        return int(inputs["attention_mask"].sum())
    ids = inputs["input_ids"]
    return int((ids != pad_id).sum()) if pad_id is not None else ids.numel()


def instrument(trainer) -> dict:
    """Count the non-padding tokens of every micro-batch and time every optimiser step."""
    import torch
    from transformers import TrainerCallback

    record = {"tokens": 0, "slots": 0, "marks": []}  # slots: token positions the model ran, padding included
    pad_id = trainer.processing_class.pad_token_id
    original = trainer.training_step

    def training_step(model, inputs, *args, **kwargs):
        record["tokens"] += count_tokens(inputs, pad_id)
        record["slots"] += inputs["input_ids"].numel()
        return original(model, inputs, *args, **kwargs)

    def mark(state) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        record["marks"].append((state.global_step, time.perf_counter(), record["tokens"]))

    class Clock(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            mark(state)

        def on_step_end(self, args, state, control, **kwargs):
            mark(state)

    trainer.training_step = training_step
    trainer.add_callback(Clock())
    return record


def attach_profiler(trainer, first_step: int, steps: int = PROFILED_STEPS) -> dict:
    """Profile optimiser steps first_step+1 .. first_step+steps (after the timed ones) on the GPU."""
    import torch
    from transformers import TrainerCallback

    from bench.common import cuda_sync

    found: dict = {}
    gpu = torch.cuda.is_available()
    activities = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if gpu else [])
    profiler = torch.profiler.profile(activities=activities)

    class Profile(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == first_step:
                profiler.start()
            elif state.global_step == first_step + steps:
                cuda_sync()
                profiler.stop()
                found.update(summarize_profile(profiler, steps, gpu))

    trainer.add_callback(Profile())
    return found


def summarize_profile(profiler, steps: int, gpu: bool, top: int = 30) -> dict:
    """Time per step by kernel (GPU time; CPU time without a GPU), the biggest first, with its share.

    On a GPU only the kernels themselves count: an operator such as aten::mm also reports the device time
    of the kernels it launched, and adding both would count that time twice.
    """
    from torch.autograd import DeviceType

    def self_time(event) -> float:
        return event.self_device_time_total if gpu else event.self_cpu_time_total

    kernels = (e for e in profiler.key_averages() if (e.device_type != DeviceType.CPU) == gpu and self_time(e) > 0)
    events = sorted(kernels, key=self_time, reverse=True)
    total = sum(map(self_time, events))
    return {"clock": "gpu" if gpu else "cpu", "ms_per_step": round(total / 1000 / steps, 1),
            "kernels": [{"name": e.key[:120], "ms_per_step": round(self_time(e) / 1000 / steps, 2),
                         "share": round(self_time(e) / total, 3), "calls_per_step": e.count // steps}
                        for e in events[:top]]}


def measure(record: dict, warmup: int, steps: int) -> dict:
    import torch

    marks = record["marks"][:warmup + steps + 1]  # (step, time, tokens) at the start and after every step
    steps = len(marks) - 1 - warmup
    if steps < 1:
        raise RuntimeError(f"only {len(marks) - 1} steps ran; need more than --warmup-steps {warmup}")
    start = marks[warmup]  # the clock starts when the last warmup step ends
    tokens, seconds = marks[-1][2] - start[2], marks[-1][1] - start[1]
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        total = torch.tensor([tokens], device="cuda" if torch.cuda.is_available() else "cpu")
        torch.distributed.all_reduce(total)
        tokens = int(total.item())
    times = [b[1] - a[1] for a, b in zip(marks[warmup:], marks[warmup + 1:])]
    median = sorted(times)[len(times) // 2]
    out = {"measured_steps": steps, "tokens": tokens, "seconds": round(seconds, 3),
           "step_seconds": {"min": round(min(times), 3), "median": round(median, 3), "max": round(max(times), 3),
                            "over_2x_median": sum(t > 2 * median for t in times)},
           "step_times": [round(t, 3) for t in times],
           "tokens_per_second": round(tokens / seconds, 1), "steps_per_second": round(steps / seconds, 3)}
    if torch.cuda.is_available():
        out["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        out["peak_reserved_gib"] = round(torch.cuda.max_memory_reserved() / 2**30, 2)
    return out


def worker(args: argparse.Namespace) -> None:
    """One backend, one data mix, in this process; writes its result to --result-file."""
    from training.config import TrainConfig
    from training.sft import build_run

    config = TrainConfig(
        model=args.model_dir, dataset=args.data_file, dataset_format="sharegpt", backend=args.worker,
        max_seq_length=args.seq_len, per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=args.grad_accum,
        optim=args.optim, output_dir=tempfile.mkdtemp(prefix="bench-train-"), report_to="none",
        logging_steps=max(1, args.steps), save_steps=10**6, load_in_4bit=not args.tiny, warmup_steps=5,
        max_steps=args.warmup_steps + args.steps + (PROFILED_STEPS if args.profile else 0),
        gradient_checkpointing=None if args.gradient_checkpointing == "auto" else args.gradient_checkpointing == "true",
        padding_free=None if args.padding_free == "auto" else args.padding_free == "true", packing=args.packing,
        offload_checkpoints=args.offload_checkpoints == "true",
        cudnn_attention=args.cudnn_attention)
    run = build_run(config)
    record = instrument(run.trainer)
    profile = attach_profiler(run.trainer, args.warmup_steps + args.steps) if args.profile else None
    run.trainer.train()
    try:
        from torch._dynamo.utils import counters

        compiles = {k: sum(counters[k].values()) for k in ("recompiles", "graph_break") if k in counters}
        compiles["unique_graphs"] = counters["stats"].get("unique_graphs", 0)
    except Exception:  # noqa: BLE001 -- diagnostics only
        compiles = {}
    collator = run.trainer.data_collator
    result = {"backend": run.runtime.backend, **measure(record, args.warmup_steps, args.steps),
              "padding_free": bool(getattr(run.trainer, "padding_free", False)), "collator": type(collator).__name__,
              "real_token_share": round(record["tokens"] / max(1, record["slots"]), 3),
              "runtime": dataclasses.asdict(run.runtime), "examples": run.summary["train_conversations"],
              "length_stats": dict(run.length_stats), "dynamo": compiles, **({"profile": profile} if profile is not None else {})}
    if int(os.environ.get("RANK", "0")) == 0:
        Path(args.result_file).write_text(json.dumps(result))


def run_worker(backend: str, data_file: Path, args: argparse.Namespace, gpus: int = 1) -> dict:
    """Run one measurement in a fresh process; an error becomes part of the results, not a crash."""
    result_file = Path(tempfile.mkstemp(suffix=".json")[1])
    flags = ["--worker", backend, "--model-dir", str(args.model_dir), "--data-file", str(data_file),
             "--result-file", str(result_file), "--seq-len", str(args.seq_len), "--batch-size", str(args.batch_size),
             "--grad-accum", str(args.grad_accum), "--steps", str(args.steps), "--warmup-steps", str(args.warmup_steps),
             "--gradient-checkpointing", args.gradient_checkpointing, "--padding-free", args.padding_free,
             "--offload-checkpoints", args.offload_checkpoints, "--optim", args.optim]
    flags += ["--tiny"] if args.tiny else []
    flags += ["--packing"] if args.packing else []
    flags += ["--cudnn-attention"] if args.cudnn_attention else []
    flags += ["--profile"] if args.profile else []
    # torchrun sets the same WORLD_SIZE / LOCAL_RANK / RANK as `accelerate launch --multi_gpu` does
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(gpus)]
                if gpus > 1 else [sys.executable])
    command = launcher + [str(Path(__file__).resolve()), *flags]
    print(f"== {backend} x{gpus} on {data_file.stem}: {' '.join(command[-len(flags):])}", flush=True)
    started = time.perf_counter()
    try:
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))  # keep bundled packages
        env = {**os.environ, "PYTHONPATH": path}
        if gpus == 1:
            pin_one_gpu_unless_distributed(env)  # as `python -m training sft` does
        done = subprocess.run(command, cwd=ROOT, env=env, text=True,
                              stdout=sys.stdout, stderr=subprocess.PIPE, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"backend": backend, "world_size": gpus, "error": f"timed out after {args.timeout} s"}
    sys.stderr.write(done.stderr[-4000:])
    wall = round(time.perf_counter() - started, 1)
    if done.returncode == 0 and result_file.stat().st_size:
        return {**json.loads(result_file.read_text()), "wall_s": wall}
    tail = [line for line in done.stderr.strip().splitlines() if line.strip()][-3:]
    return {"backend": backend, "world_size": gpus, "error": " | ".join(tail) or f"exit {done.returncode}",
            "wall_s": wall}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backends", default="unsloth,transformers", help="comma list, run in this order")
    p.add_argument("--mixes", default="fixed,mix", help="fixed (every example --seq-len tokens) and/or mix")
    p.add_argument("--seq-len", type=int, default=1024, help="max_seq_length")
    p.add_argument("--batch-size", type=int, default=8, help="per_device_train_batch_size")
    p.add_argument("--grad-accum", type=int, default=1, help="gradient_accumulation_steps")
    p.add_argument("--steps", type=int, default=30, help="optimiser steps measured after warmup")
    p.add_argument("--warmup-steps", type=int, default=5, help="steps run before the clock starts")
    p.add_argument("--gradient-checkpointing", choices=("auto", "true", "false"), default="auto",
                   help="auto: on for CUDA (as in the recipe; Unsloth's variant on that backend), off on CPU")
    p.add_argument("--optim", default="adamw_8bit", help="optimiser (the recipe's adamw_8bit, adamw_torch_fused, ...)")
    p.add_argument("--offload-checkpoints", choices=("true", "false"), default="true",
                   help="Unsloth with gradient checkpointing: true = activations kept in CPU memory (its 'unsloth' "
                        "mode, the default); false = on the GPU (standard checkpointing)")
    p.add_argument("--padding-free", choices=("auto", "true", "false"), default="auto",
                   help="auto: the backend's default (Unsloth picks padding-free on H100/H200; transformers pads); "
                        "false: padded batches; true: one flattened row per batch")
    p.add_argument("--packing", action="store_true",
                   help="pack conversations into --seq-len rows (TRL best-fit packing; padding-free)")
    p.add_argument("--cudnn-attention", action="store_true",
                   help="let attention use PyTorch's cuDNN kernel (off by default in training: it plans per length)")
    p.add_argument("--profile", action="store_true",
                   help=f"after the timed steps, profile {PROFILED_STEPS} more and record GPU time per kernel")
    p.add_argument("--multi-gpu", type=int, default=0, metavar="N",
                   help="also run the transformers path data-parallel on N GPUs (torchrun, one process per GPU)")
    p.add_argument("--work-dir", default=os.path.join(tempfile.gettempdir(), "bench-train"),
                   help="where the random model and synthetic data are written (reused when present)")
    p.add_argument("--timeout", type=int, default=1800, help="seconds allowed per measurement")
    p.add_argument("--tiny", action="store_true", help="tiny model on CPU, transformers only: checks the script")
    p.add_argument("--name", default=None, help="results file name (default train_throughput[-tiny])")
    # worker mode (internal): one measurement in this process
    p.add_argument("--worker", help=argparse.SUPPRESS)
    for flag in ("--model-dir", "--data-file", "--result-file"):
        p.add_argument(flag, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.tiny and "--steps" not in (argv or sys.argv):
        args.steps, args.warmup_steps = 3, 1
    return args


def build_model(args: argparse.Namespace, work: Path) -> Path:
    if args.tiny:
        from tests.tiny_models import build_tiny_llama

        target = work / "tiny-llama"
        return target if (target / "config.json").is_file() else build_tiny_llama(target)
    from bench.common import build_random_llama32_3b, tokenizer_dir

    if not (tokenizer_dir() / "tokenizer.model").is_file():
        sys.exit(f"error: the Llama 3 tokenizer.model is not in {tokenizer_dir()}: set TUTOR_LLAMA3_TOKENIZER_DIR")
    print("building the random-weight Llama-3.2-3B (first run only) ...", flush=True)
    return build_random_llama32_3b(work / "llama-3.2-3b-random")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    args.model_dir = build_model(args, work)
    backends = ["transformers"] if args.tiny else [b.strip() for b in args.backends.split(",") if b.strip()]
    n_examples = (args.steps + args.warmup_steps + PROFILED_STEPS + 2) * args.batch_size * args.grad_accum * max(1, args.multi_gpu)
    runs = []
    for mix in [m.strip() for m in args.mixes.split(",") if m.strip()]:
        data_file = work / f"{mix}-{args.seq_len}-{n_examples}.json"
        data_file.write_text(json.dumps(synth_conversations(mix, n_examples, args.seq_len)))
        for backend in backends:
            runs.append({"mix": mix, **run_worker(backend, data_file, args)})
        if args.multi_gpu > 1:
            runs.append({"mix": mix, **run_worker("transformers", data_file, args, gpus=args.multi_gpu)})
    settings = {k: getattr(args, k) for k in ("seq_len", "batch_size", "grad_accum", "steps", "warmup_steps",
                                              "optim", "gradient_checkpointing", "offload_checkpoints", "padding_free", "packing",
                                              "cudnn_attention", "profile", "multi_gpu", "tiny")}
    settings["model"] = ("tiny random Llama" if args.tiny
                         else "random-weight Llama-3.2-3B (exact config), QLoRA r=16 on all 7 projections")
    from bench.common import save_results

    save_results(args.name or ("train_throughput-tiny" if args.tiny else "train_throughput"),
                 {"settings": settings, "runs": runs})


if __name__ == "__main__":
    main()

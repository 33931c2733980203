"""Speed of ``python -m evaluation``'s loglik scoring: ARC-Challenge (500 questions, 2,000 continuations)
on the Llama-3.2-3B architecture with random weights, which cost the same per token as the real ones.

    TUTOR_LLAMA3_TOKENIZER_DIR=/path/to/tokenizer/llama3 python -m bench.eval_speed --data-dir /path/to/arc
    python -m bench.eval_speed --data-dir ../shared/data --tiny --limit 40    # CPU check with the tiny model

``--data-dir`` is a folder laid out like shared/data or the ``arc`` folder itself. Reported: model load,
tokenization, the whole scoring call (tokenize + batched forwards, what the CLI runs), forward passes,
real and padded tokens, peak GPU memory, and the (chance-level) accuracy as a sanity check; one entry per
``--batch-size``. Results go to bench/results/eval_speed-<date>.json (``eval_speed_tiny`` with --tiny).
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
import time
from pathlib import Path

from bench.common import build_random_llama32_3b, cuda_sync, save_results, tokenizer_dir
from evaluation import loglik, scoring
from evaluation.task import EvalError
from evaluation.tasks import load_task


def build_model(work_dir: Path, tiny: bool) -> Path:
    if tiny:
        from tests.tiny_models import build_tiny_llama

        out = work_dir / "tiny-llama"
        return out if (out / "config.json").is_file() else build_tiny_llama(out)

    if not (tokenizer_dir() / "tokenizer.model").is_file():
        raise EvalError(f"no Llama 3 tokenizer.model in {str(tokenizer_dir())!r}: set TUTOR_LLAMA3_TOKENIZER_DIR "
                        "to a folder holding tokenizer.model and chat_template.Llama-3.2-3B-Instruct.jinja")
    return build_random_llama32_3b(work_dir / "llama32-3b-random")


def batch_shape(encoded: list, batch_size: int) -> dict:
    """Forward passes and tokens the scorer will run, from the same plan it uses."""
    plan = loglik.plan_batches(encoded, batch_size)
    rows = [[len(ctx) + len(cont) - 1 for ctx, cont, _ in batch] for batch in plan]
    return {"forward_passes": len(plan), "tokens": sum(map(sum, rows)),
            "padded_tokens": sum(len(r) * max(r) for r in rows)}


def measure(loaded, task, batch_size: int) -> dict:
    import torch

    requests = [(q.context, cont) for q in task.questions for cont in q.continuations]
    start = time.perf_counter()
    encoded = [loglik.encode_pair(loaded.tokenizer, ctx, cont) for ctx, cont in requests]
    tokenize_s = time.perf_counter() - start
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    loglik.loglikelihoods(loaded.model, loaded.tokenizer, requests[:batch_size], batch_size, progress=False)
    cuda_sync()  # warm-up: the first forward pays for kernel selection and the allocator
    start = time.perf_counter()
    scores = loglik.loglikelihoods(loaded.model, loaded.tokenizer, requests, batch_size, progress=False)
    cuda_sync()
    score_s = time.perf_counter() - start
    summary = scoring.summarize(task, scoring.loglik_records(task, scores), "loglik")
    shape = batch_shape(encoded, batch_size)
    return {"batch_size": batch_size, "questions": len(task.questions), "requests": len(requests),
            "tokenize_s": round(tokenize_s, 3), "score_s": round(score_s, 3), **shape,
            "tokens_per_s": round(shape["tokens"] / score_s), "questions_per_s": round(len(task.questions) / score_s, 1),
            "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None,
            "acc": summary["acc"], "acc_norm": summary["acc_norm"]}


def run(args: argparse.Namespace) -> dict:
    from inference.loading import load_model

    task = load_task("arc_challenge", args.data_dir, args.limit)
    model_dir = build_model(args.work_dir, args.tiny)
    start = time.perf_counter()
    loaded = load_model(str(model_dir), None, quantization="none", device=args.device)
    cuda_sync()
    load_s = time.perf_counter() - start
    entries = []
    for batch_size in args.batch_size:
        entries.append(measure(loaded, task, batch_size))
        print(f"batch {batch_size}: {entries[-1]['score_s']} s for {entries[-1]['questions']} questions", flush=True)
        gc.collect()
    return {"model": "tiny random Llama" if args.tiny else "random-weight Llama-3.2-3B (bf16 on GPU)",
            "task": "arc_challenge", "data_files": task.files, "device": loaded.device, "dtype": loaded.dtype,
            "load_s": round(load_s, 2), "target_s": 30, "runs": entries}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.eval_speed", description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", type=Path, required=True, help="shared/data-style folder or the arc folder")
    p.add_argument("--limit", type=int, default=500, help="first N ARC-Challenge questions (default: %(default)s)")
    p.add_argument("--batch-size", type=lambda s: [int(x) for x in s.split(",")], default=[32],
                   help="one or more, comma-separated (default: 32)")
    p.add_argument("--work-dir", type=Path, default=Path("/tmp/eval-speed"), help="where the random model is saved")
    p.add_argument("--device", default="auto")
    p.add_argument("--tiny", action="store_true", help="tiny random Llama instead of the 3B (CPU check)")
    return p


def main(args: argparse.Namespace) -> int:
    from inference.backend import BackendError

    logging.basicConfig(level=logging.WARNING)
    try:
        results = run(args)
    except (EvalError, BackendError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    save_results("eval_speed_tiny" if args.tiny else "eval_speed", results)
    return 0


if __name__ == "__main__":
    sys.exit(main(build_parser().parse_args()))

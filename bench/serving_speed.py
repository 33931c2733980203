"""GPU serving speed of the fast decode engine: chat, quiz, concurrent users, start-up, and where a step's time goes.

    python -m bench.serving_speed                                 # every part, on a CUDA GPU
    python -m bench.serving_speed --parts chat,quiz,concurrent    # some parts
    python -m bench.serving_speed --tiny --parts chat,quiz        # CPU check of the script, measures nothing

Random weights with the exact Llama-3.2-3B config and a random r=16 LoRA (merged at load, as ``auto``
does) cost the same per token as the real ones. Parts:

- ``check``: the engine's logits against transformers' forward (bf16), each Triton kernel against its
  PyTorch reference, and how many greedy tokens agree with ``generate()``;
- ``kernels``: each decode matrix product (cuBLAS, alone and with its fused-norm prologue) and the
  decode attention against PyTorch's SDPA, in microseconds and achieved GB/s;
- ``chat``: batch 1, 512-token prompt, 256 new tokens: decode tokens/s and time to first token, through
  the engine and through ``stream_chat`` (text); decode tokens/s at longer contexts;
- ``concurrent``: 8 chats streamed at once from 8 threads: each chat's tokens/s and the aggregate,
  against one chat alone and the plain ``generate()`` path;
- ``quiz``: ``generate_quiz(backend, topic, n=10)`` end to end through the real batched path, each
  chunk of 3 questions generating 3 x 150 tokens (what a real reply takes); random weights write no
  valid questions, so the replies are replaced by a fixed valid text *after* generating them;
- ``profile``: GPU time per kernel of one decode step (batch 1 and 8) and the step's time as a graph;
- ``start``: a fresh process that loads the model and answers a first chat, with an empty and with a
  filled Triton kernel cache (``TRITON_CACHE_DIR``).

Results go to bench/results/serving_speed-<date>.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.common import build_random_llama32_3b, cuda_sync, save_random_lora, save_results

PARTS = ("check", "kernels", "chat", "concurrent", "quiz", "profile", "start")
QUIZ_TOKENS_PER_QUESTION = 150


def prompt_of(tokenizer, n_tokens: int, salt: str = "") -> list[dict]:
    """A user message whose templated prompt is about ``n_tokens`` long."""
    from bench.inference_speed import prompt_of as base

    messages = base(tokenizer, n_tokens)
    return [{"role": "user", "content": salt + messages[0]["content"]}] if salt else messages


def load(base: Path, adapter: Path, args, **options):
    from inference import load_backend

    return load_backend(base_model=str(base), adapter=str(adapter), max_context_tokens=args.max_context,
                        warmup=False, **options)


# -- chat ---------------------------------------------------------------------------------------------
def engine_rate(backend, messages: list[dict], new_tokens: int) -> dict:
    """Decode tokens/s and time to first token of one greedy request, from the token arrival times."""
    from inference import GenerationConfig

    request = backend._submit(messages, GenerationConfig(max_new_tokens=new_tokens, temperature=0))
    arrivals = [time.perf_counter() for _ in request]
    n = len(arrivals)
    return {"new_tokens": n, "ttft_s": round(arrivals[0] - request.submitted_at, 4),
            "decode_tokens_per_s": round((n - 1) / (arrivals[-1] - arrivals[0]), 1) if n > 1 else None}


def stream_rate(backend, messages: list[dict], new_tokens: int) -> dict:
    """The same through ``stream_chat``: text deltas, as the app receives them."""
    from inference import GenerationConfig

    start = time.perf_counter()
    arrivals = []
    for _ in backend.stream_chat(messages, GenerationConfig(max_new_tokens=new_tokens, temperature=0)):
        arrivals.append(time.perf_counter())
    # random weights never stop early: new_tokens tokens were generated between start and the last delta
    return {"first_text_s": round(arrivals[0] - start, 4), "deltas": len(arrivals),
            "tokens_per_s_overall": round(new_tokens / (arrivals[-1] - start), 1)}


def part_chat(backend, args) -> dict:
    messages = prompt_of(backend.tokenizer, args.prompt_tokens)
    rounds = [engine_rate(backend, messages, args.new_tokens) for _ in range(args.repeats)]
    streamed = [stream_rate(backend, messages, args.new_tokens) for _ in range(args.repeats)]
    out = {"engine_rounds": rounds, "stream_rounds": streamed,
           "decode_tokens_per_s_median": statistics.median(r["decode_tokens_per_s"] for r in rounds),
           "ttft_s_median": statistics.median(r["ttft_s"] for r in rounds)}
    contexts = {}
    for n in args.long_prompts:
        if n + args.new_tokens < args.max_context:
            contexts[str(n)] = engine_rate(backend, prompt_of(backend.tokenizer, n), args.new_tokens)
    out["by_prompt_tokens"] = contexts
    print("chat", json.dumps(out), flush=True)
    return out


# -- concurrent chats -----------------------------------------------------------------------------------
def part_concurrent(backend, plain, args) -> dict:
    from inference import GenerationConfig

    config = GenerationConfig(max_new_tokens=args.new_tokens, temperature=0)
    prompts = [prompt_of(backend.tokenizer, 128 + 48 * i, salt=f"User {i}: ") for i in range(args.users)]
    barrier = threading.Barrier(args.users)
    results: dict[int, dict] = {}

    def chat(i: int) -> None:
        barrier.wait()
        start = time.perf_counter()
        request = backend._submit(prompts[i], config)
        arrivals = [time.perf_counter() for _ in request]
        results[i] = {"tokens": len(arrivals), "ttft_s": round(arrivals[0] - start, 4),
                      "tokens_per_s": round((len(arrivals) - 1) / (arrivals[-1] - arrivals[0]), 1),
                      "end": arrivals[-1], "start": start}

    threads = [threading.Thread(target=chat, args=(i,)) for i in range(args.users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = max(r["end"] for r in results.values()) - min(r["start"] for r in results.values())
    total = sum(r["tokens"] for r in results.values())
    alone = engine_rate(backend, prompts[0], args.new_tokens)["decode_tokens_per_s"]
    out = {"users": args.users, "wall_s": round(wall, 2), "aggregate_tokens_per_s": round(total / wall, 1),
           "one_chat_alone_tokens_per_s": alone,
           "per_chat": [{k: v for k, v in results[i].items() if k not in ("start", "end")} for i in sorted(results)]}
    out["aggregate_over_one_chat"] = round(out["aggregate_tokens_per_s"] / alone, 2)
    out["slowest_chat_tokens_per_s"] = min(r["tokens_per_s"] for r in results.values())
    if plain is not None:
        from bench.inference_speed import timed_generate

        timed_generate(plain, prompts[0], 8)
        t1, _ = timed_generate(plain, prompts[0], 1)
        tn, n = timed_generate(plain, prompts[0], 64)
        out["plain_generate_tokens_per_s"] = round((n - 1) / (tn - t1), 1)
    print("concurrent", json.dumps(out), flush=True)
    return out


# -- quiz -----------------------------------------------------------------------------------------------
def fixed_quiz_text(tag: str, count: int = 3) -> str:
    """``count`` valid questions in the prompt's layout, unique per ``tag``."""
    blocks = []
    for i in range(count):
        blocks.append(f"{i + 1}. In experiment {tag}-{i}, which quantity was measured first?\n"
                      f"A) Mass {tag}{i}\nB) Volume {tag}{i}\nC) Temperature {tag}{i}\nD) Pressure {tag}{i}\n"
                      f"Answer: {'ABCD'[i % 4]}\nExplanation: The notes of experiment {tag}-{i} list it first.")
    return "\n\n".join(blocks)


class GeneratingQuizBackend:
    """The real backend generates every reply (3 x 150 tokens per chunk), then a fixed valid text stands in."""

    def __init__(self, backend, tokens_per_question: int) -> None:
        self.backend, self.tokens = backend, tokens_per_question
        self.name, self.capabilities = backend.name, backend.capabilities
        self.generated: list[int] = []
        self.calls = 0

    def chat_batch(self, conversations, config=None):
        from dataclasses import replace

        from quiz.generate import CHUNK_SIZE

        capped = replace(config, max_new_tokens=min(config.max_new_tokens, CHUNK_SIZE * self.tokens))
        replies = self.backend.chat_batch(conversations, capped)
        self.generated += [len(self.backend.tokenizer(r, add_special_tokens=False).input_ids) for r in replies]
        self.calls += 1
        return [fixed_quiz_text(f"{self.calls}.{i}") for i in range(len(replies))]

    def stream_chat(self, messages, config=None):
        raise NotImplementedError("the quiz uses chat_batch on backends without JSON-schema output")


def part_quiz(backend, args) -> dict:
    from quiz.generate import generate_quiz
    from quiz.parse import parse_quiz

    rounds = []
    for tokens in (QUIZ_TOKENS_PER_QUESTION, 181):  # 181: the whole 544-token budget per chunk of 3
        wrapper = GeneratingQuizBackend(backend, tokens)
        start = time.perf_counter()
        quiz = generate_quiz(wrapper, "photosynthesis", n=10, difficulty="medium", seed=1)
        elapsed = time.perf_counter() - start
        rounds.append({"tokens_per_question": tokens, "seconds": round(elapsed, 3), "questions": len(quiz.questions),
                       "requests": wrapper.calls, "replies_tokens": wrapper.generated})
    text = "\n\n".join(fixed_quiz_text(f"v{i}") for i in range(4))
    start = time.perf_counter()
    for _ in range(100):
        parse_quiz(text)
    out = {"rounds": rounds, "parse_12_questions_ms": round((time.perf_counter() - start) * 10, 3)}
    print("quiz", json.dumps(out), flush=True)
    return out


# -- check, kernels, profile (bench/fast_checks.py) -------------------------------------------------------
def part_check(backend, args) -> dict:
    from bench.fast_checks import check_engine

    out = backend._worker.run(lambda: check_engine(backend, args))
    print("check", json.dumps(out), flush=True)
    return out


def part_kernels(backend, args) -> dict:
    from bench.fast_checks import bench_kernels

    out = backend._worker.run(lambda: bench_kernels(backend.engine.fast))
    print("kernels", json.dumps(out), flush=True)
    return out


def part_profile(backend, args) -> dict:
    from bench.fast_checks import profile_steps

    out = backend._worker.run(lambda: profile_steps(backend, args.prompt_tokens))
    print("profile", json.dumps(out)[:4000], flush=True)
    return out


# -- start-up -------------------------------------------------------------------------------------------
def start_child(base: Path, adapter: Path, max_context: int) -> dict:
    """In a fresh process: seconds to load the weights, to be ready, and to the first streamed text."""
    from inference import GenerationConfig
    from inference.loading import load_model
    from inference.transformers_backend import TransformersBackend

    t0 = time.perf_counter()
    loaded = load_model(str(base), str(adapter), "auto", "auto")
    cuda_sync()
    t1 = time.perf_counter()
    backend = TransformersBackend(loaded, max_context_tokens=max_context)  # engine + warm-up, as load_backend
    t2 = time.perf_counter()
    first = next(iter(backend.stream_chat([{"role": "user", "content": "What is LoRA?"}],
                                          GenerationConfig(max_new_tokens=16, temperature=0))))
    t3 = time.perf_counter()
    assert isinstance(first, str)
    return {"load_weights_s": round(t1 - t0, 2), "engine_and_warmup_s": round(t2 - t1, 2),
            "first_text_after_ready_s": round(t3 - t2, 3), "first_text_after_weights_s": round(t3 - t1, 2),
            "warm_up": getattr(backend.engine, "warm_up_timings", None)}


def part_start(base: Path, adapter: Path, args) -> dict:
    cache = Path(args.work_dir) / "triton-cache"
    out = {}
    for label in ("empty_kernel_cache", "filled_kernel_cache"):
        if label == "empty_kernel_cache" and cache.exists():
            subprocess.run(["rm", "-rf", str(cache)], check=True)
        env = {**os.environ, "TRITON_CACHE_DIR": str(cache)}
        proc = subprocess.run([sys.executable, "-m", "bench.serving_speed", "--start-child", "--work-dir", args.work_dir,
                               "--max-context", str(args.max_context)] + (["--tiny"] if args.tiny else []),
                              env=env, capture_output=True, text=True, timeout=600)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("START ")]
        out[label] = json.loads(lines[-1][6:]) if lines else {"error": proc.stderr[-2000:]}
    print("start", json.dumps(out), flush=True)
    return out


def models(args) -> tuple[Path, Path]:
    work = Path(args.work_dir)
    if args.tiny:
        from tests.tiny_models import build_tiny_llama, save_random_adapter

        base = work / "tiny"
        if not (base / "config.json").is_file():
            build_tiny_llama(base)
        adapter = work / "tiny-lora"
        if not (adapter / "adapter_config.json").is_file():
            save_random_adapter(base, adapter)
        return base, adapter
    base = build_random_llama32_3b(work / "llama-3.2-3b-random")
    return base, save_random_lora(base, work / "lora-r16-random")


def main(args: argparse.Namespace) -> dict:
    base, adapter = models(args)
    if args.start_child:
        print("START " + json.dumps(start_child(base, adapter, args.max_context)), flush=True)
        return {}
    parts = args.parts.split(",")
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise SystemExit(f"--parts: unknown {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    fast_opts = {"fast_decode": True} if args.tiny else {}
    results: dict = {}
    start = time.perf_counter()
    backend = load(base, adapter, args, decode_slots=args.slots, **fast_opts)
    results["load_s"] = round(time.perf_counter() - start, 2)
    start = time.perf_counter()
    try:
        backend.warm_up()
    except Exception:
        if not args.tiny:  # say which kernels fail here before giving up
            from bench.fast_checks import smoke_kernels

            print("kernel smoke test:", json.dumps(smoke_kernels(), indent=1), flush=True)
        raise
    results["warm_up_s"] = round(time.perf_counter() - start, 2)
    results["description"] = backend.description
    plain = load(base, adapter, args, fast_decode=False) if "concurrent" in parts else None
    for part in parts:
        print(f"== {part}", flush=True)
        try:
            if part == "start":
                results[part] = part_start(base, adapter, args)
            elif part == "concurrent":
                results[part] = part_concurrent(backend, plain, args)
            else:
                results[part] = globals()[f"part_{part}"](backend, args)
        except Exception as exc:  # record the failure, keep measuring the other parts
            logging.exception("part %s failed", part)
            results[part] = {"error": f"{type(exc).__name__}: {exc}"[:1000]}
    settings = {k: getattr(args, k) for k in ("prompt_tokens", "new_tokens", "max_context", "slots", "users",
                                              "repeats", "long_prompts")}
    save_results("serving_speed-tiny" if args.tiny else "serving_speed", {"settings": settings, **results})
    return results


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, from: {', '.join(PARTS)}")
    p.add_argument("--work-dir", default="/tmp/tutor-bench")
    p.add_argument("--prompt-tokens", type=int, default=512)
    p.add_argument("--new-tokens", type=int, default=256)
    p.add_argument("--long-prompts", type=lambda s: [int(x) for x in s.split(",") if x], default=[1536, 3584])
    p.add_argument("--max-context", type=int, default=4096)
    p.add_argument("--slots", type=int, default=8)
    p.add_argument("--users", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--tiny", action="store_true", help="tiny model on CPU: checks the script, measures nothing")
    p.add_argument("--start-child", action="store_true", help=argparse.SUPPRESS)
    return p


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    main(build_parser().parse_args())

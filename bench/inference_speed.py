"""Inference speed of every mode the transformers backend offers, on the Llama-3.2-3B architecture.

    python -m bench.inference_speed                      # all modes, on a CUDA GPU
    python -m bench.inference_speed --modes bf16+lora-merged+fast-decode,bf16+lora-merged --repeats 1
    python -m bench.inference_speed --modes bf16,nf4 --work-dir /tmp/bench

Random weights with the exact Llama-3.2-3B config and a random r=16 LoRA on all 7 projections cost the
same per token as the real ones. For each mode: load time, time to first token (512-token prompt,
streamed), decode tokens/s (batch 1, 512-token prompt, 256 new tokens: (256 - 1) / (t(256) - t(1))),
and the wall time of 10 x 200 new tokens through ``chat_batch``. ``fast-decode`` is the default on CUDA
(``inference/fast_decode.py``); the other bf16 modes run transformers' ``generate()``. Results go to
bench/results/inference_speed-<date>.json; bench/serving_speed.py measures the fast path in depth.
"""

from __future__ import annotations

import argparse
import gc
import logging
import time
from pathlib import Path

from bench.common import build_random_llama32_3b, cuda_sync, save_random_lora, save_results

# name -> load_backend options
MODES = {
    "bf16+lora-merged+fast-decode": dict(quantization="none", adapter=True, merge_adapter=True, fast_decode=True),
    "bf16": dict(quantization="none", adapter=False, fast_decode=False),
    "bf16+lora-merged": dict(quantization="none", adapter=True, merge_adapter=True, fast_decode=False),
    "bf16+lora-unmerged": dict(quantization="none", adapter=True, merge_adapter=False),
    "nf4": dict(quantization="4bit", adapter=False),
    "nf4+lora": dict(quantization="4bit", adapter=True),
    "bf16+lora-merged+static-cache": dict(quantization="none", adapter=True, merge_adapter=True,
                                          static_cache=True),
}


BATCH_QUESTIONS = [[{"role": "user", "content": q}] for q in (
    "What is photosynthesis?", "Explain Newton's second law.", "What is a prime number?",
    "How does LoRA work?", "What is the derivative of x squared?", "Why is the sky blue?",
    "What does DNA store?", "What is an integral?", "How do vaccines work?", "What is a Python tuple?")]


def prompt_of(tokenizer, n_tokens: int) -> list[dict]:
    """A user message whose templated prompt is about ``n_tokens`` long."""
    words = ("Explain how low-rank adapters change the attention projections of a transformer, "
             "step by step, with an example. ").split()
    text: list[str] = []
    while True:
        msgs = [{"role": "user", "content": " ".join(text)}]
        n = len(tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True,
                                              return_dict=True)["input_ids"])
        if n >= n_tokens:
            return msgs
        text += words[: max(1, min(len(words), (n_tokens - n)))]


def timed_generate(backend, messages: list[dict], new_tokens: int) -> tuple[float, int]:
    """Seconds and exact new-token count of one greedy generation (no early stop on random weights)."""
    from inference import GenerationConfig

    config = GenerationConfig(max_new_tokens=new_tokens, temperature=0)
    if getattr(backend, "engine", None) is not None:  # the fast decode engine: one request, waited for
        cuda_sync()
        start = time.perf_counter()
        request = backend._submit(messages, config)
        n = len(request.result())
        return time.perf_counter() - start, n
    inputs = backend._encode([messages], config)
    cuda_sync()
    start = time.perf_counter()
    out = backend._worker.run(lambda: backend._generate(inputs, config))
    cuda_sync()
    return time.perf_counter() - start, out.shape[1] - inputs["input_ids"].shape[1]


def time_to_first_token(backend, messages: list[dict]) -> float:
    from inference import GenerationConfig

    start = time.perf_counter()
    stream = backend.stream_chat(messages, GenerationConfig(max_new_tokens=32, temperature=0))
    next(stream)
    elapsed = time.perf_counter() - start
    stream.close()
    return elapsed


def measure_mode(name: str, options: dict, base: Path, adapter: Path, args) -> dict:
    import torch

    from inference import GenerationConfig, load_backend

    opts = dict(options)
    use_adapter = opts.pop("adapter")
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    backend = load_backend(base_model=str(base), adapter=str(adapter) if use_adapter else None,
                           max_context_tokens=args.max_context, warmup=False, **opts)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    backend.warm_up()  # what load_backend does by default: round1 below is what the first user gets
    warmup_s = time.perf_counter() - start
    messages = prompt_of(backend.tokenizer, args.prompt_tokens)
    result: dict = {"load_s": round(load_s, 2), "warmup_s": round(warmup_s, 2),
                    "description": backend.description}
    for repeat in range(args.repeats):  # the first round can include compilation; report each round
        t1, _ = timed_generate(backend, messages, 1)
        tn, n = timed_generate(backend, messages, args.new_tokens)
        ttft = time_to_first_token(backend, messages)
        start = time.perf_counter()
        replies = backend.chat_batch(BATCH_QUESTIONS, GenerationConfig(max_new_tokens=args.batch_new_tokens,
                                                                        temperature=0))
        batch_s = time.perf_counter() - start
        result[f"round{repeat + 1}"] = {
            "prefill_s": round(t1, 3), "new_tokens": n, "decode_tokens_per_s": round((n - 1) / (tn - t1), 1),
            "time_to_first_token_s": round(ttft, 3), "batch10x200_s": round(batch_s, 2),
            "batch_replies": len(replies)}
        print(name, result[f"round{repeat + 1}"], flush=True)
    if cuda:
        result["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    backend.close()
    del backend
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return result


def main(args: argparse.Namespace) -> dict:
    work = Path(args.work_dir)
    if args.tiny:  # a CPU check of the script itself, not a measurement worth keeping
        from tests.tiny_models import build_tiny_llama, save_random_adapter

        base = build_tiny_llama(work / "tiny")
        adapter = save_random_adapter(base, work / "tiny-lora")
    else:
        base = build_random_llama32_3b(work / "llama-3.2-3b-random")
        adapter = save_random_lora(base, work / "lora-r16-random")
    results = {}
    settings = {k: getattr(args, k) for k in ("prompt_tokens", "new_tokens", "batch_new_tokens", "max_context",
                                              "repeats")}
    for name in args.modes.split(","):
        print(f"== {name}", flush=True)
        try:
            results[name] = measure_mode(name, MODES[name], base, adapter, args)
        except Exception as exc:  # record the failure, keep measuring the other modes
            logging.exception("mode %s failed", name)
            results[name] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        # saved after every mode: a run cut short keeps what it measured
        save_results("inference_speed-tiny" if args.tiny else "inference_speed", {"settings": settings, "modes": results})
    return results


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, from: {', '.join(MODES)}")
    p.add_argument("--work-dir", default="/tmp/tutor-bench")
    p.add_argument("--prompt-tokens", type=int, default=512)
    p.add_argument("--new-tokens", type=int, default=256)
    p.add_argument("--batch-new-tokens", type=int, default=200)
    p.add_argument("--max-context", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--tiny", action="store_true", help="tiny model on CPU: checks the script, measures nothing")
    return p


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    main(build_parser().parse_args())

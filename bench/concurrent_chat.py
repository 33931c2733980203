"""A class chatting at once: N students each stream a reply through ``backend.stream_chat``, started together.

    python -m llama_cpp.server --model /tmp/bench3b/llama-3.2-3b-random-q4_k_m.gguf --host 127.0.0.1 --port 8000 \\
        --n_ctx 8192 --interrupt_requests False
    python -m bench.concurrent_chat --backend openai --base-url http://127.0.0.1:8000/v1 \\
        --tokenizer /tmp/bench3b/llama-3.2-3b-random --users 1,8,30 --label llama-cpp-server-3b-q4_k_m
    python -m bench.concurrent_chat --backend openai --base-url http://GPU-HOST:8000/v1 --model-name tutor \\
        --tokenizer unsloth/Llama-3.2-3B-Instruct --users 1,8,30 --label vllm      # the same, against vLLM
    python -m bench.concurrent_chat --backend transformers --base-model DIR --users 1,8 --label transformers

Every user is a thread; a barrier releases them all at once. Time to first token runs from the release to the
user's first text; a reply's tokens are counted by re-tokenizing it with the model's tokenizer (``--tokenizer``;
default: the in-process backend's own, or ``--base-model``, or the served model name); aggregate tokens/s is
every user's reply tokens over the wall time from the release to the last reply's end. Each user's message
opens differently (as real students' do), so a server's prefix cache shares only the system prompt.
Results go to bench/results/concurrent_chat-<label>-<date>.json.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from bench.common import save_results
from inference.prompts import SYSTEM_PROMPT

FILLER = ("I am revising for tomorrow's test and I do not understand how plants use light, water and carbon "
          "dioxide to make sugar, or why the leaves of some trees change colour in autumn. ").split()


def token_counter(backend: Any, tokenizer: str | None, options: dict) -> Callable[[str], int]:
    """Counts the tokens of a text with the model's tokenizer."""
    if tokenizer is None and getattr(backend, "tokenizer", None) is not None:  # transformers in process
        own = backend.tokenizer
        return lambda text: len(own(text, add_special_tokens=False).input_ids)
    if tokenizer is None and getattr(backend, "llm", None) is not None:  # llama.cpp in process
        llm = backend.llm
        return lambda text: len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))
    from transformers import AutoTokenizer

    name = tokenizer or options.get("base_model") or getattr(backend, "model", None)
    loaded = AutoTokenizer.from_pretrained(name)
    return lambda text: len(loaded(text, add_special_tokens=False).input_ids)


def question(user: int, n_tokens: int, count: Callable[[str], int]) -> list[dict]:
    """The system prompt and a user message of about ``n_tokens`` tokens that opens with the user's number."""
    words = [f"Student {user} here."]
    while count(" ".join(words)) < n_tokens:
        words.append(FILLER[len(words) % len(FILLER)])
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": " ".join(words)}]


def one_round(backend: Any, conversations: list[list[dict]], max_new_tokens: int,
              count: Callable[[str], int]) -> dict:
    """All users at once; per-user time to first token, reply tokens and errors, and the aggregate."""
    from inference import BackendError, GenerationConfig

    n = len(conversations)
    gate = threading.Barrier(n + 1)
    records: list[dict] = [{} for _ in range(n)]
    start = [0.0]

    def user(i: int) -> None:
        config = GenerationConfig(max_new_tokens=max_new_tokens, temperature=0.7, top_p=0.9, seed=i)
        gate.wait()
        text, first = "", None
        try:
            for delta in backend.stream_chat(conversations[i], config):
                if first is None and delta:
                    first = time.perf_counter() - start[0]
                text += delta
        except BackendError as exc:
            records[i]["error"] = str(exc)
        records[i].update(ttft_s=first, end_s=time.perf_counter() - start[0], text=text)

    threads = [threading.Thread(target=user, args=(i,), name=f"user-{i}") for i in range(n)]
    for thread in threads:
        thread.start()
    start[0] = time.perf_counter()
    gate.wait()
    for thread in threads:
        thread.join()
    wall = max(r["end_s"] for r in records)
    tokens = [count(r["text"]) for r in records]
    ttft = [r["ttft_s"] for r in records if r["ttft_s"] is not None]
    per_user = [t / (r["end_s"] - r["ttft_s"]) for t, r in zip(tokens, records)
                if r["ttft_s"] is not None and r["end_s"] > r["ttft_s"] and t > 1]
    errors = [r["error"] for r in records if "error" in r]
    return {"users": n, "wall_s": round(wall, 2), "reply_tokens": sum(tokens),
            "aggregate_tokens_per_s": round(sum(tokens) / wall, 2),
            "ttft_median_s": round(statistics.median(ttft), 3) if ttft else None,
            "ttft_worst_s": round(max(ttft), 3) if ttft else None,
            "per_user_decode_tokens_per_s_median": round(statistics.median(per_user), 2) if per_user else None,
            "tokens_per_reply_median": statistics.median(tokens), "errors": len(errors),
            "first_error": errors[0] if errors else None}


def main(args: argparse.Namespace, kind: str, options: dict) -> dict:
    from inference import GenerationConfig, load_backend

    backend = load_backend(kind, **options)
    count = token_counter(backend, args.tokenizer, options)
    # One short reply first: loading costs (a server's first request, kernels) are not what users wait for.
    "".join(backend.stream_chat([{"role": "user", "content": "Hi"}], GenerationConfig(max_new_tokens=4)))
    levels = []
    for users in [int(u) for u in args.users.split(",")]:
        result = one_round(backend, [question(i, args.prompt_tokens, count) for i in range(users)],
                           args.max_new_tokens, count)
        print(result, flush=True)
        levels.append(result)
    settings = {"backend": kind, "description": backend.description, "users": args.users,
                "prompt_tokens": args.prompt_tokens, "max_new_tokens": args.max_new_tokens,
                "capabilities": vars(backend.capabilities)}
    backend.close()
    name = f"concurrent_chat-{args.label}" if args.label else "concurrent_chat"
    save_results(name, {"settings": settings, "levels": levels})
    return {"settings": settings, "levels": levels}


def build_parser() -> argparse.ArgumentParser:
    from inference.cli import add_backend_arguments

    p = argparse.ArgumentParser(prog="python -m bench.concurrent_chat", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", default="1,8,30", help="comma-separated numbers of simultaneous users")
    p.add_argument("--max-new-tokens", type=int, default=64, help="reply length limit per user")
    p.add_argument("--prompt-tokens", type=int, default=128, help="length of each user's message in tokens")
    p.add_argument("--tokenizer", default=None, help="tokenizer (folder or hub id) that counts reply tokens")
    p.add_argument("--label", default=None, help="added to the results file name, e.g. vllm-h200")
    add_backend_arguments(p)
    return p


if __name__ == "__main__":
    from inference.cli import backend_options

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    parsed = parser.parse_args()
    main(parsed, *backend_options(parser, parsed))

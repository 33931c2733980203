"""CPU serving through llama.cpp: the project's backend against raw llama-cpp-python, in one run.

    python -m bench.cpu_gguf_speed                       # builds the random-weight 3B Q4_K_M once (~15 min)
    python -m bench.cpu_gguf_speed --gguf model.gguf --threads 2

Measures on the Llama-3.2-3B architecture (random weights: speed does not depend on them):
- decode tokens/s of our ``llamacpp`` backend (streaming, as the app uses it) and of raw llama-cpp-python
  (``Llama.generate`` on the same loaded model and thread), alternated, median of ``--repeats``;
- prompt tokens/s, and the wait before a follow-up turn starts answering after a 512-token conversation
  (cold: the whole conversation re-read; ours: its KV cache reused), also when another user came between;
- a 10-question quiz through ``quiz.generate_quiz``, end to end, with the model's token draws replaced by
  the tokens of a real model's quiz (10 questions a 70B model wrote, from shared/data, in the quiz's
  compact JSON with a typical one-sentence explanation each): prompt, forward passes, grammar checks,
  streaming, parsing and validation all real; the first quiz after start (the app reads the quiz
  instructions into the prompt cache at start: timed apart) and the next one; plus the same call left to the random model (its strings run to their length
  limits and most of its tokens break the grammar and take the slow path: an upper bound);
- resident memory (peak RSS) of the process.
Results: bench/results/cpu_gguf_speed-<date>.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bench.common import random_llama32_3b_gguf, save_results

ROOT = Path(__file__).resolve().parents[1]
MCQS = ROOT.parent / "shared" / "data" / "mcq_raw_outputs" / "NLP_Project_llama-3.3-70b_generated_mcqs.txt"
# A typical one-sentence explanation (19 tokens), for questions that came without one.
EXPLANATION = "Leif Erikson led a Norse expedition that reached Newfoundland around the year 1000."
FILLER = ("Photosynthesis is the process by which green plants use light energy to turn water and carbon "
          "dioxide into glucose and oxygen. ")


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB


def rss_gib() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 2**20


def conversation(tokens: int, tokenizer) -> list[dict]:
    """A user turn of about ``tokens`` tokens (with the template's own tokens)."""
    text = FILLER
    while len(tokenizer(text)) < tokens - 40:
        text += FILLER
    return [{"role": "user", "content": text + "Summarise this for a twelve-year-old."}]


def raw_speeds(llm, prompt_tokens: list[int], decode: int) -> dict:
    """Raw llama-cpp-python on the same loaded model: the prompt evaluated, then ``decode`` greedy tokens
    through ``Llama.generate`` (ignoring end-of-text)."""
    llm.reset()
    start = time.perf_counter()
    llm.eval(prompt_tokens)
    prompt_s = time.perf_counter() - start
    n = 0
    for _ in llm.generate(prompt_tokens, temp=0.0, top_k=0, min_p=0.0, repeat_penalty=1.0):
        n += 1
        if n == 1:
            first = time.perf_counter()
        if n > decode:
            break
    decode_s = time.perf_counter() - first
    return {"prompt_tokens": len(prompt_tokens), "prompt_tok_s": round(len(prompt_tokens) / prompt_s, 2),
            "decode_tokens": decode, "decode_tok_s": round(decode / decode_s, 2)}


def stream_timed(backend, messages: list[dict], config) -> dict:
    """Time to the first piece and decode tokens/s after it, through ``stream_chat``."""
    before = backend.generated_tokens
    start = time.perf_counter()
    first = None
    for _ in backend.stream_chat(messages, config):
        if first is None:
            first = time.perf_counter()
    end = time.perf_counter()
    n = backend.generated_tokens - before
    return {"first_piece_s": round(first - start, 3), "tokens": n,
            "decode_tok_s": round((n - 1) / (end - first), 2) if n > 1 else None}


def reference_quiz_json(n: int = 10) -> str:
    """10 real model-written questions (stems and options) in the quiz's JSON layout."""
    from quiz.parse import parse_quiz

    questions = [q for q in parse_quiz(MCQS.read_text(encoding="utf-8")) if len(q.options) == 4][:n]
    items = [{"question": q.question, "options": q.options, "answer": "ABCD"[q.answer or 0],
              "explanation": EXPLANATION} for q in questions]
    return json.dumps({"questions": items}, ensure_ascii=False, separators=(",", ":"))


def forced_quiz(backend, reference: str) -> dict:
    """``generate_quiz`` end to end, the model's draws replaced by the tokens of a real model's quiz.

    Everything else is real: the prompt is read (and its prefix reused from the previous quiz), each
    token takes a forward pass, is checked against the JSON-schema grammar, detokenized and streamed;
    questions are parsed, validated and handed on as they complete. Only which token is drawn is forced.
    """
    from inference import llamacpp_sampling
    from inference.backend import GenerationConfig
    from quiz import generate_quiz
    from quiz.generate import warm_up

    tokens = backend.llm.tokenize(reference.encode(), add_bos=False)
    rejected: list[int] = []

    class Forced(llamacpp_sampling.Sampler):
        def draw(self) -> int:
            self.position = getattr(self, "position", -1) + 1
            return tokens[self.position] if self.position < len(tokens) else backend.llm.token_eos()

        def _constrained(self) -> int:  # the grammar refused a forced token: the run would not be faithful
            rejected.append(self.position)
            return super()._constrained()

    def one_quiz(topic: str) -> dict:
        arrived: list[float] = []
        start = time.perf_counter()
        quiz = generate_quiz(backend, topic, n=10, max_extra_rounds=0,
                             on_question=lambda i, q: arrived.append(time.perf_counter() - start))
        return {"questions": len(quiz), "first_question_s": round(arrived[0], 1), "all_ten_s": round(arrived[-1], 1)}

    original = llamacpp_sampling.Sampler
    backend_module = sys.modules[type(backend).__module__]
    backend_module.Sampler = Forced
    try:
        backend.llm.reset()
        backend.cache.clear()
        start = time.perf_counter()
        warm_up(backend)  # what the app does at start
        warm_up_s = round(time.perf_counter() - start, 1)
        first = one_quiz("the age of exploration")
        backend.chat_batch([[{"role": "user", "content": "Hi"}]],  # someone chats in between
                           GenerationConfig(max_new_tokens=8, temperature=0))
        second = one_quiz("volcanoes")
    finally:
        backend_module.Sampler = original
    return {"reply_tokens": len(tokens), "grammar_refused_forced_tokens": len(rejected),
            "start_up_warm_up_s": warm_up_s, "first_quiz": first, "next_quiz": second}


def random_model_quiz(backend) -> dict:
    """generate_quiz end to end with the random model (strings run to their limits: an upper bound)."""
    from quiz import generate_quiz

    from quiz import QuizGenerationError

    arrived: list[float] = []
    before = backend.generated_tokens
    start = time.perf_counter()
    try:  # one round: its strings at their limits, the random model may run out of tokens before the tenth
        generate_quiz(backend, "the age of exploration", n=10, max_extra_rounds=0, seed=1,
                      on_question=lambda i, q: arrived.append(time.perf_counter() - start))
    except QuizGenerationError:
        pass
    return {"questions": len(arrived), "first_question_s": round(arrived[0], 1) if arrived else None,
            "last_question_s": round(arrived[-1], 1) if arrived else None,
            "seconds": round(time.perf_counter() - start, 1), "reply_tokens": backend.generated_tokens - before}


REPLY = ("Plants are like little kitchens. They take water from the soil and carbon dioxide from the air, "
         "and with the energy of sunlight they cook them into sugar, their food. Oxygen is what is left over, "
         "and they let it out into the air we breathe. Can you guess which part of the plant does the cooking?")


def follow_up(backend, tokenizer, prompt_tokens: int) -> dict:
    """The wait before a follow-up starts: on the live conversation, after another user, and cold.

    A random model's reply is not tokenized the way its text re-tokenizes, so the first turn's reply is
    given as text and its canonical tokens are put in the cache after the prompt, as a real model's reply
    would be (a real model writes canonical tokens nearly always).
    """
    from inference.backend import GenerationConfig

    one = GenerationConfig(max_new_tokens=2, temperature=0)
    first = conversation(prompt_tokens, tokenizer)
    backend.chat_batch([first], GenerationConfig(max_new_tokens=1, temperature=0))  # reads the prompt
    backend.llm.eval(tokenizer(REPLY))  # the reply, as the model would have left it in the cache
    turn = [*first, {"role": "assistant", "content": REPLY}, {"role": "user", "content": "The leaves?"}]
    warm = stream_timed(backend, turn, one)
    other = conversation(prompt_tokens, tokenizer)
    other[0]["content"] = "Another student asks. " + other[0]["content"]
    backend.chat_batch([other], GenerationConfig(max_new_tokens=32, temperature=0))
    turn[-1]["content"] = "Is it the roots?"
    returning = stream_timed(backend, turn, one)
    backend.llm.reset()
    backend.cache.clear()
    cold = stream_timed(backend, turn, one)
    return {"conversation_tokens": len(backend.prompt_ids(turn, 2)), "follow_up_first_piece_s": warm["first_piece_s"],
            "after_another_user_first_piece_s": returning["first_piece_s"],
            "cold_reread_first_piece_s": cold["first_piece_s"]}


def main(args: argparse.Namespace) -> int:
    from inference import load_backend
    from inference.backend import GenerationConfig

    if args.gguf:
        path = Path(args.gguf)
    else:  # built in another process, so that building it does not count in this one's memory
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            path = pool.submit(random_llama32_3b_gguf, Path(args.work_dir)).result()
    ours = load_backend("llamacpp", gguf=str(path), threads=args.threads, warmup=True)
    threads = ours.llm.n_threads
    load_rss = rss_gib()

    def tokenizer(text: str) -> list[int]:
        return ours.llm.tokenize(text.encode(), add_bos=False)

    convo = conversation(args.prompt_tokens, tokenizer)
    prompt_ids = ours.prompt_ids(convo, args.decode_tokens)
    greedy = GenerationConfig(max_new_tokens=args.decode_tokens + 1, temperature=0)
    raws, streams = [], []
    for _ in range(args.repeats):  # alternated, on the same model and thread: the machine's noise hits both
        raws.append(ours._worker.run(lambda: raw_speeds(ours.llm, prompt_ids, args.decode_tokens)))
        ours.llm.reset()
        streams.append(stream_timed(ours, convo, greedy))
    raw = sorted(raws, key=lambda r: r["decode_tok_s"])[len(raws) // 2]
    ours_decode = sorted(streams, key=lambda r: r["decode_tok_s"])[len(streams) // 2]
    ours_decode["all_decode_tok_s"] = [r["decode_tok_s"] for r in streams]
    raw["all_decode_tok_s"] = [r["decode_tok_s"] for r in raws]
    turns = follow_up(ours, tokenizer, args.prompt_tokens)
    quiz = forced_quiz(ours, reference_quiz_json())
    random_quiz = random_model_quiz(ours) if not args.skip_random_quiz else None
    results = {
        "gguf": str(path), "gguf_bytes": path.stat().st_size, "threads": threads, "backend": ours.description,
        "raw_llama_cpp": raw,
        "ours": {**ours_decode, "ratio_to_raw": round(ours_decode["decode_tok_s"] / raw["decode_tok_s"], 3),
                 "ratio_to_raw_per_pair": sorted(round(o["decode_tok_s"] / r["decode_tok_s"], 3)
                                                 for o, r in zip(streams, raws))},
        "turns": turns, "quiz": quiz, "random_model_quiz": random_quiz,
        "rss_gib": {"after_load": round(load_rss, 2), "at_end": round(rss_gib(), 2), "peak": round(peak_rss_gib(), 2)},
        "targets": {"decode_ratio_to_raw": ">= 0.95", "follow_up_first_piece_s": "<= 3",
                    "quiz_first_question_s": "<= 20", "quiz_all_ten_s": "<= 90", "rss_gib": "<= 3.5"},
    }
    save_results("cpu_gguf_speed", results)
    ours.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.cpu_gguf_speed", description=__doc__.splitlines()[0])
    p.add_argument("--gguf", help="GGUF to measure (default: the random-weight 3B Q4_K_M, built once)")
    p.add_argument("--work-dir", default=str(Path.home() / ".cache" / "llama-tutor" / "bench"),
                   help="where the random-weight model is built and kept (default: %(default)s)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: every core)")
    p.add_argument("--prompt-tokens", type=int, default=512, help="conversation length before the follow-up")
    p.add_argument("--decode-tokens", type=int, default=128, help="tokens timed for decode speed")
    p.add_argument("--repeats", type=int, default=5, help="decode measurements of each (the median is kept)")
    p.add_argument("--skip-random-quiz", action="store_true", help="skip the random model's end-to-end quiz")
    return p


if __name__ == "__main__":
    sys.exit(main(build_parser().parse_args()))

"""Console chat with the teaching assistant.

    python -m inference --base-model unsloth/Llama-3.2-3B-Instruct --adapter outputs/finetome "What is LoRA?"
    python -m inference --base-model ./my-model          # multi-turn chat; /reset clears, /exit quits

With a PROMPT it prints the streamed answer and exits; without one it reads turns from stdin.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TextIO

from inference import Backend, BackendError, GenerationConfig, load_backend
from inference.cli import add_backend_arguments, backend_options
from inference.prompts import SYSTEM_PROMPT, with_system_prompt

HELP = "Type a question. /reset starts a new conversation, /exit (or Ctrl-D) quits."


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m inference", description="Chat with Llama Tutor in the console.",
                                epilog=HELP)
    p.add_argument("prompt", nargs="?", help="ask one question, print the answer and exit")
    p.add_argument("--temperature", type=float, default=0.7, help="0 = greedy (deterministic)")
    p.add_argument("--top-p", type=float, default=0.9)
    p.add_argument("--max-new-tokens", type=int, default=512)
    p.add_argument("--seed", type=int, default=None, help="seed for reproducible sampling")
    p.add_argument("--system", default=SYSTEM_PROMPT, help="system prompt ('' for none)")
    add_backend_arguments(p)
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The flags, with ``backend`` resolved and the backend's options in ``backend_options``."""
    p = build_parser()
    args = p.parse_args(argv)
    args.backend, args.backend_options = backend_options(p, args)
    return args


def stream_reply(backend: Backend, messages: list[dict], config: GenerationConfig, out: TextIO) -> str:
    parts: list[str] = []
    for delta in backend.stream_chat(messages, config):
        parts.append(delta)
        out.write(delta)
        out.flush()
    out.write("\n")
    return "".join(parts)


def repl(backend: Backend, config: GenerationConfig, system: str, stdin: TextIO, out: TextIO) -> None:
    history: list[dict] = []
    interactive = stdin.isatty()
    if interactive:
        print(HELP, file=out)
    while True:
        if interactive:
            out.write("\nyou> ")
            out.flush()
        line = stdin.readline()
        if not line:  # EOF
            return
        text = line.strip()
        if not text:
            continue
        if text in ("/exit", "/quit"):
            return
        if text == "/reset":
            history.clear()
            print("(new conversation)", file=out)
            continue
        history.append({"role": "user", "content": text})
        if interactive:
            out.write("tutor> ")
        try:
            reply = stream_reply(backend, with_system_prompt(history, system), config, out)
        except KeyboardInterrupt:
            history.pop()
            print("\n(interrupted)", file=out)
            continue
        history.append({"role": "assistant", "content": reply})


def main(args: argparse.Namespace, stdin: TextIO = sys.stdin, out: TextIO = sys.stdout) -> int:
    try:
        config = GenerationConfig(max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                                  top_p=args.top_p, seed=args.seed)
    except ValueError as exc:
        raise BackendError(str(exc)) from None
    print(f"Loading the model ({args.backend} backend) …", file=sys.stderr)
    backend = load_backend(args.backend, **args.backend_options)
    try:
        if args.prompt:
            stream_reply(backend, with_system_prompt([{"role": "user", "content": args.prompt}], args.system),
                         config, out)
        else:
            repl(backend, config, args.system, stdin, out)
    finally:
        backend.close()
    return 0


def _quiet_libraries() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)  # optional CPU kernels it cannot find
    # huggingface_hub prints its own retry messages; do not print them twice through the root logger.
    logging.getLogger("huggingface_hub").propagate = False


if __name__ == "__main__":
    _args = parse_args()
    _quiet_libraries()
    try:
        sys.exit(main(_args))
    except BackendError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)

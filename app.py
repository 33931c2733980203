"""Llama Tutor web app: a teaching-assistant chat and a ten-question quiz around one model.

    python app.py                                         # unsloth/Llama-3.2-3B-Instruct, no adapter
    python app.py --adapter outputs/finetome --port 7860  # with a LoRA adapter from training
    TUTOR_ADAPTER=user/llama-tutor-lora python app.py     # every flag is also an env var TUTOR_<NAME>

It is also the Hugging Face Space entry point (README.md). Flags beat environment variables, which
beat the defaults. A model that cannot be loaded ends the program with one line on stderr and exit 1.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

import gradio as gr

from inference import BACKENDS, DEFAULT_BASE_MODEL, BackendError, load_backend
from inference.loading import QUANTIZATIONS
from ui import build_demo, launch_style

__all__ = ["build_demo", "build_parser", "main", "parse_args", "serve"]

logger = logging.getLogger("app")

# Waiting requests beyond this are turned away with "queue full" instead of waiting for minutes.
QUEUE_SIZE = 64
# Cheap events (grading, showing a quiz) may run side by side; the GPU-bound ones set their own limit
# of 1 because the backend generates one reply at a time anyway.
DEFAULT_CONCURRENCY = 8
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def _env(name: str) -> str | None:
    value = os.environ.get(f"TUTOR_{name}")
    return value if value not in (None, "") else None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python app.py", description="Run the Llama Tutor web app (chat + quiz).",
        epilog="Every flag can also be set as an environment variable TUTOR_<NAME>, e.g. TUTOR_ADAPTER.")
    p.add_argument("--base-model", default=_env("BASE_MODEL") or DEFAULT_BASE_MODEL,
                   help="hub id or local directory of the base model (default: %(default)s)")
    p.add_argument("--adapter", default=_env("ADAPTER"),
                   help="LoRA adapter: hub id or local directory (training's output_dir); none = base model")
    p.add_argument("--backend", default=_env("BACKEND") or BACKENDS[0], help=f"one of {', '.join(BACKENDS)}")
    p.add_argument("--quantization", default=_env("QUANTIZATION") or "auto",
                   help="auto (16-bit on a GPU where it fits, else NF4), 4bit or none")
    p.add_argument("--device", default=_env("DEVICE") or "auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--max-context", default=_env("MAX_CONTEXT"),
                   help="context window in tokens; the oldest turns are dropped beyond it (default 4096)")
    p.add_argument("--host", default=_env("HOST"),
                   help="address to listen on (default 127.0.0.1; 0.0.0.0 to accept other machines)")
    p.add_argument("--port", default=_env("PORT"), help="port to listen on (default 7860 or the next free one)")
    p.add_argument("--static-cache", action="store_true", default=None,
                   help="CUDA only: compiled decode step, ~4x faster replies after a ~25 s compile at start-up")
    p.add_argument("--share", action="store_true", default=None,
                   help="also open a temporary public gradio.live link")
    p.add_argument("--queue-size", default=_env("QUEUE_SIZE") or str(QUEUE_SIZE),
                   help="most requests that may wait in the queue (default %(default)s)")
    return p


def _as_int(p: argparse.ArgumentParser, value: str | None, flag: str, low: int, high: int) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        number = low - 1
    if not low <= number <= high:
        p.error(f"{flag} (or TUTOR_{flag[2:].upper().replace('-', '_')}) must be a whole number "
                f"from {low} to {high}, got {value!r}")
    return number


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Flags over TUTOR_* environment variables over defaults; a bad value exits naming flag and variable."""
    p = build_parser()
    args = p.parse_args(argv)
    for flag, value, choices in (("--backend", args.backend, BACKENDS),
                                 ("--quantization", args.quantization, QUANTIZATIONS)):
        if value not in choices:
            p.error(f"{flag} (or TUTOR_{flag[2:].upper()}) must be one of {', '.join(choices)}, got {value!r}")
    args.max_context = _as_int(p, args.max_context, "--max-context", 64, 1_048_576)
    args.port = _as_int(p, args.port, "--port", 1, 65535)
    args.queue_size = _as_int(p, args.queue_size, "--queue-size", 1, 100_000)
    args.share = _switch(p, args.share, "SHARE")
    args.static_cache = _switch(p, args.static_cache, "STATIC_CACHE")
    return args


def _switch(p: argparse.ArgumentParser, flag: bool | None, name: str) -> bool:
    """An on/off flag: given on the command line, else from TUTOR_<name>, else off."""
    if flag is not None:
        return flag
    value = (_env(name) or "").strip().lower()
    if value not in _TRUE + _FALSE:
        p.error(f"TUTOR_{name} must be 1/true/yes or 0/false/no, got {value!r}")
    return value in _TRUE


def serve(demo: gr.Blocks, *, host: str | None = None, port: int | None = None, share: bool = False,
          queue_size: int = QUEUE_SIZE, block: bool = True) -> str:
    """Queue and launch ``demo``; returns its local URL (after the server stops when ``block``)."""
    demo.queue(max_size=queue_size, default_concurrency_limit=DEFAULT_CONCURRENCY)
    _app, local_url, _share_url = demo.launch(
        server_name=host, server_port=port, share=share, prevent_thread_lock=not block,
        footer_links=["api", "gradio", "settings"], quiet=not block, **launch_style())
    return local_url


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpcore", "urllib3", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)  # optional CPU kernels it cannot find
    # huggingface_hub prints its own retry messages; do not print them twice through the root logger.
    logging.getLogger("huggingface_hub").propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    """Parse flags, load the model, serve the app until interrupted. Returns the exit code."""
    args = parse_args(argv)
    _configure_logging()
    print(f"Loading {args.base_model}{f' + {args.adapter}' if args.adapter else ''} …", file=sys.stderr)
    try:
        backend = load_backend(args.backend, base_model=args.base_model, adapter=args.adapter,
                               quantization=args.quantization, device=args.device,
                               max_context_tokens=args.max_context, static_cache=args.static_cache)
    except BackendError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    logger.info("model ready: %s", getattr(backend, "description", backend.name))
    serve(build_demo(backend), host=args.host, port=args.port, share=args.share, queue_size=args.queue_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())

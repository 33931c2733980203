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
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import gradio as gr
from starlette.middleware import Middleware

from inference import BackendError, load_backend
from inference.cli import add_backend_arguments, add_options, backend_options, option_table, read_options
from inference.registry import option
from quiz.generate import warm_up as warm_quiz
from ui import build_demo, launch_style
from ui.feedback import FeedbackFileError, FeedbackLog
from ui.guard import BodyLimit

__all__ = ["AppOptions", "build_demo", "build_parser", "main", "parse_args", "serve"]

logger = logging.getLogger("app")

# Waiting requests beyond this are turned away with "queue full" instead of waiting for minutes.
QUEUE_SIZE = 64
# Cheap events (grading, showing a quiz) may run side by side; the model-bound ones set their own limit
# from the backend (one at a time in-process, --concurrency against a server).
DEFAULT_CONCURRENCY = 8


@dataclass
class AppOptions:
    """How the web server runs (the model's options come from the backend registry)."""

    host: str | None = option(None, "address to listen on (default 127.0.0.1; 0.0.0.0 to accept other machines)")
    port: int | None = option(None, "port to listen on (default 7860 or the next free one)", low=1, high=65535)
    share: bool = option(False, "also open a temporary public gradio.live link")
    queue_size: int = option(QUEUE_SIZE, "most requests that may wait in the queue", low=1, high=100_000)
    concurrency: int | None = option(
        None, "chats and quiz generations served at once where the backend can (the openai backend: "
              "default 16, match the server's batch capacity); in-process backends serve one at a time",
        low=1, high=4096)
    data_dir: str | None = option(
        None, "folder for stored data: the SQLite file of quizzes shared with a class and their results "
              "(default: /data/llama-tutor on a Space with persistent storage, else .llama-tutor-data in the "
              "working folder)")
    feedback_file: str | None = option(
        None, "append every like, dislike and better answer from the chat to this JSON-lines file (training "
              "data for `python -m training dpo`); off when not given")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python app.py", description="Run the Llama Tutor web app (chat + quiz).",
        epilog="Every flag can also be set as an environment variable TUTOR_<NAME>, e.g. TUTOR_ADAPTER.")
    add_options(p.add_argument_group("server"), option_table([("app", AppOptions)]))
    add_backend_arguments(p)
    return p


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Flags over TUTOR_* environment variables over defaults; a bad value exits naming flag and variable.

    The result has ``app`` (AppOptions), ``backend`` (a registry name or auto) and ``backend_options``.
    """
    p = build_parser()
    args = p.parse_args(argv)
    kind, options = backend_options(p, args)
    return argparse.Namespace(app=read_options(p, args, AppOptions), backend=kind, backend_options=options)


def serve(demo: gr.Blocks, *, host: str | None = None, port: int | None = None, share: bool = False,
          queue_size: int = QUEUE_SIZE, block: bool = True) -> str:
    """Queue and launch ``demo``; returns its local URL (after the server stops when ``block``)."""
    demo.queue(max_size=queue_size, default_concurrency_limit=DEFAULT_CONCURRENCY)
    busiest = max((fn.concurrency_limit for fn in demo.fns.values() if isinstance(fn.concurrency_limit, int)),
                  default=1)
    _app, local_url, _share_url = demo.launch(
        server_name=host, server_port=port, share=share, prevent_thread_lock=not block,
        footer_links=["api", "gradio", "settings"], quiet=not block, max_threads=max(40, busiest + 16),
        app_kwargs={"middleware": [Middleware(BodyLimit)]}, **launch_style())
    return local_url


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpcore", "httpx2", "httpcore2", "urllib3", "huggingface_hub"):  # openai 3 uses *2
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)  # optional CPU kernels it cannot find
    # huggingface_hub prints its own retry messages; do not print them twice through the root logger.
    logging.getLogger("huggingface_hub").propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    """Parse flags, load the model, serve the app until interrupted. Returns the exit code."""
    args = parse_args(argv)
    _configure_logging()
    if args.app.feedback_file:
        try:
            FeedbackLog(args.app.feedback_file)  # checked before the model takes minutes to load
        except FeedbackFileError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    print(f"Loading the model ({args.backend} backend) …", file=sys.stderr)
    try:
        backend = load_backend(args.backend, **args.backend_options)
    except BackendError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    logger.info("model ready: %s", backend.description)
    if warm_quiz(backend):
        logger.info("quiz instructions read into the prompt cache")
    try:
        demo = build_demo(backend, concurrency=args.app.concurrency, data_dir=args.app.data_dir,
                          feedback_file=args.app.feedback_file)
        serve(demo, host=args.app.host, port=args.app.port, share=args.app.share, queue_size=args.app.queue_size)
    finally:
        backend.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

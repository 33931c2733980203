"""The Gradio UI of Llama Tutor: a chat tab and a quiz tab around any ``inference.Backend``.

    from ui import build_demo
    demo = build_demo(backend)     # gr.Blocks; app.py queues and launches it

Importing this package loads Gradio but never torch: the model arrives as a ready backend.
"""

from __future__ import annotations

import logging
import os

from typing import Any

import gradio as gr

from inference.backend import Backend
from ui.chat import build_chat_tab
from ui.guard import GuardedBlocks
from ui.quiz import build_quiz_tab, wire_page_load
from ui.style import launch_style

__all__ = ["build_demo", "launch_style", "model_concurrency"]

logger = logging.getLogger(__name__)

INTRO = ("# 🦙 Llama Tutor\n"
         "A patient teaching assistant. **Chat** to learn a topic step by step; **Quiz** to test yourself "
         "with ten multiple-choice questions written for you.")


# Requests served at once by backends that serve many (a vLLM/SGLang/llama-server behind the openai
# backend) when --concurrency is not given; in-process backends generate one reply at a time.
SERVER_CONCURRENCY = 16
MODEL_GROUP = "model"
DEFAULT_DATA_DIR = ".llama-tutor-data"
SPACE_STORAGE = "/data"  # a Hugging Face Space's persistent storage, where it has some


def default_data_dir() -> str:
    """Where class quizzes live without --data-dir: a Space's persistent storage when it has one (it
    survives restarts), else a folder in the working directory."""
    if os.environ.get("SPACE_ID") and os.path.isdir(SPACE_STORAGE) and os.access(SPACE_STORAGE, os.W_OK):
        return os.path.join(SPACE_STORAGE, "llama-tutor")
    return DEFAULT_DATA_DIR


def model_concurrency(backend: Backend, concurrency: int | None) -> int:
    """How many chats and quiz generations may run at once: ``concurrency`` where the backend serves
    concurrent requests (default ``SERVER_CONCURRENCY``), else 1."""
    if not backend.capabilities.concurrent:
        if concurrency and concurrency > 1:
            logger.warning("the %s backend generates one reply at a time: --concurrency %d has no effect "
                           "(serve from vLLM, SGLang or llama-server with --backend openai for more)",
                           backend.name, concurrency)
        return 1
    return concurrency or SERVER_CONCURRENCY


def _start_tab(request: gr.Request) -> Any:
    return gr.Tabs(selected="quiz") if request is not None and request.query_params.get("class") else gr.skip()


def build_demo(backend: Backend, concurrency: int | None = None, *, data_dir: str | os.PathLike[str] | None = None,
               feedback_file: str | os.PathLike[str] | None = None) -> gr.Blocks:
    """Build the two-tab app around ``backend``; every user gets their own chat history and quiz.

    Every event that calls the model (chat replies, quiz generation, from the page or the API) joins
    one queue that runs ``model_concurrency(backend, concurrency)`` of them at once; the others wait
    and see their place in the queue. ``data_dir`` holds the class quizzes (``default_data_dir()`` when not
    given); ``feedback_file``, when given, collects the chat's ratings as JSON lines.
    """
    with GuardedBlocks(title="Llama Tutor", fill_height=True) as demo:
        gr.Markdown(INTRO)
        with gr.Tabs() as tabs:
            with gr.Tab("Chat", id="chat", elem_id="tab-chat"):
                build_chat_tab(backend, feedback_file=feedback_file)
            with gr.Tab("Quiz", id="quiz", elem_id="tab-quiz"):
                quiz_tab = build_quiz_tab(backend, data_dir=data_dir or default_data_dir())
        wire_page_load(demo, quiz_tab)
        # A class link (?class=CODE) opens on the quiz tab, where its join box waits.
        demo.load(_start_tab, None, tabs, api_visibility="private", show_progress="hidden")
    limit = model_concurrency(backend, concurrency)
    for fn in demo.fns.values():
        # The tabs give model-bound events (and only those) a numeric limit; ChatInterface creates
        # its events itself, so they are put into the shared group here.
        if isinstance(fn.concurrency_limit, int):
            fn.concurrency_id, fn.concurrency_limit = MODEL_GROUP, limit
    return demo

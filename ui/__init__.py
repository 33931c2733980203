"""The Gradio UI of Llama Tutor: a chat tab and a quiz tab around any ``inference.Backend``.

    from ui import build_demo
    demo = build_demo(backend)     # gr.Blocks; app.py queues and launches it

Importing this package loads Gradio but never torch: the model arrives as a ready backend.
"""

from __future__ import annotations

import gradio as gr

from inference.backend import Backend
from ui.chat import build_chat_tab
from ui.guard import GuardedBlocks
from ui.quiz import build_quiz_tab
from ui.style import launch_style

__all__ = ["build_demo", "launch_style"]

INTRO = ("# 🦙 Llama Tutor\n"
         "A patient teaching assistant. **Chat** to learn a topic step by step; **Quiz** to test yourself "
         "with ten multiple-choice questions written for you.")


def build_demo(backend: Backend) -> gr.Blocks:
    """Build the two-tab app around ``backend``; every user gets their own chat history and quiz."""
    with GuardedBlocks(title="Llama Tutor", fill_height=True) as demo:
        gr.Markdown(INTRO)
        with gr.Tabs():
            with gr.Tab("Chat", id="chat", elem_id="tab-chat"):
                build_chat_tab(backend)
            with gr.Tab("Quiz", id="quiz", elem_id="tab-quiz"):
                build_quiz_tab(backend)
    return demo

"""The Chat tab: a streaming ChatInterface around the backend, teaching-assistant system prompt first."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import gradio as gr
import spaces

from inference.backend import Backend, BackendError, GenerationConfig
from inference.context import content_text, normalize_messages
from inference.prompts import SYSTEM_PROMPT, with_system_prompt

logger = logging.getLogger(__name__)

EXAMPLES = [
    "Explain photosynthesis as if I were twelve.",
    "What is the difference between a list and a tuple in Python?",
    "Can you walk me through the chain rule with an example?",
    "Why does the Moon have phases?",
]
# Llama writes inline maths as \( \) and display maths as \[ \] or $$ $$; a single $ stays plain text
# because prices and shell variables use it far more often than formulas do.
LATEX_DELIMITERS = [
    {"left": "$$", "right": "$$", "display": True},
    {"left": "\\[", "right": "\\]", "display": True},
    {"left": "\\(", "right": "\\)", "display": False},
]
DEFAULT_TEMPERATURE = 0.7
DEFAULT_MAX_NEW_TOKENS = 512
# ZeroGPU books the GPU for this long per reply; 1024 new tokens at ~30 tokens/s fit comfortably.
CHAT_GPU_SECONDS = 60

ChatFn = Callable[[str, list[dict], str, float, float], Iterator[str]]


def build_messages(message: str, history: list[dict], system_prompt: str | None) -> list[dict]:
    """The conversation the backend sees: system prompt, earlier turns as plain text, the new message.

    Gradio 6 history content may be a list of blocks; the backend's chat template needs strings.
    """
    turns = [m for m in normalize_messages(history) if m["role"] in ("user", "assistant")]
    return with_system_prompt([*turns, {"role": "user", "content": content_text(message)}], system_prompt)


def make_chat_fn(backend: Backend) -> ChatFn:
    """The ChatInterface function (also the ``/chat`` API endpoint) bound to ``backend``."""

    @spaces.GPU(duration=CHAT_GPU_SECONDS)
    def chat(message: str, history: list[dict], system_prompt: str = SYSTEM_PROMPT,
             temperature: float = DEFAULT_TEMPERATURE,
             max_new_tokens: float = DEFAULT_MAX_NEW_TOKENS) -> Iterator[str]:
        """Stream the tutor's reply to `message`; yields the reply so far after each new piece."""
        if not content_text(message).strip():
            raise gr.Error("Type a question first.")
        try:
            config = GenerationConfig(max_new_tokens=int(max_new_tokens), temperature=float(temperature))
        except ValueError as exc:
            raise gr.Error(str(exc)) from None
        reply = ""
        try:
            for delta in backend.stream_chat(build_messages(message, history, system_prompt), config):
                reply += delta
                yield reply
        except BackendError as exc:
            logger.warning("chat failed: %s", exc)
            raise gr.Error(str(exc)) from None
        if not reply:
            yield "*(The model returned an empty reply — try rephrasing, or raise the temperature.)*"

    return chat


def require_question(message: str) -> dict:
    """ChatInterface validator: an empty message never reaches the chat (nor the history)."""
    return gr.validate(bool(content_text(message).strip()), "Type a question first.")


def build_chat_tab(backend: Backend) -> gr.ChatInterface:
    """Render the chat tab inside the current Blocks context.

    Its parts are built with ``render=False`` so that ChatInterface places them (inputs in the accordion
    under the text box) instead of where they were created.
    """
    chatbot = gr.Chatbot(
        elem_id="chatbot", label="Llama Tutor", height="62vh", render_markdown=True, sanitize_html=True,
        latex_delimiters=LATEX_DELIMITERS, buttons=["copy", "copy_all"], feedback_options=None,
        placeholder="**Ask me anything you are learning.** I explain step by step and check that it clicked.")
    textbox = gr.Textbox(elem_id="chat-input", label="Your question", placeholder="Ask a question…",
                         show_label=False, lines=1, max_lines=8, submit_btn=True, stop_btn=True, autofocus=True,
                         scale=7)
    settings = [
        gr.Textbox(SYSTEM_PROMPT, label="System prompt", lines=6, max_lines=16, elem_id="chat-system-prompt",
                   info="Sent first in every conversation. Empty = no system prompt.", render=False),
        gr.Slider(0.0, 1.5, value=DEFAULT_TEMPERATURE, step=0.05, label="Temperature",
                  info="0 = always the most likely words (deterministic); higher = more varied.",
                  elem_id="chat-temperature", render=False),
        gr.Slider(32, 2048, value=DEFAULT_MAX_NEW_TOKENS, step=32, label="Max new tokens",
                  info="Upper limit on the length of one reply.", elem_id="chat-max-new-tokens",
                  render=False),
    ]
    return gr.ChatInterface(
        make_chat_fn(backend), chatbot=chatbot, textbox=textbox, additional_inputs=settings,
        additional_inputs_accordion=gr.Accordion("Settings: system prompt, temperature, length", open=False,
                                                 render=False),
        examples=[[question, None, None, None] for question in EXAMPLES], api_name="chat",
        api_description="Stream the tutor's reply. History is kept per client session.",
        # The backend generates one reply at a time anyway; the queue shows waiting users their place.
        concurrency_limit=1, fill_height=True, validator=require_question)

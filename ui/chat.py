"""The Chat tab: a streaming ChatInterface around the backend, teaching-assistant system prompt first."""

from __future__ import annotations

import logging
import os
import math
from collections.abc import Callable, Iterator

import gradio as gr
import spaces

from inference.backend import Backend, BackendError, GenerationConfig
from inference.context import content_text, normalize_messages
from inference.prompts import SYSTEM_PROMPT, with_system_prompt
from ui.feedback import FeedbackLog
from ui.guard import MAX_MESSAGE_CHARS, MAX_SYSTEM_PROMPT_CHARS, user_error

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
MAX_TEMPERATURE = 1.5
MAX_NEW_TOKENS = 2048
# Only the newest turns that fit this many characters are sent on (the context window holds far fewer):
# a very long conversation costs no more to template than a short one.
HISTORY_CHARS = 4 * MAX_MESSAGE_CHARS
# ZeroGPU books the GPU for this long per reply; 1024 new tokens at ~30 tokens/s fit comfortably.
CHAT_GPU_SECONDS = 60

# Shown instead of a blank bubble; it is no reply of the model's, so it cannot be rated.
EMPTY_REPLY = "*(The model returned an empty reply — try rephrasing, or raise the temperature.)*"

ChatFn = Callable[[str, list[dict], str, float, float], Iterator[str]]
# Told of every reply: the turns it answers (ending with the user's message), its text, the system prompt.
ReplyHook = Callable[[list[dict], str, str | None], None]


def build_messages(message: str, history: list[dict], system_prompt: str | None) -> list[dict]:
    """The conversation the backend sees: system prompt, earlier turns as plain text, the new message.

    Gradio 6 history content may be a list of blocks; the backend's chat template needs strings. Only
    the newest turns within ``HISTORY_CHARS`` are kept (the backend trims further to its context).
    """
    turns = [m for m in normalize_messages(history or []) if m["role"] in ("user", "assistant")]
    kept, size = [], 0
    for turn in reversed(turns):
        size += len(turn["content"])
        if size > HISTORY_CHARS:
            break
        kept.append(turn)
    kept.reverse()
    while kept and kept[0]["role"] != "user":  # a conversation starts with the user
        kept.pop(0)
    return with_system_prompt([*kept, {"role": "user", "content": content_text(message)}], system_prompt)


def chat_settings(message: object, system_prompt: object, temperature: object,
                  max_new_tokens: object) -> GenerationConfig:
    """Check one chat request's values (what the page and the API send) and build its sampling config.

    Raises ``gr.Error`` with the same one-line message in the page and for API clients.
    """
    if message is not None and not isinstance(message, (str, dict, list)):
        raise user_error(f"The message must be text, got {type(message).__name__}.")
    text = content_text(message)
    if not text.strip():
        raise user_error("Type a question first.")
    if len(text) > MAX_MESSAGE_CHARS:
        raise user_error(f"Your message is too long: {len(text):,} characters, the limit is {MAX_MESSAGE_CHARS:,}. "
                         "Shorten it or send it in parts.")
    if system_prompt is not None and not isinstance(system_prompt, str):
        raise user_error(f"The system prompt must be text, got {type(system_prompt).__name__}.")
    if system_prompt and len(system_prompt) > MAX_SYSTEM_PROMPT_CHARS:
        raise user_error(f"The system prompt is too long: {len(system_prompt):,} characters, the limit is "
                         f"{MAX_SYSTEM_PROMPT_CHARS:,}.")
    if not _number(temperature) or not 0 <= temperature <= MAX_TEMPERATURE:  # type: ignore[operator]
        raise user_error(f"Temperature must be a number from 0 to {MAX_TEMPERATURE}, got {temperature!r}.")
    if not _number(max_new_tokens) or not 1 <= max_new_tokens <= MAX_NEW_TOKENS \
            or int(max_new_tokens) != max_new_tokens:  # type: ignore[operator,arg-type]
        raise user_error(f"Max new tokens must be a whole number from 1 to {MAX_NEW_TOKENS}, got {max_new_tokens!r}.")
    return GenerationConfig(max_new_tokens=int(max_new_tokens), temperature=float(temperature))  # type: ignore[arg-type]


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def make_chat_fn(backend: Backend, on_reply: ReplyHook | None = None) -> ChatFn:
    """The ChatInterface function (also the ``/chat`` API endpoint) bound to ``backend``.

    ``on_reply`` hears of every non-empty reply, also one cut short by Stop or an error.
    """

    @spaces.GPU(duration=CHAT_GPU_SECONDS)
    def chat(message: str, history: list[dict], system_prompt: str = SYSTEM_PROMPT,
             temperature: float = DEFAULT_TEMPERATURE,
             max_new_tokens: float = DEFAULT_MAX_NEW_TOKENS) -> Iterator[str]:
        """Stream the tutor's reply to `message`; yields the reply so far after each new piece."""
        config = chat_settings(message, system_prompt, temperature, max_new_tokens)
        reply = ""
        try:
            for delta in backend.stream_chat(build_messages(message, history, system_prompt), config):
                reply += delta
                yield reply
        except BackendError as exc:
            raise user_error(str(exc)) from None
        finally:
            if on_reply is not None and reply:
                turns = [m for m in normalize_messages(history or []) if m["role"] in ("user", "assistant")]
                on_reply([*turns, {"role": "user", "content": content_text(message)}], reply, system_prompt)
        if not reply:
            yield EMPTY_REPLY

    return chat


def require_question(message: str) -> dict:
    """ChatInterface validator: an empty message never reaches the chat (nor the history)."""
    return gr.validate(bool(content_text(message).strip()), "Type a question first.")


def build_chat_tab(backend: Backend, feedback_file: str | os.PathLike[str] | None = None) -> gr.ChatInterface:
    """Render the chat tab inside the current Blocks context.

    Its parts are built with ``render=False`` so that ChatInterface places them (inputs in the accordion
    under the text box) instead of where they were created. With ``feedback_file``, every reply can be
    liked, disliked and edited, and each rating is appended to that file (``ui/rating.py`` says what each
    action writes); a file that cannot be written raises ``FeedbackFileError`` here, before anything runs.
    """
    log = ledger = None
    if feedback_file:
        from ui.rating import PromptLedger  # imported here: ui.rating imports this module (EMPTY_REPLY)

        log, ledger = FeedbackLog(feedback_file), PromptLedger()
    chatbot = gr.Chatbot(
        elem_id="chatbot", label="Llama Tutor", height="62vh", render_markdown=True, sanitize_html=True,
        latex_delimiters=LATEX_DELIMITERS, buttons=["copy", "copy_all"],
        feedback_options=("Like", "Dislike") if log else None, editable="all" if log else None,
        placeholder="**Ask me anything you are learning.** I explain step by step and check that it clicked.")
    textbox = gr.Textbox(elem_id="chat-input", label="Your question", placeholder="Ask a question…",
                         show_label=False, lines=1, max_lines=8, submit_btn=True, stop_btn=True, autofocus=True,
                         scale=7, max_length=MAX_MESSAGE_CHARS)
    settings = [
        gr.Textbox(SYSTEM_PROMPT, label="System prompt", lines=6, max_lines=16, elem_id="chat-system-prompt",
                   info="Sent first in every conversation. Empty = no system prompt.", render=False,
                   max_length=MAX_SYSTEM_PROMPT_CHARS),
        gr.Slider(0.0, MAX_TEMPERATURE, value=DEFAULT_TEMPERATURE, step=0.05, label="Temperature",
                  info="0 = always the most likely words (deterministic); higher = more varied.",
                  elem_id="chat-temperature", render=False),
        gr.Slider(32, MAX_NEW_TOKENS, value=DEFAULT_MAX_NEW_TOKENS, step=32, label="Max new tokens",
                  info="Upper limit on the length of one reply.", elem_id="chat-max-new-tokens",
                  render=False),
    ]
    chat_fn = make_chat_fn(backend, on_reply=ledger.remember if ledger else None)
    chat = gr.ChatInterface(
        chat_fn, chatbot=chatbot, textbox=textbox, additional_inputs=settings,
        additional_inputs_accordion=gr.Accordion("Settings: system prompt, temperature, length", open=False,
                                                 render=False),
        examples=[[question, None, None, None] for question in EXAMPLES], api_name="chat",
        api_description="Stream the tutor's reply. History is kept per client session.",
        # The backend generates one reply at a time anyway; the queue shows waiting users their place.
        concurrency_limit=1, fill_height=True, validator=require_question)
    if log and ledger:
        from ui.rating import add_feedback

        add_feedback(chat, settings, chat_fn, log, ledger, model=backend.description)
    return chat

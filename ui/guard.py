"""What every request must pass before it reaches a handler: the right number of values, the right
types, valid Unicode, and text within the limits below. Problems become one-line messages, the same in
the page and for API clients, logged as one line (real faults keep their traceback).

    with GuardedBlocks(title="Llama Tutor") as demo:   # instead of gr.Blocks
        ...
    raise user_error("Type a question first.")          # in a handler

Limits are checked before anything is tokenized, so one oversized request is refused in milliseconds
instead of holding the model (and every user queued behind it) for minutes.
"""

from __future__ import annotations

import json
import logging
import math
import reprlib
from typing import Any

import gradio as gr
from gradio.exceptions import Error

logger = logging.getLogger(__name__)
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 80

# Characters, not tokens: counted before any tokenizing. A 4096-token context holds ~16k characters of
# English, so a longer message could not be read whole anyway.
MAX_MESSAGE_CHARS = 16_000
MAX_SYSTEM_PROMPT_CHARS = 8_000
MAX_TOPIC_CHARS = 500
# Any other text value (a chat history sent by the page, an API argument): far above real use.
MAX_VALUE_CHARS = 1_000_000
# Values inside one list/dict argument (quiz answers, a chat history): the checks run on the server's event
# loop, so they stop here instead of walking all of a 20 MB list while every other user waits.
MAX_VALUE_ITEMS = 20_000
_MAX_DEPTH = 8


def user_error(message: str, title: str | None = None) -> gr.Error:
    """A ``gr.Error`` for a problem the user can fix: shown as is, logged as one line, no traceback."""
    logger.warning("refused: %s", message)
    return gr.Error(message, print_exception=False, **({"title": title} if title else {}))


def text_limit(block: Any) -> int:
    """The most characters a component accepts: its ``max_length`` if set, else ``MAX_VALUE_CHARS``."""
    return getattr(block, "max_length", None) or MAX_VALUE_CHARS


def _name(block: Any, index: int) -> str:
    label = getattr(block, "label", None)
    return f"'{label}'" if label else f"value {index + 1}"


def _check_text(value: str, what: str, limit: int) -> None:
    if len(value) > limit:
        raise user_error(f"{what} is too long: {len(value):,} characters, the limit is {limit:,}. "
                         "Shorten it or send it in parts.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = value[exc.start]
        raise user_error(f"{what} contains a character that is not valid Unicode ({bad!r} at position "
                         f"{exc.start}): send UTF-8 text.") from None


def _check_nested(value: Any, what: str, depth: int = 0, visited: list[int] | None = None) -> int:
    """Check every string inside lists/dicts (a chat history); returns the characters counted."""
    visited = [0] if visited is None else visited
    visited[0] += 1
    if visited[0] > MAX_VALUE_ITEMS:
        raise user_error(f"{what} holds too many values: over {MAX_VALUE_ITEMS:,} in all. "
                         "Send fewer, or start a new conversation.")
    if depth > _MAX_DEPTH:
        raise user_error(f"{what} is nested too deeply: send plain values.")
    if isinstance(value, str):
        _check_text(value, what, MAX_VALUE_CHARS)
        return len(value)
    total = 0
    items = value.items() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for item in items:
        for part in (item if isinstance(value, dict) else (item,)):
            total += _check_nested(part, what, depth + 1, visited)
            if total > MAX_VALUE_CHARS:
                raise user_error(f"{what} is too long: over {MAX_VALUE_CHARS:,} characters in all. "
                                 "Start a new conversation.")
    return total


def check_value(block: Any, index: int, value: Any) -> None:
    """Refuse a value that the component would mangle or that could tie up the server."""
    what = _name(block, index)
    if value is None and not isinstance(block, gr.Slider):  # a slider has no empty value: its check fails on null
        return
    if isinstance(block, gr.Textbox):
        if not isinstance(value, str):
            raise user_error(f"{what} must be text, got {type(value).__name__} {_short(value)}.")
        _check_text(value, what, text_limit(block))
    elif isinstance(block, (gr.Slider, gr.Number)):
        low, high = getattr(block, "minimum", None), getattr(block, "maximum", None)
        span = f" from {low:g} to {high:g}" if low is not None and high is not None else ""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or (low is not None and value < low) or (high is not None and value > high):
            raise user_error(f"{what} must be a number{span}, got {_short(value)}.")
    else:
        _check_nested(value, what)


def _short(value: Any) -> str:
    text = _REPR.repr(value)  # bounded work, unlike repr() of a client's 20 MB list
    return text if len(text) <= 40 else text[:37] + "..."


class GuardedBlocks(gr.Blocks):
    """``gr.Blocks`` whose every event checks its inputs first (see the module docstring)."""

    def validate_inputs(self, block_fn: Any, inputs: list[Any]) -> None:
        wanted = [b for b in block_fn.inputs if not getattr(b, "stateful", False)]
        if len(inputs) < len(block_fn.inputs):
            names = ", ".join(_name(b, i) for i, b in enumerate(wanted))
            endpoint = f"/{block_fn.api_name}" if block_fn.api_name else "this action"
            raise user_error(f"{endpoint} takes {len(wanted)} value{'s' if len(wanted) != 1 else ''} "
                             f"({names}), got {min(len(inputs), len(wanted))}: send one value for each.")

    async def preprocess_data(self, block_fn: Any, inputs: list[Any], state: Any,
                              explicit_call: bool = False) -> Any:
        self.validate_inputs(block_fn, inputs)
        # A text box sends "" when cleared; an API client may send null. Handlers treat both as empty,
        # but ChatInterface reads a null message before our function runs and fails with no message.
        inputs = ["" if value is None and isinstance(block, gr.Textbox) else value
                  for block, value in zip(block_fn.inputs, inputs)] + list(inputs[len(block_fn.inputs):])
        for i, (block, value) in enumerate(zip(block_fn.inputs, inputs)):
            if not getattr(block, "stateful", False):
                check_value(block, i, value)
        try:
            return await super().preprocess_data(block_fn, inputs, state, explicit_call)
        except Error as exc:  # a component's own check ("Value 12 is less than minimum value 32.")
            if not exc.print_exception:
                raise
            raise user_error(str(exc.message)) from None


# -- the request body, before Gradio parses it ---------------------------------------------------
# Far above any real request (the longest chat history sent by the page is a few hundred KB), and small
# enough that parsing one does not hold up the server's event loop for other users.
MAX_REQUEST_BYTES = 2 * 2**20
_UPLOAD_PATHS = ("/gradio_api/upload", "/upload")  # files: Gradio's own max_file_size applies


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` is answered 413 with a one-line message
    before it is read whole or parsed (by its Content-Length, or as it streams in)."""

    def __init__(self, app: Any, max_bytes: int = MAX_REQUEST_BYTES) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path", "").startswith(_UPLOAD_PATHS):
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._refuse(send, int(length))
            return
        # Streamed without a length: read it here, up to the limit, then hand it on as it came.
        messages, seen = [], 0
        while True:
            message = await receive()
            messages.append(message)
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                await self._refuse(send, seen)
                return
            if message["type"] != "http.request" or not message.get("more_body"):
                break

        async def replay() -> dict:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Any, size: int) -> None:
        message = (f"The request is too large ({size:,} bytes; the limit is {self.max_bytes:,}): "
                   "send shorter text.")
        logger.warning("refused: %s", message)
        body = json.dumps({"error": message}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

"""Row layouts -> ``{"role", "content"}`` conversations, one converter per format.

Every converter takes one raw row (a dict) and returns a validated conversation, or raises ``SkipRow``
with a short reason; the loader counts the reasons and reports them, so nothing is dropped silently.
A valid conversation is: an optional system message, then user/assistant turns alternating from the
user, ending on an assistant reply, every message non-empty.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

ROLE_ALIASES = {
    "system": "system",
    "human": "user", "user": "user",
    "gpt": "assistant", "assistant": "assistant", "chatgpt": "assistant", "bard": "assistant",
    "bing": "assistant", "model": "assistant",
}
GUANACO_MARKER = re.compile(r"###\s*(Human|Assistant)\s*:")


class SkipRow(Exception):
    """This row cannot become a training conversation; ``str(exc)`` is the reason that gets counted."""


def check_conversation(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """The rules every format's output must meet (see the module docstring)."""
    body = messages[1:] if messages and messages[0]["role"] == "system" else messages
    if not body:
        raise SkipRow("no user or assistant turns")
    for i, message in enumerate(body):
        if message["role"] == "system":
            raise SkipRow("system message after the first turn")
        if message["role"] != ("user" if i % 2 == 0 else "assistant"):
            raise SkipRow("turns do not alternate user/assistant starting with the user")
    if body[-1]["role"] != "assistant":
        raise SkipRow("ends without an assistant reply")
    if any(not m["content"].strip() for m in messages):
        raise SkipRow("empty message")
    return messages


def check_prompt(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """A preference pair's prompt: an optional system message, then turns alternating from the user and
    ending on the user's message (the one both replies answer), every message non-empty."""
    body = messages[1:] if messages and messages[0]["role"] == "system" else messages
    if not body:
        raise SkipRow("no user message in the prompt")
    for i, message in enumerate(body):
        if message["role"] == "system":
            raise SkipRow("system message after the first turn")
        if message["role"] != ("user" if i % 2 == 0 else "assistant"):
            raise SkipRow("turns do not alternate user/assistant starting with the user")
    if body[-1]["role"] != "user":
        raise SkipRow("prompt does not end with the user's message")
    if any(not m["content"].strip() for m in messages):
        raise SkipRow("empty message")
    return messages


def message(role: Any, content: Any) -> dict[str, str]:
    if not isinstance(role, str) or role.strip().lower() not in ROLE_ALIASES:
        raise SkipRow("unknown role")
    if not isinstance(content, str):
        raise SkipRow("message text is not a string")
    return {"role": ROLE_ALIASES[role.strip().lower()], "content": content}


def _turns(row: dict[str, Any], column: str, role_key: str, content_key: str) -> list[dict[str, str]]:
    turns = row.get(column)
    if not isinstance(turns, list) or not turns:
        raise SkipRow(f"missing or empty '{column}' list")
    messages = []
    for turn in turns:
        if not isinstance(turn, dict):
            raise SkipRow(f"'{column}' item is not an object")
        if role_key in turn:
            messages.append(message(turn.get(role_key), turn.get(content_key)))
        else:  # some ShareGPT dumps are already role/content
            messages.append(message(turn.get("role"), turn.get("content")))
    return check_conversation(messages)


def sharegpt_to_messages(row: dict[str, Any]) -> list[dict[str, str]]:
    """ShareGPT / FineTome-100k: ``conversations: [{"from": "human"|"gpt"|"system", "value": ...}]``."""
    return _turns(row, "conversations", "from", "value")


def messages_to_messages(row: dict[str, Any]) -> list[dict[str, str]]:
    """Chat format: ``messages: [{"role": "system"|"user"|"assistant", "content": ...}]``."""
    return _turns(row, "messages", "role", "content")


def alpaca_to_messages(row: dict[str, Any]) -> list[dict[str, str]]:
    """Alpaca: ``instruction`` (+ optional ``input`` context) -> ``output``; an optional ``system``."""
    instruction, context, output = row.get("instruction"), row.get("input") or "", row.get("output")
    if not isinstance(instruction, str) or not instruction.strip():
        raise SkipRow("missing instruction")
    if not isinstance(output, str) or not output.strip():
        raise SkipRow("missing output")
    if not isinstance(context, str):
        raise SkipRow("input is not a string")
    user = f"{instruction.strip()}\n\n{context.strip()}" if context.strip() else instruction.strip()
    messages = [{"role": "user", "content": user}, {"role": "assistant", "content": output}]
    system = row.get("system")
    if isinstance(system, str) and system.strip():
        messages.insert(0, {"role": "system", "content": system})
    return check_conversation(messages)


def guanaco_to_messages(row: dict[str, Any]) -> list[dict[str, str]]:
    """openassistant-guanaco: ``text`` = ``### Human: ... ### Assistant: ... ### Human: ...``."""
    text = row.get("text")
    if not isinstance(text, str):
        raise SkipRow("missing text")
    parts = GUANACO_MARKER.split(text)
    if len(parts) < 3:
        raise SkipRow("no '### Human:' / '### Assistant:' markers")
    if parts[0].strip():
        raise SkipRow("text before the first '### Human:' marker")
    messages = [{"role": "user" if speaker == "Human" else "assistant", "content": content.strip()}
                for speaker, content in zip(parts[1::2], parts[2::2])]
    return check_conversation(messages)


def detect_format(rows: list[dict[str, Any]]) -> str | None:
    """The format of the first object rows, from their columns; ``None`` when nothing matches."""
    for row in rows[:20]:
        if not isinstance(row, dict):
            continue
        keys = set(row)
        if "conversations" in keys:
            return "sharegpt"
        if "messages" in keys:
            return "messages"
        if {"instruction", "output"} <= keys:
            return "alpaca"
        if "question" in keys and ({"choices", "choice0", "A"} & keys):
            return "mcq-csv"
        if isinstance(row.get("text"), str) and GUANACO_MARKER.search(row["text"]):
            return "guanaco"
    return None


CONVERTERS: dict[str, Callable[[dict[str, Any]], list[dict[str, str]]]] = {
    "sharegpt": sharegpt_to_messages,
    "messages": messages_to_messages,
    "alpaca": alpaca_to_messages,
    "guanaco": guanaco_to_messages,
}

"""A scripted Backend for tests: replies are queued strings (or callables), every call is recorded.

It implements the real ``inference.Backend`` protocol, so code under test cannot tell it from a model.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator

from inference.backend import GenerationConfig
from inference.registry import Capabilities

Reply = str | Callable[[list[dict]], str]


class ScriptedBackend:
    """Returns queued replies in order; when the queue is empty, ``default`` answers (or it raises)."""

    name = "scripted"
    description = "scripted (test replies)"

    def __init__(self, replies: list[Reply] | None = None, default: Reply | None = None,
                 chunk_size: int = 4, json_schema: bool = False, concurrent: bool = False) -> None:
        # json_schema=True: claims to constrain output to GenerationConfig.json_schema (the queued
        # replies are then expected to be JSON), like llama.cpp and OpenAI-compatible servers.
        self.capabilities = Capabilities(json_schema=json_schema, concurrent=concurrent)
        self.closed = False
        self._replies: deque[Reply] = deque(replies or [])
        self.default = default
        self.chunk_size = chunk_size
        self.calls: list[tuple[str, list[list[dict]], GenerationConfig | None]] = []
        self._lock = threading.Lock()

    def queue(self, *replies: Reply) -> None:
        with self._lock:
            self._replies.extend(replies)

    def _next(self, messages: list[dict]) -> str:
        with self._lock:
            reply = self._replies.popleft() if self._replies else self.default
        if reply is None:
            raise AssertionError("ScriptedBackend ran out of replies")
        return reply(messages) if callable(reply) else reply

    def stream_chat(self, messages: list[dict], config: GenerationConfig | None = None) -> Iterator[str]:
        with self._lock:
            self.calls.append(("stream_chat", [messages], config))
        text = self._next(messages)
        for i in range(0, len(text), self.chunk_size):
            yield text[i : i + self.chunk_size]

    def chat_batch(self, conversations: list[list[dict]], config: GenerationConfig | None = None) -> list[str]:
        with self._lock:
            self.calls.append(("chat_batch", conversations, config))
        return [self._next(messages) for messages in conversations]

    def close(self) -> None:
        self.closed = True

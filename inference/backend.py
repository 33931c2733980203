"""The one seam between models and everything that talks to them (app, quiz, console chat).

A backend turns a conversation (a list of ``{"role", "content"}`` dicts, system prompt first when the
caller wants one) into the assistant's reply, either streamed as text deltas or generated for several
conversations at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass
class GenerationConfig:
    """How one reply is sampled. ``temperature=0`` means greedy decoding."""

    max_new_tokens: int = 512
    temperature: float = 0.7
    top_p: float = 0.9
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be 0 (greedy) or positive, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@runtime_checkable
class Backend(Protocol):
    """What the app, the quiz and the console chat need from a model."""

    name: str

    def stream_chat(
        self, messages: list[dict], config: GenerationConfig | None = None
    ) -> Iterator[str]:
        """Yield text deltas of the assistant's reply to ``messages``."""
        ...

    def chat_batch(
        self, conversations: list[list[dict]], config: GenerationConfig | None = None
    ) -> list[str]:
        """Return one full reply per conversation, generated together where the backend can batch."""
        ...


class BackendError(RuntimeError):
    """A problem a user can fix (bad path, unreachable hub, wrong adapter, out of memory).

    The message is one line that names the problem and the fix; entry points print it as is.
    """

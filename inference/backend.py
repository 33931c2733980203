"""The one seam between models and everything that talks to them (app, quiz, console chat).

A backend turns a conversation (a list of ``{"role", "content"}`` dicts, system prompt first when the
caller wants one) into the assistant's reply, either streamed as text deltas or generated for several
conversations at once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from inference.registry import Capabilities


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass
class GenerationConfig:
    """How one reply is sampled. ``temperature=0`` means greedy decoding.

    ``json_schema``: constrain the reply to JSON matching this schema, on backends whose capabilities
    say ``json_schema`` (others ignore it, so callers check the capability first).
    """

    max_new_tokens: int = 512
    temperature: float = 0.7
    top_p: float = 0.9
    seed: int | None = None
    json_schema: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.max_new_tokens, int) or isinstance(self.max_new_tokens, bool) \
                or self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be a whole number of at least 1, got {self.max_new_tokens!r}")
        if not _is_number(self.temperature) or not math.isfinite(self.temperature) or self.temperature < 0:
            raise ValueError(f"temperature must be 0 (greedy) or a positive number, got {self.temperature!r}")
        if not _is_number(self.top_p) or not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be a number in (0, 1], got {self.top_p!r}")
        if self.seed is not None and (not isinstance(self.seed, int) or isinstance(self.seed, bool)):
            raise ValueError(f"seed must be a whole number or None, got {self.seed!r}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@runtime_checkable
class Backend(Protocol):
    """What the app, the quiz and the console chat need from a model."""

    name: str
    # What this backend can do (``inference.registry.Capabilities``): streaming, real batching,
    # concurrent requests, JSON-schema output, log-likelihoods.
    capabilities: Capabilities

    @property
    def description(self) -> str:
        """One line for logs and the page: backend, model, precision and device."""
        ...

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

    def close(self) -> None:
        """Free what the backend holds (worker threads, model memory, connections)."""
        ...


class BackendError(RuntimeError):
    """A problem a user can fix (bad path, unreachable hub, wrong adapter, out of memory).

    The message is one line that names the problem and the fix; entry points print it as is.
    """

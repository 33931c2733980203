"""The KV caches of recent conversations, kept so a returning user's next turn need not re-read the
whole conversation: each entry is the token list a cache holds and its bytes, bounded in total size.

    cache = PrefixCache(capacity=512 * 2**20)
    cache.put(tokens, state_bytes)
    key, state, shared = cache.best(prompt)    # the entry sharing the longest start with prompt
"""

from __future__ import annotations

import threading
from collections import OrderedDict


def common_prefix(a: list[int], b: list[int]) -> int:
    """How many leading tokens ``a`` and ``b`` share."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


class PrefixCache:
    """Least-recently-used states keyed by token lists; at most ``capacity`` bytes of states."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.size = 0
        self._entries: OrderedDict[tuple[int, ...], bytes] = OrderedDict()
        self._pinned: dict[tuple[int, ...], bytes] = {}  # never dropped, not counted in ``size``
        self._lock = threading.Lock()

    def pin(self, tokens: list[int], state: bytes) -> None:
        """Keep ``state`` for good: a prefix many prompts share (the quiz's instructions)."""
        with self._lock:
            self._pinned[tuple(tokens)] = state

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, tokens: list[int], state: bytes) -> None:
        """Keep ``state`` for ``tokens``; the oldest entries go first when over capacity.

        Entries that are a prefix of the new one are dropped: the new one serves every prompt they serve.
        """
        if len(state) > self.capacity:
            return
        key = tuple(tokens)
        with self._lock:
            for old in [k for k in self._entries if key[: len(k)] == k or k == key]:
                self.size -= len(self._entries.pop(old))
            self._entries[key] = state
            self.size += len(state)
            while self.size > self.capacity:
                _, dropped = self._entries.popitem(last=False)
                self.size -= len(dropped)

    def best(self, prompt: list[int]) -> tuple[list[int], bytes | None, int]:
        """The entry sharing the longest start with ``prompt``: (its tokens, its state, tokens shared).

        The entry is marked as recently used; ``(..., None, 0)`` when nothing is shared.
        """
        with self._lock:
            best_key, best_shared = None, 0
            for key in [*self._entries, *self._pinned]:
                shared = common_prefix(list(key), prompt)
                if shared > best_shared:
                    best_key, best_shared = key, shared
            if best_key is None:
                return [], None, 0
            if best_key in self._entries:
                self._entries.move_to_end(best_key)
                return list(best_key), self._entries[best_key], best_shared
            return list(best_key), self._pinned[best_key], best_shared

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._pinned.clear()
            self.size = 0

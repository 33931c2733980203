"""One persistent thread that runs every generation of a model, one at a time.

Serialising generation means concurrent callers never interleave tokens or share sampling state, and
keeps CUDA graphs (captured per thread by the static-cache fast path) valid across calls.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

_DONE = object()


class GenerationWorker:
    def __init__(self, name: str = "generation") -> None:
        self.name = name
        self._start()

    def _start(self) -> None:
        self._pid = os.getpid()
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[], Any]) -> Future:
        """Queue ``fn``; the returned future holds its result or exception."""
        if os.getpid() != self._pid:
            # A forked child (ZeroGPU runs each @spaces.GPU call in one) has no copy of the thread.
            self._start()
        future: Future = Future()
        self._jobs.put((fn, future))
        return future

    def run(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the worker and wait for it (from the worker itself, run it inline)."""
        if threading.current_thread() is self._thread:
            return fn()
        return self.submit(fn).result()

    def stream(self, produce: Callable[[Callable[[str], None], threading.Event], None]) -> Iterator[str]:
        """Run ``produce(emit, cancelled)`` on the worker and yield each piece it emits, as it emits it.

        When the caller stops reading (the user pressed Stop), ``cancelled`` is set so ``produce`` can
        stop; an exception in ``produce`` is raised here after the pieces before it.
        """
        pieces: queue.SimpleQueue[Any] = queue.SimpleQueue()
        cancelled = threading.Event()

        def job() -> None:
            try:
                produce(pieces.put, cancelled)
            finally:
                pieces.put(_DONE)

        future = self.submit(job)
        try:
            while (piece := pieces.get()) is not _DONE:
                yield piece
        finally:
            cancelled.set()
        future.result()

    def close(self, final: Callable[[], Any] | None = None) -> None:
        """Stop after the queued jobs; ``final`` runs on the worker last (e.g. freeing the model)."""
        if final is not None:
            self.submit(final)
        self._jobs.put(None)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, future = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to the caller through the future
                future.set_exception(exc)

"""One persistent thread that runs every generation of a model, one at a time.

Serialising generation means concurrent callers never interleave tokens or share sampling state, and
keeps CUDA graphs (captured per thread by the static-cache fast path) valid across calls.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any


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

    def close(self) -> None:
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

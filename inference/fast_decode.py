"""The decode engine: continuous batching of concurrent requests into one CUDA-graphed decode step.

    engine = DecodeEngine(hf_model, worker=GenerationWorker(), slots=8, max_context=4096)
    engine.warm_up()                                   # kernels compiled, one graph per batch size captured
    request = engine.submit(prompt_ids, max_new_tokens=256, temperature=0.0, stop_ids={128009})
    for token_id in request: ...                       # ids as they are generated (from any thread)

How a request runs: it waits in a queue until a cache slot is free; between two decode steps the engine
prefills it (plain PyTorch with flash attention, its k/v written straight into the slot), samples its
first token and adds it to the batch. Every step then runs rows 0..B-1 — slot b is row b, B the
smallest captured batch size (1, 2, 4, 8, 16) covering the highest busy slot — as one CUDA graph replay:
embedding, 28 fused layers (``inference.fast_model``), logits, greedy or temperature/top-p sampling,
the next token written back as the next input and the positions advanced, all on the GPU. The host
reads step N's tokens while step N+1 runs (one pinned copy and one event per step), so the GPU never
waits for Python; a row that stops (end token, length, cancelled) is freed after the step already
queued, whose extra token for it is dropped.

Everything runs on one worker thread (``inference.worker.GenerationWorker``), which owns the graphs;
``submit`` and the request iterators are safe from any thread. On CPU the same engine runs the step in
plain PyTorch (``TorchOps``) without graphs: the reference the tests compare with transformers.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import torch

from inference.fast_model import FastLlama, TorchOps, TritonOps, unsupported_reason
from inference.fast_sampling import SEED_MOD, argmax_rows, sample_next, torch_pick, triton_pick

logger = logging.getLogger(__name__)

_END = object()
BUCKETS = (1, 2, 4, 8, 16)


def row_seed(seed: int, index: int) -> int:
    """Seed of the ``index``-th reply of a batch: reply 0 keeps ``seed`` (a stream and a batch of one agree)."""
    return (seed + index * 2654435761) % SEED_MOD


class Request:
    """One generation: its prompt, sampling settings and the queue its token ids arrive on."""

    def __init__(self, ids: list[int], max_new_tokens: int, temperature: float, top_p: float, seed: int,
                 stop_ids: frozenset[int]) -> None:
        self.ids, self.max_new_tokens = ids, max_new_tokens
        self.temperature, self.top_p, self.seed = float(temperature), float(top_p), seed % SEED_MOD
        self.stop_ids = stop_ids
        self.tokens: list[int] = []        # every generated id, the stop token included
        self.row: int | None = None
        self.done = False
        self.cancelled = threading.Event()
        self.submitted_at = time.perf_counter()
        self.first_token_at: float | None = None
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def cancel(self) -> None:
        """Stop generating (the reader went away); the slot is freed after the step in flight."""
        self.cancelled.set()

    def __iter__(self) -> Iterator[int]:
        """Token ids as they are generated, without the stop token; raises the engine's error, if any."""
        while (item := self._queue.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item

    def result(self) -> list[int]:
        return list(self)


class DecodeEngine:
    """Continuous batching over ``slots`` cache slots of ``max_context`` tokens each."""

    def __init__(self, model: Any, *, worker: Any, slots: int = 8, max_context: int = 4096,
                 triton: bool | None = None, cuda_graphs: bool | None = None) -> None:
        reason = unsupported_reason(model)
        if reason is not None:
            raise ValueError(f"the fast decode path does not support this model: {reason}")
        if not 1 <= slots <= BUCKETS[-1]:
            raise ValueError(f"slots must be 1..{BUCKETS[-1]}, got {slots}")
        self.max_context = max_context
        # One spare position: the step queued behind a row's last token may still write one k/v.
        self.fast = FastLlama(model, slots=slots, capacity=max_context + 1)
        self.cuda = self.fast.device.type == "cuda"
        use_triton = self.cuda if triton is None else triton
        self.ops = TritonOps() if use_triton else TorchOps()
        self.pick = triton_pick if use_triton else torch_pick
        self.use_graphs = self.cuda if cuda_graphs is None else cuda_graphs
        self.buckets = tuple(b for b in BUCKETS if b < slots) + (slots,)
        self._worker = worker
        self._rows: list[Request | None] = [None] * slots
        self._pending: collections.deque[Request] = collections.deque()
        self._lock = threading.Lock()
        self._running = False
        self._graphs: dict[tuple[int, bool], Any] = {}
        self._pool = None
        if self.cuda:
            self._host = [torch.empty(slots, dtype=torch.long, pin_memory=True) for _ in range(2)]
            self._events = [torch.cuda.Event() for _ in range(2)]
        self._flip = 0
        self.steps = 0
        self.warm_up_timings: dict[str, float] = {}
        logger.info("decode engine: %d slots x %d tokens (KV cache %.2f GiB), %s ops, CUDA graphs %s",
                    slots, max_context, self.fast.kv_bytes / 2**30, self.ops.name, "on" if self.use_graphs else "off")

    # -- set-up ---------------------------------------------------------------------------------------
    def warm_up(self) -> dict:
        """Compile the kernels and capture one graph per batch size and sampling mode (on the worker)."""
        return self._worker.run(self._warm_up)

    @torch.inference_mode()
    def _warm_up(self) -> dict:
        timings: dict[str, float] = {}
        start = time.perf_counter()
        if self.use_graphs:
            self._pool = torch.cuda.graph_pool_handle()
            for batch in reversed(self.buckets):  # largest first: the smaller graphs reuse its memory
                for sample in (False, True):
                    self._capture(batch, sample)
        timings["warm_up_s"] = round(time.perf_counter() - start, 2)
        self.warm_up_timings = timings
        logger.info("decode engine warmed up: %s", timings)
        return timings

    def _capture(self, batch: int, sample: bool) -> None:
        f = self.fast
        saved = f.tokens.clone(), f.pos.clone()
        torch.cuda.synchronize()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            self._step(batch, sample)  # compiles the kernels and sets up cuBLAS on a non-default stream
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self._pool):
            self._step(batch, sample)
        f.tokens.copy_(saved[0])
        f.pos.copy_(saved[1])
        torch.cuda.synchronize()
        self._graphs[(batch, sample)] = graph

    def _step(self, batch: int, sample: bool) -> None:
        """One token for rows 0..batch-1, all on the device (this is what the graphs hold)."""
        f = self.fast
        logits = f.decode(batch, self.ops)
        if sample:
            nxt = sample_next(logits, f.temperature[:batch], f.top_p[:batch], f.seed[:batch], f.pos[:batch],
                              self.pick)
        else:
            nxt = argmax_rows(logits)
        f.tokens[:batch].copy_(nxt)
        pos = f.pos[:batch]
        pos.add_((pos >= 0).to(pos.dtype))

    # -- requests -------------------------------------------------------------------------------------
    def submit(self, ids: list[int], max_new_tokens: int, temperature: float = 0.0, top_p: float = 1.0,
               seed: int = 0, stop_ids: frozenset[int] | set[int] = frozenset()) -> Request:
        """Queue a generation; iterate the returned request for its token ids."""
        if not ids:
            raise ValueError("the prompt is empty")
        if len(ids) >= self.max_context:
            raise ValueError(f"a prompt of {len(ids)} tokens leaves no room in the {self.max_context}-token context")
        request = Request(list(ids), max(1, max_new_tokens), temperature, top_p, seed, frozenset(stop_ids))
        with self._lock:
            self._pending.append(request)
            start, self._running = not self._running, True
        if start:
            self._worker.submit(self._serve)
        return request

    def _serve(self) -> None:
        try:
            with torch.inference_mode():
                self._loop()
        except BaseException as exc:  # every waiting reader gets the error instead of hanging
            logger.exception("decode engine failed")
            self._fail_all(exc)
            raise

    def _loop(self) -> None:
        inflight: collections.deque[tuple] = collections.deque()
        while True:
            if self._pending and None in self._rows:
                while inflight:  # a prefill waits for the host anyway: settle the queued steps first
                    self._collect(inflight.popleft())
                self._admit()
            live = [row for row, request in enumerate(self._rows) if request is not None]
            if not live:
                while inflight:
                    self._collect(inflight.popleft())
                with self._lock:
                    if not self._pending:
                        self._running = False
                        return
                continue
            inflight.append(self._launch(live))
            if len(inflight) > 1 or not self.cuda:
                self._collect(inflight.popleft())

    def _launch(self, live: list[int]) -> tuple:
        batch = next(b for b in self.buckets if b > live[-1])
        sample = any(self._rows[row].temperature > 0 for row in live)
        graph = self._graphs.get((batch, sample)) if self.use_graphs else None
        if graph is not None:
            graph.replay()
        else:
            self._step(batch, sample)
        self.steps += 1
        snapshot = [(row, self._rows[row]) for row in live]
        if not self.cuda:
            return self.fast.tokens[:batch].tolist(), None, snapshot
        host, event = self._host[self._flip], self._events[self._flip]
        self._flip ^= 1
        host[:batch].copy_(self.fast.tokens[:batch], non_blocking=True)
        event.record()
        return host, event, snapshot

    def _collect(self, step: tuple) -> None:
        tokens, event, snapshot = step
        if event is not None:
            event.synchronize()
            tokens = tokens.tolist()
        for row, request in snapshot:
            if not request.done:
                self._emit(request, tokens[row])

    def _admit(self) -> None:
        f = self.fast
        while self._pending and None in self._rows:
            with self._lock:
                request = self._pending.popleft()
            if request.cancelled.is_set():
                self._finish(request)
                continue
            row = self._rows.index(None)
            try:
                logits = f.prefill(row, torch.tensor(request.ids, device=f.device))
            except torch.OutOfMemoryError:
                torch.cuda.empty_cache()
                from inference.backend import BackendError

                request.done = True
                request._queue.put(BackendError(
                    f"CUDA out of memory while reading a {len(request.ids)}-token prompt; lower --max-context"))
                continue
            first = self._first_token(logits, request)
            self._rows[row], request.row = request, row
            f.tokens[row].fill_(first)
            f.pos[row].fill_(len(request.ids))
            f.temperature[row].fill_(request.temperature)
            f.top_p[row].fill_(request.top_p)
            f.seed[row].fill_(request.seed)
            self._emit(request, first)

    def _first_token(self, logits: torch.Tensor, request: Request) -> int:
        if request.temperature <= 0:
            return int(argmax_rows(logits[None])[0])
        device = logits.device

        def one(value: float | int, dtype: torch.dtype) -> torch.Tensor:
            return torch.tensor([value], dtype=dtype, device=device)

        token = sample_next(logits[None], one(request.temperature, torch.float32), one(request.top_p, torch.float32),
                            one(request.seed, torch.long), one(len(request.ids) - 1, torch.int32), self.pick)
        return int(token[0])

    def _emit(self, request: Request, token: int) -> None:
        if request.cancelled.is_set():
            self._finish(request)
            return
        if request.first_token_at is None:
            request.first_token_at = time.perf_counter()
        request.tokens.append(token)
        if token in request.stop_ids:
            self._finish(request)
            return
        request._queue.put(token)
        if len(request.tokens) >= request.max_new_tokens \
                or len(request.ids) + len(request.tokens) >= self.max_context:
            self._finish(request)

    def _finish(self, request: Request) -> None:
        request.done = True
        if request.row is not None:
            self.fast.pos[request.row].fill_(-1)  # idle from the next queued step on
            self._rows[request.row] = None
            request.row = None
        request._queue.put(_END)

    def _fail_all(self, exc: BaseException) -> None:
        with self._lock:
            waiting = list(self._pending)
            self._pending.clear()
            self._running = False
        for request in waiting + [r for r in self._rows if r is not None]:
            request.done = True
            request._queue.put(exc)
        self._rows = [None] * len(self._rows)
        try:
            self.fast.pos.fill_(-1)
        except RuntimeError:  # the device itself may be what failed
            logger.warning("could not reset the decode rows after the failure")

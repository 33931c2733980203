"""Which implementation of each decode matrix product is faster on this GPU: the fused Triton GEMV or cuBLAS.

Timed once at warm-up (about a second), per product shape and batch size, inside a CUDA graph and
over several layers' weights (one weight read repeatedly would be served from L2 and time the cache,
not memory). The answer differs by GPU and batch size, so it is measured rather than assumed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch

logger = logging.getLogger(__name__)

CHOICES = ("triton", "cublas")


def graph_time_ms(fn: Callable[[], Any], replays: int = 5) -> float:
    """Milliseconds of one run of ``fn``, captured in a CUDA graph (no launch gaps from Python)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        fn()  # compile and set up outside the capture
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    graph.replay()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(replays):
        graph.replay()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / replays


def _products(fast: Any, batch: int) -> dict[str, tuple[Callable[[Any, Any], Any], tuple, list]]:
    """name -> (run one product with ops on a layer, its choice key, the weights to cycle through)."""
    from inference.fast_model import TritonOps

    def rand(cols: int) -> torch.Tensor:
        return torch.randn(batch, cols, device=fast.device, dtype=fast.dtype)

    hidden, d = fast.config.hidden_size, fast.head_dim
    x, attn, gu, res = rand(hidden), rand(fast.n_q * d), rand(2 * fast.config.intermediate_size), rand(hidden)
    eps = fast.eps
    layers = fast.layers[: min(8, len(fast.layers))]
    first = layers[0]
    return {
        "qkv": (lambda ops, L: ops.linear(x, L.wqkv, norm_weight=L.ln1, eps=eps),
                TritonOps.key(x, first.wqkv, True, False), layers),
        "o": (lambda ops, L: ops.linear(attn, L.wo, residual=res), TritonOps.key(attn, first.wo, False, False), layers),
        "gate_up": (lambda ops, L: ops.linear(x, L.wgu, norm_weight=L.ln2, eps=eps),
                    TritonOps.key(x, first.wgu, True, False), layers),
        "down": (lambda ops, L: ops.linear(gu, L.wd, residual=res, silu_mul=True),
                 TritonOps.key(gu, first.wd, False, True), layers),
        "lm_head": (lambda ops, _: ops.linear(x, fast.lm_head, norm_weight=fast.final_norm, eps=eps,
                                              out_dtype=torch.float32),
                    TritonOps.key(x, fast.lm_head, True, False), [None]),
    }


@torch.inference_mode()
def time_products(fast: Any, ops: Any, buckets: tuple[int, ...]) -> list[dict]:
    """Per product and batch size: microseconds per call of each implementation."""
    from inference.fast_model import TritonOps

    rows = []
    for batch in buckets:
        for name, (run, key, weights) in _products(fast, batch).items():
            row: dict[str, Any] = {"product": name, "batch": batch, "n": key[0], "k": key[1]}
            for choice in CHOICES:
                trial = TritonOps(choose={key: choice}, gemv_configs=ops.gemv_configs, n_split=ops.n_split)
                ms = graph_time_ms(lambda: [run(trial, w) for w in weights])
                row[f"{choice}_us"] = round(1000 * ms / len(weights), 2)
            row["key"] = key
            rows.append(row)
    return rows


def choose_products(fast: Any, ops: Any, buckets: tuple[int, ...]) -> dict[tuple, str]:
    """The faster implementation per product key, timed on this GPU."""
    rows = time_products(fast, ops, buckets)
    choices = {row["key"]: min(CHOICES, key=lambda c: row[f"{c}_us"]) for row in rows}
    logger.info("decode products: %s", ", ".join(
        f"{r['product']}@{r['batch']} triton {r['triton_us']}us / cublas {r['cublas_us']}us" for r in rows))
    fast.tuning = rows
    return choices

"""GPU checks and measurements of the fast decode engine, run by ``bench/serving_speed.py`` on the worker thread.

- ``check_engine``: logits of the engine's prefill and decode step against transformers' forward, every
  Triton kernel against its PyTorch reference on the real shapes, and the sampler's frequencies;
- ``bench_kernels``: microseconds and GB/s of each decode product (cuBLAS, with and without its Triton
  prologue) and of the decode attention against PyTorch's SDPA at several context lengths;
- ``profile_steps``: one decode step's GPU time per kernel, and the step's time as a CUDA graph replay.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F


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


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return round(float((a.float() - b.float()).norm() / b.float().norm()), 5)


@torch.inference_mode()
def check_engine(backend: Any, args: Any) -> dict:
    from inference.fast_model import TorchOps

    engine, model = backend.engine, backend.model
    f = engine.fast
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 128000, (300,), generator=g).to(f.device)
    ref = model(ids[None]).logits[0, -1].float()
    # transformers' own decode step (cached k/v, one new token) differs from its full forward by bf16 rounding
    past = model(ids[None, :-1], use_cache=True).past_key_values
    hf_step = model(ids[None, -1:], past_key_values=past).logits[0, -1].float()
    out: dict[str, Any] = {"prefill_vs_transformers": rel(f.prefill(0, ids), ref),
                           "transformers_decode_step_vs_its_forward": rel(hf_step, ref)}
    f.prefill(0, ids[:-1])
    f.tokens[0] = ids[-1]
    f.pos[0] = len(ids) - 1
    triton_logits = f.decode(1, engine.ops)[0].clone()
    torch_logits = f.decode(1, TorchOps())[0].clone()
    f.pos.fill_(-1)
    out.update(decode_triton_vs_transformers=rel(triton_logits, ref), decode_torch_vs_transformers=rel(torch_logits, ref),
               decode_triton_vs_transformers_decode_step=rel(triton_logits, hf_step),
               decode_triton_vs_torch=rel(triton_logits, torch_logits),
               argmax_equal=bool(triton_logits.argmax() == ref.argmax()),
               top10_overlap=len(set(triton_logits.topk(10).indices.tolist()) & set(ref.topk(10).indices.tolist())))
    out["kernels"] = check_kernels(f, engine.ops)
    out["sampler"] = check_sampler(f.device)
    return out


def check_kernels(f: Any, ops: Any) -> dict:
    """Each Triton operation against ``TorchOps`` on random inputs of the real shapes (batch 8, some rows idle)."""
    from inference.fast_model import TorchOps

    ref_ops, layer, batch = TorchOps(), f.layers[0], min(8, f.slots)
    x = torch.randn(batch, f.config.hidden_size, device=f.device, dtype=f.dtype)
    gu = torch.randn(batch, 2 * f.config.intermediate_size, device=f.device, dtype=f.dtype)
    attn_in = torch.randn(batch, f.n_q * f.head_dim, device=f.device, dtype=f.dtype)
    out = {"qkv": rel(ops.linear(x, layer.wqkv, norm_weight=layer.ln1, eps=f.eps),
                      ref_ops.linear(x, layer.wqkv, norm_weight=layer.ln1, eps=f.eps)),
           "o_residual": rel(ops.linear(attn_in, layer.wo, residual=x.clone()),
                             ref_ops.linear(attn_in, layer.wo, residual=x)),
           "down_silu": rel(ops.linear(gu, layer.wd, residual=x.clone(), silu_mul=True),
                            ref_ops.linear(gu, layer.wd, residual=x, silu_mul=True)),
           "lm_head": rel(ops.linear(x, f.lm_head, norm_weight=f.final_norm, eps=f.eps, out_dtype=torch.float32),
                          ref_ops.linear(x, f.lm_head, norm_weight=f.final_norm, eps=f.eps, out_dtype=torch.float32))}
    saved = f.k_cache[0, :batch].clone(), f.v_cache[0, :batch].clone()
    f.k_cache[0, :batch].normal_()
    f.v_cache[0, :batch].normal_()
    pos = torch.tensor([511, -1, 0, 1023, 63, 64, 4000, 2047][:batch], dtype=torch.int32, device=f.device)
    pos = pos.clamp(max=f.capacity - 1)
    qkv = torch.randn(batch, (f.n_q + 2 * f.n_kv) * f.head_dim, device=f.device, dtype=f.dtype)
    k_before = f.k_cache[0].clone()
    q_tri = ops.rope_cache(f, qkv, 0, pos)
    k_tri = f.k_cache[0].clone()
    f.k_cache[0].copy_(k_before)
    q_ref = ref_ops.rope_cache(f, qkv, 0, pos)
    out["rope_q"] = rel(q_tri, q_ref)
    out["rope_k_cache"] = rel(k_tri, f.k_cache[0])
    out["attention"] = rel(ops.attention(f, q_ref, 0, pos), ref_ops.attention(f, q_ref, 0, pos))
    f.k_cache[0, :batch], f.v_cache[0, :batch] = saved
    return out


def check_sampler(device: torch.device, rows: int = 20000) -> dict:
    """Frequencies of the Gumbel sampler over many (seed, position) keys, and the top-p cut."""
    from inference.fast_sampling import sample_next, triton_pick

    logits = torch.tensor([0.1, 0.2, 0.3, 0.4], device=device).log().repeat(rows, 1)
    temperature = torch.ones(rows, device=device)
    seeds = torch.arange(rows, device=device) * 7 + 3
    pos = (torch.arange(rows, device=device) % 97).to(torch.int32)
    picks = sample_next(logits, temperature, torch.ones(rows, device=device), seeds, pos, triton_pick)
    freq = torch.bincount(picks, minlength=4).float() / rows
    cut = sample_next(logits, temperature, torch.full((rows,), 0.65, device=device), seeds, pos, triton_pick)
    return {"frequencies_for_0.1_0.2_0.3_0.4": [round(v, 4) for v in freq.tolist()],
            "top_p_0.65_frequencies": [round(v, 4) for v in (torch.bincount(cut, minlength=4).float() / rows).tolist()]}


@torch.inference_mode()
def bench_kernels(f: Any) -> dict:
    """Per decode product and batch size: cuBLAS alone, and with the RMSNorm/SiLU prologue as the engine runs it."""
    from inference.fast_model import TritonOps

    ops, layers, rows = TritonOps(), f.layers[:8], []
    products = {"qkv": ([L.wqkv for L in layers], "norm"), "o": ([L.wo for L in layers], "residual"),
                "gate_up": ([L.wgu for L in layers], "norm"), "down": ([L.wd for L in layers], "silu"),
                "lm_head": ([f.lm_head], "norm")}
    for batch in (1, 8):
        for name, (weights, kind) in products.items():
            n, k = weights[0].shape
            x = torch.randn(batch, 2 * k if kind == "silu" else k, device=f.device, dtype=f.dtype)
            plain_x, res = x[:, :k].contiguous(), torch.randn(batch, n, device=f.device, dtype=f.dtype)
            nw = torch.ones(k, device=f.device, dtype=f.dtype)
            mm = graph_time_ms(lambda: [plain_x @ w.t() for w in weights]) / len(weights)
            engine = graph_time_ms(lambda: [ops.linear(
                x, w, norm_weight=nw if kind == "norm" else None, eps=1e-5, silu_mul=kind == "silu",
                residual=res if kind in ("residual", "silu") else None) for w in weights]) / len(weights)
            rows.append({"product": name, "batch": batch, "n": n, "k": k, "cublas_us": round(1000 * mm, 2),
                         "engine_us": round(1000 * engine, 2),
                         "cublas_gb_per_s": round(n * k * 2 / (mm * 1e-3) / 1e9, 1)})
    return {"products": rows, "attention": bench_attention(f)}


def bench_attention(f: Any) -> list[dict]:
    from inference import fast_kernels as K
    from inference.fast_model import default_splits

    rows = []
    d, layer = f.head_dim, 0
    f.k_cache[layer].normal_()  # timed on random data: zeros can run faster than real values
    f.v_cache[layer].normal_()
    for batch in (1, 8):
        for length in (512, 1024, 4000):
            if length >= f.capacity:
                continue
            pos = torch.full((batch,), length - 1, dtype=torch.int32, device=f.device)
            q = torch.randn(batch, f.n_q * d, device=f.device, dtype=f.dtype)
            out = torch.empty_like(q)
            splits = default_splits(batch, f.n_kv)
            mine = graph_time_ms(lambda: K.decode_attention(q, f.k_cache[layer], f.v_cache[layer], pos, out, f.n_q,
                                                            f.n_kv, splits))
            qs = q.view(batch, f.n_q, 1, d)
            k = f.k_cache[layer, :batch, :, :length]
            v = f.v_cache[layer, :batch, :, :length]
            sdpa = graph_time_ms(lambda: F.scaled_dot_product_attention(qs, k, v, enable_gqa=True))
            kv_bytes = 2 * batch * f.n_kv * length * d * 2
            rows.append({"batch": batch, "length": length, "splits": splits, "triton_us": round(1000 * mine, 2),
                         "sdpa_us": round(1000 * sdpa, 2), "triton_gb_per_s": round(kv_bytes / (mine * 1e-3) / 1e9, 1)})
    return rows


@torch.inference_mode()
def profile_steps(backend: Any, prompt_tokens: int) -> dict:
    engine = backend.engine
    f = engine.fast
    out = {}
    for batch in (1, 8):
        batch = min(batch, f.slots)
        ids = torch.randint(0, 128000, (prompt_tokens,), device=f.device)
        for row in range(batch):
            f.prefill(row, ids)
        f.tokens[:batch] = ids[:batch]
        f.pos[:batch] = prompt_tokens
        f.temperature[:batch] = 0.7
        f.top_p[:batch] = 0.9
        f.seed[:batch] = torch.arange(batch, device=f.device)
        entry: dict[str, Any] = {}
        for sample in (False, True):
            graph = engine._graphs[(batch, sample)]
            graph.replay()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(50):
                graph.replay()
            end.record()
            end.synchronize()
            ms = start.elapsed_time(end) / 50
            entry["sampled_step_ms" if sample else "greedy_step_ms"] = round(ms, 3)
        entry["greedy_tokens_per_s_per_row"] = round(1000 / entry["greedy_step_ms"], 1)
        entry["kernels"] = kernel_breakdown(lambda: engine._step(batch, False), steps=5)
        entry["kernel_sum_ms"] = round(sum(k["us_per_step"] for k in entry["kernels"]) / 1000, 3)
        entry["gaps_ms"] = round(entry["greedy_step_ms"] - entry["kernel_sum_ms"], 3)
        f.pos.fill_(-1)
        f.temperature.zero_()
        out[f"batch{batch}"] = entry
    weight_bytes = sum(t.numel() * t.element_size() for L in f.layers for t in (L.wqkv, L.wo, L.wgu, L.wd))
    weight_bytes += f.lm_head.numel() * f.lm_head.element_size()
    out["weight_bytes_per_step"] = weight_bytes
    out["batch1_weight_read_gb_per_s"] = round(weight_bytes / (out["batch1"]["greedy_step_ms"] * 1e-3) / 1e9, 1)
    return out


def kernel_breakdown(step: Any, steps: int) -> list[dict]:
    """GPU time per kernel name per step, the largest first (eager: the same kernels a graph replays)."""
    from torch.autograd import DeviceType

    step()
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
    events = [e for e in prof.key_averages() if e.device_type != DeviceType.CPU and e.self_device_time_total > 0]
    events.sort(key=lambda e: e.self_device_time_total, reverse=True)
    return [{"name": e.key[:90], "us_per_step": round(e.self_device_time_total / steps, 1),
             "calls_per_step": e.count // steps,
             "us_per_call": round(e.self_device_time_total / max(1, e.count), 2)} for e in events[:25]]


def smoke_kernels(device: str = "cuda") -> dict:
    """Each kernel once on small bf16 inputs: which ones compile and run here (when the engine does not)."""
    from inference import fast_kernels as K

    def attempt(fn: Any) -> str:
        try:
            fn()
            torch.cuda.synchronize()
            return "ok"
        except Exception as exc:  # report every kernel's failure, not only the first
            return f"{type(exc).__name__}: {exc}"[:600]

    bf = dict(device=device, dtype=torch.bfloat16)
    x, gu = torch.randn(4, 256, **bf), torch.randn(4, 512, **bf)
    cache = torch.randn(4, 2, 128, 64, **bf)
    pos = torch.tensor([3, -1, 100, 0], dtype=torch.int32, device=device)
    cos = torch.randn(128, 32, device=device)
    qkv = torch.randn(4, 8 * 64, **bf)
    q = torch.empty(4, 4 * 64, **bf)
    probs = torch.rand(4, 5000, device=device)
    return {
        "prologue_norm": attempt(lambda: K.prologue(x, torch.empty_like(x), norm_weight=torch.ones(256, **bf),
                                                    eps=1e-5)),
        "prologue_silu": attempt(lambda: K.prologue(gu, torch.empty_like(x), silu_mul=True)),
        "rope_cache": attempt(lambda: K.rope_cache(qkv, q, cache, cache.clone(), pos, cos, cos, 4, 2)),
        "attention": attempt(lambda: K.decode_attention(q, cache, cache, pos, torch.empty_like(q), 4, 2, 4)),
        "gumbel": attempt(lambda: K.gumbel_pick(probs, torch.arange(4, device=device), pos,
                                                torch.empty(4, dtype=torch.int32, device=device))),
    }

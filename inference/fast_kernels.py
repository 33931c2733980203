"""Triton kernels of the decode engine (``inference/fast_decode.py``): one launch per job, no extra passes.

Decoding a 3B model at batch 1 reads ~6.4 GB of weights per token, so a step is bound by memory
bandwidth; what costs beyond that is launches and kernels that read more than they need. The matrix
products stay with cuBLAS (on an H200 its batch-1 kernels beat a Triton GEMV with the norm fused in, on
every shape: bench/results/serving_speed-triton-gemv-2026-12-02.json); the kernels here do the rest:

- ``prologue``: the RMSNorm (or SiLU(gate) * up) in front of a product, one launch;
- ``rope_cache``: rotary embedding of q and k and the k/v write into each row's cache slot, one launch;
- ``decode_attention``: flash-decoding (split-K over the cached positions, then a merge) that reads only
  the filled positions of each row; its cost follows the real length, not the cache's size;
- ``gumbel_pick``: a sample from already-filtered probabilities with a counter-based random stream
  (the same seed and position give the same token on any batch).

The numerics follow transformers' Llama (RMSNorm output rounded to the weight dtype before the weight
multiply, SiLU rounded before the product), so bf16 logits stay within bf16 rounding of the reference.
``inference.fast_model.TorchOps`` is the reference of every kernel; tests compare the two, on CPU through
Triton's interpreter (``TRITON_INTERPRET=1``) and on CUDA for real.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl


@triton.jit
def _prologue_kernel(x_ptr, out_ptr, nw_ptr, K, stride_xb, stride_ob, eps, PROLOGUE: tl.constexpr,
                     BLOCK_K: tl.constexpr):
    # PROLOGUE 1: RMSNorm(x) * nw, rounded as transformers rounds it; 2: SiLU(x[:, :K]) * x[:, K:2K].
    b = tl.program_id(0)
    rk = tl.arange(0, BLOCK_K)
    kmask = rk < K
    if PROLOGUE == 2:
        g = tl.load(x_ptr + b * stride_xb + rk, mask=kmask, other=0.0)
        u = tl.load(x_ptr + b * stride_xb + K + rk, mask=kmask, other=0.0)
        gf = g.to(tl.float32)
        act = (gf / (1.0 + tl.exp(-gf))).to(g.dtype)
        y = (act.to(tl.float32) * u.to(tl.float32)).to(g.dtype)
    else:
        x = tl.load(x_ptr + b * stride_xb + rk, mask=kmask, other=0.0)
        xf = x.to(tl.float32)
        rstd = 1.0 / tl.sqrt(tl.sum(xf * xf, axis=0) / K + eps)
        nw = tl.load(nw_ptr + rk, mask=kmask, other=0.0)
        y = ((xf * rstd).to(x.dtype).to(tl.float32) * nw.to(tl.float32)).to(x.dtype)
    tl.store(out_ptr + b * stride_ob + rk, y, mask=kmask)


def prologue(x: torch.Tensor, out: torch.Tensor, *, norm_weight: torch.Tensor | None = None, eps: float = 0.0,
             silu_mul: bool = False) -> torch.Tensor:
    """RMSNorm(x) * norm_weight, or SiLU(x[:, :K]) * x[:, K:], into ``out`` [B, K] (one launch)."""
    k = out.shape[1]
    _prologue_kernel[(x.shape[0],)](x, out, norm_weight if norm_weight is not None else x, k, x.stride(0),
                                    out.stride(0), eps, PROLOGUE=2 if silu_mul else 1,
                                    BLOCK_K=triton.next_power_of_2(k), num_warps=8)
    return out


@triton.jit
def _rope_cache_kernel(qkv_ptr, q_ptr, k_cache_ptr, v_cache_ptr, pos_ptr, cos_ptr, sin_ptr, stride_qkv, stride_q,
                       stride_slot, stride_head, capacity, NQ: tl.constexpr, NKV: tl.constexpr, D: tl.constexpr):
    # One program per (row, head) of [q heads | k heads | v heads]: q and k rotated, k and v cached.
    b = tl.program_id(0)
    h = tl.program_id(1)
    rd = tl.arange(0, D // 2)
    pos = tl.load(pos_ptr + b)
    live = (pos >= 0) & (pos < capacity)
    p = tl.minimum(tl.maximum(pos, 0), capacity - 1)
    src = qkv_ptr + b * stride_qkv + h * D
    x1 = tl.load(src + rd)
    x2 = tl.load(src + D // 2 + rd)
    if h < NQ + NKV:
        c = tl.load(cos_ptr + p * (D // 2) + rd)
        s = tl.load(sin_ptr + p * (D // 2) + rd)
        f1 = x1.to(tl.float32)
        f2 = x2.to(tl.float32)
        y1 = (f1 * c - f2 * s).to(x1.dtype)
        y2 = (f2 * c + f1 * s).to(x1.dtype)
        if h < NQ:
            dst = q_ptr + b * stride_q + h * D
            tl.store(dst + rd, y1)
            tl.store(dst + D // 2 + rd, y2)
        elif live:
            dst = k_cache_ptr + b * stride_slot + (h - NQ) * stride_head + pos * D
            tl.store(dst + rd, y1)
            tl.store(dst + D // 2 + rd, y2)
    elif live:
        dst = v_cache_ptr + b * stride_slot + (h - NQ - NKV) * stride_head + pos * D
        tl.store(dst + rd, x1)
        tl.store(dst + D // 2 + rd, x2)


def rope_cache(qkv: torch.Tensor, q_out: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor,
               pos: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, n_q: int, n_kv: int) -> torch.Tensor:
    """Rotate q (into ``q_out`` [B, n_q*D]) and k, and write k and v at ``pos[b]`` of cache slot b.

    ``k_cache``/``v_cache`` are one layer's [slots, n_kv, capacity, D]; a row with ``pos < 0`` is idle
    (nothing cached). ``cos``/``sin`` are [capacity, D/2] float32 tables.
    """
    b = qkv.shape[0]
    d = k_cache.shape[-1]
    _rope_cache_kernel[(b, n_q + 2 * n_kv)](
        qkv, q_out, k_cache, v_cache, pos, cos, sin, qkv.stride(0), q_out.stride(0), k_cache.stride(0),
        k_cache.stride(1), k_cache.shape[2], NQ=n_q, NKV=n_kv, D=d, num_warps=1)
    return q_out


@triton.jit
def _attn_split_kernel(q_ptr, k_cache_ptr, v_cache_ptr, pos_ptr, o_part_ptr, lse_part_ptr, stride_qb, stride_slot,
                       stride_head, scale_log2, n_split, NQ: tl.constexpr, GROUP: tl.constexpr, D: tl.constexpr,
                       BLOCK_T: tl.constexpr, BLOCK_G: tl.constexpr):
    # Program (row b, kv head hk, split s): the GROUP query heads of hk over one chunk of the filled positions.
    b = tl.program_id(0)
    hk = tl.program_id(1)
    s = tl.program_id(2)
    length = tl.load(pos_ptr + b) + 1  # positions 0..pos are filled (pos itself by rope_cache); idle rows: 0
    length = tl.maximum(length, 0)
    per = tl.cdiv(tl.cdiv(length, n_split), BLOCK_T) * BLOCK_T
    start = s * per
    end = tl.minimum(start + per, length)
    rg = tl.arange(0, BLOCK_G)
    rd = tl.arange(0, D)
    rt = tl.arange(0, BLOCK_T)
    gmask = rg < GROUP
    heads = hk * GROUP + rg
    q = tl.load(q_ptr + b * stride_qb + heads[:, None] * D + rd[None, :], mask=gmask[:, None], other=0.0)
    kb = k_cache_ptr + b * stride_slot + hk * stride_head
    vb = v_cache_ptr + b * stride_slot + hk * stride_head
    m_i = tl.full([BLOCK_G], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_G], dtype=tl.float32)
    acc = tl.zeros([BLOCK_G, D], dtype=tl.float32)
    for t0 in range(start, end, BLOCK_T):
        t = t0 + rt
        tmask = t < end
        k = tl.load(kb + t[:, None] * D + rd[None, :], mask=tmask[:, None], other=0.0)
        qk = tl.dot(q, tl.trans(k)) * scale_log2
        qk = tl.where(tmask[None, :], qk, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(qk, axis=1))
        p = tl.exp2(qk - m_new[:, None])
        alpha = tl.exp2(m_i - m_new)
        l_i = l_i * alpha + tl.sum(p, axis=1)
        v = tl.load(vb + t[:, None] * D + rd[None, :], mask=tmask[:, None], other=0.0)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)
        m_i = m_new
    filled = l_i > 0
    out = acc / tl.where(filled, l_i, 1.0)[:, None]
    lse = tl.where(filled, m_i + tl.log2(tl.where(filled, l_i, 1.0)), float("-inf"))
    part = (b * NQ + heads) * n_split + s
    tl.store(o_part_ptr + part[:, None] * D + rd[None, :], out, mask=gmask[:, None])
    tl.store(lse_part_ptr + part, lse, mask=gmask)


@triton.jit
def _attn_merge_kernel(o_part_ptr, lse_part_ptr, out_ptr, stride_ob, n_split, NQ: tl.constexpr, D: tl.constexpr,
                       MAX_SPLIT: tl.constexpr):
    b = tl.program_id(0)
    h = tl.program_id(1)
    rs = tl.arange(0, MAX_SPLIT)
    smask = rs < n_split
    rd = tl.arange(0, D)
    base = (b * NQ + h) * n_split
    lse = tl.load(lse_part_ptr + base + rs, mask=smask, other=float("-inf"))
    m = tl.max(lse, axis=0)
    m = tl.where(m == float("-inf"), 0.0, m)
    w = tl.where(lse == float("-inf"), 0.0, tl.exp2(lse - m))
    o = tl.load(o_part_ptr + (base + rs)[:, None] * D + rd[None, :], mask=smask[:, None], other=0.0)
    total = tl.sum(w, axis=0)
    out = tl.sum(w[:, None] * o, axis=0) / tl.where(total > 0, total, 1.0)
    tl.store(out_ptr + b * stride_ob + h * D + rd, out.to(out_ptr.dtype.element_ty))


def decode_attention(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, pos: torch.Tensor,
                     out: torch.Tensor, n_q: int, n_kv: int, n_split: int, block_t: int = 64) -> torch.Tensor:
    """Attention of each row's one new query over its cached positions 0..pos[b], into ``out`` [B, n_q*D].

    ``n_split`` chunks of the filled positions run in parallel and are merged by their
    log-sum-exp; an idle row (``pos < 0``) gets zeros.
    """
    b = q.shape[0]
    d = k_cache.shape[-1]
    group = n_q // n_kv
    o_part = torch.empty(b, n_q, n_split, d, device=q.device, dtype=torch.float32)
    lse_part = torch.empty(b, n_q, n_split, device=q.device, dtype=torch.float32)
    scale_log2 = (1.0 / math.sqrt(d)) * 1.4426950408889634
    _attn_split_kernel[(b, n_kv, n_split)](
        q, k_cache, v_cache, pos, o_part, lse_part, q.stride(0), k_cache.stride(0), k_cache.stride(1), scale_log2,
        n_split, NQ=n_q, GROUP=group, D=d, BLOCK_T=block_t, BLOCK_G=max(16, triton.next_power_of_2(group)),
        num_warps=4, num_stages=2)
    _attn_merge_kernel[(b, n_q)](o_part, lse_part, out, out.stride(0), n_split, NQ=n_q, D=d,
                                 MAX_SPLIT=max(2, triton.next_power_of_2(n_split)), num_warps=2)
    return out


@triton.jit
def _gumbel_kernel(p_ptr, seed_ptr, pos_ptr, out_ptr, V, stride_pb, BLOCK: tl.constexpr):
    # argmax_j log p_j + Gumbel noise_j: a draw from p (unnormalised is fine); noise from (seed, pos, j).
    b = tl.program_id(0)
    seed = tl.load(seed_ptr + b)
    pos = tl.load(pos_ptr + b).to(tl.int64)
    key = (seed + pos * 1000003) % 2147483647
    best = tl.full([BLOCK], float("-inf"), dtype=tl.float32)
    best_i = tl.zeros([BLOCK], dtype=tl.int32)
    for v0 in range(0, V, BLOCK):
        idx = v0 + tl.arange(0, BLOCK)
        p = tl.load(p_ptr + b * stride_pb + idx, mask=idx < V, other=0.0)
        u = tl.rand(key, idx)
        g = tl.log(p) - tl.log(-tl.log(u))
        g = tl.where(p > 0, g, float("-inf"))
        take = g > best
        best = tl.where(take, g, best)
        best_i = tl.where(take, idx, best_i)
    top = tl.max(best, axis=0)
    choice = tl.min(tl.where(best == top, best_i, V), axis=0)
    tl.store(out_ptr + b, choice.to(out_ptr.dtype.element_ty))


def gumbel_pick(probs: torch.Tensor, seed: torch.Tensor, pos: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """One index per row of ``probs`` [B, V] (zeros never drawn), reproducible from (seed[b], pos[b])."""
    b, v = probs.shape
    _gumbel_kernel[(b,)](probs, seed, pos, out, v, probs.stride(0), BLOCK=2048, num_warps=8)
    return out

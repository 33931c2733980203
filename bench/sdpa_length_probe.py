"""SDPA per-length cost on this GPU (bf16, causal, 24 query / 8 key-value heads, head dim 128, forward + backward).

A diagnostic for Unsloth's padding-free path on an H200 (torch 2.11, no flash-attn package): it calls SDPA
once per distinct conversation length, and SDPA picks cuDNN attention there, which builds a plan for every
new length (Unsloth pads the lengths to multiples of 128 to bound that). Prints the backend SDPA picks and
ms/call for a repeated length vs new lengths, with cuDNN allowed and not.
    python bench/sdpa_length_probe.py     # H200 output: bench/results/sdpa_length_probe-2026-11-22.json
"""

from __future__ import annotations

import contextlib
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

BACKENDS = "0 math, 1 flash, 2 memory-efficient, 3 cuDNN"


def qkv(length: int, gqa: bool) -> tuple[torch.Tensor, ...]:
    def make(heads: int) -> torch.Tensor:
        return torch.randn(1, heads, length, 128, device="cuda", dtype=torch.bfloat16, requires_grad=True)

    return make(24), make(8 if gqa else 24), make(8 if gqa else 24)


def step(length: int, gqa: bool) -> None:
    q, k, v = qkv(length, gqa)
    F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=gqa).sum().backward()


def ms_per_call(lengths: list[int], gqa: bool) -> float:
    torch.cuda.synchronize()
    start = time.perf_counter()
    for length in lengths:
        step(length, gqa)
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / len(lengths) * 1e3


def main() -> None:
    priority = [int(x) for x in getattr(torch._C, "_get_sdp_priority_order", lambda: [])()]
    print("torch", torch.__version__, "priority", priority)
    for gqa in (True, False):
        q, k, v = qkv(128, gqa)
        print(f"choice gqa={gqa}:", int(torch._fused_sdp_choice(q, k, v, is_causal=True, enable_gqa=gqa)),
              f"({BACKENDS})")
    no_cudnn = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
    base, slow = 300, False
    for label, context in (("default", contextlib.nullcontext), ("no-cudnn", lambda: sdpa_kernel(no_cudnn))):
        for gqa in (True, False):
            with context():
                step(700, gqa)
                same = ms_per_call([700] * 10, gqa)
                new = ms_per_call([base + 3 * i for i in range(10)], gqa)  # lengths not seen before
                base += 31
            print(f"{label} gqa={gqa}: same length {same:.2f} ms/call, new lengths {new:.2f} ms/call")
            slow |= label == "default" and new > 5 * same and new > 10
    print("NEWLEN_SLOW" if slow else "NEWLEN_OK")


if __name__ == "__main__":
    main()

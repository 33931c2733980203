"""Choosing the next token on the device: greedy argmax, or temperature + top-p sampling keyed by (seed, position).

    probs, ids = top_p_filter(logits, temperature, top_p)
    token = sample_next(logits, temperature, top_p, seed, pos, triton_pick)   # inside a CUDA graph

The random draw of a row depends only on its seed and the position being generated, never on the
other rows of the batch or on a global generator, so a seeded reply is reproducible however requests
are batched. On CUDA the draw is the Gumbel-max kernel of ``inference.fast_kernels``; on CPU the same
formula with a CPU generator per (seed, position).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

SEED_MOD = 2147483647


def top_p_filter(logits: torch.Tensor, temperature: torch.Tensor, top_p: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted probabilities (descending) of ``logits / temperature`` with the tail beyond ``top_p`` zeroed,
    and their token ids. The most likely token always stays (as transformers' top-p keeps one)."""
    t = torch.where(temperature > 0, temperature, torch.ones_like(temperature))
    probs = torch.softmax(logits / t[:, None], dim=-1)
    sorted_probs, ids = probs.sort(dim=-1, descending=True)
    before = sorted_probs.cumsum(dim=-1) - sorted_probs
    return sorted_probs.masked_fill(before >= top_p[:, None], 0.0), ids


def sample_next(logits: torch.Tensor, temperature: torch.Tensor, top_p: torch.Tensor, seed: torch.Tensor,
                pos: torch.Tensor, pick: Callable[..., torch.Tensor]) -> torch.Tensor:
    """Next token per row: argmax where ``temperature`` is 0, else a top-p sample keyed by (seed, pos)."""
    probs, ids = top_p_filter(logits, temperature, top_p)
    choice = pick(probs, seed, pos)
    sampled = ids.gather(1, choice.long()[:, None])[:, 0]
    return torch.where(temperature > 0, sampled, argmax_rows(logits))


def argmax_rows(logits: torch.Tensor) -> torch.Tensor:
    """``logits.argmax(-1)`` in two short passes: one row of 128k logits is a slow single reduction on a
    GPU (27 us on an H200, 1 % of a step); 256 chunks reduce in parallel. Ties go to the first index."""
    batch, vocab = logits.shape
    for parts in (256, 128, 64):
        if vocab % parts == 0 and vocab // parts >= 64:
            values, index = logits.view(batch, parts, vocab // parts).max(dim=-1)
            best = values.argmax(dim=-1)
            return best * (vocab // parts) + index.gather(1, best[:, None])[:, 0]
    return logits.argmax(dim=-1)


def torch_pick(probs: torch.Tensor, seed: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Gumbel-max draw per row with a CPU generator seeded by (seed, pos): the CPU path's sampler."""
    choices = []
    for row in range(probs.shape[0]):
        key = (int(seed[row]) + int(pos[row]) * 1000003) % SEED_MOD
        generator = torch.Generator(device=probs.device).manual_seed(key)
        u = torch.rand(probs.shape[1], generator=generator, device=probs.device).clamp_min(1e-30)
        choices.append(int((probs[row].log() - (-u.log()).log()).argmax()))
    return torch.tensor(choices, device=probs.device)


def triton_pick(probs: torch.Tensor, seed: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    from inference.fast_kernels import gumbel_pick

    return gumbel_pick(probs, seed, pos, torch.empty(probs.shape[0], dtype=torch.int32, device=probs.device))

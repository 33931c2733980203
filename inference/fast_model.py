"""A Llama decoder laid out for fast decoding: fused weights, a per-slot KV cache, a batch-1..16 decode step.

    fast = FastLlama(hf_model, slots=8, capacity=4096)   # shares the weights with hf_model
    logits = fast.prefill(slot=0, ids=torch.tensor(prompt_ids))
    fast.tokens[0] = first_token; fast.pos[0] = len(prompt_ids)
    logits = fast.decode(batch=1)                         # one new token for rows 0..batch-1

The q/k/v projections are one [q+k+v, hidden] matrix and gate/up one [2*intermediate, hidden] matrix:
fewer, larger matrix-vector products. The transformers model keeps working: its projections are
re-pointed at views of the fused matrices (no second copy of the weights).

Row ``b`` of a decode batch is cache slot ``b``; a row with ``pos[b] < 0`` is idle (its attention reads
nothing and it writes no cache). Two implementations of the per-token operations run the same step:
``TorchOps`` (plain PyTorch, any device: the CPU path and the reference) and ``TritonOps``
(``inference.fast_kernels``: norm prologues, rope + cache write, flash-decoding; cuBLAS products).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

SUPPORTED_ROPE = ("default", "llama3", "linear")  # position-only rotary tables (no length-dependent scaling)


def unsupported_reason(model: Any) -> str | None:
    """Why ``model`` cannot run on the fast path, or None when it can."""
    config = getattr(model, "config", None)
    if getattr(config, "model_type", None) != "llama":
        return f"model type {getattr(config, 'model_type', None)!r} is not llama"
    if hasattr(model, "peft_config"):
        return "the LoRA adapter is not merged"
    if getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False) \
            or getattr(config, "quantization_config", None):
        return "the weights are quantized"
    if getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
        return "the projections have biases"
    if getattr(config, "hidden_act", "silu") != "silu":
        return f"activation {config.hidden_act!r} is not silu"
    rope = (getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {})
    rope_type = rope.get("rope_type", rope.get("type", "default")) if isinstance(rope, dict) else "default"
    if rope_type not in SUPPORTED_ROPE:
        return f"rope type {rope_type!r} is not supported"
    if model.dtype not in (torch.bfloat16, torch.float16, torch.float32):
        return f"dtype {model.dtype} is not supported"
    return None


@dataclass
class Layer:
    wqkv: torch.Tensor     # [(n_q + 2 n_kv) * d, hidden]
    wo: torch.Tensor       # [hidden, n_q * d]
    wgu: torch.Tensor      # [2 * inter, hidden]
    wd: torch.Tensor       # [hidden, inter]
    ln1: torch.Tensor
    ln2: torch.Tensor


def _share(linear: torch.nn.Linear, view: torch.Tensor) -> None:
    linear.weight = torch.nn.Parameter(view, requires_grad=False)


@torch.no_grad()
def fuse_layers(model: Any) -> list[Layer]:
    """Fused weights of every decoder layer; the transformers modules are re-pointed at views of them."""
    layers = []
    for block in model.model.layers:
        attn, mlp = block.self_attn, block.mlp
        q, k, v = attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight
        wqkv = torch.cat([q, k, v]).contiguous()
        _share(attn.q_proj, wqkv[: q.shape[0]])
        _share(attn.k_proj, wqkv[q.shape[0]: q.shape[0] + k.shape[0]])
        _share(attn.v_proj, wqkv[q.shape[0] + k.shape[0]:])
        g, u = mlp.gate_proj.weight, mlp.up_proj.weight
        wgu = torch.cat([g, u]).contiguous()
        _share(mlp.gate_proj, wgu[: g.shape[0]])
        _share(mlp.up_proj, wgu[g.shape[0]:])
        layers.append(Layer(wqkv, attn.o_proj.weight.detach().contiguous(), wgu,
                            mlp.down_proj.weight.detach().contiguous(), block.input_layernorm.weight.detach(),
                            block.post_attention_layernorm.weight.detach()))
    return layers


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """transformers' LlamaRMSNorm: float32 statistics, rounded to the input dtype before the weight."""
    xf = x.float()
    xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return weight * xf.to(x.dtype)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding as transformers applies it; ``cos``/``sin`` are [..., D/2] halves."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class FastLlama:
    """Fused weights, rotary tables, the KV cache and the per-row decode state of one Llama model."""

    def __init__(self, model: Any, slots: int, capacity: int) -> None:
        config = model.config
        self.config = config
        self.device = model.device
        self.dtype = model.dtype
        self.n_q = config.num_attention_heads
        self.n_kv = config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.n_q
        self.eps = config.rms_norm_eps
        self.slots = slots
        self.capacity = capacity  # cached positions per slot
        self.layers = fuse_layers(model)
        self.embed = model.model.embed_tokens.weight.detach()
        self.lm_head = model.lm_head.weight.detach()
        self.final_norm = model.model.norm.weight.detach()
        self.cos, self.sin = self._rope_tables(model, capacity)
        shape = (len(self.layers), slots, self.n_kv, capacity, self.head_dim)
        self.k_cache = torch.zeros(shape, device=self.device, dtype=self.dtype)
        self.v_cache = torch.zeros(shape, device=self.device, dtype=self.dtype)
        # Per-row decode state, read and advanced by decode() (and by the CUDA graphs captured over it).
        self.tokens = torch.zeros(slots, dtype=torch.long, device=self.device)
        self.pos = torch.full((slots,), -1, dtype=torch.int32, device=self.device)
        self.temperature = torch.zeros(slots, dtype=torch.float32, device=self.device)
        self.top_p = torch.ones(slots, dtype=torch.float32, device=self.device)
        self.seed = torch.zeros(slots, dtype=torch.long, device=self.device)

    @property
    def kv_bytes(self) -> int:
        return 2 * self.k_cache.numel() * self.k_cache.element_size()

    @torch.no_grad()
    def _rope_tables(self, model: Any, capacity: int) -> tuple[torch.Tensor, torch.Tensor]:
        positions = torch.arange(capacity, device=self.device)[None]
        probe = torch.zeros(1, device=self.device, dtype=torch.float32)
        cos, sin = model.model.rotary_emb(probe, positions)  # float32 for a float32 probe
        half = self.head_dim // 2
        return cos[0, :, :half].float().contiguous(), sin[0, :, :half].float().contiguous()

    # -- prompt -------------------------------------------------------------------------------------
    @torch.no_grad()
    def prefill(self, slot: int, ids: torch.Tensor) -> torch.Tensor:
        """Run the prompt ``ids`` [P] through the model, cache its k/v in ``slot``; the last position's logits."""
        n = ids.shape[0]
        if n > self.capacity:
            raise ValueError(f"prompt of {n} tokens does not fit the {self.capacity}-token cache")
        d = self.head_dim
        x = self.embed[ids]
        cos, sin = self.cos[:n][:, None], self.sin[:n][:, None]
        for i, layer in enumerate(self.layers):
            qkv = rms_norm(x, layer.ln1, self.eps) @ layer.wqkv.t()
            q, k, v = qkv.split([self.n_q * d, self.n_kv * d, self.n_kv * d], dim=-1)
            q = rotate(q.view(n, self.n_q, d), cos, sin)
            k = rotate(k.view(n, self.n_kv, d), cos, sin)
            v = v.view(n, self.n_kv, d)
            self.k_cache[i, slot, :, :n] = k.transpose(0, 1)
            self.v_cache[i, slot, :, :n] = v.transpose(0, 1)
            attn = F.scaled_dot_product_attention(q.transpose(0, 1)[None], k.transpose(0, 1)[None],
                                                  v.transpose(0, 1)[None], is_causal=True, enable_gqa=True)
            x = x + attn[0].transpose(0, 1).reshape(n, self.n_q * d) @ layer.wo.t()
            gate, up = (rms_norm(x, layer.ln2, self.eps) @ layer.wgu.t()).chunk(2, dim=-1)
            x = x + (F.silu(gate) * up) @ layer.wd.t()
        return (rms_norm(x[-1:], self.final_norm, self.eps) @ self.lm_head.t()).float()[0]

    # -- one token per row ---------------------------------------------------------------------------
    def decode(self, batch: int, ops: Any) -> torch.Tensor:
        """Logits [batch, vocab] (float32) for ``tokens[:batch]`` at ``pos[:batch]``; caches their k/v."""
        pos = self.pos[:batch]
        x = self.embed[self.tokens[:batch]]
        for i, layer in enumerate(self.layers):
            qkv = ops.linear(x, layer.wqkv, norm_weight=layer.ln1, eps=self.eps)
            q = ops.rope_cache(self, qkv, i, pos)
            attn = ops.attention(self, q, i, pos)
            x = ops.linear(attn, layer.wo, residual=x)
            gu = ops.linear(x, layer.wgu, norm_weight=layer.ln2, eps=self.eps)
            x = ops.linear(gu, layer.wd, residual=x, silu_mul=True)
        return ops.linear(x, self.lm_head, norm_weight=self.final_norm, eps=self.eps, out_dtype=torch.float32)


class TorchOps:
    """The decode step's operations in plain PyTorch: the CPU path and the reference of ``TritonOps``."""

    name = "torch"

    def linear(self, x: torch.Tensor, w: torch.Tensor, *, norm_weight: torch.Tensor | None = None, eps: float = 0.0,
               residual: torch.Tensor | None = None, silu_mul: bool = False,
               out_dtype: torch.dtype | None = None) -> torch.Tensor:
        if silu_mul:
            gate, up = x.chunk(2, dim=-1)
            x = F.silu(gate) * up
        elif norm_weight is not None:
            x = rms_norm(x, norm_weight, eps)
        y = x @ w.t()
        if residual is not None:
            y = residual + y
        return y if out_dtype is None else y.to(out_dtype)

    def rope_cache(self, m: FastLlama, qkv: torch.Tensor, layer: int, pos: torch.Tensor) -> torch.Tensor:
        d, b = m.head_dim, qkv.shape[0]
        q, k, v = qkv.split([m.n_q * d, m.n_kv * d, m.n_kv * d], dim=-1)
        p = pos.long().clamp(0, m.capacity - 1)
        cos, sin = m.cos[p][:, None], m.sin[p][:, None]
        q = rotate(q.view(b, m.n_q, d), cos, sin)
        k = rotate(k.view(b, m.n_kv, d), cos, sin)
        for row in range(b):
            at = int(pos[row])
            if 0 <= at < m.capacity:
                m.k_cache[layer, row, :, at] = k[row]
                m.v_cache[layer, row, :, at] = v.view(b, m.n_kv, d)[row]
        return q.reshape(b, m.n_q * d)

    def attention(self, m: FastLlama, q: torch.Tensor, layer: int, pos: torch.Tensor) -> torch.Tensor:
        d, b = m.head_dim, q.shape[0]
        out = torch.zeros_like(q)
        for row in range(b):
            n = int(pos[row]) + 1
            if n <= 0:
                continue
            k = m.k_cache[layer, row, :, :n][None]
            v = m.v_cache[layer, row, :, :n][None]
            o = F.scaled_dot_product_attention(q[row].view(1, m.n_q, 1, d), k, v, enable_gqa=True)
            out[row] = o.reshape(m.n_q * d)
        return out


class TritonOps:
    """The decode step's operations with the Triton kernels of ``inference.fast_kernels`` (CUDA).

    Matrix products are cuBLAS's; their RMSNorm / SiLU prologue is one Triton launch.
    """

    name = "triton"

    def __init__(self, n_split: dict[int, int] | None = None) -> None:
        from inference import fast_kernels

        self.k = fast_kernels
        self.n_split = n_split or {}

    def linear(self, x: torch.Tensor, w: torch.Tensor, *, norm_weight: torch.Tensor | None = None, eps: float = 0.0,
               residual: torch.Tensor | None = None, silu_mul: bool = False,
               out_dtype: torch.dtype | None = None) -> torch.Tensor:
        if norm_weight is not None or silu_mul:
            x = self.k.prologue(x, torch.empty(x.shape[0], w.shape[1], device=x.device, dtype=x.dtype),
                                norm_weight=norm_weight, eps=eps, silu_mul=silu_mul)
        if residual is not None:
            return residual.addmm_(x, w.t())
        y = x @ w.t()
        return y if out_dtype is None else y.to(out_dtype)

    def rope_cache(self, m: FastLlama, qkv: torch.Tensor, layer: int, pos: torch.Tensor) -> torch.Tensor:
        q = torch.empty(qkv.shape[0], m.n_q * m.head_dim, device=qkv.device, dtype=qkv.dtype)
        return self.k.rope_cache(qkv, q, m.k_cache[layer], m.v_cache[layer], pos, m.cos, m.sin, m.n_q, m.n_kv)

    def attention(self, m: FastLlama, q: torch.Tensor, layer: int, pos: torch.Tensor) -> torch.Tensor:
        out = torch.empty_like(q)
        n_split = self.n_split.get(q.shape[0]) or default_splits(q.shape[0], m.n_kv)
        return self.k.decode_attention(q, m.k_cache[layer], m.v_cache[layer], pos, out, m.n_q, m.n_kv, n_split)


def default_splits(batch: int, n_kv: int, programs: int = 128) -> int:
    """Chunks per (row, kv head) so that a decode attention launch has ~``programs`` programs (2..16)."""
    want = max(1, programs // max(1, batch * n_kv))
    return max(2, min(16, 1 << (want.bit_length() - 1)))

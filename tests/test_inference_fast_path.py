"""The fast decode engine (inference/fast_decode.py) on a tiny real Llama.

On CPU the engine runs its PyTorch operations (``--fast-decode`` forced on): its greedy replies must equal
transformers' ``generate()`` token for token, with requests batched, queued, streamed and cancelled. The
Triton kernels run on CPU through Triton's interpreter against their PyTorch references; on a CUDA GPU
the same checks run compiled, in bf16, with CUDA graphs.
"""

from __future__ import annotations

import os
import threading

import pytest
import torch

from inference import BackendError, GenerationConfig, load_backend
from inference.fast_decode import row_seed
from inference.fast_sampling import argmax_rows, top_p_filter

CUDA = torch.cuda.is_available()
if not CUDA:
    os.environ.setdefault("TRITON_INTERPRET", "1")  # Triton kernels run (slowly) in numpy on CPU

GREEDY = GenerationConfig(max_new_tokens=24, temperature=0)
CONVERSATIONS = [
    [{"role": "user", "content": "What is LoRA?"}],
    [{"role": "system", "content": "You teach."},
     {"role": "user", "content": "Explain photosynthesis step by step, please."}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! What shall we learn?"},
     {"role": "user", "content": "The derivative of x squared."}],
]


@pytest.fixture(scope="module")
def plain(tiny_model_dir, tiny_adapter_dir):
    return load_backend(base_model=str(tiny_model_dir), adapter=str(tiny_adapter_dir), fast_decode=False,
                        warmup=False)


@pytest.fixture(scope="module")
def fast(tiny_model_dir, tiny_adapter_dir):
    backend = load_backend(base_model=str(tiny_model_dir), adapter=str(tiny_adapter_dir), fast_decode=True,
                           decode_slots=2, max_context_tokens=512)
    yield backend
    backend.close()


def test_fast_path_is_default_on_cuda_only(tiny_model_dir):
    backend = load_backend(base_model=str(tiny_model_dir), warmup=False)
    assert (backend.engine is not None) == CUDA
    assert backend.capabilities.concurrent == CUDA
    assert backend.description.endswith(", fast decode)") == CUDA


@pytest.mark.skipif(CUDA, reason="bf16 on a GPU rounds differently from generate(); the GPU tests compare logits")
def test_greedy_replies_equal_generate_token_for_token(fast, plain):
    config = GenerationConfig(max_new_tokens=40, temperature=0)
    assert fast.chat_batch(CONVERSATIONS, config) == plain.chat_batch(CONVERSATIONS, config)
    assert "".join(fast.stream_chat(CONVERSATIONS[1], config)) == plain.chat_batch([CONVERSATIONS[1]], config)[0]


def test_stream_equals_batch_and_arrives_in_pieces(fast):
    deltas = list(fast.stream_chat(CONVERSATIONS[0], GREEDY))
    full = fast.chat_batch([CONVERSATIONS[0]], GREEDY)[0]
    assert "".join(deltas) == full
    # text is released at word boundaries: a reply with spaces arrives in several pieces
    assert len(deltas) > 1 or not any(c.isspace() for c in full.strip())


@pytest.mark.skipif(CUDA, reason="on a GPU a reply may round differently in a batch of 2 than alone")
def test_more_requests_than_slots_wait_and_each_gets_its_own_reply(fast, plain):
    conversations = CONVERSATIONS + [[{"role": "user", "content": f"Tell me about topic {i}"}] for i in range(3)]
    assert fast.chat_batch(conversations, GREEDY) == plain.chat_batch(conversations, GREEDY)
    assert fast.engine._rows == [None, None] and not fast.engine._pending


def test_concurrent_streams_share_decode_steps(fast):
    config = GenerationConfig(max_new_tokens=30, temperature=0)
    results: dict[int, list[str]] = {}
    barrier = threading.Barrier(2)
    before = fast.engine.steps

    def stream(i: int) -> None:
        barrier.wait()
        results[i] = list(fast.stream_chat(CONVERSATIONS[i], config))

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    steps = fast.engine.steps - before
    assert all(results.get(i) for i in range(2))
    if not CUDA:
        assert ["".join(results[i]) for i in range(2)] == fast.chat_batch(CONVERSATIONS[:2], config)
    # two replies of up to 30 tokens in fewer steps than one after the other would take
    assert steps < 58


def test_seeded_sampling_is_reproducible_and_a_stream_matches_its_batch(fast):
    sampled = GenerationConfig(max_new_tokens=16, temperature=1.0, top_p=0.9, seed=7)
    first = fast.chat_batch([CONVERSATIONS[0]], sampled)
    assert fast.chat_batch([CONVERSATIONS[0]], sampled) == first
    assert "".join(fast.stream_chat(CONVERSATIONS[0], sampled)) == first[0]
    seeds = {fast.chat_batch([CONVERSATIONS[0]], GenerationConfig(16, 1.0, 1.0, seed=s))[0] for s in range(4)}
    assert len(seeds) > 1
    # the replies of one batch draw from different streams: the same prompt twice gives two replies
    twice = fast.chat_batch([CONVERSATIONS[0]] * 2, GenerationConfig(16, 1.0, 1.0, seed=3))
    assert twice[0] != twice[1] and row_seed(3, 0) == 3


def test_abandoned_stream_frees_its_slot(fast):
    stream = fast.stream_chat(CONVERSATIONS[0], GenerationConfig(max_new_tokens=400, temperature=1.0, seed=1))
    next(stream)
    stream.close()  # what Gradio does when the user presses Stop
    assert fast.chat_batch([CONVERSATIONS[0]], GREEDY) == fast.chat_batch([CONVERSATIONS[0]], GREEDY)
    assert fast.engine._rows == [None, None]


def test_stops_at_max_new_tokens_and_on_a_stop_token(fast):
    ids = fast.prompt_ids(CONVERSATIONS[0], 8)
    assert len(fast.engine.submit(ids, 5).result()) == 5
    first = fast.engine.submit(ids, 5).result()[0]
    assert fast.engine.submit(ids, 5, stop_ids={first}).result() == []


def test_fast_decode_refuses_a_model_it_cannot_run(tiny_model_dir, tiny_adapter_dir):
    with pytest.raises(BackendError, match="--fast-decode cannot run this model: the LoRA adapter is not merged"):
        load_backend(base_model=str(tiny_model_dir), adapter=str(tiny_adapter_dir), merge_adapter=False,
                     fast_decode=True, warmup=False)


def test_argmax_rows_and_top_p_filter():
    logits = torch.randn(3, 128256)
    logits[1, 5] = logits[1, 70000] = 50.0  # a tie goes to the first index, as argmax does
    assert argmax_rows(logits).tolist() == logits.argmax(-1).tolist() == [logits[0].argmax(), 5, logits[2].argmax()]
    probs, ids = top_p_filter(torch.tensor([[0.1, 0.2, 0.3, 0.4]]).log(), torch.ones(1), torch.tensor([0.65]))
    assert ids.tolist() == [[3, 2, 1, 0]]
    assert probs[0].tolist() == pytest.approx([0.4, 0.3, 0.0, 0.0])


# -- the Triton kernels against their PyTorch references -------------------------------------------------
@pytest.fixture(scope="module")
def kernels():
    pytest.importorskip("triton")
    if not CUDA:
        _interpreter_numpy_fix()
    from inference import fast_kernels

    return fast_kernels


def _interpreter_numpy_fix() -> None:
    """Triton 3.6's interpreter turns a 1-element array into an int, which NumPy >= 2.4 refuses."""
    import triton.runtime.interpreter as interpreter

    original = interpreter._patch_lang_tensor
    if getattr(original, "fixed", False):
        return

    def patched(tensor, scope) -> None:
        original(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.reshape(-1)[0]))

    patched.fixed = True
    interpreter._patch_lang_tensor = patched


class _Cache:
    """What the rope/attention operations read from a FastLlama: heads, cache and rotary tables."""

    def __init__(self, device: str, dtype: torch.dtype, slots: int = 4, n_q: int = 4, n_kv: int = 2, d: int = 16,
                 capacity: int = 150) -> None:
        self.n_q, self.n_kv, self.head_dim, self.capacity = n_q, n_kv, d, capacity
        self.k_cache = torch.randn(1, slots, n_kv, capacity, d, device=device, dtype=dtype)
        self.v_cache = torch.randn(1, slots, n_kv, capacity, d, device=device, dtype=dtype)
        angles = torch.arange(capacity, device=device)[:, None] * torch.rand(d // 2, device=device)[None]
        self.cos, self.sin = angles.cos(), angles.sin()


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


@pytest.mark.slow
def test_kernels_match_pytorch(kernels):
    from inference.fast_model import TorchOps, rms_norm

    device, dtype = ("cuda", torch.bfloat16) if CUDA else ("cpu", torch.float32)  # the interpreter: float32
    tol = 2e-2 if CUDA else 1e-5
    ref = TorchOps()
    x, nw = torch.randn(3, 64, device=device, dtype=dtype), torch.randn(64, device=device, dtype=dtype)
    assert _rel(kernels.prologue(x, torch.empty_like(x), norm_weight=nw, eps=1e-5), rms_norm(x, nw, 1e-5)) < tol
    gu = torch.randn(3, 128, device=device, dtype=dtype)
    silu = torch.nn.functional.silu(gu[:, :64]) * gu[:, 64:]
    assert _rel(kernels.prologue(gu, torch.empty_like(x), silu_mul=True), silu) < tol

    m = _Cache(device, dtype)
    pos = torch.tensor([5, -1, 149, 100], dtype=torch.int32, device=device)  # an idle row, the last position
    qkv = torch.randn(4, 8 * 16, device=device, dtype=dtype)
    k_before, v_before = m.k_cache.clone(), m.v_cache.clone()
    q = torch.full((4, 64), float("nan"), device=device, dtype=dtype)
    kernels.rope_cache(qkv, q, m.k_cache[0], m.v_cache[0], pos, m.cos, m.sin, 4, 2)
    k_tri, v_tri = m.k_cache.clone(), m.v_cache.clone()
    m.k_cache, m.v_cache = k_before, v_before
    q_ref = ref.rope_cache(m, qkv, 0, pos)
    assert _rel(q, q_ref) < tol and _rel(k_tri, m.k_cache) < tol and torch.equal(v_tri, m.v_cache)
    assert torch.equal(k_tri[0, 1], k_before[0, 1])  # the idle row wrote nothing

    expected = ref.attention(m, q_ref, 0, pos)
    for splits in (2, 3, 16):  # 16 chunks of 150 positions leave some chunks empty
        out = torch.full_like(q, float("nan"))
        kernels.decode_attention(q_ref, m.k_cache[0], m.v_cache[0], pos, out, 4, 2, splits, block_t=16)
        assert _rel(out, expected) < tol, splits
        assert not out[1].any()  # an idle row attends to nothing


@pytest.mark.slow
def test_gumbel_sampler_is_keyed_by_seed_and_position_and_never_draws_a_zero(kernels):
    device = "cuda" if CUDA else "cpu"
    probs = torch.zeros(6, 3000, device=device)
    probs[:, 1000:1010] = torch.rand(10, device=device)
    seeds = torch.tensor([1, 1, 2, 3, 4, 5], device=device)
    pos = torch.tensor([0, 0, 0, 1, 2, 3], dtype=torch.int32, device=device)
    picks = kernels.gumbel_pick(probs, seeds, pos, torch.empty(6, dtype=torch.int32, device=device)).tolist()
    assert all(1000 <= p < 1010 for p in picks)
    assert picks[0] == picks[1]  # same (seed, position), same draw
    again = kernels.gumbel_pick(probs, seeds, pos, torch.empty(6, dtype=torch.int32, device=device)).tolist()
    assert again == picks and len(set(picks)) > 1


@pytest.mark.slow
@pytest.mark.skipif(CUDA, reason="on CUDA the engine already runs the Triton kernels (GPU tests below)")
def test_engine_with_triton_kernels_equals_generate_on_cpu(kernels, tiny_model_dir):
    from inference.fast_decode import DecodeEngine
    from inference.loading import load_model
    from inference.worker import GenerationWorker

    loaded = load_model(str(tiny_model_dir), device="cpu")
    ids = loaded.tokenizer("Explain how photosynthesis works", add_special_tokens=True).input_ids
    expected = loaded.model.generate(torch.tensor([ids]), max_new_tokens=10, do_sample=False, eos_token_id=None,
                                     pad_token_id=loaded.tokenizer.pad_token_id)[0, len(ids):].tolist()
    engine = DecodeEngine(loaded.model, worker=GenerationWorker(), slots=2, max_context=64, triton=True,
                          cuda_graphs=False)
    first, second = engine.submit(ids, 10), engine.submit(ids[:4], 6, temperature=1.0, seed=2)
    assert first.result() == expected
    assert len(second.result()) == 6


# -- on a CUDA GPU: compiled kernels, bf16, CUDA graphs --------------------------------------------------
@pytest.mark.gpu
def test_gpu_decode_step_logits_match_the_pytorch_step(fast):
    from inference.fast_model import TorchOps

    engine = fast.engine
    f = engine.fast
    ids = torch.tensor(fast.prompt_ids(CONVERSATIONS[1], 8), device="cuda")

    def step(ops) -> torch.Tensor:
        f.prefill(0, ids[:-1])
        f.tokens[0], f.pos[0] = ids[-1], len(ids) - 1
        return f.decode(1, ops)[0].clone()

    def run() -> tuple[torch.Tensor, torch.Tensor]:
        with torch.inference_mode():
            try:
                return step(engine.ops), step(TorchOps())
            finally:
                f.pos.fill_(-1)

    fused, reference = fast._worker.run(run)
    assert _rel(fused, reference) < 2e-2
    assert fused.argmax() == reference.argmax()


@pytest.mark.gpu
def test_gpu_graphs_cover_every_batch_size_and_the_sampler_is_fair(fast):
    from inference.fast_sampling import sample_next, triton_pick

    assert set(fast.engine._graphs) == {(b, s) for b in fast.engine.buckets for s in (False, True)}
    rows = 20000
    logits = torch.tensor([0.1, 0.2, 0.3, 0.4], device="cuda").log().repeat(rows, 1)
    picks = sample_next(logits, torch.ones(rows, device="cuda"), torch.ones(rows, device="cuda"),
                        torch.arange(rows, device="cuda"), torch.zeros(rows, dtype=torch.int32, device="cuda"),
                        triton_pick)
    freq = torch.bincount(picks, minlength=4).float() / rows
    assert freq.tolist() == pytest.approx([0.1, 0.2, 0.3, 0.4], abs=0.015)

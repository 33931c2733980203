"""The transformers backend on a tiny real Llama: loading, adapters, streaming, batching, context, threads."""

from __future__ import annotations

import threading

import pytest

from inference import Backend, GenerationConfig, load_backend
from inference.prompts import with_system_prompt

GREEDY = GenerationConfig(max_new_tokens=24, temperature=0)
QUESTION = [{"role": "user", "content": "What is LoRA?"}]


@pytest.fixture(scope="module")
def base(tiny_model_dir):
    return load_backend(base_model=str(tiny_model_dir))


@pytest.fixture(scope="module")
def tuned(tiny_model_dir, tiny_adapter_dir):
    return load_backend(base_model=str(tiny_model_dir), adapter=str(tiny_adapter_dir))


def test_loads_as_a_backend_with_full_precision_on_cpu(base):
    assert isinstance(base, Backend)
    assert base.description == "transformers (float32 on cpu)"
    reply = base.chat_batch([QUESTION], GREEDY)[0]
    assert isinstance(reply, str) and reply.strip()


def test_adapter_changes_greedy_output(base, tuned):
    assert tuned.loaded.adapter_merged  # 16-bit/fp32: merged for speed
    assert base.chat_batch([QUESTION], GREEDY) != tuned.chat_batch([QUESTION], GREEDY)


def test_unmerged_adapter_gives_the_same_output_as_merged(tiny_model_dir, tiny_adapter_dir, tuned):
    unmerged = load_backend(base_model=str(tiny_model_dir), adapter=str(tiny_adapter_dir),
                            merge_adapter=False, warmup=False)
    assert not unmerged.loaded.adapter_merged
    assert unmerged.chat_batch([QUESTION], GREEDY) == tuned.chat_batch([QUESTION], GREEDY)


@pytest.mark.parametrize("which", ["base", "tuned"])
def test_stream_equals_non_streamed_greedy_text(which, request):
    backend = request.getfixturevalue(which)
    deltas = list(backend.stream_chat(QUESTION, GREEDY))
    full = backend.chat_batch([QUESTION], GREEDY)[0]
    assert "".join(deltas) == full
    # The streamer releases text at word boundaries: a reply with spaces arrives in several pieces.
    assert len(deltas) > 1 or not any(c.isspace() for c in full.strip())


def test_batch_equals_one_by_one(tuned):
    conversations = [
        QUESTION,
        with_system_prompt([{"role": "user", "content": "Explain photosynthesis step by step, please."}]),
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! What shall we learn?"},
         {"role": "user", "content": "The derivative of x squared."}],
    ]
    one_by_one = [tuned.chat_batch([c], GREEDY)[0] for c in conversations]
    assert tuned.chat_batch(conversations, GREEDY) == one_by_one


def test_generation_stops_at_max_new_tokens_and_on_eot(tuned):
    ids = tuned.tokenizer(tuned.chat_batch([QUESTION], GenerationConfig(max_new_tokens=5, temperature=0))[0],
                          add_special_tokens=False).input_ids
    assert 1 <= len(ids) <= 6  # decode/re-encode may merge or split one token at the edges
    assert tuned.tokenizer.convert_tokens_to_ids("<|eot_id|>") in tuned.stop_ids


def test_seed_makes_sampling_reproducible(tuned):
    sampled = GenerationConfig(max_new_tokens=16, temperature=1.0, top_p=1.0, seed=7)
    first = tuned.chat_batch([QUESTION], sampled)
    assert tuned.chat_batch([QUESTION], sampled) == first
    assert "".join(tuned.stream_chat(QUESTION, sampled)) == first[0]
    others = {tuned.chat_batch([QUESTION], GenerationConfig(16, 1.0, 1.0, seed=s))[0] for s in range(5)}
    assert len(others) > 1


def test_long_history_keeps_system_prompt_and_newest_turns(tiny_model_dir):
    small = load_backend(base_model=str(tiny_model_dir), max_context_tokens=640, warmup=False)
    history = []
    for i in range(40):
        history += [{"role": "user", "content": f"Question number {i}: what is {i} plus {i}?"},
                    {"role": "assistant", "content": f"It is {2 * i}. The mitochondria is the powerhouse."}]
    messages = with_system_prompt(history + [{"role": "user", "content": "And the newest question?"}])
    prompt = small.render_prompt(messages, max_new_tokens=32)
    assert len(small.tokenizer(prompt, add_special_tokens=False).input_ids) <= 640 - 32
    assert "You are Llama Tutor" in prompt
    assert prompt.rstrip().endswith("And the newest question?<|eot_id|><|start_header_id|>assistant<|end_header_id|>")
    assert "Question number 39" in prompt and "Question number 0:" not in prompt
    reply = small.chat_batch([messages], GenerationConfig(max_new_tokens=32, temperature=0))[0]
    assert reply == "".join(small.stream_chat(messages, GenerationConfig(max_new_tokens=32, temperature=0)))


def test_one_huge_message_is_cut_not_crashed(tiny_model_dir):
    small = load_backend(base_model=str(tiny_model_dir), max_context_tokens=128, warmup=False)
    huge = [{"role": "user", "content": "LoRA adds small matrices. " * 400 + "So what is LoRA?"}]
    prompt = small.render_prompt(huge, max_new_tokens=16)
    assert len(small.tokenizer(prompt, add_special_tokens=False).input_ids) <= 128 - 16
    assert "So what is LoRA?" in prompt
    assert small.chat_batch([huge], GenerationConfig(max_new_tokens=16, temperature=0))[0] is not None


def test_gradio_block_content_is_normalised(tuned):
    blocks = [{"role": "user", "content": [{"type": "text", "text": "What is LoRA?"}]}]
    assert tuned.chat_batch([blocks], GREEDY) == tuned.chat_batch([QUESTION], GREEDY)


def test_concurrent_streams_get_their_own_complete_answers(tuned):
    prompts = [[{"role": "user", "content": f"Tell me about topic {i}"}] for i in range(4)]
    expected = [tuned.chat_batch([p], GREEDY)[0] for p in prompts]
    results: dict[int, str] = {}
    barrier = threading.Barrier(len(prompts))

    def stream(i: int) -> None:
        barrier.wait()
        results[i] = "".join(tuned.stream_chat(prompts[i], GREEDY))

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert [results.get(i) for i in range(len(prompts))] == expected


def test_abandoned_stream_stops_generation_and_frees_the_model(tuned):
    long = GenerationConfig(max_new_tokens=2000, temperature=1.0, seed=1)
    stream = tuned.stream_chat(QUESTION, long)
    next(stream)
    stream.close()  # what Gradio does when the user presses Stop
    # The worker is free again at once: a short request completes (it would queue behind 2000 tokens).
    assert tuned.chat_batch([QUESTION], GREEDY) == tuned.chat_batch([QUESTION], GREEDY)


def test_nf4_on_cpu_with_unmerged_adapter(tiny_model_dir, tiny_adapter_dir):
    pytest.importorskip("bitsandbytes")
    q = load_backend(base_model=str(tiny_model_dir), adapter=str(tiny_adapter_dir), quantization="4bit",
                     warmup=False)
    assert q.loaded.quantization == "4bit" and not q.loaded.adapter_merged
    assert q.description == "transformers (nf4 on cpu)"
    assert "".join(q.stream_chat(QUESTION, GREEDY)) == q.chat_batch([QUESTION], GREEDY)[0]


def test_generation_works_in_a_forked_child(tuned):
    """ZeroGPU Spaces run every @spaces.GPU handler in a forked process: the worker must follow."""
    import multiprocessing

    expected = tuned.chat_batch([QUESTION], GREEDY)[0]
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()

    def child() -> None:
        results.put("".join(tuned.stream_chat(QUESTION, GREEDY)))

    process = ctx.Process(target=child)
    process.start()
    process.join(timeout=60)
    alive = process.is_alive()
    if alive:
        process.kill()
    assert not alive, "generation hung in the forked child"
    assert results.get(timeout=5) == expected

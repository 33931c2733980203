"""Base model + LoRA adapter through transformers/peft: streaming chat and batched generation.

    python -m inference --base-model unsloth/Llama-3.2-3B-Instruct --adapter outputs/finetome "What is LoRA?"
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from inference.backend import BackendError, GenerationConfig
from inference.context import ContextWindow
from inference.encode import PromptEncoder
from inference.loading import (DEFAULT_BASE_MODEL, QUANTIZATIONS, LoadedModel, avoid_cudnn_attention, load_model,
                               stop_token_ids)
from inference.registry import BackendSpec, Capabilities, option
from inference.worker import GenerationWorker

logger = logging.getLogger(__name__)

DEFAULT_MAX_CONTEXT = 4096
CAPABILITIES = Capabilities(streams=True, batches=True, concurrent=False, json_schema=False, loglik=True)


@dataclass
class TransformersOptions:
    """How the transformers backend loads and runs a model."""

    base_model: str = option(DEFAULT_BASE_MODEL, "hub id or local directory of the base model")
    adapter: str | None = option(None, "LoRA adapter: hub id or local directory (training's output_dir); "
                                       "none = the base model")
    quantization: str = option("auto", "auto: 16-bit with the adapter merged on a GPU where it fits, else NF4; "
                                       "full precision on CPU", choices=QUANTIZATIONS)
    device: str = option("auto", "auto, cpu, cuda or cuda:N")
    max_context_tokens: int | None = option(
        None, "context window in tokens; the oldest turns are dropped beyond it (default 4096)",
        flag="--max-context", low=64, high=1_048_576)
    fast_decode: bool | None = option(
        None, "the project's decode engine: fused Triton kernels, one CUDA graph per batch size, concurrent "
              "requests decoded together (default: on for a 16-bit Llama on CUDA, off elsewhere)")
    decode_slots: int = option(8, "fast decode: requests decoded together (each holds a KV cache of "
                                  "--max-context tokens); more wait in a queue", low=1, high=16)
    static_cache: bool = option(False, "CUDA only: transformers' own compiled static-cache decoding instead of "
                                       "the fast decode engine (~25 s compile at start-up and per new batch size)")
    merge_adapter: bool | None = option(None, "merge the adapter into the weights (default: yes unless 4-bit)",
                                        flag="")
    warmup: bool = option(True, "generate once at start-up so the first user does not pay one-off costs",
                          flag="")


class TransformersBackend:
    """Every generation runs on one worker thread, so concurrent callers never interleave tokens."""

    name = "transformers"

    def __init__(self, loaded: LoadedModel, max_context_tokens: int | None = None,
                 static_cache: bool = False, max_batch_size: int = 16, warmup: bool = True,
                 fast_decode: bool | None = None, decode_slots: int = 8) -> None:
        self.model, self.tokenizer = loaded.model, loaded.tokenizer
        self.loaded = loaded
        self.capabilities = CAPABILITIES
        limit = getattr(self.model.config, "max_position_embeddings", None) or DEFAULT_MAX_CONTEXT
        self.max_context_tokens = min(max_context_tokens or DEFAULT_MAX_CONTEXT, limit)
        self.static_cache = static_cache
        self.max_batch_size = max_batch_size
        self.stop_ids = stop_token_ids(self.tokenizer, self.model)
        self.tokenizer.padding_side = "left"  # decoder-only batches pad on the left
        self.window = ContextWindow(
            self.max_context_tokens, self._render,
            lambda text: self.tokenizer(text, add_special_tokens=False).input_ids, self.tokenizer.decode)
        self.encoder = PromptEncoder(
            self._render, lambda text: self.tokenizer(text, add_special_tokens=False).input_ids,
            lambda text: self.tokenizer(text, add_special_tokens=False, split_special_tokens=True).input_ids,
            [t.content for t in self.tokenizer.added_tokens_decoder.values()])
        if str(self.model.device).startswith("cuda"):
            avoid_cudnn_attention()
        self._worker = GenerationWorker(f"generation-{id(self):x}")
        self.engine = self._start_engine(fast_decode, decode_slots)
        if self.engine is not None:
            self.capabilities = replace(CAPABILITIES, concurrent=True)  # requests are batched into one step
        if warmup:
            self.warm_up()

    def _start_engine(self, wanted: bool | None, slots: int) -> Any:
        """The fast decode engine where it applies (by default: a 16-bit Llama on CUDA), else None."""
        cuda = str(self.model.device).startswith("cuda")
        if wanted is False or (wanted is None and (not cuda or self.static_cache)):
            return None
        if wanted is None and os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "true"):
            # ZeroGPU attaches the GPU only inside each forked @spaces.GPU call: no graphs kept from start-up
            logger.info("fast decode off on ZeroGPU (pass --fast-decode to try it); generating with generate()")
            return None
        from inference.fast_model import unsupported_reason

        reason = unsupported_reason(self.model)
        if reason is None and cuda:
            try:
                import triton  # noqa: F401
            except ImportError:
                reason = "triton is not installed"
        if reason is not None:
            if wanted:
                raise BackendError(f"--fast-decode cannot run this model: {reason}; drop --fast-decode "
                                   "(transformers' generate() serves it).")
            logger.info("fast decode off: %s; generating with transformers' generate()", reason)
            return None
        from inference.fast_decode import DecodeEngine

        return DecodeEngine(self.model, worker=self._worker, slots=slots, max_context=self.max_context_tokens)

    def warm_up(self) -> None:
        """Pay the first generation's one-off costs (CUDA context, kernels, allocator) at start-up.

        Measured on an H200 (bench/results/inference_speed-*.json): the first call after loading takes
        ~1.8 s for 2 tokens. A 128-token warm-up with SDPA's cuDNN kernel off (see
        ``inference.loading.avoid_cudnn_attention``) gave a first long reply at full speed (55 tok/s). On CPU a token or
        two is enough, and more would slow start-up there.
        """
        cuda = str(self.model.device).startswith("cuda")
        if self.engine is not None:
            self.engine.warm_up()  # kernels compiled, products timed, one CUDA graph per batch size captured
        question = "Explain, step by step, how plants turn sunlight into sugar. " * (20 if cuda else 1)
        config = GenerationConfig(max_new_tokens=128 if cuda else 2, temperature=0)
        self.chat_batch([[{"role": "user", "content": question}]], config)

    @property
    def description(self) -> str:
        q = "nf4" if self.loaded.quantization == "4bit" else self.loaded.dtype
        fast = ", fast decode" if self.engine is not None else ""
        return f"{self.name} ({q} on {self.loaded.device}{fast})"

    # -- prompts ---------------------------------------------------------------------------------
    def _render(self, messages: list[dict]) -> str:
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def prompt_budget(self, max_new_tokens: int) -> tuple[int, int]:
        """(prompt tokens, new tokens) within the context window."""
        return self.window.budget(max_new_tokens)

    def render_prompt(self, messages: list[dict], max_new_tokens: int) -> str:
        """The templated prompt after normalising content and fitting the context window."""
        return self._render(self.window.fit(messages, max_new_tokens))

    def prompt_ids(self, messages: list[dict], max_new_tokens: int) -> list[int]:
        """The prompt's token ids; message text is plain text (typed special tokens stay text)."""
        return self.encoder.encode(self.window.fit(messages, max_new_tokens))

    def _encode(self, conversations: list[list[dict]], config: GenerationConfig) -> Any:
        ids = [self.prompt_ids(m, config.max_new_tokens) for m in conversations]
        batch = self.tokenizer.pad({"input_ids": ids}, padding=True, return_tensors="pt")
        return batch.to(self.model.device)

    # -- generation ------------------------------------------------------------------------------
    def _generation_config(self, config: GenerationConfig) -> Any:
        from transformers import GenerationConfig as HFGenerationConfig

        _, new_tokens = self.prompt_budget(config.max_new_tokens)
        kwargs: dict[str, Any] = dict(
            max_new_tokens=new_tokens, do_sample=not config.greedy, eos_token_id=self.stop_ids,
            pad_token_id=self.tokenizer.pad_token_id, bos_token_id=self.tokenizer.bos_token_id)
        if not config.greedy:
            kwargs.update(temperature=config.temperature, top_p=config.top_p)
        if self.static_cache:
            # Fixed-size cache: transformers compiles the decode step (CUDA graphs) on CUDA.
            kwargs.update(cache_implementation="static", max_cache_len=self.max_context_tokens)
        return HFGenerationConfig(**kwargs)

    def _generate(self, inputs: Any, config: GenerationConfig, streamer: Any = None,
                  cancel: threading.Event | None = None) -> Any:
        """Runs on the worker thread."""
        import torch
        from transformers import StoppingCriteriaList

        if cancel is not None and cancel.is_set():
            return None
        if config.seed is not None:
            torch.manual_seed(config.seed)
        stopping = StoppingCriteriaList([_Cancelled(cancel)] if cancel is not None else [])
        try:
            with torch.inference_mode():
                return self.model.generate(**inputs, generation_config=self._generation_config(config),
                                           streamer=streamer, stopping_criteria=stopping)
        except torch.OutOfMemoryError:
            torch.cuda.empty_cache()
            raise BackendError("CUDA out of memory while generating; lower --max-new-tokens or the context "
                               "(--max-context), or load with --quantization 4bit.") from None
        finally:
            if streamer is not None:
                streamer.end()

    def _submit(self, messages: list[dict], config: GenerationConfig, index: int = 0, seed: int | None = None) -> Any:
        """Queue one conversation on the fast decode engine."""
        from inference.fast_decode import row_seed

        ids = self.prompt_ids(messages, config.max_new_tokens)
        _, new_tokens = self.prompt_budget(config.max_new_tokens)
        seed = seed if seed is not None else config.seed if config.seed is not None else secrets.randbits(31)
        return self.engine.submit(ids, new_tokens, temperature=0.0 if config.greedy else config.temperature,
                                  top_p=config.top_p, seed=row_seed(seed, index), stop_ids=frozenset(self.stop_ids))

    def _stream_engine(self, messages: list[dict], config: GenerationConfig) -> Iterator[str]:
        request = self._submit(messages, config)
        text = _TextPieces(self.tokenizer)
        try:
            for token in request:
                yield from text.put(token)
            yield from text.end()
        finally:
            request.cancel()  # the caller stopped reading (e.g. the user pressed Stop): free the slot

    def stream_chat(self, messages: list[dict], config: GenerationConfig | None = None) -> Iterator[str]:
        from transformers import TextIteratorStreamer

        config = config or GenerationConfig()
        if self.engine is not None:
            yield from self._stream_engine(messages, config)
            return
        inputs = self._encode([messages], config)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        cancel = threading.Event()
        future = self._worker.submit(lambda: self._generate(inputs, config, streamer, cancel))
        try:
            for text in streamer:
                if text:
                    yield text
        finally:
            cancel.set()  # the caller stopped reading (e.g. the user pressed Stop): stop generating
        future.result()  # re-raise a failure from the worker

    def chat_batch(self, conversations: list[list[dict]], config: GenerationConfig | None = None) -> list[str]:
        config = config or GenerationConfig()
        if self.engine is not None:
            seed = config.seed if config.seed is not None else secrets.randbits(31)
            requests = [self._submit(c, config, i, seed) for i, c in enumerate(conversations)]
            try:
                return [self.tokenizer.decode(r.result(), skip_special_tokens=True) for r in requests]
            finally:
                for request in requests:
                    request.cancel()
        replies: list[str] = []
        for start in range(0, len(conversations), self.max_batch_size):
            chunk = conversations[start:start + self.max_batch_size]
            inputs = self._encode(chunk, config)
            output = self._worker.run(lambda: self._generate(inputs, config))
            new_tokens = output[:, inputs["input_ids"].shape[1]:]
            replies += self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        return replies

    def close(self) -> None:
        self._worker.close()


class _TextPieces:
    """Token ids to printable text pieces, released exactly as ``TextIteratorStreamer`` releases them."""

    def __init__(self, tokenizer: Any) -> None:
        from transformers import TextStreamer

        pieces: list[str] = []

        class Collect(TextStreamer):
            def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
                pieces.append(text)

        self._pieces = pieces
        self._streamer = Collect(tokenizer, skip_prompt=False, skip_special_tokens=True)

    def put(self, token: int) -> list[str]:
        import torch

        self._streamer.put(torch.tensor([token]))
        return self._drain()

    def end(self) -> list[str]:
        self._streamer.end()
        return self._drain()

    def _drain(self) -> list[str]:
        out = [p for p in self._pieces if p]
        self._pieces.clear()
        return out


class _Cancelled:
    """Stopping criterion that ends generation once the consumer has gone away."""

    def __init__(self, event: threading.Event | None) -> None:
        self.event = event

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        stop = self.event is not None and self.event.is_set()
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


def load_transformers_backend(options: TransformersOptions) -> TransformersBackend:
    loaded = load_model(options.base_model, options.adapter, options.quantization, options.device,
                        options.merge_adapter)
    return TransformersBackend(loaded, max_context_tokens=options.max_context_tokens,
                               static_cache=options.static_cache, warmup=options.warmup,
                               fast_decode=options.fast_decode, decode_slots=options.decode_slots)


SPEC = BackendSpec("transformers", "base model + LoRA adapter in this process (GPU fast path)",
                   TransformersOptions, load_transformers_backend, CAPABILITIES)
